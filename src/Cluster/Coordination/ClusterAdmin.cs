using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Cluster.Coordination;

/// <summary>
/// Every member's read-only view for `chunkseg cluster show|shards` (<c>/user/admin</c>, reached by clients through the
/// receptionist): the members with their roles and status, the leader, who is unreachable, and the shard regions with
/// their shards and chunk actors. It answers even when no coordinator is up, which is when an operator needs it most.
/// </summary>
public sealed class ClusterAdmin : ReceiveActor
{
    public const string Name = "admin";

    public ClusterAdmin(IActorRef region)
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        ReceiveAsync<GetClusterView>(async _ =>
        {
            var sender = Sender;
            var state = cluster.State;
            var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
            var members = state.Members.OrderBy(m => m.Address.ToString(), StringComparer.Ordinal)
                .Select(m => new MemberView(m.Address.ToString(), m.Status.ToString(), m.Roles.Order(StringComparer.Ordinal).ToList(),
                    !unreachable.Contains(m.Address))).ToList();
            var regions = new List<RegionView>();
            string? error = null;
            try
            {
                var stats = await region.Ask<ClusterShardingStats>(new GetClusterShardingStats(TimeSpan.FromSeconds(3)), TimeSpan.FromSeconds(5))
                    .ConfigureAwait(false);
                regions.AddRange(stats.Regions.OrderBy(r => r.Key.ToString(), StringComparer.Ordinal)
                    .Select(r => new RegionView(r.Key.ToString(), r.Value.Stats.ToDictionary(s => s.Key, s => s.Value, StringComparer.Ordinal))));
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                error = "the shard coordinator did not answer within 5 s (no gpu-node up?)";
            }
            sender.Tell(new ClusterView(cluster.SelfAddress.ToString(), state.Leader?.ToString(), members, regions, error));
        });
    }

    public static Props Props(IActorRef region) => Akka.Actor.Props.Create(() => new ClusterAdmin(region));
}
