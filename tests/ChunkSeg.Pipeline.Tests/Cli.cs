using ChunkSeg.Cli.Commands;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>Runs `chunkseg` in process and captures what it prints.</summary>
internal static class Cli
{
    public static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await CliApp.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Asserts one clear error line: exit code, message fragment, no stack trace.</summary>
    public static async Task Expect(int code, string fragment, params string[] args)
    {
        var (actual, _, err) = await Run(args);
        Assert.True(actual == code, $"chunkseg {string.Join(' ', args)} exited {actual}, expected {code}: {err}");
        Assert.Contains(fragment, err);
        Assert.StartsWith("error: ", err);
        Assert.DoesNotContain("   at ", err);
    }
}
