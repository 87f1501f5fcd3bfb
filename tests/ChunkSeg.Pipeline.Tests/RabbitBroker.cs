using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// A private RabbitMQ node for one test: Debian's rabbitmq-server on free ports, its data in a temporary folder, no
/// plugins. <see cref="RestartAsync"/> stops it gracefully and starts it again on the same data (durable queues survive).
/// </summary>
internal sealed class RabbitBroker : IAsyncDisposable
{
    private const string Server = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    private readonly TempDir _dir = new();
    private readonly int _port = FreePort(), _distPort = FreePort();
    private Process? _process;

    public string Address => $"amqp://127.0.0.1:{_port}/";
    public static bool Installed => File.Exists(Server);

    public static async Task<RabbitBroker> StartAsync()
    {
        Assert.True(Installed, $"{Server} is missing: scripts/install-deps.sh --test installs rabbitmq-server");
        var broker = new RabbitBroker();
        File.WriteAllText(broker._dir["enabled_plugins"], "[].\n");
        File.WriteAllText(broker._dir["rabbitmq.conf"], $"listeners.tcp.default = 127.0.0.1:{broker._port}\nloopback_users = none\n");
        await broker.LaunchAsync();
        return broker;
    }

    private async Task LaunchAsync()
    {
        // stdin stays an open pipe: the VM runs its shell on it and would stop at end of input (CI runs tests with stdin closed).
        var start = new ProcessStartInfo(Server) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir.Path };
        start.Environment["RABBITMQ_ALLOW_INPUT"] = "true";   // exec the VM: this process is the broker, SIGTERM stops it cleanly
        start.Environment["RABBITMQ_NODENAME"] = $"chunkseg{_port}@localhost";
        start.Environment["RABBITMQ_NODE_PORT"] = _port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["RABBITMQ_DIST_PORT"] = _distPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["RABBITMQ_MNESIA_BASE"] = _dir["mnesia"];
        start.Environment["RABBITMQ_LOG_BASE"] = _dir["log"];
        start.Environment["RABBITMQ_ENABLED_PLUGINS_FILE"] = _dir["enabled_plugins"];
        start.Environment["RABBITMQ_CONFIG_FILE"] = _dir["rabbitmq"];
        _process = Process.Start(start)!;
        _ = _process.StandardOutput.ReadToEndAsync();
        _ = _process.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (true)
        {
            Assert.False(_process.HasExited, $"rabbitmq-server exited; logs in {_dir.Path}/log");
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, _port);
                return;
            }
            catch (SocketException) when (clock.Elapsed < TimeSpan.FromSeconds(90))
            {
                await Task.Delay(200);
            }
        }
    }

    /// <summary>Stops the node (SIGTERM: a clean shutdown, as an operator's restart) and starts it on the same data.</summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await LaunchAsync();
    }

    private async Task StopAsync()
    {
        if (_process is null || _process.HasExited) return;
        using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            await term.WaitForExitAsync();
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try { await _process.WaitForExitAsync(patience.Token); }
        catch (OperationCanceledException) { _process.Kill(entireProcessTree: true); }
        _process.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false }) _process.Kill(entireProcessTree: true);
        if (_process is not null) await _process.WaitForExitAsync();
        _process?.Dispose();
        _dir.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>A `chunkseg` child process (worker, coordinator) with its output kept in a file for diagnostics.</summary>
internal sealed class ChunkSegProcess : IDisposable
{
    private readonly Process _process;
    public string LogPath { get; }

    public ChunkSegProcess(string logPath, params string[] args) : this(logPath, new Dictionary<string, string>(), args)
    {
    }

    /// <param name="environment">Variables set for the child on top of this process's.</param>
    public ChunkSegProcess(string logPath, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        LogPath = logPath;
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment) start.Environment[name] = value;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "chunkseg.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        _process = Process.Start(start)!;
        var log = new StreamWriter(logPath) { AutoFlush = true };
        var gate = new object();
        _process.OutputDataReceived += (_, e) => { if (e.Data is { } line) lock (gate) log.WriteLine(line); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) lock (gate) log.WriteLine(line); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        _process.Exited += (_, _) => { lock (gate) log.Dispose(); };
        _process.EnableRaisingEvents = true;
    }

    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    /// <summary>SIGKILL: no chance to finish, acknowledge or say goodbye.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>SIGTERM, then waits for the process to exit by itself.</summary>
    public async Task<int> TerminateAsync(TimeSpan patience)
    {
        using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            await term.WaitForExitAsync();
        using var limit = new CancellationTokenSource(patience);
        await _process.WaitForExitAsync(limit.Token);
        return _process.ExitCode;
    }

    public string Log => File.Exists(LogPath) ? File.ReadAllText(LogPath) : "";

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
