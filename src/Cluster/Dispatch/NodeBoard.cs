using System.Collections.Concurrent;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Cluster.Dispatch;

/// <summary>
/// What the coordinator knows of the gpu-nodes, shared by every pass it runs: each node's capacity (from its heartbeats),
/// whether it can take work (reachable, not draining), and which node hosts each shard (from the shard coordinator's
/// statistics and from the nodes' acceptances). Passes register here to receive their nodes' answers.
/// </summary>
public sealed class NodeBoard
{
    private readonly ConcurrentDictionary<string, NodeState> _nodes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, string> _shards = new();
    private readonly ConcurrentDictionary<string, ClusterChunkTransport> _passes = new(StringComparer.Ordinal);

    /// <summary>A node as the board sees it. <see cref="Available"/>: it may be given chunks now.</summary>
    /// <summary>
    /// A node as the board sees it. <see cref="RegionUp"/>: its shard region is registered with the shard coordinator
    /// (before that, a shard allocated for it would land on a coordinator). <see cref="Available"/>: it may be given chunks now.
    /// </summary>
    public sealed record NodeState(NodeHeartbeat Beat, bool Reachable, bool Draining, bool RegionUp = false)
    {
        public bool Available => Reachable && RegionUp && !Draining && !Beat.Draining;
        public int Window => 2 * Math.Max(1, Beat.Concurrency);
    }

    public IReadOnlyCollection<NodeState> Nodes => (IReadOnlyCollection<NodeState>)_nodes.Values;

    public bool TryGetNode(string node, out NodeState state) => _nodes.TryGetValue(node, out state!);

    /// <summary>The node hosting <paramref name="shard"/> when it can take work; null when the shard's home is not known or not available.</summary>
    public string? NodeOfShard(int shard) => _shards.TryGetValue(shard, out var node) && IsAvailable(node) ? node : null;

    /// <summary>
    /// The shard is known to live on a node that cannot take work (unreachable, draining, leaving): until sharding re-homes
    /// it (after the node is removed) a chunk sent there would be lost, so chunks of that shard go elsewhere.
    /// </summary>
    public bool IsStranded(int shard) => _shards.TryGetValue(shard, out var node) && !IsAvailable(node);

    public IEnumerable<int> ShardsOf(string node) => IsAvailable(node) ? _shards.Where(p => p.Value == node).Select(p => p.Key) : [];

    public bool IsAvailable(string node) => _nodes.TryGetValue(node, out var s) && s.Available;

    /// <summary>A node not heard from for this long is shown gone (its heartbeats come every second).</summary>
    public static readonly TimeSpan Silence = TimeSpan.FromMinutes(1);

    /// <summary>Whether a node is lost to the coordinator: unreachable, left, removed or silent for <see cref="Silence"/>.</summary>
    public static bool IsGone(NodeState node, DateTimeOffset now) => !node.Reachable || now - node.Beat.Time >= Silence;

    private static string StateOf(NodeState node, DateTimeOffset now) =>
        IsGone(node, now) ? "gone" : node.Draining || node.Beat.Draining ? "draining" : "up";

    /// <summary>A heartbeat: the node exists, with this capacity (it gets work once its shard region is registered too).</summary>
    public void Heard(NodeHeartbeat beat)
    {
        bool wasAvailable = IsAvailable(beat.Node);
        // A node back under a new address (restarted elsewhere) waits for its new region again; so does one that was lost
        // (see Unreachable), whatever its address.
        _nodes.AddOrUpdate(beat.Node, _ => new NodeState(beat, true, false),
            (_, old) => old with { Beat = beat, Reachable = true, RegionUp = old.RegionUp && old.Beat.Address == beat.Address });
        if (beat.Draining) Gone(beat.Node, "draining");
        else if (!wasAvailable) Changed();
    }

