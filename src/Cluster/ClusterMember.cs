using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.Client;
using Akka.Cluster.Tools.Singleton;
using ChunkSeg.Cluster.Coordination;
using ChunkSeg.Cluster.Dispatch;
using ChunkSeg.Cluster.Node;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Telemetry;
using ChunkSeg.Pipelines;
using Microsoft.Extensions.Logging;

namespace ChunkSeg.Cluster;

/// <summary>What the coordinator role needs: where the ledger lives, who may change things, how many jobs run at once, the leases.</summary>
public sealed record CoordinatorOptions(string StateFolder, byte[]? Secret, int MaxJobs, DispatchSettings Dispatch);

/// <summary>
/// A running member of the cluster (one per `chunkseg coordinator` or `chunkseg worker` process).
/// <code>
///   every member     /user/jobs-proxy (singleton proxy), /user/admin (views), both registered with the cluster-client
///                    receptionist (clients may contact any seed); a region of the chunk shards
///   coordinator      /user/jobs: the JobManager singleton (one active in the cluster, the others standing by); the shard
///                    coordinator (a singleton on the oldest member); its region hosts no shards (GpuNodeAllocation)
///   gpu-node         the shards' chunk actors, /user/node: the NodeRunner (concurrency bound)
/// </code>
/// </summary>
public sealed class ClusterMember
{
    private readonly ActorSystem _system;
    private readonly IActorRef _jobs;
    private readonly IActorRef? _runner;
    private readonly (NodeBoard Board, IActorRef Region, DispatchSettings Dispatch)? _coordinator;
    private readonly ILogger _logger;

    private ClusterMember(ActorSystem system, IActorRef jobs, IActorRef? runner, (NodeBoard, IActorRef, DispatchSettings)? coordinator, ILogger logger)
    {
        _system = system;
        _jobs = jobs;
        _runner = runner;
        _coordinator = coordinator;
        _logger = logger;
    }

    /// <summary>The gpu-nodes this coordinator hears from (a coordinator member only).</summary>
    public NodeBoard Board => _coordinator?.Board ?? throw new InvalidOperationException("not a coordinator");

    /// <summary>
    /// A transport for one pass over the gpu-nodes, outside any submitted job (the bench). Answers reach it only while this
    /// member hosts the active job manager.
    /// </summary>
    public IChunkTransport NewTransport(ILogger logger)
    {
        var (board, region, dispatch) = _coordinator ?? throw new InvalidOperationException("not a coordinator");
        return new ClusterChunkTransport(region, board, dispatch, logger);
    }

    public ActorSystem System => _system;

    /// <summary>
    /// Asks the job manager (the cluster singleton, on whichever coordinator it runs) through this member's proxy: what the
    /// job page shows (<see cref="GetClusterStatus"/>, <see cref="GetChunkMap"/>).
    /// </summary>
    public Task<T> AskJobManager<T>(Contracts.Messages.IClusterMessage question, TimeSpan timeout) => _jobs.Ask<T>(question, timeout);

    /// <summary>Up in the cluster (readiness).</summary>
    public bool IsUp => !_system.WhenTerminated.IsCompleted && Akka.Cluster.Cluster.Get(_system).SelfMember.Status == MemberStatus.Up;

    public static ClusterMember StartCoordinator(ClusterSettings settings, CoordinatorOptions options, ILoggerFactory logs)
    {
        var system = Create(settings);
        string self = Akka.Cluster.Cluster.Get(system).SelfAddress.ToString();
        var proxy = Common(system);
        var region = StartRegion(system, _ => Props.Create(() => new RefusingChunkEntity(proxy, self)));
        var board = new NodeBoard();
        system.ActorOf(ClusterSingletonManager.Props(
            JobManager.Props(new JobLedger(options.StateFolder), options.Secret, options.MaxJobs, board, region, options.Dispatch, logs),
            PoisonPill.Instance, ClusterSingletonManagerSettings.Create(system).WithRole(ClusterSettings.CoordinatorRole)), JobManager.Name);
        AddAdmin(system, region);
        var cluster = Akka.Cluster.Cluster.Get(system);
        ChunkSegTelemetry.SetClusterSources(
            () => cluster.State.Members.SelectMany(m => m.Roles.Select(r => (Role: r, Status: m.Status.ToString()))).GroupBy(x => x)
                .Select(g => (g.Key.Role, g.Key.Status, (long)g.Count())),
            () => board.Load().Select(l => (l.Node, l.State, (long)l.InFlight, (long)l.Shards)));
        return new ClusterMember(system, proxy, null, (board, region, options.Dispatch), logs.CreateLogger<ClusterMember>());
    }

