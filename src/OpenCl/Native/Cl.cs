using System.Reflection;
using System.Runtime.InteropServices;

namespace ChunkSeg.OpenCl.Native;

/// <summary>
/// The whole of ChunkSeg's binding to the OpenCL 1.2 C API (<c>libOpenCL.so.1</c>, the ICD loader, which
/// dispatches to the installed drivers: PoCL, NVIDIA, ...). Nothing else calls OpenCL.
/// <para>
/// The entry points are raw and unsafe, one-to-one with the C prototypes (<c>cl_int</c> = int,
/// <c>cl_uint</c> = uint, <c>cl_ulong</c>/<c>cl_bitfield</c> = ulong, <c>size_t</c> = nuint, every
/// <c>cl_*</c> object = IntPtr or its <see cref="ClHandle"/>). The public types of this assembly wrap them
/// and turn every non-zero status into an <see cref="OpenClException"/> through <see cref="Check"/>.
/// Only 1.2 entry points are bound (no <c>clCreateCommandQueueWithProperties</c>): every driver that
/// matters exports them, and the loader refuses nothing.
/// </para>
/// </summary>
internal static unsafe partial class Cl
{
    private const string Lib = "OpenCL";

    /// <summary>File names tried for <see cref="Lib"/>, in order (the unversioned .so exists only with the -dev package).</summary>
    private static readonly string[] LibraryFiles =
        ["libOpenCL.so.1", "libOpenCL.so", "OpenCL.dll", "/System/Library/Frameworks/OpenCL.framework/OpenCL"];

    private static readonly Lazy<(IntPtr Handle, string? Error)> Library = new(LoadLibrary);

    static Cl() => NativeLibrary.SetDllImportResolver(typeof(Cl).Assembly, Resolve);

    /// <summary>
    /// Loads the OpenCL loader now and throws an <see cref="OpenClException"/> naming the packages to install
    /// when it is missing (instead of a DllNotFoundException in the middle of a job).
    /// </summary>
    public static void EnsureLoaded()
    {
        var (handle, error) = Library.Value;
        if (handle == IntPtr.Zero) throw new OpenClException(error!);
    }

    /// <summary>Why the loader cannot be loaded, or null when it can.</summary>
    public static string? LoadError => Library.Value.Error;

