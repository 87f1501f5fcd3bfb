// Image downsampling by the mean of each block, with arithmetic fixed down to the bit so that any chunking of a
// level gives the whole-volume level exactly.
//
//   per output row (zo, yo):                                        acc: one wide value per input x
//      input rows of the block, z outer then y inner   ──add──▶    ┌────┬────┬────┬────┬────┬────┬───┐
//      (z0, y0) (z0, y0+1) (z0+1, y0) (z0+1, y0+1)                 │ Σa │ Σb │ Σc │ Σd │ Σe │ Σf │Σg │
//                                                                  └────┴────┴────┴────┴────┴────┴───┘
//                                                                     └──┬──┘   └──┬──┘   └──┬──┘  │
//   output x:  sum the fx accumulators of the block left to right,      Σab       Σcd       Σef   Σg
//              divide by the voxels present, round to the output type   ÷8        ÷8        ÷8    ÷4 (ragged x)
//
// The exact arithmetic, per output voxel with n = (rows present) × (columns present) input voxels:
//
//   uint8, uint16   sum in uint32 (≤ 65535 × 16³ < 2³²), exact.     uint32   sum in uint64 (< 2⁴⁴), exact.
//                   Then q = ⌊sum / n⌋, r = sum − q·n, and q + 1 when 2r > n or (2r = n and q is odd):
//                   the exact mean rounded to the nearest integer, ties to even (numpy's rint, C#'s
//                   MidpointRounding.ToEven). The mean of the present voxels never exceeds the type's maximum.
//   float32         each voxel widened to float64; acc[x] = ((0 + row₀[x]) + row₁[x]) + … over the block's rows in
//                   z-then-y order; then s = ((acc[x0] + acc[x0+1]) + …) over its columns left to right; then
//                   (float)(s / n): an IEEE float64 division, then rounding to the nearest float32, ties to even.
//                   Not the exact real mean (float64 addition can round, and the two roundings can differ from one
//                   correct rounding), but every step is an IEEE operation in a fixed order that depends only on the
//                   block, so it is the same on every chunking, thread, vector width and machine. NaN anywhere in a
//                   block gives NaN; +Inf and −Inf together give NaN; the mean of −0 alone is +0 (0 + −0 = +0).
//
// Integer sums are exact whatever their order, so the vector loops may add lanes freely; float64 sums are kept in
// the order above (each lane adds its own x column, rows in the same order as the scalar loop), so the vector path
// and the scalar tail give identical bits.
//
// Hot loop: adding a row into the accumulators is the work (fz·fy rows per output row, each as long as the input
// row); it runs 32 (uint8), 16 (uint16) or 8 (uint32, float32) voxels per Vector256 step, widening each lane, with a
// scalar tail. The per-output-voxel column sum and division run once per fz·fy·fx voxels and stay scalar. The kernel
// is single-threaded: the pipeline runs chunks side by side, and a chunk of a level is small.
using System.Buffers;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Kernels.Pyramids;

public static partial class Downsample
{
    /// <summary>Block mean of a uint8 volume, rounded to the nearest integer, ties to even.</summary>
    public static void Mean(ReadOnlySpan<byte> source, Long3 shape, Long3 factor, Span<byte> destination) =>
        MeanEngine.Run<ByteMeanOp, byte, uint>(source, shape, factor, Validate(source.Length, shape, factor, destination.Length), destination);

    /// <summary>Block mean of a uint16 volume, rounded to the nearest integer, ties to even.</summary>
    public static void Mean(ReadOnlySpan<ushort> source, Long3 shape, Long3 factor, Span<ushort> destination) =>
        MeanEngine.Run<UInt16MeanOp, ushort, uint>(source, shape, factor, Validate(source.Length, shape, factor, destination.Length), destination);

    /// <summary>Block mean of a uint32 volume, rounded to the nearest integer, ties to even.</summary>
    public static void Mean(ReadOnlySpan<uint> source, Long3 shape, Long3 factor, Span<uint> destination) =>
        MeanEngine.Run<UInt32MeanOp, uint, ulong>(source, shape, factor, Validate(source.Length, shape, factor, destination.Length), destination);

