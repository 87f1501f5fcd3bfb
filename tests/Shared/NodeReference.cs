using System.Diagnostics;

namespace ChunkSeg.Tests.Shared;

/// <summary>
/// Runs the independent JavaScript references in tools/reference (zarrita and ajv, pinned in tools/reference/npm) with the
/// machine's Node.js. The packages come from `npm ci --prefix tools/reference/npm` (scripts/install-deps.sh --test).
/// </summary>
internal static class NodeReference
{
    /// <summary>Runs tools/reference/<paramref name="script"/> with <paramref name="args"/>; returns stdout, throws with stderr on failure.</summary>
    public static string Run(string script, params string[] args)
    {
        var (code, stdout, stderr) = Exec(script, args);
        if (code != 0)
            throw new InvalidOperationException($"node {script} {string.Join(' ', args)} exited {code}:\n{stderr}");
        return stdout;
    }

    /// <summary>
    /// Runs tools/reference/<paramref name="script"/> with <paramref name="args"/> and returns its exit code and output,
    /// for scripts whose exit code is a verdict (ngff_validate.mjs exits 1 on invalid metadata).
    /// </summary>
    public static (int ExitCode, string Stdout, string Stderr) Exec(string script, params string[] args)
    {
        string tools = Path.Combine(RepositoryRoot.Require(), "tools", "reference");
        foreach (string package in Packages)
            if (!Directory.Exists(Path.Combine(tools, "npm", "node_modules", package)))
                Assert.Fail($"tools/reference/npm/node_modules/{package} is missing: run scripts/install-deps.sh --test (npm ci --prefix tools/reference/npm)");
        var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(tools, script));
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start node");
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, stderr.Result);
    }

    /// <summary>The packages tools/reference/npm/package.json pins (zarrita: Zarr v3; ajv: the NGFF JSON schemas).</summary>
    private static readonly string[] Packages = ["zarrita", "ajv"];
}
