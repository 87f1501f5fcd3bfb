using System.Collections.Concurrent;
using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using ChunkSeg.Cluster.Dispatch;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Telemetry;
using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Pipelines;
using Microsoft.Extensions.Logging;

namespace ChunkSeg.Cluster.Coordination;

/// <summary>
/// The coordinator: a cluster singleton on the coordinator role (<c>/user/jobs</c>, reached through the proxy
/// <c>/user/jobs-proxy</c> on every member and by clients through the receptionist).
/// <code>
///   clients ── submit / cancel / status / leave / down ──▶ JobManager ── ledger (shared store) ─ jobs.jsonl
///   gpu-nodes ── heartbeats, accepted, rejected, results ──▶ JobManager ──▶ NodeBoard ──▶ the pass's transport
///   cluster events (unreachable, removed) ──▶ NodeBoard: the chunks of a lost node are sent again at once
/// </code>
/// A job is a `run` (its <see cref="RunSpec"/> as JSON) or a batch of runs (<see cref="BatchSpec"/>): the singleton runs it with
/// <see cref="RunPipeline.ExecuteAsync"/> (<see cref="RunBatch.ExecuteAsync"/>: several inputs side by side), the embedded
/// pipeline with its chunk passes sent through a <see cref="ClusterChunkTransport"/> each. Jobs run up to
/// <c>maxJobs</c> at once, the rest wait in submission order. Mutating requests must carry a valid
/// signature of the cluster secret. When this singleton stops (hand-over to a standby, SIGTERM), its jobs stop without
/// being marked: the next singleton reads the ledger and resumes them.
/// </summary>
public sealed class JobManager : ReceiveActor, IWithTimers
{
    public const string Name = "jobs", ProxyName = "jobs-proxy";

    private sealed record JobEnded(string Id, string State, string? Error);
    private sealed record Progressed(string Id, string Stage, long Done, long Total);
    private sealed record FailedChunks(string Id, IReadOnlyList<string> Chunks);
    private sealed record PollShards;
    private sealed record ShardStats(IReadOnlyDictionary<string, IReadOnlyCollection<int>> Homes);

    private sealed class Job(SubmitJob submitted, JobStatus status)
    {
        private readonly List<PassTracker> _passes = [];

        public SubmitJob Submitted { get; } = submitted;
        public JobStatus Status { get; set; } = status;
        public CancellationTokenSource? Cancel { get; set; }
        public Task? Running { get; set; }
        public bool Resuming { get; set; }
        public bool IsFinal => Status.State is "done" or "failed" or "cancelled";

        /// <summary>The tracker of a chunk pass this job starts (called from the job's own thread).</summary>
        public PassTracker Track(JobSpec pass, ChunkGrid grid)
        {
            lock (_passes)
            {
                var tracker = new PassTracker(Submitted.Id, _passes.Count, pass, grid);
                _passes.Add(tracker);
                return tracker;
            }
        }

        public PassTracker? Pass(int index)
        {
            lock (_passes) return index >= 0 && index < _passes.Count ? _passes[index] : null;
        }

        public IReadOnlyList<PassStatus> Passes()
        {
            lock (_passes) return [.. _passes.Select(p => p.Snapshot())];
        }

        /// <summary>Forgets the passes (a job restarted, or finished long ago): their chunk maps cost a byte per chunk.</summary>
        public void ForgetPasses()
        {
            lock (_passes) _passes.Clear();
        }
    }

    /// <summary>Finished jobs whose passes (chunk maps, failures) are kept for the job page; older ones keep their status only.</summary>
    private const int FinishedJobsTracked = 8;

    /// <summary>A plane of the chunk map holds at most this many chunks (a message must stay within the cluster's frame size).</summary>
    public const int MaxMapChunks = 65536;

    private readonly JobLedger _ledger;
    private readonly byte[]? _secret;
    private readonly int _maxJobs;
    private readonly NodeBoard _board;
    private readonly IActorRef _region;
    private readonly DispatchSettings _dispatch;
    private readonly ILoggerFactory _logs;
    private readonly ILogger _logger;
    // Concurrent: the metrics' collection thread reads it; only this actor writes.
    private readonly ConcurrentDictionary<string, Job> _jobs = new(StringComparer.Ordinal);
    private bool _stopping;

    public ITimerScheduler Timers { get; set; } = null!;

