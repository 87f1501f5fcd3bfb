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
        bool asked = false, timedOut = false;
        Exception? failure = null;
        // The kill point is watched from a thread of its own: on a busy machine the thread pool (where the other tests'
        // work runs) can leave a Task.Delay continuation waiting longer than the whole pass lasts, and the point is missed.
        var watcher = new Thread(() =>
        {
            try
            {
                while (!process.HasExited)
                {
                    if (when()) asked = true;
                    else if (clock.Elapsed >= limit) timedOut = true;
                    else
                    {
                        Thread.Sleep(1);
                        continue;
                    }
                    process.Kill(entireProcessTree: true);   // SIGKILL on Linux; nothing if it has just ended
                    return;
                }
            }
            catch (Exception e)
            {
                failure = e;   // rethrown by the test, not left to crash the test host
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            }
        }) { IsBackground = true, Name = "kill-point watcher" };
        watcher.Start();
        await process.WaitForExitAsync();
        watcher.Join();
        await Task.WhenAll(stdout, stderr);
        if (failure is not null) throw new InvalidOperationException("the kill point could not be watched", failure);
        Assert.False(timedOut, $"chunkseg {args[0]} neither finished nor reached the kill point within {limit}");
        // Killed only if it had not finished by itself just before (a run that ended exits 0).
        bool killed = asked && process.ExitCode != 0;
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
