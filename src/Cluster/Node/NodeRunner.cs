using System.Diagnostics;
using Akka.Actor;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Telemetry;
using ChunkSeg.Pipelines;
using Microsoft.Extensions.Logging;

namespace ChunkSeg.Cluster.Node;

/// <summary>Who a gpu-node is, as status shows it.</summary>
public sealed record NodeIdentity(string Name, string Backend, string? Gpu, int Concurrency);

/// <summary>
/// The gpu-node's device actor (one per node, <c>/user/node</c>): it bounds how many chunks run at once (the node's
/// --concurrency), whatever the number of chunk actors, passes or jobs that feed it. Chunk actors hand it their chunks;
/// it accepts each at once (the coordinator then knows where the chunk is), queues it, runs it on the thread pool, and
/// answers through the singleton proxy, so the answer reaches whichever node is the coordinator now. Running chunks
/// belong to this actor, not to the chunk actors: a shard handed off to another node never stops a running chunk.
/// <para>
/// Drain (SIGTERM): queued chunks are refused (the coordinator sends them elsewhere at once), running ones finish and
/// answer, then <see cref="Drain"/>'s reply lets the node leave the cluster.
/// </para>
/// </summary>
public sealed class NodeRunner : ReceiveActor, IWithTimers
{
    public const string Name = "node";

    /// <summary>Stop taking chunks; answered with <see cref="Drained"/> once the running ones are done.</summary>
    public sealed record Drain;
    public sealed record Drained;

    private sealed record Finished(ChunkWork Work, object Result);
    private sealed record Tick;

    private readonly NodeIdentity _identity;
    private readonly Func<JobSpec, IJobProcessor> _open;
    private readonly IActorRef _coordinator;
    private readonly ILogger _logger;
    private readonly string _address;
    private readonly Queue<ChunkWork> _queue = new();
    private readonly Dictionary<string, (IJobProcessor Processor, int Users, long LastUse)> _passes = new(StringComparer.Ordinal);
    private readonly List<IActorRef> _drainWaiters = [];
    private int _running;
    private long _done, _failed;
    private bool _draining;
    private long _uses;

    /// <summary>Passes kept open at once (their volumes and classifier): jobs running side by side do not reopen theirs.</summary>
    private const int MaxOpenPasses = 4;

    public ITimerScheduler Timers { get; set; } = null!;

    public NodeRunner(NodeIdentity identity, Func<JobSpec, IJobProcessor> open, IActorRef coordinator, ILogger logger)
    {
        _identity = identity;
        _open = open;
        _coordinator = coordinator;
        _logger = logger;
        _address = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();
        Receive<ChunkWork>(OnWork);
        Receive<Finished>(OnFinished);
        Receive<Tick>(_ => Beat());
        Receive<Drain>(_ =>
        {
            _draining = true;
            while (_queue.TryDequeue(out var queued)) Refuse(queued, "the node is draining (SIGTERM)");
            _drainWaiters.Add(Sender);
            Beat();
            CheckDrained();
        });
    }

    public static Props Props(NodeIdentity identity, Func<JobSpec, IJobProcessor> open, IActorRef coordinator, ILogger logger) =>
        Akka.Actor.Props.Create(() => new NodeRunner(identity, open, coordinator, logger));

    protected override void PreStart()
    {
        Timers.StartPeriodicTimer("beat", new Tick(), TimeSpan.Zero, TimeSpan.FromSeconds(1));
    }

    protected override void PostStop()
    {
        foreach (var (processor, _, _) in _passes.Values) processor.Dispose();
        _passes.Clear();
    }

    /// <summary>Chunks held now (running and queued), for the health and metrics.</summary>
    public int Busy => _running + _queue.Count;

    private void OnWork(ChunkWork work)
    {
        if (_draining)
        {
            Refuse(work, "the node is draining (SIGTERM)");
            return;
        }
        _coordinator.Tell(new ChunkAccepted(work.Job.Id.Value, work.Chunk, work.Attempt, work.Shard, _identity.Name));
        _queue.Enqueue(work);
        StartMore();
    }

    private void Refuse(ChunkWork work, string reason) =>
        _coordinator.Tell(new ChunkRejected(work.Job.Id.Value, work.Chunk, work.Attempt, work.Shard, _identity.Name, reason));

