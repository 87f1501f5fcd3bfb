using System.Text.Json.Serialization;

namespace ChunkSeg.Contracts.Messages;

/// <summary>
/// A message that crosses the cluster's wire. Every type implementing it has a fixed, versioned name in
/// <see cref="ClusterWire"/> (never a CLR type name), so members of different builds read each other.
/// Extend-only: new fields must be optional (nullable or defaulted).
/// </summary>
public interface IClusterMessage;

/// <summary>
/// A client's proof that it holds the cluster secret: an HMAC-SHA256 over the request (with this field null), a
/// fresh nonce and the time. The secret itself never travels.
/// </summary>
public sealed record ClusterAuth(string Nonce, long UnixSeconds, string Mac);

/// <summary>A mutating request from a client: it names what it changes and proves it may.</summary>
public interface IAuthorizedRequest : IClusterMessage
{
    ClusterAuth? Auth { get; }
}

// ---- coordinator ⇄ gpu-nodes ----

/// <summary>
/// Command to a chunk actor: process <paramref name="Chunk"/> of the pass <paramref name="Job"/>. The pass's whole spec
/// travels with it, so any node can start on any pass from one message; <paramref name="Shard"/> is the shard the
/// coordinator chose (it echoes back in <see cref="ChunkAccepted"/>). The trace context continues the coordinator's.
/// </summary>
public sealed record ChunkWork(JobSpec Job, long Chunk, int Attempt, int Shard, string? TraceParent, string? TraceState) : IClusterMessage;

/// <summary>A gpu-node took a chunk into its queue.</summary>
public sealed record ChunkAccepted(string Job, long Chunk, int Attempt, int Shard, string Node) : IClusterMessage;

/// <summary>A gpu-node refused a chunk (it is draining): the coordinator sends it elsewhere at once.</summary>
public sealed record ChunkRejected(string Job, long Chunk, int Attempt, int Shard, string Node, string Reason) : IClusterMessage;

/// <summary>A gpu-node's answer for one chunk: <see cref="ChunkCompleted"/> or <see cref="ChunkFailed"/>, with the node it ran on.</summary>
public sealed record ChunkResult(string Node, ChunkCompleted? Completed, ChunkFailed? Failed) : IClusterMessage
{
    [JsonIgnore] public object Result => (object?)Completed ?? Failed ?? throw new InvalidOperationException("a chunk result holds neither a completion nor a failure");
    [JsonIgnore] public JobId Job => Completed?.Job ?? Failed!.Job;
    [JsonIgnore] public long Chunk => Completed?.Chunk.Value ?? Failed!.Chunk.Value;
}

/// <summary>A gpu-node's periodic sign of life: who and where it is, what it can take and what it has done.</summary>
public sealed record NodeHeartbeat(string Node, string Address, string Host, int Pid, string Backend, string? Gpu, int Concurrency,
    int Running, int Queued, long ChunksDone, long ChunksFailed, long MemoryBytes, bool Draining, DateTimeOffset Time) : IClusterMessage;

// ---- clients ⇄ coordinator ----

/// <summary>A job as submitted: the run it stands for (a JSON document the coordinator's pipeline binds), under an id.</summary>
public sealed record SubmitJob(string Id, string Run, string Output, DateTimeOffset Submitted, ClusterAuth? Auth) : IAuthorizedRequest;

/// <summary>Cancel a queued or running job.</summary>
public sealed record CancelJob(string Id, ClusterAuth? Auth) : IAuthorizedRequest;

/// <summary>Ask the coordinator for its jobs (all, or one) and the gpu-nodes it hears from.</summary>
public sealed record GetClusterStatus(string? Job) : IClusterMessage;

/// <summary>Make a member leave the cluster gracefully (<paramref name="Down"/> false) or down it at once (true).</summary>
public sealed record ChangeMember(string Address, bool Down, ClusterAuth? Auth) : IAuthorizedRequest;

/// <summary>Ask any member for its view of the cluster: members, roles, leader, unreachable, shards.</summary>
public sealed record GetClusterView : IClusterMessage;