    /// <summary>
    /// The node at <paramref name="address"/> became unreachable, left or was removed. Whatever answers there next waits
    /// for its region to be listed again: a node restarted in place (same address) starts a new region, and a chunk sent
    /// before it is registered would place its shard on a coordinator's region.
    /// </summary>
    public void Unreachable(string address, string why)
    {
        foreach (var state in _nodes.Values.Where(n => n.Beat.Address == address).ToList())
        {
            _nodes[state.Beat.Node] = state with { Reachable = false, RegionUp = false };
            Gone(state.Beat.Node, why);
        }
    }

    /// <summary>The node at <paramref name="address"/> is reachable again (it was only slow): it takes work once its region is listed again.</summary>
    public void Reachable(string address)
    {
        foreach (var state in _nodes.Values.Where(n => n.Beat.Address == address).ToList()) _nodes[state.Beat.Node] = state with { Reachable = true };
        Changed();
    }

    /// <summary>A node refused work (it drains): no more chunks go there until a heartbeat says otherwise.</summary>
    public void Draining(string node)
    {
        if (_nodes.TryGetValue(node, out var state) && !state.Draining)
        {
            _nodes[node] = state with { Draining = true };
            Gone(node, "draining");
        }
    }

    /// <summary>
    /// The shard regions registered with the shard coordinator (member addresses) and their shards, replacing what was
    /// learnt before; a node whose region is listed can take work from now on (a node that joins gets work within seconds).
    /// </summary>
    public void ShardHomes(IReadOnlyDictionary<string, IReadOnlyCollection<int>> shardsByAddress)
    {
        foreach (var state in _nodes.Values.Where(n => !n.RegionUp && shardsByAddress.ContainsKey(n.Beat.Address)).ToList())
            _nodes[state.Beat.Node] = state with { RegionUp = true };
        var byAddress = _nodes.Values.ToDictionary(n => n.Beat.Address, n => n.Beat.Node, StringComparer.Ordinal);
        _shards.Clear();
        foreach (var (address, shards) in shardsByAddress)
            foreach (int shard in shards) _shards[shard] = byAddress.GetValueOrDefault(address, address);
        Changed();
    }

    /// <summary>A node accepted (or a coordinator's region refused) a chunk of <paramref name="shard"/>: that is where the shard lives now.</summary>
    public void ShardAt(int shard, string node) => _shards[shard] = node;

    public void Register(string pass, ClusterChunkTransport transport) => _passes[pass] = transport;

    public void Unregister(string pass, ClusterChunkTransport transport) => _passes.TryRemove(new KeyValuePair<string, ClusterChunkTransport>(pass, transport));

    /// <summary>Hands a node's answer to the pass it belongs to; false when no such pass runs here (a stale answer).</summary>
    public bool Deliver(string pass, IClusterMessage message)
    {
        if (!_passes.TryGetValue(pass, out var transport)) return false;
        transport.OnMessage(message);
        return true;
    }

    /// <summary>Chunks held by each node for all passes (accepted, unanswered) and its state, for status and metrics.</summary>
    public IReadOnlyList<NodeLoad> Load()
    {
        var inFlight = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var pass in _passes.Values)
            foreach (var (node, count) in pass.LoadByNode()) inFlight[node] = inFlight.GetValueOrDefault(node) + count;
        var now = DateTimeOffset.UtcNow;
        return _nodes.Values.OrderBy(n => n.Beat.Node, StringComparer.Ordinal)
            .Select(n => new NodeLoad(n.Beat.Node, inFlight.GetValueOrDefault(n.Beat.Node), n.Window, _shards.Count(s => s.Value == n.Beat.Node), StateOf(n, now))).ToList();
    }

    // The node's shards stay mapped to it (stranded) until the shard coordinator reports them elsewhere.
    private void Gone(string node, string why)
    {
        foreach (var pass in _passes.Values) pass.OnNodeGone(node, why);
    }

    private void Changed()
    {
        foreach (var pass in _passes.Values) pass.Pump();
    }
}
