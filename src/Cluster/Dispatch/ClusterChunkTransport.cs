using System.Diagnostics;
using System.Threading.Channels;
using Akka.Actor;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Telemetry;
using Microsoft.Extensions.Logging;

namespace ChunkSeg.Cluster.Dispatch;

/// <summary>How the coordinator leases chunks to gpu-nodes.</summary>
/// <param name="Lease">A chunk accepted by a node and not answered within this is sent again (the node may be stuck).</param>
/// <param name="AcceptTimeout">A chunk sent and not accepted by any node within this is sent again (lost on the way).</param>
/// <param name="MaxBackoff">Retries of a failed chunk wait 1 s, 2 s, 4 s… up to this.</param>
public sealed record DispatchSettings(TimeSpan Lease, TimeSpan AcceptTimeout, TimeSpan MaxBackoff)
{
    public static readonly DispatchSettings Default = new(TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(30));
}

/// <summary>
/// The coordinator's side of a pass on the Akka cluster: chunks go to chunk actors of the <c>chunk</c> shard region on
/// the gpu-nodes, answers come back through the job manager (the cluster singleton) and the <see cref="NodeBoard"/>.
/// <code>
///   JobRunner ──SendAsync──▶ pending ──choose shard──▶ shard region ──▶ chunk actor (node A) ──▶ node runner
///       ▲                      ▲   │                                                          │ accepted, result
///       └──── Results ◀────────┼───┴── flights: chunk → copies (node, shard, since) ◀──────────┘ (singleton proxy)
///                              └─ node gone, lease expired, rejected: the chunk goes back to the front
/// </code>
/// Placement: a chunk's home shard groups it with its 2×2×2 brick of neighbours, whose read boxes overlap its own, so
/// they land on one node; bricks are spread over all shards and the shard allocator spreads shards evenly over nodes.
/// A chunk goes home while its home node holds fewer than its window (twice its concurrency) of this coordinator's
/// chunks; otherwise it is sent to a shard of the least loaded node with room (work goes where capacity is, so a slow
/// node simply takes fewer). Nothing lost: a chunk stays in flight until answered; when the node holding it becomes
/// unreachable, drains or leaves, or its lease expires, it is sent again at once. Stragglers: once nothing waits to
/// be sent, a chunk running much longer than the pass's median gets a second copy on an idle node; the first answer
/// wins and the JobRunner's manifest ignores the second (counted in <see cref="Duplicates"/>).
/// <para>
/// Poison chunks (a chunk that kills the node running it): the coordinator cannot tell which of a lost node's chunks
/// killed it. Not by the order of acceptance, nor by reports of starts: a node killed as it starts a chunk also loses the
/// answer for the chunk it just finished, and those last messages never leave it. So the chunks of a node lost while it
/// held several are suspects, charged nothing, and each suspect is sent again alone: only to a node holding no other
/// chunk of this pass, which gets nothing more until the suspect is answered (one node is kept from new chunks while a
/// suspect waits for an empty one). A node lost while it held one chunk only is a loss charged to that chunk; after
/// <see cref="MaxLosses"/> such losses it fails. An innocent chunk queued behind a poison one is thus never failed
/// with it, and a poison chunk is failed after MaxLosses nodes lost (plus one for each time it was lost among others).
/// </para>
/// </summary>
public sealed class ClusterChunkTransport : IChunkTransport
{
    public const int ShardCount = 64;

    private readonly IActorRef _region;
    private readonly NodeBoard _board;
    private readonly DispatchSettings _settings;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly LinkedList<Pending> _pending = new();
    private readonly Dictionary<long, Flight> _flights = [];
    private readonly Queue<double> _recentSeconds = new();
    /// <summary>Suspects: chunks lost with a node, and the losses charged to each (when its node held it alone).</summary>
    private readonly Dictionary<long, int> _losses = [];
    private readonly Channel<object> _results = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
    private TaskCompletionSource _changed = NewSignal();
    private JobSpec? _job;
    private ChunkGrid? _grid;
    private readonly Func<JobSpec, ChunkGrid, PassTracker>? _track;
    private PassTracker? _tracker;
    private Timer? _tick;
    private int _passSalt;
    private long _sent, _received, _duplicates, _resent;

