using System.Net;

namespace ChunkSeg.Cli.Distributed;

/// <summary>
/// GET /healthz (the process runs: liveness) and GET /readyz (connected and consuming: readiness) for Kubernetes probes.
/// </summary>
internal sealed class HealthEndpoint : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Func<bool> _ready;
    private readonly Task _loop;

    private HealthEndpoint(int port, Func<bool> ready)
    {
        _ready = ready;
        _listener.Prefixes.Add($"http://*:{port}/");
        _listener.Start();
        _loop = Task.Run(Serve);
    }

    /// <summary>Starts serving on <paramref name="port"/>; null when the port is 0 (no endpoint).</summary>
    public static HealthEndpoint? Start(int port, Func<bool> ready)
    {
        if (port == 0) return null;
        if (port is < 0 or > 65535) throw new Contracts.Errors.UsageException($"--health-port {port}: not a port number (1-65535, or 0 for none)");
        try
        {
            return new HealthEndpoint(port, ready);
        }
        catch (HttpListenerException e)
        {
            throw new Contracts.Errors.UsageException($"--health-port {port}: cannot listen ({e.Message})");
        }
    }

    private async Task Serve()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync().ConfigureAwait(false); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            var (code, text) = context.Request.Url?.AbsolutePath switch
            {
                "/healthz" => (200, "ok"),
                "/readyz" => _ready() ? (200, "ready") : (503, "not ready"),
                _ => (404, "not found"),
            };
            context.Response.StatusCode = code;
            byte[] body = System.Text.Encoding.UTF8.GetBytes(text + "\n");
            try
            {
                await context.Response.OutputStream.WriteAsync(body).ConfigureAwait(false);
                context.Response.Close();
            }
            catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException) { }
        }
    }

    public void Dispose()
    {
        _listener.Close();
        try { _loop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
    }
}
