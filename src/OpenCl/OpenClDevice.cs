using System.Diagnostics.CodeAnalysis;
using ChunkSeg.OpenCl.Native;

namespace ChunkSeg.OpenCl;

/// <summary>The kind of an OpenCL device (<c>cl_device_type</c>); a device may carry several bits.</summary>
[Flags]
public enum OpenClDeviceType : ulong
{
    Default = Cl.DeviceTypeDefault,
    Cpu = Cl.DeviceTypeCpu,
    Gpu = Cl.DeviceTypeGpu,
    Accelerator = Cl.DeviceTypeAccelerator,
    Custom = Cl.DeviceTypeCustom,
}

/// <summary>One installed OpenCL driver (an ICD: PoCL, NVIDIA CUDA, ...), with the properties read once.</summary>
public sealed unsafe class OpenClPlatform
{
    private OpenClPlatform(IntPtr id)
    {
        Id = id;
        Name = Text(Cl.PlatformName);
        Vendor = Text(Cl.PlatformVendor);
        Version = Text(Cl.PlatformVersion);
    }

    internal IntPtr Id { get; }

    /// <summary>CL_PLATFORM_NAME, e.g. "Portable Computing Language", "NVIDIA CUDA".</summary>
    public string Name { get; }

    /// <summary>CL_PLATFORM_VENDOR.</summary>
    public string Vendor { get; }

    /// <summary>CL_PLATFORM_VERSION, e.g. "OpenCL 3.0 PoCL 3.1+debian ...".</summary>
    public string Version { get; }

    /// <summary>
    /// Every platform the OpenCL loader finds; empty when the loader is there but no driver is registered.
    /// Throws an <see cref="OpenClException"/> naming the packages when the loader itself is missing.
    /// </summary>
    public static IReadOnlyList<OpenClPlatform> GetAll()
    {
        Cl.EnsureLoaded();
        uint count;
        int status = Cl.clGetPlatformIDs(0, null, &count);
        if (status == Cl.PlatformNotFoundKhr || (status == Cl.Success && count == 0)) return [];
        Cl.Check(status, "clGetPlatformIDs");
        var ids = new IntPtr[count];
        fixed (IntPtr* p = ids)
            Cl.Check(Cl.clGetPlatformIDs(count, p, null), "clGetPlatformIDs");
        return ids.Select(id => new OpenClPlatform(id)).ToArray();
    }

    /// <summary>The platform's devices of every type; empty when it has none.</summary>
    public IReadOnlyList<OpenClDevice> GetDevices()
    {
        uint count;
        int status = Cl.clGetDeviceIDs(Id, Cl.DeviceTypeAll, 0, null, &count);
        if (status == Cl.DeviceNotFound || (status == Cl.Success && count == 0)) return [];
        Cl.Check(status, "clGetDeviceIDs");
        var ids = new IntPtr[count];
        fixed (IntPtr* p = ids)
            Cl.Check(Cl.clGetDeviceIDs(Id, Cl.DeviceTypeAll, count, p, null), "clGetDeviceIDs");
        return ids.Select(id => new OpenClDevice(this, id)).ToArray();
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} ({Version})";

    private string Text(uint param) =>
        Cl.InfoString((s, v, r) => Cl.clGetPlatformInfo(Id, param, s, v, r), "clGetPlatformInfo");
}

/// <summary>
/// One OpenCL device and the properties kernels are sized by, read once. Pick one with
/// <see cref="TryGetDefault"/> (GPU first, then accelerator, then CPU; or by name) and open an
/// <see cref="OpenClContext"/> on it.
/// </summary>
public sealed unsafe class OpenClDevice
{
    /// <summary>Environment variable naming the device to use (a case-insensitive substring of its name or its platform's).</summary>
    public const string DeviceVariable = "CHUNKSEG_OPENCL_DEVICE";

