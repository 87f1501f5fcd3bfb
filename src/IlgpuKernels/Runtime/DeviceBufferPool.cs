using System.Collections.Concurrent;
using System.Numerics;
using ILGPU;
using ILGPU.Runtime;

namespace ChunkSeg.IlgpuKernels.Runtime;

/// <summary>
/// Device float buffers kept for reuse: ILGPU has no memory pool, and allocating and freeing device memory per image
/// (cuMemAlloc / cuMemFree, which waits for the whole device) would stall every chunk. Lengths round up to a size class
/// (a power of two, or three quarters of one), so an image of any shape finds a buffer a previous chunk used.
/// <code>
///   call:  Rent(n) ─▶ view of n floats ─▶ kernels on the call's stream ─▶ Return (the call's own free list; same stream, in order)
///   end of call:  stream synchronised ─▶ every buffer back here ─▶ the next call, on any thread, rents it
/// </code>
/// Idle buffers beyond <see cref="IdleLimitBytes"/> are freed, so the pool never holds more than one budget's worth
/// after a large call.
/// </summary>
internal sealed class DeviceBufferPool(Accelerator accelerator, long idleLimitBytes) : IDisposable
{
    private readonly ConcurrentDictionary<long, ConcurrentBag<MemoryBuffer1D<float, Stride1D.Dense>>> _idle = new();
    private long _idleBytes, _heldBytes;

    /// <summary>Device memory allocated through this pool and not freed: buffers in use and idle ones kept for reuse.</summary>
    public long HeldBytes => Interlocked.Read(ref _heldBytes);

    /// <summary>Idle bytes kept (the device gives a quarter of its memory), at least 64 MiB.</summary>
    public long IdleLimitBytes { get; } = Math.Max(1L << 26, idleLimitBytes);

    /// <summary>A buffer of at least <paramref name="length"/> floats (its size class).</summary>
    public MemoryBuffer1D<float, Stride1D.Dense> Rent(long length)
    {
        long size = SizeClass(length);
        if (_idle.TryGetValue(size, out var bag) && bag.TryTake(out var buffer))
        {
            Interlocked.Add(ref _idleBytes, -size * sizeof(float));
            return buffer;
        }
        var allocated = accelerator.Allocate1D<float>(size);
        Interlocked.Add(ref _heldBytes, size * sizeof(float));
        return allocated;
    }

    public void Return(MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        long bytes = buffer.Length * sizeof(float);
        if (Interlocked.Add(ref _idleBytes, bytes) > IdleLimitBytes)
        {
            Interlocked.Add(ref _idleBytes, -bytes);
            Interlocked.Add(ref _heldBytes, -bytes);
            buffer.Dispose();
            return;
        }
        _idle.GetOrAdd(buffer.Length, _ => []).Add(buffer);
    }

    /// <summary>The size class of <paramref name="length"/>: the least 2^k or 3·2^(k−2) at or above it (at least 256).</summary>
    internal static long SizeClass(long length)
    {
        long power = (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(256, length));
        long threeQuarters = power / 4 * 3;
        return length <= threeQuarters ? threeQuarters : power;
    }

    public void Dispose()
    {
        foreach (var bag in _idle.Values)
            while (bag.TryTake(out var buffer))
            {
                Interlocked.Add(ref _heldBytes, -buffer.Length * sizeof(float));
                buffer.Dispose();
            }
        _idleBytes = 0;
    }
}
