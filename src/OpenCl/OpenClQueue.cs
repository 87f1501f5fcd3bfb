using System.Buffers;
using ChunkSeg.OpenCl.Native;

namespace ChunkSeg.OpenCl;

/// <summary>
/// A global or local work size of 1 to 3 dimensions; dimension 0 varies fastest (x), matching
/// <c>get_global_id(0)</c>.
/// </summary>
public readonly record struct NDRange
{
    /// <summary>A 1-D range.</summary>
    public NDRange(long x) : this(1, x, 1, 1) { }

    /// <summary>A 2-D range.</summary>
    public NDRange(long x, long y) : this(2, x, y, 1) { }

    /// <summary>A 3-D range.</summary>
    public NDRange(long x, long y, long z) : this(3, x, y, z) { }

    private NDRange(int dimensions, long x, long y, long z)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(x);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(y);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(z);
        Dimensions = dimensions;
        X = x;
        Y = y;
        Z = z;
    }

    public int Dimensions { get; }
    public long X { get; }
    public long Y { get; }
    public long Z { get; }

    /// <summary>Work items in all.</summary>
    public long Count => X * Y * Z;
}

/// <summary>
/// A command queue on the context's device. Blocking <see cref="Write{T}"/>/<see cref="Read{T}"/> return when the
/// host memory may be reused; the <c>Enqueue*</c> methods return at once with an <see cref="OpenClEvent"/> that pins
/// the host memory until it completes: dispose the event (which waits) before touching that memory. Every command
/// may wait for events (needed only on out-of-order queues or across queues; an in-order queue runs its commands in
/// order). Not to be used from two threads at once in ways whose order matters; OpenCL itself is thread-safe here.
/// </summary>
public sealed unsafe class OpenClQueue : IDisposable
{
    internal OpenClQueue(OpenClContext context, QueueHandle handle, bool profiling)
    {
        Context = context;
        Handle = handle;
        Profiling = profiling;
    }

    /// <summary>The context (and so the device) the queue feeds.</summary>
    public OpenClContext Context { get; }

    /// <summary>True when events of this queue carry profiling timestamps.</summary>
    public bool Profiling { get; }

    internal QueueHandle Handle { get; }

    // ---- blocking transfers -----------------------------------------------------------------------------

    /// <summary>Copies <paramref name="source"/> into <paramref name="buffer"/> at element <paramref name="elementOffset"/>; returns when done.</summary>
    public void Write<T>(OpenClBuffer buffer, ReadOnlySpan<T> source, long elementOffset = 0, params ReadOnlySpan<OpenClEvent> waitFor) where T : unmanaged
    {
        var (offset, bytes) = Range<T>(buffer, elementOffset, source.Length, "write");
        if (bytes == 0) return;
        using var wait = new WaitList(waitFor);
        fixed (T* p = source)
        fixed (IntPtr* w = wait.Raw)
            Cl.Check(Cl.clEnqueueWriteBuffer(Handle, buffer.Handle, 1, offset, bytes, p, wait.Count, w, null), "clEnqueueWriteBuffer", $"{bytes} bytes at offset {offset}");
    }

    /// <summary>Copies from <paramref name="buffer"/> at element <paramref name="elementOffset"/> into <paramref name="destination"/>; returns when done.</summary>
    public void Read<T>(OpenClBuffer buffer, Span<T> destination, long elementOffset = 0, params ReadOnlySpan<OpenClEvent> waitFor) where T : unmanaged
    {
        var (offset, bytes) = Range<T>(buffer, elementOffset, destination.Length, "read");
        if (bytes == 0) return;
        using var wait = new WaitList(waitFor);
        fixed (T* p = destination)
        fixed (IntPtr* w = wait.Raw)
            Cl.Check(Cl.clEnqueueReadBuffer(Handle, buffer.Handle, 1, offset, bytes, p, wait.Count, w, null), "clEnqueueReadBuffer", $"{bytes} bytes at offset {offset}");
    }

    // ---- non-blocking commands ----------------------------------------------------------------------------

