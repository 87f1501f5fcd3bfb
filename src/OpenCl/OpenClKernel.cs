using ChunkSeg.OpenCl.Native;

namespace ChunkSeg.OpenCl;

/// <summary>
/// One kernel of a program (<c>cl_kernel</c>) and its arguments. Setting arguments and enqueueing must not race
/// with another thread using the same kernel object (OpenCL's one non-thread-safe call); create one kernel per
/// thread or queue instead. Buffers passed to <see cref="SetArg(int, OpenClBuffer)"/> must stay undisposed
/// until the launches using them are enqueued.
/// </summary>
public sealed unsafe class OpenClKernel : IDisposable
{
    private readonly Dictionary<int, OpenClBuffer> _buffers = [];

    internal OpenClKernel(OpenClProgram program, KernelHandle handle, string name)
    {
        Program = program;
        Handle = handle;
        Name = name;
    }

    /// <summary>The program the kernel comes from.</summary>
    public OpenClProgram Program { get; }

    /// <summary>The kernel function's name.</summary>
    public string Name { get; }

    internal KernelHandle Handle { get; }

    /// <summary>The largest work-group this kernel may launch with on the device (CL_KERNEL_WORK_GROUP_SIZE).</summary>
    public long MaxWorkGroupSize => (long)WorkGroupInfo<nuint>(Cl.KernelWorkGroupSize);

    /// <summary>CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE (the warp or SIMD width).</summary>
    public long PreferredWorkGroupSizeMultiple => (long)WorkGroupInfo<nuint>(Cl.KernelPreferredWorkGroupSizeMultiple);

    /// <summary>Local memory the kernel uses, statically declared plus the sizes set with <see cref="SetLocal"/> (CL_KERNEL_LOCAL_MEM_SIZE).</summary>
    public long LocalMemoryBytes => (long)WorkGroupInfo<ulong>(Cl.KernelLocalMemSize);

    /// <summary>Argument <paramref name="index"/> = <paramref name="buffer"/> (a <c>__global</c> or <c>__constant</c> pointer).</summary>
    public OpenClKernel SetArg(int index, OpenClBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        bool added = false;
        buffer.Handle.DangerousAddRef(ref added);
        try
        {
            IntPtr mem = buffer.Handle.DangerousGetHandle();
            Set(index, (nuint)sizeof(IntPtr), &mem, "buffer");
        }
        finally
        {
            buffer.Handle.DangerousRelease();
        }
        _buffers[index] = buffer;                                 // keeps the managed object alive while it is an argument
        return this;
    }

    /// <summary>Argument <paramref name="index"/> = <paramref name="value"/> (OpenCL <c>int</c>).</summary>
    public OpenClKernel SetArg(int index, int value) => SetValue(index, value);

    /// <summary>Argument <paramref name="index"/> = <paramref name="value"/> (OpenCL <c>uint</c>).</summary>
    public OpenClKernel SetArg(int index, uint value) => SetValue(index, value);

    /// <summary>Argument <paramref name="index"/> = <paramref name="value"/> (OpenCL <c>long</c>, 64-bit).</summary>
    public OpenClKernel SetArg(int index, long value) => SetValue(index, value);

    /// <summary>Argument <paramref name="index"/> = <paramref name="value"/> (OpenCL <c>float</c>).</summary>
    public OpenClKernel SetArg(int index, float value) => SetValue(index, value);

    /// <summary>Argument <paramref name="index"/> = any plain value (a struct laid out as the kernel's).</summary>
    public OpenClKernel SetValue<T>(int index, T value) where T : unmanaged
    {
        Set(index, (nuint)sizeof(T), &value, typeof(T).Name);
        _buffers.Remove(index);
        return this;
    }

    /// <summary>Argument <paramref name="index"/> = a <c>__local</c> buffer of <paramref name="bytes"/> bytes per work-group.</summary>
    public OpenClKernel SetLocal(int index, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        Set(index, (nuint)bytes, null, $"__local {bytes} bytes");
        _buffers.Remove(index);
        return this;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _buffers.Clear();
        Handle.Dispose();
    }

    private void Set(int index, nuint size, void* value, string what)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        Cl.Check(Cl.clSetKernelArg(Handle, (uint)index, size, value), "clSetKernelArg", $"kernel {Name}, argument {index} ({what})");
    }

    private T WorkGroupInfo<T>(uint param) where T : unmanaged =>
        Cl.Info<T>((s, v, r) => Cl.clGetKernelWorkGroupInfo(Handle, Program.Context.Device.Id, param, s, v, r), "clGetKernelWorkGroupInfo");
}
