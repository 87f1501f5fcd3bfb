using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.OpenCl;

/// <summary>
/// An OpenCL call failed, no OpenCL loader or device is there, or a kernel did not compile. The message
/// names the call, the status's symbolic name (<c>clEnqueueNDRangeKernel failed: CL_OUT_OF_RESOURCES (-5)</c>),
/// a hint where one helps, and for build failures the compiler's log. Exit code 1.
/// </summary>
public sealed class OpenClException : ChunkSegException
{
    /// <summary>A failed call: <paramref name="call"/> returned <paramref name="status"/>.</summary>
    public OpenClException(string call, int status, string? detail = null, string? buildLog = null)
        : base(Describe(call, status, detail, buildLog))
    {
        Call = call;
        Status = status;
        BuildLog = buildLog;
    }

    /// <summary>A failure that is not one call's status (no loader, no device, no such device name).</summary>
    public OpenClException(string message, Exception? inner = null) : base(message, inner) { }

    /// <summary>The OpenCL function that failed, or null for failures that are not one call's status.</summary>
    public string? Call { get; }

    /// <summary>The <c>cl_int</c> status the call returned (0 when <see cref="Call"/> is null).</summary>
    public int Status { get; }

    /// <summary>The symbolic name of <see cref="Status"/>, e.g. <c>CL_OUT_OF_RESOURCES</c>.</summary>
    public string StatusName => ClStatus.Name(Status);

    /// <summary>The compiler's log for a failed program build, otherwise null.</summary>
    public string? BuildLog { get; }

    /// <inheritdoc/>
    public override int ExitCode => 1;

    private static string Describe(string call, int status, string? detail, string? buildLog)
    {
        string text = $"{call} failed: {ClStatus.Name(status)} ({status})";
        if (ClStatus.Hint(status) is { } hint) text += $"; {hint}";
        if (!string.IsNullOrWhiteSpace(detail)) text += $"; {detail}";
        if (!string.IsNullOrWhiteSpace(buildLog)) text += $"{Environment.NewLine}build log:{Environment.NewLine}{buildLog.TrimEnd()}";
        return text;
    }
}

