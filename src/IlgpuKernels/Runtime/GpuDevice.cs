using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.IlgpuKernels.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace ChunkSeg.IlgpuKernels.Runtime;

/// <summary>Which ILGPU accelerator computes: an NVIDIA GPU through CUDA, another GPU through OpenCL, or ILGPU's CPU accelerator.</summary>
public enum GpuKind
{
    /// <summary>An NVIDIA GPU through the driver's libcuda (ILGPU writes PTX; no toolkit, no NVRTC).</summary>
    Cuda,
    /// <summary>A GPU through its OpenCL driver (OpenCL C 2.0 with the generic address space, which ILGPU requires).</summary>
    OpenCL,
    /// <summary>ILGPU's CPU accelerator: the kernels' C# run by .NET, one thread per device thread. Exact and slow: tests and debugging.</summary>
    Cpu,
}

/// <summary>
/// One ILGPU accelerator and the kernels loaded on it: what the GPU backend computes with. <see cref="TryOpen"/> picks
/// it: <c>CHUNKSEG_GPU=cuda|opencl|cpu</c> names the kind, else CUDA when the driver offers a device, else an OpenCL
/// GPU ILGPU can use. Thread-safe: every engine, predictor and segmenter on it shares the kernels and the buffer pool;
/// each call runs on a stream of its own.
/// </summary>
public sealed class GpuDevice : IDisposable
{
    /// <summary>The environment variable that names the accelerator kind (cuda, opencl or cpu).</summary>
    public const string SelectionVariable = "CHUNKSEG_GPU";

    static GpuDevice() => AssemblyLoadContext.Default.ResolvingUnmanagedDll += ResolveDriver;

    private readonly Context _context;
    private readonly Lazy<DeviceKernels> _kernels;

    private GpuDevice(Context context, Accelerator accelerator, GpuKind kind)
    {
        _context = context;
        Accelerator = accelerator;
        Kind = kind;
        Buffers = new DeviceBufferPool(accelerator, idleLimitBytes: MemoryBytes / 4);
        _kernels = new(() => DeviceKernels.Load(accelerator));
    }

    public GpuKind Kind { get; }

    /// <summary>The device's name, as the driver gives it.</summary>
    public string Name => Accelerator.Name;

    /// <summary>Bytes of device memory; for ILGPU's CPU accelerator (which reports no limit) the memory .NET may use on this host.</summary>
    public long MemoryBytes => Kind == GpuKind.Cpu ? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes : Accelerator.MemorySize;

    internal Accelerator Accelerator { get; }

    internal DeviceBufferPool Buffers { get; }

    /// <summary>Device memory ChunkSeg's image buffers hold now (in use by chunks, or idle for reuse): what <c>chunkseg.gpu.memory</c> reports.</summary>
    public long BufferBytes => Buffers.HeldBytes;

    /// <summary>Every kernel, compiled for this accelerator on first use (ILGPU caches each compiled kernel).</summary>
    internal DeviceKernels Kernels => _kernels.Value;

    /// <summary>The device in words, for status lines and summaries: "NVIDIA H100 80GB HBM3 (CUDA, 79.1 GiB)".</summary>
    public string Describe() => Kind switch
    {
        GpuKind.Cpu => $"ILGPU CPU accelerator ({Environment.ProcessorCount} cores; tests and debugging)",
        _ => $"{Name} ({(Kind == GpuKind.Cuda ? "CUDA" : "OpenCL")}, {MemoryBytes / (double)(1L << 30):F1} GiB)",
    };

    /// <summary>Binds the accelerator to the calling thread (CUDA keeps its context per thread); dispose to restore.</summary>
    internal ScopedAcceleratorBinding Bind() => Accelerator.BindScoped();