    internal OpenClDevice(OpenClPlatform platform, IntPtr id)
    {
        Platform = platform;
        Id = id;
        Type = (OpenClDeviceType)Info<ulong>(Cl.DeviceType);
        Name = Text(Cl.DeviceName);
        Vendor = Text(Cl.DeviceVendor);
        Version = Text(Cl.DeviceVersion);
        DriverVersion = Text(Cl.DriverVersion);
        GlobalMemoryBytes = (long)Info<ulong>(Cl.DeviceGlobalMemSize);
        LocalMemoryBytes = (long)Info<ulong>(Cl.DeviceLocalMemSize);
        MaxAllocationBytes = (long)Info<ulong>(Cl.DeviceMaxMemAllocSize);
        MaxConstantBufferBytes = (long)Info<ulong>(Cl.DeviceMaxConstantBufferSize);
        MaxWorkGroupSize = (long)Info<nuint>(Cl.DeviceMaxWorkGroupSize);
        ComputeUnits = (int)Info<uint>(Cl.DeviceMaxComputeUnits);
        IsAvailable = Info<uint>(Cl.DeviceAvailable) != 0;
        HasCompiler = Info<uint>(Cl.DeviceCompilerAvailable) != 0;
        SingleFpConfig = Info<ulong>(Cl.DeviceSingleFpConfig);
    }

    internal IntPtr Id { get; }

    /// <summary>The driver the device belongs to.</summary>
    public OpenClPlatform Platform { get; }

    /// <summary>CL_DEVICE_TYPE.</summary>
    public OpenClDeviceType Type { get; }

    /// <summary>CL_DEVICE_NAME, e.g. "NVIDIA H100 80GB HBM3", "pthread-skylake-avx512-AMD EPYC ...".</summary>
    public string Name { get; }

    /// <summary>CL_DEVICE_VENDOR.</summary>
    public string Vendor { get; }

    /// <summary>CL_DEVICE_VERSION, e.g. "OpenCL 3.0 CUDA".</summary>
    public string Version { get; }

    /// <summary>CL_DRIVER_VERSION (part of the program binary cache key).</summary>
    public string DriverVersion { get; }

    /// <summary>CL_DEVICE_GLOBAL_MEM_SIZE.</summary>
    public long GlobalMemoryBytes { get; }

    /// <summary>CL_DEVICE_LOCAL_MEM_SIZE (per work-group).</summary>
    public long LocalMemoryBytes { get; }

    /// <summary>CL_DEVICE_MAX_MEM_ALLOC_SIZE: the largest single buffer.</summary>
    public long MaxAllocationBytes { get; }

    /// <summary>CL_DEVICE_MAX_CONSTANT_BUFFER_SIZE: the largest <c>__constant</c> argument.</summary>
    public long MaxConstantBufferBytes { get; }

    /// <summary>CL_DEVICE_MAX_WORK_GROUP_SIZE.</summary>
    public long MaxWorkGroupSize { get; }

    /// <summary>CL_DEVICE_MAX_COMPUTE_UNITS.</summary>
    public int ComputeUnits { get; }

    /// <summary>CL_DEVICE_AVAILABLE.</summary>
    public bool IsAvailable { get; }

    /// <summary>CL_DEVICE_COMPILER_AVAILABLE: programs can be built from source.</summary>
    public bool HasCompiler { get; }

    /// <summary>
    /// True when single-precision denormals are kept (CL_FP_DENORM); without it a device may flush them to
    /// zero and results on tiny values differ from the CPU backend.
    /// </summary>
    public bool HasDenormals => (SingleFpConfig & Cl.FpDenorm) != 0;

    /// <summary>True when the device has a hardware single-precision fma (CL_FP_FMA); fma() is correctly rounded either way.</summary>
    public bool HasHardwareFma => (SingleFpConfig & Cl.FpFma) != 0;

    internal ulong SingleFpConfig { get; }

