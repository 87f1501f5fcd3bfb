using System.Diagnostics;

namespace ChunkSeg.Tests.Shared;

/// <summary>
/// Runs the independent reference implementations (h5py, zarr-python, numcodecs, vigra from Debian's
/// /usr/bin/python3) on files the tests share with them. Scripts live in Python/ beside the tests.
/// </summary>
internal static class PythonReference
{
    public const string Interpreter = "/usr/bin/python3";

    /// <summary>Runs Python/<paramref name="script"/> with <paramref name="args"/>; returns stdout, throws with stderr on failure.</summary>
    public static string Run(string script, params string[] args)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Python", script);
        var psi = new ProcessStartInfo(Interpreter) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(path);
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {Interpreter}");
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{script} {string.Join(' ', args)} exited {p.ExitCode}:\n{stderr.Result}");
        return stdout;
    }
}

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "chunkseg-tests", Guid.NewGuid().ToString("N"));
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
