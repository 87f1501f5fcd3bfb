using ChunkSeg.Contracts.Errors;
using ChunkSeg.OpenCl;

namespace ChunkSeg.GpuNode.Backends;

/// <summary>Opens the backend <c>--backend</c> names: cpu, opencl or auto.</summary>
public static class ComputeBackends
{
    public static ComputeBackend Open(string name)
    {
        switch (name)
        {
            case "cpu":
                return ComputeBackend.Cpu;
            case "opencl":
                if (!OpenClDevice.TryGetDefault(out var device, out string whyNot)) throw new UsageException($"--backend opencl: {whyNot}");
                return new OpenClBackend(device);
            case "auto":
                // A GPU when one is present; a CPU OpenCL driver (PoCL) computes the same on the same cores, no faster than the CPU backend.
                return OpenClDevice.TryGetDefault(out var gpu, out _) && gpu.Type.HasFlag(OpenClDeviceType.Gpu) ? new OpenClBackend(gpu) : ComputeBackend.Cpu;
            default:
                throw new UsageException($"--backend {name}: use cpu, opencl or auto");
        }
    }
}
