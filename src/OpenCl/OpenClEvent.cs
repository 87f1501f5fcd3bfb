using System.Buffers;
using ChunkSeg.OpenCl.Native;

namespace ChunkSeg.OpenCl;

/// <summary>
/// The completion of one enqueued command (<c>cl_event</c>). For a non-blocking transfer it also owns the pin on the
/// host memory: <see cref="Dispose"/> waits for the command first, then unpins, so disposing is always safe.
/// Timestamps need a queue created with profiling.
/// </summary>
public sealed unsafe class OpenClEvent : IDisposable
{
    private MemoryHandle _pin;
    private bool _pinned;

    internal OpenClEvent(EventHandle handle, MemoryHandle pin = default)
    {
        Handle = handle;
        _pin = pin;
        _pinned = pin.Pointer != null;
    }

    internal EventHandle Handle { get; }

    /// <summary>True once the command has completed (CL_COMPLETE); throws if it failed.</summary>
    public bool IsComplete
    {
        get
        {
            int status;
            Cl.Check(Cl.clGetEventInfo(Handle, Cl.EventCommandExecutionStatus, sizeof(int), &status, null), "clGetEventInfo");
            if (status < 0) throw new OpenClException("command execution", status, "the command failed on the device");
            return status == Cl.Complete;
        }
    }

    /// <summary>Blocks until the command has completed; throws when it failed.</summary>
    public void Wait()
    {
        bool added = false;
        Handle.DangerousAddRef(ref added);
        try
        {
            IntPtr raw = Handle.DangerousGetHandle();
            Cl.Check(Cl.clWaitForEvents(1, &raw), "clWaitForEvents");
        }
        finally
        {
            Handle.DangerousRelease();
        }
    }

    /// <summary>Blocks until every one of <paramref name="events"/> has completed.</summary>
    public static void WaitAll(params ReadOnlySpan<OpenClEvent> events)
    {
        if (events.IsEmpty) return;
        using var wait = new WaitList(events);
        fixed (IntPtr* w = wait.Raw)
            Cl.Check(Cl.clWaitForEvents(wait.Count, w), "clWaitForEvents");
    }

    /// <summary>Device time (ns) the command was enqueued.</summary>
    public long QueuedNs => Profile(Cl.ProfilingCommandQueued);

    /// <summary>Device time (ns) the command was submitted to the device.</summary>
    public long SubmitNs => Profile(Cl.ProfilingCommandSubmit);

    /// <summary>Device time (ns) the command started.</summary>
    public long StartNs => Profile(Cl.ProfilingCommandStart);

    /// <summary>Device time (ns) the command ended.</summary>
    public long EndNs => Profile(Cl.ProfilingCommandEnd);

    /// <summary>Nanoseconds the command ran on the device (end − start); waits for it first.</summary>
    public long DurationNs
    {
        get
        {
            Wait();
            return EndNs - StartNs;
        }
    }

    /// <summary><see cref="DurationNs"/> as a TimeSpan (100 ns resolution).</summary>
    public TimeSpan Duration => TimeSpan.FromTicks(DurationNs / 100);

    /// <summary>Waits for the command when it pins host memory, then releases the event.</summary>
    public void Dispose()
    {
        if (_pinned)
        {
            try
            {
                if (!Handle.IsClosed) Wait();
            }
            finally
            {
                _pinned = false;
                _pin.Dispose();
            }
        }
        Handle.Dispose();
    }

    private long Profile(uint param)
    {
        ulong value;
        Cl.Check(Cl.clGetEventProfilingInfo(Handle, param, sizeof(ulong), &value, null), "clGetEventProfilingInfo");
        return (long)value;
    }
}
