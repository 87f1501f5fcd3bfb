using ChunkSeg.OpenCl;

namespace ChunkSeg.OpenCl.Tests;

/// <summary>
/// The OpenCL device the tests run on (<see cref="OpenClDevice.TryGetDefault"/>: a GPU when there is one, else PoCL
/// on the CPU; <c>CHUNKSEG_OPENCL_DEVICE</c> picks another), and one shared context on it. Without a device a test
/// skips with the reason, and fails when CI is set: CI installs PoCL (scripts/install-deps.sh --test), so a missing
/// device there is a broken machine, not a reason to pass.
/// </summary>
internal static class TestDevice
{
    private static readonly Lazy<(OpenClDevice? Device, string WhyNot)> Found = new(() =>
        OpenClDevice.TryGetDefault(out var device, out string whyNot) ? (device, "") : (null, whyNot));

    private static readonly Lazy<OpenClContext> SharedContext = new(() => new OpenClContext(Require()));

    /// <summary>The device, or skip (fail under CI) saying why there is none.</summary>
    public static OpenClDevice Require()
    {
        var (device, whyNot) = Found.Value;
        if (device is not null) return device;
        string message = $"no OpenCL device: {whyNot}";
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")))
            Assert.Fail(message + ". CI must have one: scripts/install-deps.sh --test installs pocl-opencl-icd.");
        Assert.Skip(message);
        return null!;
    }

    /// <summary>A context on <see cref="Require"/>'s device, shared by all tests (never disposed; the process ends).</summary>
    public static OpenClContext Context
    {
        get
        {
            Require();
            return SharedContext.Value;
        }
    }

    /// <summary>A fresh, empty cache directory under the temp folder; deleted by disposing the returned scope.</summary>
    public static TempDirectory NewCacheDirectory() => new();
}

internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"chunkseg-opencl-test-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
