using System.Runtime.InteropServices;

namespace ChunkSeg.OpenCl.Native;

/// <summary>
/// A reference-counted OpenCL object (<c>cl_context</c>, <c>cl_command_queue</c>, <c>cl_mem</c>,
/// <c>cl_program</c>, <c>cl_kernel</c>, <c>cl_event</c>) owned by exactly one wrapper; disposing it calls the
/// matching <c>clRelease*</c> once, also from the finalizer when a caller forgot. Platform and root device ids
/// are not reference-counted and stay plain IntPtr.
/// </summary>
internal abstract class ClHandle : SafeHandle
{
    protected ClHandle() : base(IntPtr.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>Takes ownership of a handle a create call returned (with its status already checked).</summary>
    public static T Own<T>(IntPtr raw) where T : ClHandle, new()
    {
        var h = new T();
        h.SetHandle(raw);
        return h;
    }

    protected override bool ReleaseHandle() => Release(handle) == Cl.Success;

    protected abstract int Release(IntPtr raw);
}

internal sealed class ContextHandle : ClHandle { protected override int Release(IntPtr raw) => Cl.clReleaseContext(raw); }
internal sealed class QueueHandle : ClHandle { protected override int Release(IntPtr raw) => Cl.clReleaseCommandQueue(raw); }
internal sealed class MemHandle : ClHandle { protected override int Release(IntPtr raw) => Cl.clReleaseMemObject(raw); }
internal sealed class ProgramHandle : ClHandle { protected override int Release(IntPtr raw) => Cl.clReleaseProgram(raw); }
internal sealed class KernelHandle : ClHandle { protected override int Release(IntPtr raw) => Cl.clReleaseKernel(raw); }
internal sealed class EventHandle : ClHandle { protected override int Release(IntPtr raw) => Cl.clReleaseEvent(raw); }
