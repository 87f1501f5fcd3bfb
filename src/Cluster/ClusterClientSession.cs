using System.Net;
using Akka.Actor;
using Akka.Cluster.Tools.Client;
using ChunkSeg.Cluster.Coordination;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Cluster;

/// <summary>
/// What `chunkseg submit`, `status`, `cancel` and `cluster` say to the cluster: a small remote actor system (not a
/// member) with a cluster client that contacts the seeds' receptionists. Requests to the coordinator go to the
/// singleton proxy of whichever member answers, so they reach the active coordinator wherever it runs.
/// </summary>
public sealed class ClusterClientSession : IAsyncDisposable
{
    private readonly ActorSystem _system;
    private readonly IActorRef _client;
    private readonly IReadOnlyList<DnsEndPoint> _seeds;

    private ClusterClientSession(ActorSystem system, IActorRef client, IReadOnlyList<DnsEndPoint> seeds)
    {
        _system = system;
        _client = client;
        _seeds = seeds;
    }

    /// <param name="hostname">The address members reply to; default: this machine's address on the route to the first seed.</param>
    /// <param name="tls">The cluster's TLS (it must match the members'); null for a plain cluster.</param>
    public static ClusterClientSession Connect(IReadOnlyList<DnsEndPoint> seeds, ClusterTls? tls, string? hostname = null)
    {
        hostname ??= LocalAddressToward(seeds[0]);
        var system = ActorSystem.Create("chunkseg-client", ClusterSettings.ClientConfig(hostname, seeds, tls));
        var client = system.ActorOf(ClusterClient.Props(ClusterClientSettings.Create(system)), "client");
        return new ClusterClientSession(system, client, seeds);
    }

    /// <summary>Asks the coordinator (the singleton, through a member's proxy).</summary>
    public Task<T> AskCoordinator<T>(IClusterMessage request, TimeSpan timeout) => Ask<T>($"/user/{JobManager.ProxyName}", request, timeout, "the coordinator");

    /// <summary>Asks the member that answers first for its view of the cluster.</summary>
    public Task<ClusterView> View(TimeSpan timeout) => Ask<ClusterView>($"/user/{ClusterAdmin.Name}", new GetClusterView(), timeout, "a cluster member");

    private async Task<T> Ask<T>(string path, IClusterMessage request, TimeSpan timeout, string who)
    {
        try
        {
            return await _client.Ask<T>(new ClusterClient.Send(path, request, localAffinity: true), timeout).ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            throw new ClusterException($"--seed {string.Join(",", _seeds.Select(s => $"{s.Host}:{s.Port}"))}: no answer from {who} within " +
                $"{timeout.TotalSeconds:0} s (is the cluster up, with a `chunkseg coordinator` running?)");
        }
    }

    /// <summary>
    /// The local address the kernel would send from to reach <paramref name="seed"/> (a UDP "connect" sends nothing): the
    /// address a member can answer this client at, also in a pod whose host name is not in DNS.
    /// </summary>
    private static string LocalAddressToward(DnsEndPoint seed)
    {
        try
        {
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
            socket.Connect(seed.Host, seed.Port);
            return socket.LocalEndPoint is IPEndPoint { Address: var address } ? (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString() : Dns.GetHostName();
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new ClusterException($"--seed {seed.Host}:{seed.Port}: cannot resolve or route to it ({e.Message})");
        }
    }

    public async ValueTask DisposeAsync() => await _system.Terminate().ConfigureAwait(false);
}
