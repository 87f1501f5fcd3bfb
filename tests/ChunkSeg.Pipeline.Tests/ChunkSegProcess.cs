using System.Diagnostics;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>A `chunkseg` child process (this build), its output in a log file.</summary>
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
        // The log closes when both streams have ended (a null line), not when the process exits: lines still being
        // read then arrive after the exit, and a write to a closed log would crash the test host.
        int open = 2;
        void Line(DataReceivedEventArgs e)
        {
            lock (gate)
            {
                if (e.Data is { } line) log.WriteLine(line);
                else if (--open == 0) log.Dispose();
            }
        }
        _process.OutputDataReceived += (_, e) => Line(e);
        _process.ErrorDataReceived += (_, e) => Line(e);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Runs `chunkseg <paramref name="args"/>` as its own process and kills it (SIGKILL) once <paramref name="when"/> holds,
    /// polled until the process ends or <paramref name="limit"/> passes (a failure); false if it finished first (exit 0
    /// asserted then).
    /// </summary>
    public static async Task<bool> RunAndKill(string[] args, Func<bool> when, TimeSpan limit)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])[Path.Combine(AppContext.BaseDirectory, "chunkseg.dll"), .. args]) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!process.HasExited && !when())
        {
            Assert.True(clock.Elapsed < limit, $"chunkseg {args[0]} neither finished nor reached the kill point");
            await Task.Delay(1);
        }
        bool killed = !process.HasExited;
        if (killed) process.Kill(entireProcessTree: true);   // SIGKILL on Linux
        await process.WaitForExitAsync();
        await Task.WhenAll(stdout, stderr);
        if (!killed) Assert.True(process.ExitCode == 0, await stderr);
        return killed;
    }

    /// <summary>Waits for the process to end by itself; false when it has not within <paramref name="patience"/>.</summary>
    public bool WaitForExit(TimeSpan patience)
    {
        if (!_process.WaitForExit(patience)) return false;
        _process.WaitForExit();   // and for its output to be read to the end
        return true;
    }
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

    /// <summary>Kills the process if it still runs; a second call does nothing (a test and its cleanup may both dispose it).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        Kill();
        _process.Dispose();
    }

    private int _disposed;
}