    /// <summary>A chunk to send, with the trace context of the runner that asked for it (the pass's job span).</summary>
    private sealed record Pending(ProcessChunk Command, long NotBefore, (string? Parent, string? State) Trace);

    private sealed class Copy(string? node, int shard, long sentAt)
    {
        public string? Node { get; set; } = node;
        public int Shard { get; set; } = shard;
        public long SentAt { get; } = sentAt;
        public long AcceptedAt { get; set; }
    }

    private sealed class Flight(ProcessChunk command, (string? Parent, string? State) trace)
    {
        public ProcessChunk Command { get; } = command;
        public (string? Parent, string? State) Trace { get; } = trace;
        public List<Copy> Copies { get; } = [];
    }

    /// <param name="region">The <c>chunk</c> shard region (the coordinator's, which hosts no shards).</param>
    /// <param name="track">Gives the pass a tracker of its chunks' states (the job page, status, metrics); null: none.</param>
    public ClusterChunkTransport(IActorRef region, NodeBoard board, DispatchSettings settings, ILogger logger,
        Func<JobSpec, ChunkGrid, PassTracker>? track = null)
    {
        _region = region;
        _board = board;
        _settings = settings;
        _logger = logger;
        _track = track;
    }

    /// <summary>Chunk messages sent (first copies, resends and speculative copies) and node messages received, for the bench.</summary>
    public long Sent => Interlocked.Read(ref _sent);
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Chunks sent again: their node went away, refused them, or their lease or acceptance expired.</summary>
    public long Resent => Interlocked.Read(ref _resent);

    /// <summary>Second copies of straggling chunks sent to idle nodes.</summary>
    public long Duplicates => Interlocked.Read(ref _duplicates);

    public Task StartAsync(JobSpec job, ChunkGrid grid, CancellationToken cancellationToken)
    {
        _job = job;
        _grid = grid;
        _passSalt = (int)(StableHash(job.Id.Value) % ShardCount);
        _tracker = _track?.Invoke(job, grid);
        _board.Register(job.Id.Value, this);
        _tick = new Timer(_ => Pump(), null, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(250));
        return Task.CompletedTask;
    }

