using System.Runtime.CompilerServices;
using ChunkSeg.OpenCl.Native;

namespace ChunkSeg.OpenCl;

/// <summary>How kernels may access a buffer (<c>CL_MEM_READ_WRITE</c>, <c>_READ_ONLY</c>, <c>_WRITE_ONLY</c>); the host may always read and write it.</summary>
public enum OpenClAccess
{
    ReadWrite,
    ReadOnly,
    WriteOnly,
}

/// <summary>
/// An OpenCL context on one device: the owner of its buffers, programs and queues. Thread-safe (OpenCL
/// contexts are); dispose it after everything created from it.
/// </summary>
public sealed unsafe class OpenClContext : IDisposable
{
    /// <summary>Opens a context on <paramref name="device"/>.</summary>
    public OpenClContext(OpenClDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        Device = device;
        nint* properties = stackalloc nint[] { Cl.ContextPlatform, device.Platform.Id, 0 };
        IntPtr id = device.Id;
        int status;
        IntPtr raw = Cl.clCreateContext(properties, 1, &id, IntPtr.Zero, IntPtr.Zero, &status);
        Cl.Check(status, "clCreateContext");
        Handle = ClHandle.Own<ContextHandle>(raw);
    }

    /// <summary>The device every object of this context runs on.</summary>
    public OpenClDevice Device { get; }

    internal ContextHandle Handle { get; }

    /// <summary>
    /// A command queue. In-order unless <paramref name="outOfOrder"/>; <paramref name="profiling"/> makes the
    /// events it returns carry device timestamps (<see cref="OpenClEvent.Duration"/>).
    /// </summary>
    public OpenClQueue CreateQueue(bool profiling = false, bool outOfOrder = false)
    {
        ulong properties = (profiling ? Cl.QueueProfilingEnable : 0) | (outOfOrder ? Cl.QueueOutOfOrderExecModeEnable : 0);
        int status;
        IntPtr raw = Cl.clCreateCommandQueue(Handle, Device.Id, properties, &status);
        Cl.Check(status, "clCreateCommandQueue");
        return new OpenClQueue(this, ClHandle.Own<QueueHandle>(raw), profiling);
    }

    /// <summary>An uninitialised device buffer of <paramref name="bytes"/> bytes.</summary>
    public OpenClBuffer CreateBuffer(long bytes, OpenClAccess access = OpenClAccess.ReadWrite)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        if (bytes > Device.MaxAllocationBytes)
            throw new OpenClException(
                $"a buffer of {bytes} bytes exceeds the largest allocation {Device.Name} allows ({Device.MaxAllocationBytes} bytes, CL_DEVICE_MAX_MEM_ALLOC_SIZE); process smaller tiles");
        return Create(bytes, Flags(access), null);
    }

    /// <summary>A device buffer holding a copy of <paramref name="initial"/> (<c>CL_MEM_COPY_HOST_PTR</c>).</summary>
    public OpenClBuffer CreateBuffer<T>(ReadOnlySpan<T> initial, OpenClAccess access = OpenClAccess.ReadWrite) where T : unmanaged
    {
        if (initial.IsEmpty) throw new ArgumentException("an OpenCL buffer cannot be empty.", nameof(initial));
        fixed (T* p = initial)
            return Create((long)initial.Length * sizeof(T), Flags(access) | Cl.MemCopyHostPtr, p);
    }

    /// <summary>
    /// Builds <paramref name="source"/> for this context's device with <paramref name="options"/>, loading the
    /// binary from <paramref name="cache"/> when it holds one for the same source, options, device and driver
    /// (and storing it there after a source build). Throws an <see cref="OpenClException"/> carrying the build
    /// log when the source does not compile; <paramref name="name"/> (e.g. the .cl file) goes into messages.
    /// </summary>
    public OpenClProgram BuildProgram(string source, string options = "", ProgramCache? cache = null, string name = "program")
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        return OpenClProgram.Build(this, source, options, cache, name);
    }

    /// <inheritdoc/>
    public void Dispose() => Handle.Dispose();

    private OpenClBuffer Create(long bytes, ulong flags, void* host)
    {
        int status;
        IntPtr raw = Cl.clCreateBuffer(Handle, flags, (nuint)bytes, host, &status);
        Cl.Check(status, "clCreateBuffer", $"{bytes} bytes on {Device.Name}");
        return new OpenClBuffer(this, ClHandle.Own<MemHandle>(raw), bytes);
    }

    private static ulong Flags(OpenClAccess access) => access switch
    {
        OpenClAccess.ReadOnly => Cl.MemReadOnly,
        OpenClAccess.WriteOnly => Cl.MemWriteOnly,
        _ => Cl.MemReadWrite,
    };
}

/// <summary>
/// A device buffer (<c>cl_mem</c>). Keep it alive (undisposed) until every command using it has completed;
/// commands already enqueued keep the device memory themselves.
/// </summary>
public sealed class OpenClBuffer : IDisposable
{
    internal OpenClBuffer(OpenClContext context, MemHandle handle, long sizeBytes)
    {
        Context = context;
        Handle = handle;
        SizeBytes = sizeBytes;
    }

    /// <summary>The context the buffer lives in.</summary>
    public OpenClContext Context { get; }

    /// <summary>Size in bytes.</summary>
    public long SizeBytes { get; }

    internal MemHandle Handle { get; }

    /// <summary>How many whole <typeparamref name="T"/> fit.</summary>
    public long Length<T>() where T : unmanaged => SizeBytes / Unsafe.SizeOf<T>();

    /// <inheritdoc/>
    public void Dispose() => Handle.Dispose();
}