    /// <summary>Block mean of a float32 volume, summed in float64 in a fixed order (see the file header).</summary>
    public static void Mean(ReadOnlySpan<float> source, Long3 shape, Long3 factor, Span<float> destination) =>
        MeanEngine.Run<FloatMeanOp, float, double>(source, shape, factor, Validate(source.Length, shape, factor, destination.Length), destination);
}

/// <summary>How one element type is summed (into a wider <typeparamref name="TAcc"/>) and how a sum becomes a mean.</summary>
internal interface IMeanOp<T, TAcc> where T : unmanaged where TAcc : unmanaged, IAdditionOperators<TAcc, TAcc, TAcc>
{
    /// <summary>acc[i] += row[i] for every i (the spans have the same length).</summary>
    static abstract void Accumulate(ReadOnlySpan<T> row, Span<TAcc> acc);

    /// <summary>The mean of <paramref name="count"/> voxels summing to <paramref name="sum"/>.</summary>
    static abstract T Finish(TAcc sum, int count);
}

internal static class MeanEngine
{
    /// <summary>Trusts its caller: spans and shapes validated by <see cref="Downsample"/>.</summary>
    internal static void Run<TOp, T, TAcc>(ReadOnlySpan<T> source, Long3 shape, Long3 factor, Long3 output, Span<T> destination)
        where TOp : struct, IMeanOp<T, TAcc>
        where T : unmanaged
        where TAcc : unmanaged, IAdditionOperators<TAcc, TAcc, TAcc>
    {
        Debug.Assert(source.Length == shape.Volume && destination.Length >= output.Volume);
        if (output.Volume == 0) return;
        int sx = (int)shape.X, sy = (int)shape.Y, sz = (int)shape.Z;
        int fz = (int)factor.Z, fy = (int)factor.Y, fx = (int)factor.X, ox = (int)output.X;
        TAcc[] rented = ArrayPool<TAcc>.Shared.Rent(sx);
        try
        {
            var acc = rented.AsSpan(0, sx);
            int o = 0;
            for (int zo = 0; zo < output.Z; zo++)
            {
                int z0 = zo * fz, z1 = Math.Min(z0 + fz, sz);
                for (int yo = 0; yo < output.Y; yo++)
                {
                    int y0 = yo * fy, y1 = Math.Min(y0 + fy, sy);
                    acc.Clear();                                         // 0 + first row: exact, the float order starts at 0
                    for (int z = z0; z < z1; z++)
                        for (int y = y0; y < y1; y++)
                            TOp.Accumulate(source.Slice((z * sy + y) * sx, sx), acc);
                    int rows = (z1 - z0) * (y1 - y0);
                    for (int xo = 0, x0 = 0; xo < ox; xo++, x0 += fx)
                    {
                        int x1 = Math.Min(x0 + fx, sx);
                        TAcc sum = acc[x0];
                        for (int x = x0 + 1; x < x1; x++) sum += acc[x];  // columns left to right
                        destination[o++] = TOp.Finish(sum, rows * (x1 - x0));
                    }
                }
            }
        }
        finally
        {
            ArrayPool<TAcc>.Shared.Return(rented);
        }
    }

    /// <summary>⌊sum / n⌉ with ties to even, exactly (integer arithmetic only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong RoundHalfEven(ulong sum, int count)
    {
        ulong n = (ulong)count, q, r;
        if (BitOperations.IsPow2(count))                                 // factors 1 and 2 give n = 1, 2, 4 or 8: a shift,
        {                                                                // not a 64-bit division per output voxel
            int k = BitOperations.TrailingZeroCount(count);
            (q, r) = (sum >> k, sum & (n - 1));
        }
        else
        {
            q = sum / n;
            r = sum - q * n;
        }
        return 2 * r > n || (2 * r == n && (q & 1) != 0) ? q + 1 : q;
    }
}