    /// <summary>
    /// Opens the accelerator <paramref name="choice"/> names (cuda, opencl, cpu), or with null or empty the first of CUDA
    /// and an OpenCL GPU that is present. False with <paramref name="whyNot"/> saying what is missing when there is none.
    /// </summary>
    public static bool TryOpen(string? choice, out GpuDevice? device, out string whyNot)
    {
        device = null;
        choice = string.IsNullOrWhiteSpace(choice) ? null : choice.Trim().ToLowerInvariant();
        if (choice is not (null or "cuda" or "opencl" or "cpu"))
            throw new UsageException($"{SelectionVariable}={choice}: use cuda, opencl or cpu (or leave it unset: CUDA, else an OpenCL GPU)");

        Context? context = null;
        try
        {
            context = Context.Create(builder =>
            {
                if (choice is null or "cuda") builder.Cuda();
                if (choice is null or "opencl") builder.OpenCL();
                if (choice is "cpu") builder.CPU(CPUDeviceKind.Default);
                builder.Math(MathMode.Default).Optimize(OptimizationLevel.O1);
            });
            var cuda = choice is null or "cuda" ? All(context.GetCudaDevices()) : [];
            if (cuda.Count > 0)
            {
                device = new GpuDevice(context, cuda[0].CreateAccelerator(context), GpuKind.Cuda);
                whyNot = "";
                return true;
            }
            var openCl = choice is null or "opencl" ? All(context.GetCLDevices()).Where(d => d.DeviceType == CLDeviceType.CL_DEVICE_TYPE_GPU).ToList() : [];
            if (openCl.Count > 0)
            {
                device = new GpuDevice(context, openCl[0].CreateAccelerator(context), GpuKind.OpenCL);
                whyNot = "";
                return true;
            }
            if (choice is "cpu")
            {
                device = new GpuDevice(context, context.GetCPUDevice(0).CreateAccelerator(context), GpuKind.Cpu);
                whyNot = "";
                return true;
            }
            whyNot = choice switch
            {
                "cuda" => $"CUDA offers no device ({CudaWhyNot()})",
                "opencl" => "OpenCL offers no GPU that ILGPU can use (it needs OpenCL C 2.0 with the generic address space)",
                _ => $"CUDA offers no device ({CudaWhyNot()}) and OpenCL no GPU that ILGPU can use (OpenCL C 2.0 with the generic address space)",
            };
            context.Dispose();
            return false;
        }
        catch (Exception e) when (e is not UsageException)
        {
            context?.Dispose();
            whyNot = $"ILGPU could not open {(choice ?? "a GPU")}: {e.GetType().Name}: {e.Message}";
            return false;
        }
    }

    private static List<T> All<T>(Context.DeviceCollection<T> devices) where T : Device
    {
        var list = new List<T>();
        foreach (var device in devices) list.Add(device);
        return list;
    }

    /// <summary>Why CUDA has no device: the driver library is missing, or present with no device.</summary>
    private static string CudaWhyNot() =>
        NativeLibrary.TryLoad("libcuda.so.1", out var handle) && FreeAndTrue(handle)
            ? "libcuda.so.1 loads but reports no device"
            : "no NVIDIA driver: libcuda.so.1 is not installed (a container needs NVIDIA's container toolkit and the 'compute' capability)";

    private static bool FreeAndTrue(IntPtr handle)
    {
        NativeLibrary.Free(handle);
        return true;
    }

    /// <summary>
    /// ILGPU imports "cuda" and "OpenCL"; NVIDIA's driver and Debian's loader ship libcuda.so.1 and libOpenCL.so.1 (no
    /// unversioned development link), so map the names here. ILGPU sets its own DllImportResolver on WSL only; this
    /// handler runs after any resolver, so both coexist.
    /// </summary>
    private static IntPtr ResolveDriver(Assembly assembly, string name)
    {
        string? file = name switch
        {
            "cuda" or "nvcuda" => "libcuda.so.1",
            "OpenCL" or "opencl" => "libOpenCL.so.1",
            _ => null,
        };
        return file is not null && NativeLibrary.TryLoad(file, out var handle) ? handle : IntPtr.Zero;
    }

    public void Dispose()
    {
        Buffers.Dispose();
        Accelerator.Dispose();
        _context.Dispose();
    }
}
