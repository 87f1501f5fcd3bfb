using ChunkSeg.IlgpuKernels.Runtime;

namespace ChunkSeg.IlgpuKernels.Tests;

/// <summary>
/// The accelerator the tests run on: <c>CHUNKSEG_GPU</c> when set (cuda on a GPU node: scripts/gpu-check.sh), else ILGPU's
/// CPU accelerator, which runs the same kernels' C# on this machine's cores: exact, slow, so the volumes here are small.
/// Opened once and shared by all tests (never disposed; the process ends).
/// </summary>
internal static class TestDevice
{
    private static readonly Lazy<GpuDevice> Shared = new(() =>
    {
        string choice = Environment.GetEnvironmentVariable(GpuDevice.SelectionVariable) is { Length: > 0 } named ? named : "cpu";
        return GpuDevice.TryOpen(choice, out var device, out string whyNot)
            ? device!
            : throw new InvalidOperationException($"{GpuDevice.SelectionVariable}={choice}: {whyNot}");
    });

    public static GpuDevice Device => Shared.Value;
}
