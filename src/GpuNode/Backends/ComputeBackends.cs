using ChunkSeg.Contracts.Errors;
using ChunkSeg.OpenCl;

namespace ChunkSeg.GpuNode.Backends;

/// <summary>Opens the backend <c>--backend</c> names: cpu, opencl or auto.</summary>
public static class ComputeBackends
{
    /// <summary>A device node the NVIDIA driver creates: an NVIDIA GPU is present, whatever OpenCL says.</summary>
    internal const string NvidiaDeviceNode = "/dev/nvidiactl";

    /// <param name="warn">Told when <c>auto</c> falls back to the CPU on a machine that has an NVIDIA GPU (its OpenCL driver is not registered).</param>
    public static ComputeBackend Open(string name, Action<string>? warn = null) => Open(name, warn, NvidiaDeviceNode);

    internal static ComputeBackend Open(string name, Action<string>? warn, string nvidiaDeviceNode)
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
                bool found = OpenClDevice.TryGetDefault(out var gpu, out string none);
                if (found && gpu!.Type.HasFlag(OpenClDeviceType.Gpu)) return new OpenClBackend(gpu);
                if (File.Exists(nvidiaDeviceNode))
                    warn?.Invoke($"--backend auto: this machine has an NVIDIA GPU ({nvidiaDeviceNode}) but OpenCL offers " +
                        (found ? $"only {gpu!.Name}" : $"no device ({none})") + "; computing on the CPU. Register NVIDIA's OpenCL driver: " +
                        "/etc/OpenCL/vendors/nvidia.icd holding libnvidia-opencl.so.1 (the gpu-node image does), with the driver's 'compute' capability");
                return ComputeBackend.Cpu;
            default:
                throw new UsageException($"--backend {name}: use cpu, opencl or auto");
        }
    }
}