    private static (IntPtr, string?) LoadLibrary()
    {
        foreach (string file in LibraryFiles)
            if (NativeLibrary.TryLoad(file, out IntPtr handle))
                return (handle, null);
        return (IntPtr.Zero,
            $"the OpenCL loader {LibraryFiles[0]} is not installed (tried {string.Join(", ", LibraryFiles)}); install it and a driver: " +
            "apt-get install ocl-icd-libopencl1 pocl-opencl-icd (PoCL runs kernels on the CPU; a GPU needs its vendor's OpenCL driver)");
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName != Lib) return IntPtr.Zero;
        EnsureLoaded();
        return Library.Value.Handle;
    }

    // ---- status ---------------------------------------------------------------------------------------

    public const int Success = 0;
    public const int DeviceNotFound = -1;
    public const int BuildProgramFailure = -11;
    public const int InvalidBinary = -42;
    public const int PlatformNotFoundKhr = -1001;

    /// <summary>Throws an <see cref="OpenClException"/> naming <paramref name="call"/> and the status's symbolic name unless it is CL_SUCCESS.</summary>
    public static void Check(int status, string call, string? detail = null)
    {
        if (status != Success) throw new OpenClException(call, status, detail);
    }

    // ---- constants (cl.h) -----------------------------------------------------------------------------

    // cl_platform_info
    public const uint PlatformProfile = 0x0900, PlatformVersion = 0x0901, PlatformName = 0x0902, PlatformVendor = 0x0903, PlatformExtensions = 0x0904;

    // cl_device_type
    public const ulong DeviceTypeDefault = 1, DeviceTypeCpu = 2, DeviceTypeGpu = 4, DeviceTypeAccelerator = 8, DeviceTypeCustom = 16, DeviceTypeAll = 0xFFFFFFFF;

    // cl_device_info
    public const uint DeviceType = 0x1000, DeviceMaxComputeUnits = 0x1002, DeviceMaxWorkItemDimensions = 0x1003,
        DeviceMaxWorkGroupSize = 0x1004, DeviceMaxWorkItemSizes = 0x1005, DeviceMaxClockFrequency = 0x100C,
        DeviceMaxMemAllocSize = 0x1010, DeviceSingleFpConfig = 0x101B, DeviceGlobalMemCacheSize = 0x101E,
        DeviceGlobalMemSize = 0x101F, DeviceMaxConstantBufferSize = 0x1020, DeviceLocalMemType = 0x1022,
        DeviceLocalMemSize = 0x1023, DeviceProfilingTimerResolution = 0x1025, DeviceAvailable = 0x1027,
        DeviceCompilerAvailable = 0x1028, DeviceName = 0x102B, DeviceVendor = 0x102C, DriverVersion = 0x102D,
        DeviceVersion = 0x102F, DeviceExtensions = 0x1030, DevicePlatform = 0x1031, DeviceOpenClCVersion = 0x103D;

    // cl_device_fp_config
    public const ulong FpDenorm = 1, FpInfNan = 2, FpRoundToNearest = 4, FpFma = 32, FpCorrectlyRoundedDivideSqrt = 128;

    // cl_context_properties
    public const nint ContextPlatform = 0x1084;

    // cl_command_queue_properties
    public const ulong QueueOutOfOrderExecModeEnable = 1, QueueProfilingEnable = 2;

    // cl_mem_flags
    public const ulong MemReadWrite = 1, MemWriteOnly = 2, MemReadOnly = 4, MemUseHostPtr = 8, MemAllocHostPtr = 16, MemCopyHostPtr = 32;

    // cl_program_info, cl_program_build_info
    public const uint ProgramNumDevices = 0x1162, ProgramBinarySizes = 0x1165, ProgramBinaries = 0x1166;
    public const uint ProgramBuildStatus = 0x1181, ProgramBuildOptions = 0x1182, ProgramBuildLog = 0x1183;

    // cl_kernel_work_group_info
    public const uint KernelWorkGroupSize = 0x11B0, KernelLocalMemSize = 0x11B2, KernelPreferredWorkGroupSizeMultiple = 0x11B3;

    // cl_event_info, execution status
    public const uint EventCommandExecutionStatus = 0x11D3;
    public const int Complete = 0;

    // cl_profiling_info
    public const uint ProfilingCommandQueued = 0x1280, ProfilingCommandSubmit = 0x1281, ProfilingCommandStart = 0x1282, ProfilingCommandEnd = 0x1283;

    // ---- platforms and devices ------------------------------------------------------------------------

    [LibraryImport(Lib)] public static partial int clGetPlatformIDs(uint numEntries, IntPtr* platforms, uint* numPlatforms);
    [LibraryImport(Lib)] public static partial int clGetPlatformInfo(IntPtr platform, uint paramName, nuint valueSize, void* value, nuint* valueSizeRet);
    [LibraryImport(Lib)] public static partial int clGetDeviceIDs(IntPtr platform, ulong deviceType, uint numEntries, IntPtr* devices, uint* numDevices);
    [LibraryImport(Lib)] public static partial int clGetDeviceInfo(IntPtr device, uint paramName, nuint valueSize, void* value, nuint* valueSizeRet);

    // ---- context and queue ----------------------------------------------------------------------------

    [LibraryImport(Lib)] public static partial IntPtr clCreateContext(nint* properties, uint numDevices, IntPtr* devices, IntPtr pfnNotify, IntPtr userData, int* errcode);
    [LibraryImport(Lib)] public static partial int clReleaseContext(IntPtr context);
    [LibraryImport(Lib)] public static partial IntPtr clCreateCommandQueue(ContextHandle context, IntPtr device, ulong properties, int* errcode);
    [LibraryImport(Lib)] public static partial int clReleaseCommandQueue(IntPtr queue);
    [LibraryImport(Lib)] public static partial int clFlush(QueueHandle queue);
    [LibraryImport(Lib)] public static partial int clFinish(QueueHandle queue);

    // ---- buffers --------------------------------------------------------------------------------------

    [LibraryImport(Lib)] public static partial IntPtr clCreateBuffer(ContextHandle context, ulong flags, nuint size, void* hostPtr, int* errcode);
    [LibraryImport(Lib)] public static partial int clReleaseMemObject(IntPtr memobj);
    [LibraryImport(Lib)]
    public static partial int clEnqueueReadBuffer(QueueHandle queue, MemHandle buffer, uint blockingRead, nuint offset, nuint size, void* ptr,
        uint numEventsInWaitList, IntPtr* eventWaitList, IntPtr* evt);
    [LibraryImport(Lib)]
    public static partial int clEnqueueWriteBuffer(QueueHandle queue, MemHandle buffer, uint blockingWrite, nuint offset, nuint size, void* ptr,
        uint numEventsInWaitList, IntPtr* eventWaitList, IntPtr* evt);
    [LibraryImport(Lib)]
    public static partial int clEnqueueCopyBuffer(QueueHandle queue, MemHandle src, MemHandle dst, nuint srcOffset, nuint dstOffset, nuint size,
        uint numEventsInWaitList, IntPtr* eventWaitList, IntPtr* evt);
    [LibraryImport(Lib)]
    public static partial int clEnqueueFillBuffer(QueueHandle queue, MemHandle buffer, void* pattern, nuint patternSize, nuint offset, nuint size,
        uint numEventsInWaitList, IntPtr* eventWaitList, IntPtr* evt);

    // ---- programs and kernels -------------------------------------------------------------------------

    [LibraryImport(Lib)] public static partial IntPtr clCreateProgramWithSource(ContextHandle context, uint count, byte** strings, nuint* lengths, int* errcode);
    [LibraryImport(Lib)]
    public static partial IntPtr clCreateProgramWithBinary(ContextHandle context, uint numDevices, IntPtr* devices, nuint* lengths, byte** binaries,
        int* binaryStatus, int* errcode);
    [LibraryImport(Lib)] public static partial int clBuildProgram(ProgramHandle program, uint numDevices, IntPtr* devices, byte* options, IntPtr pfnNotify, IntPtr userData);
    [LibraryImport(Lib)] public static partial int clGetProgramInfo(ProgramHandle program, uint paramName, nuint valueSize, void* value, nuint* valueSizeRet);
    [LibraryImport(Lib)] public static partial int clGetProgramBuildInfo(ProgramHandle program, IntPtr device, uint paramName, nuint valueSize, void* value, nuint* valueSizeRet);
    [LibraryImport(Lib)] public static partial int clReleaseProgram(IntPtr program);
    [LibraryImport(Lib)] public static partial IntPtr clCreateKernel(ProgramHandle program, byte* kernelName, int* errcode);
    [LibraryImport(Lib)] public static partial int clReleaseKernel(IntPtr kernel);
    [LibraryImport(Lib)] public static partial int clSetKernelArg(KernelHandle kernel, uint argIndex, nuint argSize, void* argValue);
    [LibraryImport(Lib)] public static partial int clGetKernelWorkGroupInfo(KernelHandle kernel, IntPtr device, uint paramName, nuint valueSize, void* value, nuint* valueSizeRet);
    [LibraryImport(Lib)]
    public static partial int clEnqueueNDRangeKernel(QueueHandle queue, KernelHandle kernel, uint workDim, nuint* globalWorkOffset, nuint* globalWorkSize,
        nuint* localWorkSize, uint numEventsInWaitList, IntPtr* eventWaitList, IntPtr* evt);
    [LibraryImport(Lib)] public static partial int clEnqueueMarkerWithWaitList(QueueHandle queue, uint numEventsInWaitList, IntPtr* eventWaitList, IntPtr* evt);
    [LibraryImport(Lib)] public static partial int clEnqueueBarrierWithWaitList(QueueHandle queue, uint numEventsInWaitList, IntPtr* eventWaitList, IntPtr* evt);

    // ---- events ---------------------------------------------------------------------------------------

    [LibraryImport(Lib)] public static partial int clWaitForEvents(uint numEvents, IntPtr* eventList);
    [LibraryImport(Lib)] public static partial int clGetEventInfo(EventHandle evt, uint paramName, nuint valueSize, void* value, nuint* valueSizeRet);
    [LibraryImport(Lib)] public static partial int clGetEventProfilingInfo(EventHandle evt, uint paramName, nuint valueSize, void* value, nuint* valueSizeRet);
    [LibraryImport(Lib)] public static partial int clReleaseEvent(IntPtr evt);

    // ---- info helpers ---------------------------------------------------------------------------------

    /// <summary>A <c>clGet*Info</c> call shape: (size, value, size_ret) → status.</summary>
    public delegate int InfoQuery(nuint size, void* value, nuint* sizeRet);

    /// <summary>Reads a variable-length info value (strings, arrays) with the usual two calls: size, then data.</summary>
    public static byte[] InfoBytes(InfoQuery query, string call)
    {
        nuint size;
        Check(query(0, null, &size), call);
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes)
            Check(query(size, p, null), call);
        return bytes;
    }

    /// <summary>A NUL-terminated info string, trimmed (drivers pad some with spaces).</summary>
    public static string InfoString(InfoQuery query, string call)
    {
        byte[] bytes = InfoBytes(query, call);
        int end = Array.IndexOf(bytes, (byte)0);
        return System.Text.Encoding.UTF8.GetString(bytes, 0, end < 0 ? bytes.Length : end).Trim();
    }

    /// <summary>A fixed-size info value (cl_uint, cl_ulong, size_t, cl_bool, handles).</summary>
    public static T Info<T>(InfoQuery query, string call) where T : unmanaged
    {
        T value;
        Check(query((nuint)sizeof(T), &value, null), call);
        return value;
    }
}