/// <summary>Symbolic names of OpenCL status codes (cl.h, cl_ext.h) and hints for the ones users meet.</summary>
public static class ClStatus
{
    private static readonly Dictionary<int, string> Names = new()
    {
        [0] = "CL_SUCCESS",
        [-1] = "CL_DEVICE_NOT_FOUND",
        [-2] = "CL_DEVICE_NOT_AVAILABLE",
        [-3] = "CL_COMPILER_NOT_AVAILABLE",
        [-4] = "CL_MEM_OBJECT_ALLOCATION_FAILURE",
        [-5] = "CL_OUT_OF_RESOURCES",
        [-6] = "CL_OUT_OF_HOST_MEMORY",
        [-7] = "CL_PROFILING_INFO_NOT_AVAILABLE",
        [-8] = "CL_MEM_COPY_OVERLAP",
        [-9] = "CL_IMAGE_FORMAT_MISMATCH",
        [-10] = "CL_IMAGE_FORMAT_NOT_SUPPORTED",
        [-11] = "CL_BUILD_PROGRAM_FAILURE",
        [-12] = "CL_MAP_FAILURE",
        [-13] = "CL_MISALIGNED_SUB_BUFFER_OFFSET",
        [-14] = "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST",
        [-15] = "CL_COMPILE_PROGRAM_FAILURE",
        [-16] = "CL_LINKER_NOT_AVAILABLE",
        [-17] = "CL_LINK_PROGRAM_FAILURE",
        [-18] = "CL_DEVICE_PARTITION_FAILED",
        [-19] = "CL_KERNEL_ARG_INFO_NOT_AVAILABLE",
        [-30] = "CL_INVALID_VALUE",
        [-31] = "CL_INVALID_DEVICE_TYPE",
        [-32] = "CL_INVALID_PLATFORM",
        [-33] = "CL_INVALID_DEVICE",
        [-34] = "CL_INVALID_CONTEXT",
        [-35] = "CL_INVALID_QUEUE_PROPERTIES",
        [-36] = "CL_INVALID_COMMAND_QUEUE",
        [-37] = "CL_INVALID_HOST_PTR",
        [-38] = "CL_INVALID_MEM_OBJECT",
        [-39] = "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR",
        [-40] = "CL_INVALID_IMAGE_SIZE",
        [-41] = "CL_INVALID_SAMPLER",
        [-42] = "CL_INVALID_BINARY",
        [-43] = "CL_INVALID_BUILD_OPTIONS",
        [-44] = "CL_INVALID_PROGRAM",
        [-45] = "CL_INVALID_PROGRAM_EXECUTABLE",
        [-46] = "CL_INVALID_KERNEL_NAME",
        [-47] = "CL_INVALID_KERNEL_DEFINITION",
        [-48] = "CL_INVALID_KERNEL",
        [-49] = "CL_INVALID_ARG_INDEX",
        [-50] = "CL_INVALID_ARG_VALUE",
        [-51] = "CL_INVALID_ARG_SIZE",
        [-52] = "CL_INVALID_KERNEL_ARGS",
        [-53] = "CL_INVALID_WORK_DIMENSION",
        [-54] = "CL_INVALID_WORK_GROUP_SIZE",
        [-55] = "CL_INVALID_WORK_ITEM_SIZE",
        [-56] = "CL_INVALID_GLOBAL_OFFSET",
        [-57] = "CL_INVALID_EVENT_WAIT_LIST",
        [-58] = "CL_INVALID_EVENT",
        [-59] = "CL_INVALID_OPERATION",
        [-60] = "CL_INVALID_GL_OBJECT",
        [-61] = "CL_INVALID_BUFFER_SIZE",
        [-62] = "CL_INVALID_MIP_LEVEL",
        [-63] = "CL_INVALID_GLOBAL_WORK_SIZE",
        [-64] = "CL_INVALID_PROPERTY",
        [-65] = "CL_INVALID_IMAGE_DESCRIPTOR",
        [-66] = "CL_INVALID_COMPILER_OPTIONS",
        [-67] = "CL_INVALID_LINKER_OPTIONS",
        [-68] = "CL_INVALID_DEVICE_PARTITION_COUNT",
        [-69] = "CL_INVALID_PIPE_SIZE",
        [-70] = "CL_INVALID_DEVICE_QUEUE",
        [-71] = "CL_INVALID_SPEC_ID",
        [-72] = "CL_MAX_SIZE_RESTRICTION_EXCEEDED",
        [-1000] = "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR",
        [-1001] = "CL_PLATFORM_NOT_FOUND_KHR",
        [-1057] = "CL_DEVICE_PARTITION_FAILED_EXT",
        [-1058] = "CL_INVALID_PARTITION_COUNT_EXT",
        [-1059] = "CL_INVALID_PARTITION_NAME_EXT",
        [-1092] = "CL_EGL_RESOURCE_NOT_ACQUIRED_KHR",
        [-1093] = "CL_INVALID_EGL_OBJECT_KHR",
        [-1094] = "CL_INVALID_ACCELERATOR_INTEL",
        [-1095] = "CL_INVALID_ACCELERATOR_TYPE_INTEL",
        [-1096] = "CL_INVALID_ACCELERATOR_DESCRIPTOR_INTEL",
        [-1097] = "CL_ACCELERATOR_TYPE_NOT_SUPPORTED_INTEL",
        [-1098] = "CL_INVALID_VA_API_MEDIA_ADAPTER_INTEL",
        [-1099] = "CL_INVALID_VA_API_MEDIA_SURFACE_INTEL",
        [-1100] = "CL_VA_API_MEDIA_SURFACE_ALREADY_ACQUIRED_INTEL",
        [-1101] = "CL_VA_API_MEDIA_SURFACE_NOT_ACQUIRED_INTEL",
        [-9999] = "NVIDIA_ILLEGAL_MEMORY_ACCESS",
    };

    /// <summary>The symbolic name of <paramref name="status"/>, or <c>CL_UNKNOWN_ERROR_&lt;n&gt;</c>.</summary>
    public static string Name(int status) => Names.TryGetValue(status, out string? name) ? name : $"CL_UNKNOWN_ERROR_{status}";

    /// <summary>What usually causes <paramref name="status"/>, or null.</summary>
    public static string? Hint(int status) => status switch
    {
        -4 => "the device is out of memory for this buffer; process smaller tiles",
        -5 => "the device ran out of resources; on NVIDIA this usually means a kernel read or wrote outside a buffer, or asked for too much local memory or too large a work-group",
        -6 => "the host is out of memory",
        -7 => "the queue was created without profiling (pass profiling: true)",
        -54 => "the work-group size exceeds the kernel's or device's limit, or does not divide the global size",
        -1001 => "no OpenCL driver (ICD) is registered in /etc/OpenCL/vendors; install pocl-opencl-icd (CPU) or the GPU vendor's OpenCL driver",
        -9999 => "an undocumented NVIDIA status: a kernel read or wrote outside a buffer",
        _ => null,
    };
}