    /// <summary>
    /// Starts copying <paramref name="source"/> into <paramref name="buffer"/> at element <paramref name="elementOffset"/>.
    /// The memory stays pinned and must not change until the returned event completes (dispose it to wait).
    /// </summary>
    public OpenClEvent EnqueueWrite<T>(OpenClBuffer buffer, ReadOnlyMemory<T> source, long elementOffset = 0, params ReadOnlySpan<OpenClEvent> waitFor) where T : unmanaged
    {
        var (offset, bytes) = Range<T>(buffer, elementOffset, source.Length, "write");
        if (bytes == 0) return EnqueueMarker(waitFor);
        MemoryHandle pin = source.Pin();
        try
        {
            using var wait = new WaitList(waitFor);
            IntPtr evt;
            fixed (IntPtr* w = wait.Raw)
                Cl.Check(Cl.clEnqueueWriteBuffer(Handle, buffer.Handle, 0, offset, bytes, pin.Pointer, wait.Count, w, &evt), "clEnqueueWriteBuffer", $"{bytes} bytes at offset {offset}");
            return new OpenClEvent(ClHandle.Own<EventHandle>(evt), pin);
        }
        catch
        {
            pin.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Starts copying from <paramref name="buffer"/> at element <paramref name="elementOffset"/> into <paramref name="destination"/>,
    /// which holds the data only once the returned event completed (dispose it to wait).
    /// </summary>
    public OpenClEvent EnqueueRead<T>(OpenClBuffer buffer, Memory<T> destination, long elementOffset = 0, params ReadOnlySpan<OpenClEvent> waitFor) where T : unmanaged
    {
        var (offset, bytes) = Range<T>(buffer, elementOffset, destination.Length, "read");
        if (bytes == 0) return EnqueueMarker(waitFor);
        MemoryHandle pin = destination.Pin();
        try
        {
            using var wait = new WaitList(waitFor);
            IntPtr evt;
            fixed (IntPtr* w = wait.Raw)
                Cl.Check(Cl.clEnqueueReadBuffer(Handle, buffer.Handle, 0, offset, bytes, pin.Pointer, wait.Count, w, &evt), "clEnqueueReadBuffer", $"{bytes} bytes at offset {offset}");
            return new OpenClEvent(ClHandle.Own<EventHandle>(evt), pin);
        }
        catch
        {
            pin.Dispose();
            throw;
        }
    }

    /// <summary>Copies <paramref name="bytes"/> bytes between device buffers (which may be the same buffer, if the ranges do not overlap).</summary>
    public OpenClEvent EnqueueCopy(OpenClBuffer source, OpenClBuffer destination, long sourceOffsetBytes, long destinationOffsetBytes, long bytes,
        params ReadOnlySpan<OpenClEvent> waitFor)
    {
        CheckRange(source, sourceOffsetBytes, bytes, "copy from");
        CheckRange(destination, destinationOffsetBytes, bytes, "copy to");
        if (bytes == 0) return EnqueueMarker(waitFor);
        using var wait = new WaitList(waitFor);
        IntPtr evt;
        fixed (IntPtr* w = wait.Raw)
            Cl.Check(Cl.clEnqueueCopyBuffer(Handle, source.Handle, destination.Handle, (nuint)sourceOffsetBytes, (nuint)destinationOffsetBytes, (nuint)bytes,
                wait.Count, w, &evt), "clEnqueueCopyBuffer");
        return new OpenClEvent(ClHandle.Own<EventHandle>(evt));
    }

    /// <summary>Sets <paramref name="count"/> elements from element <paramref name="elementOffset"/> to <paramref name="value"/>.</summary>
    public OpenClEvent EnqueueFill<T>(OpenClBuffer buffer, T value, long elementOffset, long count, params ReadOnlySpan<OpenClEvent> waitFor) where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var (offset, bytes) = Range<T>(buffer, elementOffset, count, "fill");
        if (bytes == 0) return EnqueueMarker(waitFor);
        using var wait = new WaitList(waitFor);
        IntPtr evt;
        fixed (IntPtr* w = wait.Raw)
            Cl.Check(Cl.clEnqueueFillBuffer(Handle, buffer.Handle, &value, (nuint)sizeof(T), offset, bytes, wait.Count, w, &evt), "clEnqueueFillBuffer");
        return new OpenClEvent(ClHandle.Own<EventHandle>(evt));
    }

    /// <summary>
    /// Launches <paramref name="kernel"/> (its arguments set) over <paramref name="global"/> work items in work-groups of
    /// <paramref name="local"/> (null: the driver chooses). In OpenCL 1.2 each global size must be a multiple of the local one.
    /// </summary>
    public OpenClEvent EnqueueKernel(OpenClKernel kernel, NDRange global, NDRange? local = null, params ReadOnlySpan<OpenClEvent> waitFor)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        if (local is { } l && l.Dimensions != global.Dimensions)
            throw new ArgumentException($"local size has {l.Dimensions} dimensions, global size {global.Dimensions}; they must agree.", nameof(local));
        nuint* g = stackalloc nuint[] { (nuint)global.X, (nuint)global.Y, (nuint)global.Z };
        nuint* lp = stackalloc nuint[3];
        if (local is { } loc) { lp[0] = (nuint)loc.X; lp[1] = (nuint)loc.Y; lp[2] = (nuint)loc.Z; }
        using var wait = new WaitList(waitFor);
        IntPtr evt;
        fixed (IntPtr* w = wait.Raw)
        {
            int status = Cl.clEnqueueNDRangeKernel(Handle, kernel.Handle, (uint)global.Dimensions, null, g, local is null ? null : lp, wait.Count, w, &evt);
            Cl.Check(status, "clEnqueueNDRangeKernel",
                $"kernel {kernel.Name}, global ({global.X}, {global.Y}, {global.Z}){(local is { } s ? $", local ({s.X}, {s.Y}, {s.Z})" : "")}");
        }
        GC.KeepAlive(kernel);
        return new OpenClEvent(ClHandle.Own<EventHandle>(evt));
    }

