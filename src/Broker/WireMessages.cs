using System.Text.Json;
using System.Text.Json.Serialization;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Broker;

/// <summary>A chunk task: the job's whole spec travels with it, so any worker can start on any job from one message.</summary>
public sealed record TaskMessage(string Job, string Stage, string Input, string Output, long[] ChunkShape, int[] Halo,
    Dictionary<string, string> Parameters, long Chunk, int Attempt)
{
    public static TaskMessage From(JobSpec job, ProcessChunk command) => new(job.Id.Value, job.Stage, job.Input, job.Output,
        [job.ChunkShape.Z, job.ChunkShape.Y, job.ChunkShape.X], [job.Halo.Z, job.Halo.Y, job.Halo.X],
        new Dictionary<string, string>(job.Parameters, StringComparer.Ordinal), command.Chunk.Value, command.Attempt);

    public JobSpec Spec() => new(new JobId(Job), Stage, Input, Output, new Long3(ChunkShape[0], ChunkShape[1], ChunkShape[2]),
        new Halo(Halo[0], Halo[1], Halo[2]), Parameters);

    public ProcessChunk Command() => new(new JobId(Job), new ChunkId(Chunk), Attempt);
}

/// <summary>A worker's answer for one chunk: "completed" or "failed".</summary>
public sealed record ResultMessage(string Kind, string Job, long Chunk, int Attempt, long Voxels, uint Checksum, double Seconds, string Worker,
    string? Reason, bool Retryable)
{
    public static ResultMessage From(object result) => result switch
    {
        ChunkCompleted c => new("completed", c.Job.Value, c.Chunk.Value, c.Attempt, c.Voxels, c.Checksum, c.Elapsed.TotalSeconds, c.Worker, null, false),
        ChunkFailed f => new("failed", f.Job.Value, f.Chunk.Value, f.Attempt, 0, 0, 0, f.Worker, f.Reason, f.Retryable),
        _ => throw new ArgumentException($"not a chunk result: {result.GetType().Name}", nameof(result)),
    };

    public object ToResult() => Kind == "completed"
        ? new ChunkCompleted(new JobId(Job), new ChunkId(Chunk), Attempt, Voxels, Checksum, TimeSpan.FromSeconds(Seconds), Worker)
        : new ChunkFailed(new JobId(Job), new ChunkId(Chunk), Attempt, Reason ?? "unknown failure", Retryable, Worker);
}

/// <summary>A submitted job: the `chunkseg run` arguments it stands for (paths absolute), under an id.</summary>
public sealed record JobMessage(string Id, string[] Arguments, DateTimeOffset Submitted);

/// <summary>A worker's periodic sign of life, and what it has done.</summary>
public sealed record Heartbeat(string Worker, string Host, int Pid, string Backend, string? Gpu, int Concurrency, int Busy,
    long ChunksDone, long ChunksFailed, long MemoryBytes, DateTimeOffset Time);

/// <summary>A request to the coordinator: "status" (all jobs, or <see cref="Job"/>) or "cancel".</summary>
public sealed record ControlRequest(string Command, string? Job);

/// <summary>A job as the coordinator reports it.</summary>
public sealed record JobStatus(string Id, string State, string Output, string? Stage, long ChunksDone, long ChunksTotal,
    DateTimeOffset Submitted, DateTimeOffset? Started, DateTimeOffset? Finished, string? Error, IReadOnlyList<string> FailedChunks);

/// <summary>The coordinator's answer to "status": jobs, workers heard from, queue depths.</summary>
public sealed record ClusterStatus(string Coordinator, IReadOnlyList<JobStatus> Jobs, IReadOnlyList<Heartbeat> Workers,
    IReadOnlyDictionary<string, long> Queues, string? Message = null);

/// <summary>An event broadcast to workers.</summary>
public sealed record JobEvent(string Kind, string Job);

/// <summary>JSON on the wire: camelCase, compact, strict about nothing but types.</summary>
public static class Wire
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static byte[] Encode<T>(T message) => JsonSerializer.SerializeToUtf8Bytes(message, Options);

    /// <summary>Decodes a message body; a body that is not one (another version, garbage) is a <see cref="FormatException"/>.</summary>
    public static T Decode<T>(ReadOnlySpan<byte> body)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(body, Options) ?? throw new FormatException($"empty {typeof(T).Name}");
        }
        catch (JsonException e)
        {
            throw new FormatException($"not a {typeof(T).Name}: {e.Message}", e);
        }
    }
}