    public static ClusterMember StartGpuNode(ClusterSettings settings, NodeIdentity identity, Func<JobSpec, IJobProcessor> open, ILoggerFactory logs)
    {
        var system = Create(settings);
        var proxy = Common(system);
        var runner = system.ActorOf(NodeRunner.Props(identity, open, proxy, logs.CreateLogger<NodeRunner>()), NodeRunner.Name);
        var region = StartRegion(system, _ => Props.Create(() => new ChunkEntity(runner)));
        AddAdmin(system, region);
        var logger = logs.CreateLogger<ClusterMember>();
        DrainOnShutdown(system, runner, logger);
        return new ClusterMember(system, proxy, runner, null, logger);
    }

    private static ActorSystem Create(ClusterSettings settings)
    {
        try
        {
            return ActorSystem.Create(ClusterSettings.SystemName, settings.ToConfig());
        }
        catch (Exception e) when (e.GetBaseException() is System.Net.Sockets.SocketException socket)
        {
            throw new UsageException($"--hostname {settings.Hostname} --port {settings.Port}: cannot listen ({socket.Message})");
        }
    }

    /// <summary>The singleton proxy, offered to clients by the receptionist.</summary>
    private static IActorRef Common(ActorSystem system)
    {
        var proxy = system.ActorOf(ClusterSingletonProxy.Props($"/user/{JobManager.Name}",
            ClusterSingletonProxySettings.Create(system).WithRole(ClusterSettings.CoordinatorRole)), JobManager.ProxyName);
        ClusterClientReceptionist.Get(system).RegisterService(proxy);
        return proxy;
    }

    /// <summary>This member's region of the <c>chunk</c> type; shards go to gpu-nodes only (<see cref="GpuNodeAllocation"/>).</summary>
    private static IActorRef StartRegion(ActorSystem system, Func<string, Props> entity)
    {
        var sharding = ClusterSharding.Get(system);
        var settings = ClusterShardingSettings.Create(system);
        var allocation = new GpuNodeAllocation(sharding.DefaultShardAllocationStrategy(settings), Akka.Cluster.Cluster.Get(system));
        return sharding.Start(ChunkEntity.TypeName, entity, settings, new ChunkMessageExtractor(), allocation, ChunkEntity.Stop.Instance);
    }

    private static void AddAdmin(ActorSystem system, IActorRef region) =>
        ClusterClientReceptionist.Get(system).RegisterService(system.ActorOf(ClusterAdmin.Props(region), ClusterAdmin.Name));

    /// <summary>
    /// Runs until <paramref name="stop"/> (SIGTERM) or until this member leaves the cluster (`chunkseg cluster leave`) or is
    /// removed from it. Leaving, a gpu-node first drains (queued chunks go back to the coordinator, running ones finish,
    /// at most <see cref="DrainTimeout"/>; the coordinated shutdown's first phase), then shards and the singleton are
    /// handed over. Returns false when the member was downed (by the Split Brain Resolver or an operator) without being
    /// asked to stop: the process should exit non-zero so that its supervisor starts it again.
    /// </summary>
    public async Task<bool> RunUntilStoppedAsync(CancellationToken stop)
    {
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var registration = stop.Register(() => stopped.TrySetResult());
        await Task.WhenAny(stopped.Task, _system.WhenTerminated).ConfigureAwait(false);
        var shutdown = CoordinatedShutdown.Get(_system);
        if (!_system.WhenTerminated.IsCompleted)
        {
            _logger.LogInformation("Leaving the cluster");
            await shutdown.Run(CoordinatedShutdown.ClrExitReason.Instance).ConfigureAwait(false);
            await _system.WhenTerminated.ConfigureAwait(false);
            return true;
        }
        if (shutdown.ShutdownReason is CoordinatedShutdown.ClusterLeavingReason) return true;
        _logger.LogError("This member was removed from the cluster (downed); exiting so that it can be started again");
        return false;
    }

    /// <summary>How long a leaving gpu-node may take to finish the chunks in hand.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromMinutes(10);

    /// <summary>Drains the node runner first whenever this member shuts down (SIGTERM, leave), before it leaves the cluster.</summary>
    private static void DrainOnShutdown(ActorSystem system, IActorRef runner, ILogger logger) =>
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeClusterShutdown, "drain-chunks", async () =>
        {
            logger.LogInformation("Draining: queued chunks go back to the coordinator, running ones finish (at most {Minutes:0} min)", DrainTimeout.TotalMinutes);
            try { await runner.Ask<NodeRunner.Drained>(new NodeRunner.Drain(), DrainTimeout).ConfigureAwait(false); }
            catch (AskTimeoutException) { logger.LogWarning("Drain did not finish within {Timeout}; leaving anyway", DrainTimeout); }
            return Akka.Done.Instance;
        });
}