/// <summary>The answer to a mutating request: whether it was done, and what happened.</summary>
public sealed record ClusterReply(bool Ok, string Message) : IClusterMessage;

/// <summary>A job as the coordinator reports it.</summary>
public sealed record JobStatus(string Id, string State, string Output, string? Stage, long ChunksDone, long ChunksTotal,
    DateTimeOffset Submitted, DateTimeOffset? Started, DateTimeOffset? Finished, string? Error, IReadOnlyList<string> FailedChunks,
    IReadOnlyList<PassStatus>? Passes = null);

/// <summary>
/// One chunk pass of a running or finished job, as its coordinator saw it: chunks done (<paramref name="ChunksDoneHere"/> of
/// them by this run, the rest recorded by an earlier one), failed now, sent again; rate and time left from this run's chunks;
/// the chunk grid's shape (time points, z, y, x); the latest failures and re-sends.
/// </summary>
public sealed record PassStatus(int Index, string Pass, string Stage, string State, long ChunksDone, long ChunksTotal, long ChunksDoneHere,
    long ChunksFailed, long ChunksResent, long VoxelsDone, long VoxelsTotal, double Seconds, double VoxelsPerSecond, double? SecondsLeft,
    long[] Grid, IReadOnlyList<ChunkFailure> Failures, IReadOnlyList<ChunkResend> Resends);

/// <summary>An attempt of a chunk that failed on <paramref name="Node"/>; <paramref name="Retried"/> once it was sent again.</summary>
public sealed record ChunkFailure(long Chunk, int Attempt, string Node, string Reason, DateTimeOffset Time, bool Retried = false);

/// <summary>A chunk sent again because its node went away, its lease ran out or it was refused.</summary>
public sealed record ChunkResend(long Chunk, string Why, DateTimeOffset Time);

/// <summary>Ask the coordinator for the states of one z-plane of a pass's chunk grid (the job page's picture).</summary>
public sealed record GetChunkMap(string Job, int Pass, long T, long Z) : IClusterMessage;

/// <summary>
/// The answer to <see cref="GetChunkMap"/>: one character per chunk of the plane, row by row (<c>.</c> waiting, <c>i</c> in
/// flight, <c>r</c> sent again, <c>d</c> done, <c>f</c> failed); <paramref name="Error"/> when there is no such plane.
/// </summary>
public sealed record ChunkMap(string Job, int Pass, long T, long Z, long Height, long Width, string States, string? Error = null) : IClusterMessage;

/// <summary>
/// Chunks a gpu-node holds for the coordinator now (accepted, not yet answered), and the node's state as the coordinator
/// sees it: up, draining or gone (what status, the job page and the metrics show).
/// </summary>
public sealed record NodeLoad(string Node, int InFlight, int Window, int Shards, string State = "up");

/// <summary>The coordinator's answer to <see cref="GetClusterStatus"/>.</summary>
/// <paramref name="Lost"/>: gpu-nodes the coordinator heard from that are gone now (unreachable, left, removed or silent for a
/// minute), with their last heartbeat.
public sealed record ClusterStatus(string Coordinator, IReadOnlyList<JobStatus> Jobs, IReadOnlyList<NodeHeartbeat> Workers,
    IReadOnlyList<NodeLoad> Load, string? Message = null, IReadOnlyList<NodeHeartbeat>? Lost = null) : IClusterMessage;

/// <summary>One member as a member sees it.</summary>
public sealed record MemberView(string Address, string Status, IReadOnlyList<string> Roles, bool Reachable);

/// <summary>A shard region: the member hosting it and its shards with their chunk actors (entities).</summary>
public sealed record RegionView(string Address, IReadOnlyDictionary<string, int> Shards);

/// <summary>The answer to <see cref="GetClusterView"/>.</summary>
public sealed record ClusterView(string Self, string? Leader, IReadOnlyList<MemberView> Members, IReadOnlyList<RegionView> Regions,
    string? ShardsError = null) : IClusterMessage;