    public JobManager(JobLedger ledger, byte[]? secret, int maxJobs, NodeBoard board, IActorRef region,
        DispatchSettings dispatch, ILoggerFactory logs)
    {
        _ledger = ledger;
        _secret = secret;
        _maxJobs = maxJobs;
        _board = board;
        _region = region;
        _dispatch = dispatch;
        _logs = logs;
        _logger = logs.CreateLogger<JobManager>();

        Receive<NodeHeartbeat>(_board.Heard);
        Receive<ChunkAccepted>(m => _board.Deliver(m.Job, m));
        Receive<ChunkRejected>(m => _board.Deliver(m.Job, m));
        Receive<ChunkResult>(m => _board.Deliver(m.Job.Value, m));
        Receive<ClusterEvent.UnreachableMember>(e => _board.Unreachable(e.Member.Address.ToString(), "is unreachable"));
        Receive<ClusterEvent.ReachableMember>(e => _board.Reachable(e.Member.Address.ToString()));
        Receive<ClusterEvent.MemberRemoved>(e => _board.Unreachable(e.Member.Address.ToString(), "was removed"));
        Receive<ClusterEvent.MemberLeft>(e => _board.Unreachable(e.Member.Address.ToString(), "left"));
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<PollShards>(_ => _region.Ask<ClusterShardingStats>(new GetClusterShardingStats(TimeSpan.FromSeconds(2)), TimeSpan.FromSeconds(3))
            .PipeTo(Self, success: s => new ShardStats(s.Regions.ToDictionary(r => r.Key.ToString(),
                r => (IReadOnlyCollection<int>)r.Value.Stats.Keys.Select(k => int.Parse(k, System.Globalization.CultureInfo.InvariantCulture)).ToList())),
                failure: _ => new ShardStats(ImmutableDictionary<string, IReadOnlyCollection<int>>.Empty)));
        Receive<ShardStats>(s =>
        {
            if (s.Homes.Count > 0) _board.ShardHomes(s.Homes);
        });
        Receive<SubmitJob>(OnSubmit);
        Receive<CancelJob>(OnCancel);
        Receive<ChangeMember>(OnChangeMember);
        Receive<GetClusterStatus>(q => Sender.Tell(Status(q.Job, null)));
        Receive<GetChunkMap>(q => Sender.Tell(Map(q)));
        Receive<Progressed>(p =>
        {
            if (_jobs.TryGetValue(p.Id, out var job)) job.Status = job.Status with { Stage = p.Stage, ChunksDone = p.Done, ChunksTotal = p.Total };
        });
        Receive<FailedChunks>(f =>
        {
            if (_jobs.TryGetValue(f.Id, out var job)) job.Status = job.Status with { FailedChunks = f.Chunks };
        });
        Receive<JobEnded>(OnEnded);
    }

    public static Props Props(JobLedger ledger, byte[]? secret, int maxJobs, NodeBoard board, IActorRef region, DispatchSettings dispatch, ILoggerFactory logs) =>
        Akka.Actor.Props.Create(() => new JobManager(ledger, secret, maxJobs, board, region, dispatch, logs));

