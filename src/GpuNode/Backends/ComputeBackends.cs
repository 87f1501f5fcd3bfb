using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Telemetry;
using ChunkSeg.IlgpuKernels.Runtime;

namespace ChunkSeg.GpuNode.Backends;

/// <summary>Opens the backend <c>--backend</c> names: cpu, gpu or auto.</summary>
public static class ComputeBackends
{
    /// <summary>A device node the NVIDIA driver creates: an NVIDIA GPU is present, whatever ILGPU says.</summary>
    internal const string NvidiaDeviceNode = "/dev/nvidiactl";

    /// <param name="name">cpu: the SIMD kernels on this machine's cores. gpu: the ILGPU accelerator <c>CHUNKSEG_GPU</c>
    /// names (cuda, opencl, or cpu: ILGPU's CPU accelerator, for tests), else CUDA, else an OpenCL GPU; none is an error.
    /// auto: a GPU when ILGPU finds CUDA or a capable OpenCL device, else cpu.</param>
    /// <param name="warn">Told when <c>auto</c> falls back to the CPU on a machine that has an NVIDIA GPU ILGPU cannot use, and why.</param>
    public static ComputeBackend Open(string name, Action<string>? warn = null) => Open(name, warn, NvidiaDeviceNode);

    internal static ComputeBackend Open(string name, Action<string>? warn, string nvidiaDeviceNode)
    {
        string? choice = Environment.GetEnvironmentVariable(GpuDevice.SelectionVariable);
        switch (name)
        {
            case "cpu":
                return ComputeBackend.Cpu;
            case "gpu":
                if (!GpuDevice.TryOpen(choice, out var device, out string whyNot))
                    throw new UsageException($"--backend gpu: {whyNot}" + (string.IsNullOrWhiteSpace(choice) ? "" : $" ({GpuDevice.SelectionVariable}={choice})"));
                return Watched(device!);
            case "auto":
                // A GPU when one is present. ILGPU's CPU accelerator is no GPU: auto never takes it, whatever CHUNKSEG_GPU says.
                if (string.Equals(choice?.Trim(), "cpu", StringComparison.OrdinalIgnoreCase)) choice = null;
                if (GpuDevice.TryOpen(choice, out var gpu, out string none)) return Watched(gpu!);
                if (File.Exists(nvidiaDeviceNode))
                    warn?.Invoke($"--backend auto: this machine has an NVIDIA GPU ({nvidiaDeviceNode}) but ILGPU cannot use it: {none}; computing on the CPU. " +
                        "A container needs NVIDIA's container toolkit with the driver's 'compute' capability (it mounts libcuda.so.1), as the gpu-node image's pod spec asks");
                return ComputeBackend.Cpu;
            default:
                throw new UsageException($"--backend {name}: use cpu, gpu or auto");
        }
    }

    /// <summary>The device's backend, its buffers' memory reported as <c>chunkseg.gpu.memory</c> from now on.</summary>
    private static GpuBackend Watched(GpuDevice device)
    {
        ChunkSegTelemetry.SetGpuMemorySource(() => device.BufferBytes);
        return new GpuBackend(device);
    }
}