internal struct ByteMeanOp : IMeanOp<byte, uint>
{
    public static void Accumulate(ReadOnlySpan<byte> row, Span<uint> acc)
    {
        Debug.Assert(acc.Length >= row.Length);
        ref byte s = ref MemoryMarshal.GetReference(row);
        ref uint a = ref MemoryMarshal.GetReference(acc);
        nuint n = (nuint)row.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)                             // 32 voxels per step: byte → ushort → uint lanes
            for (; i + 32 <= n; i += 32)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, i));
                var (l0, l1) = Vector256.Widen(lo);
                var (h0, h1) = Vector256.Widen(hi);
                (Vector256.LoadUnsafe(ref a, i) + l0).StoreUnsafe(ref a, i);
                (Vector256.LoadUnsafe(ref a, i + 8) + l1).StoreUnsafe(ref a, i + 8);
                (Vector256.LoadUnsafe(ref a, i + 16) + h0).StoreUnsafe(ref a, i + 16);
                (Vector256.LoadUnsafe(ref a, i + 24) + h1).StoreUnsafe(ref a, i + 24);
            }
        for (; i < n; i++)                                               // scalar tail = reference semantics
            Unsafe.Add(ref a, i) += Unsafe.Add(ref s, i);
    }

    public static byte Finish(uint sum, int count) => (byte)MeanEngine.RoundHalfEven(sum, count);
}

internal struct UInt16MeanOp : IMeanOp<ushort, uint>
{
    public static void Accumulate(ReadOnlySpan<ushort> row, Span<uint> acc)
    {
        Debug.Assert(acc.Length >= row.Length);
        ref ushort s = ref MemoryMarshal.GetReference(row);
        ref uint a = ref MemoryMarshal.GetReference(acc);
        nuint n = (nuint)row.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)                             // 16 voxels per step: ushort → uint lanes
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, i));
                (Vector256.LoadUnsafe(ref a, i) + lo).StoreUnsafe(ref a, i);
                (Vector256.LoadUnsafe(ref a, i + 8) + hi).StoreUnsafe(ref a, i + 8);
            }
        for (; i < n; i++)
            Unsafe.Add(ref a, i) += Unsafe.Add(ref s, i);
    }

    public static ushort Finish(uint sum, int count) => (ushort)MeanEngine.RoundHalfEven(sum, count);
}

internal struct UInt32MeanOp : IMeanOp<uint, ulong>
{
    public static void Accumulate(ReadOnlySpan<uint> row, Span<ulong> acc)
    {
        Debug.Assert(acc.Length >= row.Length);
        ref uint s = ref MemoryMarshal.GetReference(row);
        ref ulong a = ref MemoryMarshal.GetReference(acc);
        nuint n = (nuint)row.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)                             // 8 voxels per step: uint → ulong lanes
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, i));
                (Vector256.LoadUnsafe(ref a, i) + lo).StoreUnsafe(ref a, i);
                (Vector256.LoadUnsafe(ref a, i + 4) + hi).StoreUnsafe(ref a, i + 4);
            }
        for (; i < n; i++)
            Unsafe.Add(ref a, i) += Unsafe.Add(ref s, i);
    }

    public static uint Finish(ulong sum, int count) => (uint)MeanEngine.RoundHalfEven(sum, count);
}

internal struct FloatMeanOp : IMeanOp<float, double>
{
    public static void Accumulate(ReadOnlySpan<float> row, Span<double> acc)
    {
        Debug.Assert(acc.Length >= row.Length);
        ref float s = ref MemoryMarshal.GetReference(row);
        ref double a = ref MemoryMarshal.GetReference(acc);
        nuint n = (nuint)row.Length, i = 0;
        // 8 voxels per step, float → double lanes; each lane is its own x column, one IEEE add per row as in the tail.
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, i));
                (Vector256.LoadUnsafe(ref a, i) + lo).StoreUnsafe(ref a, i);
                (Vector256.LoadUnsafe(ref a, i + 4) + hi).StoreUnsafe(ref a, i + 4);
            }
        for (; i < n; i++)
            Unsafe.Add(ref a, i) += Unsafe.Add(ref s, i);
    }

    // For n a power of two, sum × (1/n) is the same real number as sum / n, so IEEE rounds it to the same double
    // (1/n is exact); the multiply only saves the division.
    public static float Finish(double sum, int count) =>
        (float)(BitOperations.IsPow2(count) ? sum * (1.0 / count) : sum / count);
}