    /// <summary>An event that completes when <paramref name="waitFor"/> (or, when empty, every command enqueued so far) has.</summary>
    public OpenClEvent EnqueueMarker(params ReadOnlySpan<OpenClEvent> waitFor) => EnqueueSync(waitFor, barrier: false);

    /// <summary>
    /// Holds back every later command of this queue until <paramref name="waitFor"/> (or, when empty, every command enqueued so
    /// far) has completed: how a queue waits for another queue's transfer.
    /// </summary>
    public OpenClEvent EnqueueBarrier(params ReadOnlySpan<OpenClEvent> waitFor) => EnqueueSync(waitFor, barrier: true);

    private OpenClEvent EnqueueSync(ReadOnlySpan<OpenClEvent> waitFor, bool barrier)
    {
        using var wait = new WaitList(waitFor);
        IntPtr evt;
        fixed (IntPtr* w = wait.Raw)
        {
            if (barrier) Cl.Check(Cl.clEnqueueBarrierWithWaitList(Handle, wait.Count, w, &evt), "clEnqueueBarrierWithWaitList");
            else Cl.Check(Cl.clEnqueueMarkerWithWaitList(Handle, wait.Count, w, &evt), "clEnqueueMarkerWithWaitList");
        }
        return new OpenClEvent(ClHandle.Own<EventHandle>(evt));
    }

    /// <summary>Submits everything enqueued so far to the device (<c>clFlush</c>).</summary>
    public void Flush() => Cl.Check(Cl.clFlush(Handle), "clFlush");

    /// <summary>Blocks until every command enqueued so far has completed (<c>clFinish</c>).</summary>
    public void Finish() => Cl.Check(Cl.clFinish(Handle), "clFinish");

    /// <inheritdoc/>
    public void Dispose() => Handle.Dispose();

    private static (nuint Offset, nuint Bytes) Range<T>(OpenClBuffer buffer, long elementOffset, long count, string what) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(buffer);
        ArgumentOutOfRangeException.ThrowIfNegative(elementOffset);
        long offset = elementOffset * sizeof(T), bytes = count * sizeof(T);
        CheckRange(buffer, offset, bytes, what);
        return ((nuint)offset, (nuint)bytes);
    }

    private static void CheckRange(OpenClBuffer buffer, long offset, long bytes, string what)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (offset > buffer.SizeBytes - bytes)
            throw new ArgumentOutOfRangeException(nameof(offset),
                $"{what} of {bytes} bytes at byte offset {offset} runs past the end of the {buffer.SizeBytes}-byte buffer.");
    }
}

/// <summary>
/// The raw handles of a wait list, each kept alive (AddRef) for the duration of one enqueue call; <see cref="Raw"/>
/// is null for an empty list, which is what OpenCL wants.
/// </summary>
internal readonly ref struct WaitList
{
    private readonly ReadOnlySpan<OpenClEvent> _events;

    public WaitList(ReadOnlySpan<OpenClEvent> events)
    {
        _events = events;
        Raw = events.IsEmpty ? null : new IntPtr[events.Length];
        int i = 0;
        try
        {
            for (; i < events.Length; i++)
            {
                ArgumentNullException.ThrowIfNull(events[i], "waitFor");
                bool added = false;
                events[i].Handle.DangerousAddRef(ref added);      // throws ObjectDisposedException for a disposed event
                Raw![i] = events[i].Handle.DangerousGetHandle();
            }
        }
        catch
        {
            for (int j = 0; j < i; j++) events[j].Handle.DangerousRelease();
            throw;
        }
    }

    public IntPtr[]? Raw { get; }

    public uint Count => (uint)_events.Length;

    public void Dispose()
    {
        foreach (var e in _events) e.Handle.DangerousRelease();
    }
}