    protected override void PreStart()
    {
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
        Timers.StartPeriodicTimer("shards", new PollShards(), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1));
        foreach (var entry in _ledger.Load())
        {
            var job = new Job(entry.Job, entry.Status);
            if (!job.IsFinal)
            {
                // Started by a coordinator that is gone: it continues here, from its manifests.
                job.Resuming = entry.Status.State != "queued";
                job.Status = job.Status with { State = "queued" };
            }
            _jobs[entry.Job.Id] = job;
        }
        ChunkSegTelemetry.SetJobSource(() => _jobs.Values.Select(j => (j.Submitted.Id, j.Status.State, j.Passes())));
        int resumed = _jobs.Values.Count(j => !j.IsFinal);
        _logger.LogInformation("Coordinator singleton started on {Address}: {Jobs} job(s) in the ledger, {Resumed} to run", 
            Akka.Cluster.Cluster.Get(Context.System).SelfAddress, _jobs.Count, resumed);
        StartQueued();
    }

    protected override void PostStop()
    {
        // Hand-over: this coordinator's jobs stop here and are resumed by the next singleton, which must not find them still
        // writing; so wait (bounded) for them to notice the cancellation.
        _stopping = true;
        ChunkSegTelemetry.SetJobSource(null);
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        var running = _jobs.Values.Where(j => j.Running is { IsCompleted: false }).ToList();
        foreach (var job in running) job.Cancel?.Cancel();
        try { Task.WaitAll([.. running.Select(j => j.Running!)], TimeSpan.FromSeconds(60)); }
        catch (AggregateException) { }
    }

    private void OnSubmit(SubmitJob submit)
    {
        if (ClusterWire.Verify(submit, _secret, DateTimeOffset.UtcNow) is { } refusal)
        {
            Sender.Tell(new ClusterReply(false, $"submit: {refusal}"));
            return;
        }
        if (_jobs.TryGetValue(submit.Id, out var known))
        {
            Sender.Tell(new ClusterReply(true, $"job {submit.Id}: already known ({known.Status.State})"));
            return;
        }
        var job = new Job(submit, new JobStatus(submit.Id, "queued", submit.Output, null, 0, 0, submit.Submitted, null, null, null, []));
        _ledger.Append(submit, job.Status);
        _jobs[submit.Id] = job;
        _logger.LogInformation("Job {Job} queued: {Output}", submit.Id, submit.Output);
        Sender.Tell(new ClusterReply(true, $"job {submit.Id} queued"));
        StartQueued();
    }

    private void OnCancel(CancelJob cancel)
    {
        if (ClusterWire.Verify(cancel, _secret, DateTimeOffset.UtcNow) is { } refusal)
        {
            Sender.Tell(new ClusterReply(false, $"cancel: {refusal}"));
            return;
        }
        if (!_jobs.TryGetValue(cancel.Id, out var job))
        {
            Sender.Tell(new ClusterReply(false, $"job {cancel.Id}: not known to the coordinator"));
            return;
        }
        if (job.IsFinal)
        {
            Sender.Tell(new ClusterReply(true, $"job {cancel.Id}: already {job.Status.State}"));
            return;
        }
        if (job.Cancel is { } cts)
        {
            cts.Cancel();
            Sender.Tell(new ClusterReply(true, $"job {cancel.Id}: cancelling"));
            return;
        }
        Finish(job, "cancelled", "cancelled before it started");
        Sender.Tell(new ClusterReply(true, $"job {cancel.Id}: cancelled before it started"));
    }

    private void OnChangeMember(ChangeMember change)
    {
        string verb = change.Down ? "down" : "leave";
        if (ClusterWire.Verify(change, _secret, DateTimeOffset.UtcNow) is { } refusal)
        {
            Sender.Tell(new ClusterReply(false, $"cluster {verb}: {refusal}"));
            return;
        }
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        var member = cluster.State.Members.FirstOrDefault(m => m.Address.ToString() == change.Address || $"{m.Address.Host}:{m.Address.Port}" == change.Address);
        if (member is null)
        {
            Sender.Tell(new ClusterReply(false, $"cluster {verb} {change.Address}: no such member (see `chunkseg cluster show`)"));
            return;
        }
        if (change.Down) cluster.Down(member.Address);
        else cluster.Leave(member.Address);
        _logger.LogWarning("Member {Address}: {Verb} requested by a client", member.Address, verb);
        Sender.Tell(new ClusterReply(true, $"cluster {verb} {member.Address}: requested"));
    }

    private void StartQueued()
    {
        if (_stopping) return;
        foreach (var job in _jobs.Values.Where(j => j.Status.State == "queued").OrderBy(j => j.Submitted.Submitted).ToList())
        {
            if (_jobs.Values.Count(j => j.Running is not null) >= _maxJobs) return;
            Start(job);
        }
    }

    private void Start(Job job)
    {
        var cts = new CancellationTokenSource();
        job.Cancel = cts;
        job.ForgetPasses();
        job.Status = job.Status with { State = "running", Started = DateTimeOffset.UtcNow, Error = null, FailedChunks = [] };
        _ledger.Append(job.Submitted, job.Status);
        _logger.LogInformation("Job {Job} {Verb}: {Output}", job.Submitted.Id, job.Resuming ? "resumed" : "started", job.Submitted.Output);
        var self = Self;
        string id = job.Submitted.Id;
        var monitor = new ProgressToActor(self, id);
        var transportLogger = _logs.CreateLogger<ClusterChunkTransport>();
        var (region, board, dispatch, logs, resuming) = (_region, _board, _dispatch, _logs, job.Resuming);
        string run = job.Submitted.Run;
        job.Running = Task.Run(async () =>
        {
            Func<IChunkTransport> transport = () => new ClusterChunkTransport(region, board, dispatch, transportLogger, job.Track);
            try
            {
                if (BatchSpec.IsBatchJson(run))
                    await RunBatch.ExecuteAsync(BatchSpec.FromJson(run, $"job {id}"), transport, logs, monitor, resuming, cts.Token).ConfigureAwait(false);
                else
                    await RunPipeline.ExecuteAsync(RunSpec.FromJson(run, $"job {id}"), transport, null, logs, monitor, resuming, cts.Token).ConfigureAwait(false);
            }
            catch (RunIncompleteException e)
            {
                self.Tell(new FailedChunks(id, e.Result.Failed.Select(f => $"chunk {f.Chunk.Value}: {f.Reason}").ToList()));
                throw;
            }
        }, cts.Token).ContinueWith(t =>
        {
            var ended = t.Status switch
            {
                TaskStatus.RanToCompletion => new JobEnded(id, "done", null),
                TaskStatus.Canceled => new JobEnded(id, "cancelled", "cancelled by request"),
                _ when t.Exception?.GetBaseException() is OperationCanceledException => new JobEnded(id, "cancelled", "cancelled by request"),
                _ => new JobEnded(id, "failed", t.Exception?.GetBaseException().Message ?? "failed"),
            };
            self.Tell(ended);
        }, TaskScheduler.Default);
    }

    private void OnEnded(JobEnded ended)
    {
        if (!_jobs.TryGetValue(ended.Id, out var job)) return;
        job.Running = null;
        job.Cancel?.Dispose();
        job.Cancel = null;
        if (ended.Error is { } error && ended.State == "failed") _logger.LogError("Job {Job} failed: {Error}", ended.Id, error);
        Finish(job, ended.State, ended.Error);
        foreach (var old in _jobs.Values.Where(j => j.IsFinal).OrderByDescending(j => j.Status.Finished).Skip(FinishedJobsTracked)) old.ForgetPasses();
        StartQueued();
    }

    private void Finish(Job job, string state, string? error)
    {
        if (_stopping) return;
        job.Status = job.Status with { State = state, Finished = DateTimeOffset.UtcNow, Error = state == "done" ? null : error };
        _ledger.Append(job.Submitted, job.Status);
        _logger.LogInformation("Job {Job} {State}{Error}", job.Submitted.Id, state, error is null ? "" : ": " + error);
    }

    private ClusterStatus Status(string? id, string? message)
    {
        // Passes (chunk counts, rates, failures) for the job asked about only: every job's would not fit a message.
        var jobs = _jobs.Values.Where(j => id is null || j.Submitted.Id == id).OrderBy(j => j.Submitted.Submitted)
            .Select(j => id is not null ? j.Status with { Passes = j.Passes() } : j.Status).ToList();
        if (id is not null && jobs.Count == 0) message ??= $"job {id}: not known to the coordinator";
        // The board holds each node's latest heartbeat.
        var now = DateTimeOffset.UtcNow;
        var nodes = _board.Nodes.OrderBy(n => n.Beat.Node, StringComparer.Ordinal).ToList();
        return new ClusterStatus(Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString(), jobs,
            [.. nodes.Where(n => !NodeBoard.IsGone(n, now)).Select(n => n.Beat)], _board.Load(), message,
            [.. nodes.Where(n => NodeBoard.IsGone(n, now)).Select(n => n.Beat)]);
    }

    private ChunkMap Map(GetChunkMap q)
    {
        ChunkMap Refuse(string error) => new(q.Job, q.Pass, q.T, q.Z, 0, 0, "", error);
        if (!_jobs.TryGetValue(q.Job, out var job)) return Refuse($"job {q.Job}: not known to the coordinator");
        if (job.Pass(q.Pass) is not { } pass) return Refuse($"job {q.Job}: no pass {q.Pass} tracked (passes are kept while a job runs and for the latest finished jobs)");
        var (height, width) = pass.PlaneShape;
        if (height * width > MaxMapChunks) return Refuse($"a plane of this pass has {height * width} chunks, more than the {MaxMapChunks} a map shows");
        return pass.HasPlane(q.T, q.Z) ? new ChunkMap(q.Job, q.Pass, q.T, q.Z, height, width, pass.Plane(q.T, q.Z))
            : Refuse($"pass {q.Pass} of job {q.Job} has no plane t={q.T} z={q.Z}");
    }

    /// <summary>A run's stage and chunk counts, reported to the manager (what status shows).</summary>
    private sealed class ProgressToActor(IActorRef manager, string id) : IRunMonitor
    {
        public void Plan(IReadOnlyList<(string Stage, double Weight)> stages) { }

        public IProgress<JobProgress> Begin(string stage)
        {
            manager.Tell(new Progressed(id, stage, 0, 0));
            return new SynchronousProgress<JobProgress>(p => manager.Tell(new Progressed(id, stage, p.ChunksDone, p.ChunksTotal)));
        }

        public void End(string stage) { }
    }
}