    /// <summary>Every device of every platform, in platform order.</summary>
    public static IReadOnlyList<OpenClDevice> GetAll() => OpenClPlatform.GetAll().SelectMany(p => p.GetDevices()).ToArray();

    /// <summary>
    /// The device to use: the one named by <see cref="DeviceVariable"/> when set, otherwise the first available
    /// device with a compiler preferring GPU, then accelerator, then CPU. Returns false with
    /// <paramref name="whyNot"/> saying what is missing (loader, driver, device) and what to install; never throws
    /// for a missing OpenCL.
    /// </summary>
    public static bool TryGetDefault([NotNullWhen(true)] out OpenClDevice? device, out string whyNot)
    {
        device = null;
        string? named = Environment.GetEnvironmentVariable(DeviceVariable);
        try
        {
            device = string.IsNullOrWhiteSpace(named) ? Select(null) : Select(named);
            whyNot = "";
            return true;
        }
        catch (OpenClException e)
        {
            whyNot = e.Message;
            return false;
        }
    }

    /// <summary>
    /// The first available device with a compiler whose name or platform name contains <paramref name="nameContains"/>
    /// (case-insensitive), or for null the preferred one (GPU, accelerator, CPU). Throws an
    /// <see cref="OpenClException"/> listing the devices that exist when none matches.
    /// </summary>
    public static OpenClDevice Select(string? nameContains = null)
    {
        string? loadError = Cl.LoadError;
        if (loadError is not null) throw new OpenClException(loadError);
        var all = GetAll();
        if (all.Count == 0)
            throw new OpenClException(
                "no OpenCL platform or device: the loader found no driver (is /etc/OpenCL/vendors empty?); " +
                "install pocl-opencl-icd to run on the CPU, or the GPU vendor's OpenCL driver");
        var usable = all.Where(d => d.IsAvailable && d.HasCompiler);
        OpenClDevice? pick = nameContains is null
            ? usable.OrderBy(d => Rank(d.Type)).FirstOrDefault()
            : usable.FirstOrDefault(d => d.Name.Contains(nameContains, StringComparison.OrdinalIgnoreCase)
                                      || d.Platform.Name.Contains(nameContains, StringComparison.OrdinalIgnoreCase));
        if (pick is not null) return pick;
        string list = string.Join("; ", all.Select(d => $"\"{d.Name}\" ({d.Type}, {d.Platform.Name}{(d.IsAvailable ? "" : ", unavailable")}{(d.HasCompiler ? "" : ", no compiler")})"));
        throw new OpenClException(nameContains is null
            ? $"no available OpenCL device with a compiler; found {list}"
            : $"no available OpenCL device with a compiler matches \"{nameContains}\"{(nameContains == Environment.GetEnvironmentVariable(DeviceVariable) ? $" (from {DeviceVariable})" : "")}; found {list}");
    }

    private static int Rank(OpenClDeviceType type) =>
        type.HasFlag(OpenClDeviceType.Gpu) ? 0 : type.HasFlag(OpenClDeviceType.Accelerator) ? 1 : type.HasFlag(OpenClDeviceType.Cpu) ? 2 : 3;

    /// <summary>A one-line description for logs: name, type, platform, memory, compute units.</summary>
    public string Describe() =>
        $"{Name} ({Type}; {Platform.Name}, {Version}, driver {DriverVersion}; {GlobalMemoryBytes >> 20} MiB global, " +
        $"{LocalMemoryBytes >> 10} KiB local, {ComputeUnits} compute units, work-groups up to {MaxWorkGroupSize})";

    /// <inheritdoc/>
    public override string ToString() => Name;

    private string Text(uint param) => Cl.InfoString((s, v, r) => Cl.clGetDeviceInfo(Id, param, s, v, r), "clGetDeviceInfo");

    private T Info<T>(uint param) where T : unmanaged => Cl.Info<T>((s, v, r) => Cl.clGetDeviceInfo(Id, param, s, v, r), "clGetDeviceInfo");
}
