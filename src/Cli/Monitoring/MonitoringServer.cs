using System.Net;
using ChunkSeg.Cli.Telemetry;
using ChunkSeg.Cluster;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace ChunkSeg.Cli.Monitoring;

/// <summary>
/// The one HTTP port of a cluster process (<c>--http-port</c>): Kubernetes' probes, Prometheus' scrapes and, on
/// coordinators, the job page.
/// <code>
///   GET /healthz                          200 while the process runs (liveness)
///   GET /readyz                           200 once an Up member of the cluster, else 503 (readiness)
///   GET /metrics                          ChunkSeg's meter, the .NET runtime's and the process's, in Prometheus' text format
///                                         (or OpenMetrics, as the scraper asks), through OpenTelemetry's Prometheus exporter
///   GET /                                 the job page (coordinators): plain HTML and a script that polls the two below
///   GET /api/status[?job=ID]              the job manager's ClusterStatus as JSON: jobs, passes, failures, nodes
///   GET /api/map?job=ID&amp;pass=N&amp;t=T&amp;z=Z    one z-plane of a pass's chunk map
/// </code>
/// Read-only and without login: nothing served changes the cluster or shows a secret. Any coordinator serves the page;
/// the data comes from the job manager, wherever the singleton runs. Bound to <c>--http-address</c> (all interfaces by
/// default, as the probes need).
/// </summary>
internal sealed class MonitoringServer : IAsyncDisposable
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);

    private readonly WebApplication _app;
    private readonly MeterProvider _meters;

    private MonitoringServer(WebApplication app, MeterProvider meters)
    {
        _app = app;
        _meters = meters;
    }

    /// <summary>Where to listen, checked before the member joins the cluster; null when <paramref name="port"/> is 0 (no endpoint).</summary>
    public static IPEndPoint? EndpointOf(int port, string address)
    {
        if (port == 0) return null;
        if (port is < 0 or > 65535) throw new UsageException($"--http-port {port}: not a port number (1-65535, or 0 for none)");
        if (!IPAddress.TryParse(address, out var ip)) throw new UsageException($"--http-address {address}: not an IP address (0.0.0.0 for all interfaces)");
        return new IPEndPoint(ip, port);
    }

    /// <summary>Starts serving on <paramref name="endpoint"/> (from <see cref="EndpointOf"/>).</summary>
    /// <param name="service">service.name of the metrics' target_info (chunkseg-coordinator, chunkseg-worker).</param>
    /// <param name="jobPage">Serve the job page and its API (coordinators).</param>
    public static async Task<MonitoringServer> StartAsync(IPEndPoint endpoint, string service, ClusterMember member, bool jobPage,
        CancellationToken cancellationToken)
    {
        int port = endpoint.Port;

        var meters = Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(r => TelemetrySetup.Describe(r, service, Environment.GetEnvironmentVariable))
            .AddMeter(ChunkSegTelemetry.Name)
            .AddRuntimeInstrumentation()
            .AddProcessInstrumentation()
            // Every scrape sees the state of now (the default caches the last answer for 300 ms).
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0)
            .Build();

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(endpoint));
        var app = builder.Build();
        app.MapGet("/healthz", () => "ok\n");
        app.MapGet("/readyz", () => member.IsUp ? Results.Text("ready\n") : Results.Text("not ready\n", statusCode: 503));
        app.MapPrometheusScrapingEndpoint("/metrics", meters, configureBranchedPipeline: null, optionsName: null);
        if (jobPage) JobPage.Map(app, member, AskTimeout);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            meters.Dispose();
            throw new UsageException($"--http-port {port}: cannot listen on {endpoint.Address} ({e.Message})");
        }
        return new MonitoringServer(app, meters);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _meters.Dispose();
    }
}