    private void StartMore()
    {
        while (_running < _identity.Concurrency && _queue.TryDequeue(out var work))
        {
            _running++;
            var command = new ProcessChunk(work.Job.Id, new ChunkId(work.Chunk), work.Attempt);
            var parent = ChunkSegTelemetry.Extract(work.TraceParent, work.TraceState);
            IJobProcessor processor;
            try
            {
                processor = Acquire(work.Job);
            }
            catch (ChunkSegException e)
            {
                // The pass itself cannot be opened here (a path outside the store, a missing model): no attempt does better.
                Self.Tell(new Finished(work, new ChunkFailed(command.Job, command.Chunk, command.Attempt, e.Message, Retryable: false, _identity.Name)));
                continue;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Self.Tell(new Finished(work, new ChunkFailed(command.Job, command.Chunk, command.Attempt, $"cannot open the pass: {e.Message}", Retryable: true, _identity.Name)));
                continue;
            }
            var self = Self;
            Task.Run(() => processor.Process(command, parent)).ContinueWith(t => self.Tell(new Finished(work, t.IsCompletedSuccessfully
                ? t.Result
                : new ChunkFailed(command.Job, command.Chunk, command.Attempt, t.Exception?.GetBaseException().Message ?? "cancelled", Retryable: true, _identity.Name))),
                TaskScheduler.Default);
        }
    }

    private void OnFinished(Finished finished)
    {
        _running--;
        Release(finished.Work.Job.Id.Value);
        if (finished.Result is ChunkFailed f)
        {
            _failed++;
            _coordinator.Tell(new ChunkResult(_identity.Name, null, f with { Worker = _identity.Name }));
        }
        else
        {
            _done++;
            _coordinator.Tell(new ChunkResult(_identity.Name, (ChunkCompleted)finished.Result, null));
        }
        StartMore();
        CheckDrained();
    }

    private void CheckDrained()
    {
        if (!_draining || _running > 0) return;
        foreach (var waiter in _drainWaiters) waiter.Tell(new Drained());
        _drainWaiters.Clear();
    }

    /// <summary>
    /// The pass's processor, opened on its first chunk; beyond <see cref="MaxOpenPasses"/>, the least recently used idle
    /// ones are closed (a finished pass's volumes and classifier do not stay open for ever).
    /// </summary>
    private IJobProcessor Acquire(JobSpec spec)
    {
        string id = spec.Id.Value;
        if (!_passes.TryGetValue(id, out var entry))
        {
            entry = (_open(spec), 0, 0);
            _logger.LogInformation("Node {Node} opened pass {Pass} ({Stage})", _identity.Name, id, spec.Stage);
        }
        _passes[id] = (entry.Processor, entry.Users + 1, ++_uses);
        foreach (var (other, (processor, _, _)) in _passes.Where(p => p.Value.Users == 0).OrderBy(p => p.Value.LastUse).ToList())
        {
            if (_passes.Count <= MaxOpenPasses) break;
            processor.Dispose();
            _passes.Remove(other);
        }
        return entry.Processor;
    }

    private void Release(string pass)
    {
        if (_passes.TryGetValue(pass, out var entry)) _passes[pass] = entry with { Users = entry.Users - 1 };
    }

    private void Beat() => _coordinator.Tell(new NodeHeartbeat(_identity.Name, _address, Environment.MachineName, Environment.ProcessId, _identity.Backend,
        _identity.Gpu, _identity.Concurrency, _running, _queue.Count, _done, _failed, Environment.WorkingSet, _draining, DateTimeOffset.UtcNow));
}

/// <summary>
/// A chunk actor of the <c>chunk</c> shard region: one per pass and shard (entity id <c>PASS:SHARD</c>). It hands its
/// chunks to the node's <see cref="NodeRunner"/>, so it holds no work of its own: stopping it for a hand-off loses nothing.
/// </summary>
public sealed class ChunkEntity : ReceiveActor
{
    public const string TypeName = "chunk";

    /// <summary>The hand-off stop message: the actor stops; chunks it handed on keep running in the node runner.</summary>
    public sealed record Stop
    {
        public static readonly Stop Instance = new();
    }

    public ChunkEntity(IActorRef runner)
    {
        Receive<ChunkWork>(work => runner.Forward(work));
        Receive<Stop>(_ => Context.Stop(Self));
    }
}

/// <summary>Entity and shard ids of chunk messages: the shard is the one the coordinator chose; one actor per pass and shard.</summary>
public sealed class ChunkMessageExtractor : Akka.Cluster.Sharding.IMessageExtractor
{
    public string? EntityId(object message) => message is ChunkWork w ? $"{w.Job.Id.Value}:{w.Shard}" : null;

    public object? EntityMessage(object message) => message;

    public string? ShardId(object message) => message is ChunkWork w ? w.Shard.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;

    public string ShardId(string entityId, object? messageHint = null) => entityId[(entityId.LastIndexOf(':') + 1)..];
}