    public async ValueTask SendAsync(ProcessChunk command, CancellationToken cancellationToken)
    {
        _ = _job ?? throw new InvalidOperationException("StartAsync first");
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_pending.Count < PendingLimit())
                {
                    // A retry waits 1 s, 2 s, 4 s… so a node that failed for a passing reason is not hammered.
                    long notBefore = command.Attempt <= 1 ? 0 : Stopwatch.GetTimestamp() + Stopwatch.Frequency *
                        (long)Math.Min(_settings.MaxBackoff.TotalSeconds, Math.Pow(2, command.Attempt - 2));
                    // Sent later from whichever thread pumps: the job span is the caller's, captured now.
                    _pending.AddLast(new Pending(command, notBefore, ChunkSegTelemetry.Inject(Activity.Current)));
                    PumpLocked();
                    return;
                }
                changed = _changed.Task;
            }
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public IAsyncEnumerable<object> Results(CancellationToken cancellationToken) => _results.Reader.ReadAllAsync(cancellationToken);

    public void Recorded(long chunk) => _tracker?.Recorded(chunk);

    public Task CompleteAsync()
    {
        _tick?.Dispose();
        _tracker?.End();
        if (_job is { } job) _board.Unregister(job.Id.Value, this);
        _results.Writer.TryComplete();
        lock (_gate) Signal();
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await CompleteAsync().ConfigureAwait(false);
        if (_tick is { } tick) await tick.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The home shard of a chunk: its 2×2×2 brick of neighbours, bricks dealt round the shards.</summary>
    public int HomeShard(long chunk)
    {
        var grid = _grid!;
        var block = grid.BlockOf(chunk);
        long t = chunk / (grid.Blocks.Z * grid.Blocks.Y * grid.Blocks.X);
        long bricksZ = (grid.Blocks.Z + 1) / 2, bricksY = (grid.Blocks.Y + 1) / 2, bricksX = (grid.Blocks.X + 1) / 2;
        long brick = ((t * bricksZ + block.Z / 2) * bricksY + block.Y / 2) * bricksX + block.X / 2;
        return (int)((brick + _passSalt) % ShardCount);
    }

    /// <summary>Chunks of this pass each node holds now (accepted, unanswered).</summary>
    public IReadOnlyDictionary<string, int> LoadByNode()
    {
        lock (_gate) return LoadLocked();
    }

    /// <summary>An answer from a node for this pass (accepted, rejected, result).</summary>
    internal void OnMessage(IClusterMessage message)
    {
        Interlocked.Increment(ref _received);
        lock (_gate)
        {
            switch (message)
            {
                case ChunkAccepted a:
                    _board.ShardAt(a.Shard, a.Node);
                    if (_flights.TryGetValue(a.Chunk, out var flight) && flight.Command.Attempt == a.Attempt
                        && flight.Copies.FirstOrDefault(c => c.AcceptedAt == 0 && c.Shard == a.Shard) is { } copy)
                    {
                        copy.Node = a.Node;
                        copy.AcceptedAt = Stopwatch.GetTimestamp();
                    }
                    break;
                case ChunkRejected r:
                    // A draining node takes nothing more; a shard still on a coordinator's region is avoided until it moves.
                    if (_board.TryGetNode(r.Node, out _)) _board.Draining(r.Node);
                    else _board.ShardAt(r.Shard, r.Node);
                    if (_flights.TryGetValue(r.Chunk, out var rejected) && rejected.Command.Attempt == r.Attempt)
                        DropCopies(rejected, c => c.Shard == r.Shard && (c.Node is null || c.Node == r.Node), $"refused by {r.Node}: {r.Reason}");
                    break;
                case ChunkResult result:
                    OnResult(result);
                    break;
            }
            PumpLocked();
        }
    }

    private void OnResult(ChunkResult result)
    {
        long chunk = result.Chunk;
        int attempt = result.Completed?.Attempt ?? result.Failed!.Attempt;
        if (_flights.TryGetValue(chunk, out var flight))
        {
            // An answer for an older attempt (a copy that outlived its retry) says nothing about the current one.
            if (flight.Command.Attempt != attempt && result.Failed is not null) return;
            _flights.Remove(chunk);
            if (result.Completed is { } done)
            {
                _losses.Remove(chunk);
                _recentSeconds.Enqueue(done.Elapsed.TotalSeconds);
                if (_recentSeconds.Count > 64) _recentSeconds.Dequeue();
            }
        }
        else if (result.Failed is not null)
        {
            return;   // the chunk was already answered (a straggler's second copy, or a stale attempt)
        }
        if (result.Completed is { } completed) _tracker?.Completed(completed);
        else _tracker?.Failed(result.Failed!);
        _results.Writer.TryWrite(result.Result);
        Signal();
    }

    /// <summary>
    /// A node is gone (unreachable, drained, left): its chunks go to the front of the queue, to be sent at once. Unless it
    /// drained, the chunks it held (accepted, or sent to it: an acceptance may have died with the node) become suspects,
    /// sent again alone; when it held one chunk only, that chunk is charged a loss, and a chunk charged
    /// <see cref="MaxLosses"/> losses is a poison chunk (it kills the nodes that run it) and fails instead of going round.
    /// </summary>
    internal void OnNodeGone(string node, string why)
    {
        lock (_gate)
        {
            if (why != "draining")
            {
                var held = _flights.Values.Where(f => f.Copies.Any(c => c.Node == node)).ToList();
                if (held.Count > 1)
                    _logger.LogWarning("{Node} {Why} holding {Count} chunks of {Job} ({Chunks}): each is sent again alone", node, why, held.Count,
                        _job?.Id, string.Join(", ", held.Select(f => f.Command.Chunk.Value)));
                else if (held.Count == 1)
                    _logger.LogWarning("Chunk {Chunk} of {Job} lost with {Node}, which held it alone: loss {Losses} of {Max}", held[0].Command.Chunk.Value,
                        _job?.Id, node, _losses.GetValueOrDefault(held[0].Command.Chunk.Value) + 1, MaxLosses);
                foreach (var flight in held)
                {
                    long chunk = flight.Command.Chunk.Value;
                    int losses = _losses[chunk] = _losses.GetValueOrDefault(chunk) + (held.Count == 1 ? 1 : 0);
                    if (losses < MaxLosses || flight.Copies.Count > 1) continue;
                    _flights.Remove(chunk);
                    _losses.Remove(chunk);
                    var poison = new ChunkFailed(flight.Command.Job, flight.Command.Chunk, flight.Command.Attempt,
                        $"the gpu-node running it stopped without answering {losses} times (killed, out of memory or crashed; last {node})",
                        Retryable: false, Worker: node);
                    _tracker?.Failed(poison);
                    _results.Writer.TryWrite(poison);
                }
            }
            foreach (var flight in _flights.Values.ToList())
                DropCopies(flight, c => c.Node == node || (c.Node is null && _board.IsStranded(c.Shard)), $"{node} {why}");
            PumpLocked();
        }
    }

    /// <summary>Times a chunk may be lost with a node that held it alone before it fails as a poison chunk.</summary>
    public const int MaxLosses = 3;

    internal void Pump()
    {
        lock (_gate) PumpLocked();
    }

    private void PumpLocked()
    {
        if (_job is not { } job) return;
        long now = Stopwatch.GetTimestamp();
        ExpireLocked(now);
        var load = LoadLocked();
        var available = _board.Nodes.Where(n => n.Available).ToList();
        if (available.Count == 0) return;
        int unaccepted = _flights.Values.Sum(f => f.Copies.Count(c => c.AcceptedAt == 0));
        int probeLimit = available.Sum(n => n.Window);

        // Suspects first, each alone on a node. Nodes holding one take nothing else; while a suspect waits for an empty
        // node, the least loaded other node takes nothing more either (it empties, and the suspect goes there). While a
        // suspect is out, no chunk goes to a shard whose node is unknown (sharding could place it beside the suspect).
        // When no node has a known shard (every node restarted: sharding places shards as chunks come), a suspect is
        // sent to its home shard once nothing else is out there unaccepted and no other suspect is out, so it lands alone
        // on whichever node sharding chooses.
        var closed = _flights.Values.Where(f => _losses.ContainsKey(f.Command.Chunk.Value))
            .SelectMany(f => f.Copies).Select(c => c.Node).OfType<string>().ToHashSet(StringComparer.Ordinal);
        bool suspectOut = _flights.Keys.Any(_losses.ContainsKey);
        bool waiting = false;
        for (var entry = _pending.First; entry is not null;)
        {
            var next = entry.Next;
            long chunk = entry.Value.Command.Chunk.Value;
            if (entry.Value.NotBefore <= now && _losses.ContainsKey(chunk))
            {
                int home = HomeShard(chunk);
                if (ChooseAlone(home, load, available) is { } shard)
                {
                    Dispatch(entry, shard);
                    closed.Add(_board.NodeOfShard(shard)!);
                    suspectOut = true;
                }
                else if (!suspectOut && unaccepted == 0 && _board.NodeOfShard(home) is null && !_board.IsStranded(home)
                    && !available.Any(n => _board.ShardsOf(n.Beat.Node).Any()))
                {
                    Dispatch(entry, home);
                    unaccepted++;
                    suspectOut = true;
                }
                else waiting = true;
            }
            entry = next;
        }
        if (waiting && available.Where(n => !closed.Contains(n.Beat.Node) && _board.ShardsOf(n.Beat.Node).Any())
                .OrderBy(n => load.GetValueOrDefault(n.Beat.Node)).ThenBy(n => n.Beat.Node, StringComparer.Ordinal).FirstOrDefault() is { } emptiest)
            closed.Add(emptiest.Beat.Node);

        for (var entry = _pending.First; entry is not null;)
        {
            var next = entry.Next;
            var pending = entry.Value;
            long chunk = pending.Command.Chunk.Value;
            if (pending.NotBefore > now || _losses.ContainsKey(chunk)) { entry = next; continue; }
            int? shard = ChooseShard(HomeShard(chunk), load, available, unaccepted < probeLimit && !suspectOut, closed);
            if (shard is null) break;
            Dispatch(entry, shard.Value);
            if (_board.NodeOfShard(shard.Value) is null) unaccepted++;
            entry = next;
        }
        if (_pending.Count < PendingLimit()) Signal();
        SpeculateLocked(job, now, load, available, closed);

        void Dispatch(LinkedListNode<Pending> entry, int shard)
        {
            _pending.Remove(entry);
            var flight = new Flight(entry.Value.Command, entry.Value.Trace);
            _flights[entry.Value.Command.Chunk.Value] = flight;
            SendCopy(job, flight, shard, now, load);
        }
    }

    /// <summary>
    /// Where a chunk goes: its home shard while the home node has room (or the home is not known yet and few chunks are
    /// unaccepted); else a shard of the least loaded node with room (also when the home is stranded on a lost node, which
    /// sharding re-homes only after the node is removed); null when every node is full (wait). A node in
    /// <paramref name="closed"/> (holding a suspect, or kept empty for one) is full.
    /// </summary>
    private int? ChooseShard(int home, Dictionary<string, int> load, List<NodeBoard.NodeState> available, bool mayProbe, HashSet<string> closed)
    {
        string? homeNode = _board.NodeOfShard(home);
        if (homeNode is not null && !closed.Contains(homeNode) && _board.TryGetNode(homeNode, out var state) && load.GetValueOrDefault(homeNode) < state.Window) return home;
        if (homeNode is null && mayProbe && !_board.IsStranded(home)) return home;
        var roomiest = available.Where(n => !closed.Contains(n.Beat.Node) && load.GetValueOrDefault(n.Beat.Node) < n.Window)
            .OrderBy(n => (double)load.GetValueOrDefault(n.Beat.Node) / n.Window).ThenBy(n => n.Beat.Node, StringComparer.Ordinal);
        foreach (var node in roomiest)
        {
            // The node's shard nearest to the home one: chunks stolen from one brick tend to stay together too.
            var shards = _board.ShardsOf(node.Beat.Node).ToList();
            if (shards.Count > 0) return shards.MinBy(s => (s - home + ShardCount) % ShardCount);
        }
        return null;
    }

    /// <summary>
    /// Where a suspect goes: a shard (the nearest to its home) of a node holding no chunk of this pass, its home node
    /// first; null while there is none (wait). A node holding only a suspect that dies tells whose fault it was.
    /// </summary>
    private int? ChooseAlone(int home, Dictionary<string, int> load, List<NodeBoard.NodeState> available)
    {
        string? homeNode = _board.NodeOfShard(home);
        var empty = available.Where(n => load.GetValueOrDefault(n.Beat.Node) == 0)
            .OrderBy(n => n.Beat.Node != homeNode).ThenBy(n => n.Beat.Node, StringComparer.Ordinal);
        foreach (var node in empty)
        {
            var shards = _board.ShardsOf(node.Beat.Node).ToList();
            if (shards.Count > 0) return shards.MinBy(s => (s - home + ShardCount) % ShardCount);
        }
        return null;
    }

    private void SendCopy(JobSpec job, Flight flight, int shard, long now, Dictionary<string, int> load)
    {
        var command = flight.Command;
        string? node = _board.NodeOfShard(shard);
        flight.Copies.Add(new Copy(node, shard, now));
        _tracker?.Sent(command.Chunk.Value, command.Attempt);
        if (node is not null) load[node] = load.GetValueOrDefault(node) + 1;
        _region.Tell(new ChunkWork(job, command.Chunk.Value, command.Attempt, shard, flight.Trace.Parent, flight.Trace.State));
        Interlocked.Increment(ref _sent);
    }

    /// <summary>Copies whose node never accepted them, or whose lease ran out, are dropped (their chunk is sent again).</summary>
    private void ExpireLocked(long now)
    {
        long acceptTicks = (long)(_settings.AcceptTimeout.TotalSeconds * Stopwatch.Frequency);
        long leaseTicks = (long)(_settings.Lease.TotalSeconds * Stopwatch.Frequency);
        foreach (var flight in _flights.Values.ToList())
            DropCopies(flight, c => c.AcceptedAt == 0 ? now - c.SentAt > acceptTicks : now - c.AcceptedAt > leaseTicks, "lease expired");
    }

    /// <summary>Removes copies; a chunk left with none goes back to the front of the queue, to be sent first.</summary>
    private void DropCopies(Flight flight, Predicate<Copy> which, string why)
    {
        if (flight.Copies.RemoveAll(which) == 0 || flight.Copies.Count > 0) return;
        _flights.Remove(flight.Command.Chunk.Value);
        _pending.AddFirst(new Pending(flight.Command, 0, flight.Trace));
        Interlocked.Increment(ref _resent);
        _tracker?.Dropped(flight.Command.Chunk.Value, why);
        _logger.LogWarning("Chunk {Chunk} of {Job} sent again: {Why}", flight.Command.Chunk.Value, flight.Command.Job, why);
    }

    /// <summary>
    /// Once nothing waits to be sent, a chunk held far longer than the pass's median (a slow or half-dead node) gets a
    /// second copy on a node with room; one extra copy per chunk at most. Suspects get none, and nodes in
    /// <paramref name="closed"/> take none (a suspect stays alone on its node).
    /// </summary>
    private void SpeculateLocked(JobSpec job, long now, Dictionary<string, int> load, List<NodeBoard.NodeState> available, HashSet<string> closed)
    {
        if (_pending.Any(p => p.NotBefore <= now) || _recentSeconds.Count < 4) return;
        var sorted = _recentSeconds.Order().ToList();
        double median = sorted[sorted.Count / 2];
        long patience = (long)(Math.Max(3 * median + 1, 2) * Stopwatch.Frequency);
        foreach (var node in available.Where(n => !closed.Contains(n.Beat.Node)).OrderBy(n => load.GetValueOrDefault(n.Beat.Node)))
        {
            while (load.GetValueOrDefault(node.Beat.Node) < node.Beat.Concurrency)
            {
                var straggler = _flights.Values
                    .Where(f => f.Copies.Count == 1 && f.Copies[0].AcceptedAt != 0 && f.Copies[0].Node != node.Beat.Node && now - f.Copies[0].AcceptedAt > patience
                        && !_losses.ContainsKey(f.Command.Chunk.Value))
                    .MinBy(f => f.Copies[0].AcceptedAt);
                var shards = _board.ShardsOf(node.Beat.Node).ToList();
                if (straggler is null || shards.Count == 0) return;
                int home = HomeShard(straggler.Command.Chunk.Value);
                SendCopy(job, straggler, shards.MinBy(s => (s - home + ShardCount) % ShardCount), now, load);
                Interlocked.Increment(ref _duplicates);
                _logger.LogInformation("Chunk {Chunk} of {Job} straggles on {Node}: a second copy goes to {Other}",
                    straggler.Command.Chunk.Value, job.Id, straggler.Copies[0].Node, node.Beat.Node);
            }
        }
    }

    private Dictionary<string, int> LoadLocked()
    {
        var load = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var flight in _flights.Values)
            foreach (var copy in flight.Copies)
                if (copy.Node is { } node) load[node] = load.GetValueOrDefault(node) + 1;
        return load;
    }

    /// <summary>Chunks taken from the runner and not yet sent, at most: enough to keep every node's window full.</summary>
    private int PendingLimit() => Math.Max(16, _board.Nodes.Where(n => n.Available).Sum(n => n.Window));

    private void Signal()
    {
        var old = _changed;
        _changed = NewSignal();
        old.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>FNV-1a: the same pass gets the same salt in every process (string.GetHashCode is randomised per process).</summary>
    private static uint StableHash(string text)
    {
        uint hash = 2166136261;
        foreach (char c in text) hash = (hash ^ c) * 16777619;
        return hash;
    }
}
