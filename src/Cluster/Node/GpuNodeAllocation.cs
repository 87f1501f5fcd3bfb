using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Sharding;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Cluster.Node;

/// <summary>
/// Shards live on gpu-nodes only, while the shard coordinator lives on the coordinators. Every member starts a region
/// of the <c>chunk</c> type (sharding has no role), so the shard coordinator singleton runs on the oldest member — a
/// coordinator, which stays put while gpu-nodes come, go or crash in a loop (on a gpu-node it would move with every
/// lost node, and new shards could not be placed meanwhile). This strategy then gives shards to gpu-node regions only:
/// Akka's least-shard strategy decides among them, and a shard that had to be placed on a coordinator (no gpu-node
/// was up) is moved away as soon as one is.
/// </summary>
public sealed class GpuNodeAllocation(IShardAllocationStrategy inner, Akka.Cluster.Cluster cluster) : IActorSystemDependentAllocationStrategy
{
    public void Start(ActorSystem system)
    {
        if (inner is IActorSystemDependentAllocationStrategy dependent) dependent.Start(system);
    }

    public Task<IActorRef> AllocateShard(IActorRef requester, string shardId, IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations)
    {
        var gpu = OnGpuNodes(currentShardAllocations);
        return gpu.Count > 0 ? inner.AllocateShard(requester, shardId, gpu) : Task.FromResult(requester);
    }

    public async Task<IImmutableSet<string>> Rebalance(IImmutableDictionary<IActorRef, IImmutableList<string>> currentShardAllocations,
        IImmutableSet<string> rebalanceInProgress)
    {
        var gpu = OnGpuNodes(currentShardAllocations);
        if (gpu.Count == 0) return ImmutableHashSet<string>.Empty;
        var stranded = currentShardAllocations.Where(p => !gpu.ContainsKey(p.Key)).SelectMany(p => p.Value).Where(s => !rebalanceInProgress.Contains(s));
        var moved = await inner.Rebalance(gpu, rebalanceInProgress).ConfigureAwait(false);
        return moved.Union(stranded);
    }

    private ImmutableDictionary<IActorRef, IImmutableList<string>> OnGpuNodes(IImmutableDictionary<IActorRef, IImmutableList<string>> allocations)
    {
        var gpuNodes = cluster.State.Members.Where(m => m.HasRole(ClusterSettings.GpuNodeRole)).Select(m => m.Address).ToHashSet();
        return allocations.Where(p => gpuNodes.Contains(p.Key.Path.Address.HasGlobalScope ? p.Key.Path.Address : cluster.SelfAddress)).ToImmutableDictionary();
    }
}

/// <summary>
/// A chunk actor of a coordinator's region: a shard placed there (no gpu-node was up) refuses its chunks, so the
/// coordinator sends them again; <see cref="GpuNodeAllocation"/> moves the shard to a gpu-node at the next rebalance.
/// </summary>
public sealed class RefusingChunkEntity : ReceiveActor
{
    public RefusingChunkEntity(IActorRef coordinator, string self)
    {
        Receive<ChunkWork>(work => coordinator.Tell(new ChunkRejected(work.Job.Id.Value, work.Chunk, work.Attempt, work.Shard, self,
            "the shard is on a coordinator until a gpu-node takes it")));
        Receive<ChunkEntity.Stop>(_ => Context.Stop(Self));
    }
}
