// Label downsampling by the mode of each block: the value held by the most voxels of the block, background 0 counted
// like any other label, and among values held equally often the smallest. That is scipy.stats.mode's rule ("if
// there is more than one such value, only the smallest is returned"), so every output voxel holds an id that occurs
// in its block of the input: no averaged, blended or invented ids, and an object's id survives wherever it owns a
// plurality of a block.
//
//      block (2×2×2, ragged blocks have fewer voxels)   gather       sort           longest run, first on ties
//      ┌────┬────┐  ┌────┬────┐                        7 0 7 3  →  0 3 3 7 7 9 9 9  →  9 (three)
//      │ 7  │ 0  │  │ 3  │ 9  │                        9 9 3 9      runs: 0×1 3×2 7×2 9×3
//      ├────┼────┤  ├────┼────┤
//      │ 7  │ 3  │  │ 9  │ 9  │                        7 7 0 0 3 3 9 9  →  0 (four-way tie: the smallest)
//      └────┴────┘  └────┴────┘
//
// The mode is a set function of the block's voxels (no order, no arithmetic), so any chunking that hands the kernel
// the same blocks (Downsample.InputBox) gives the whole volume's result bit for bit.
//
// Hot loop: most blocks of a label image lie inside one object or in the background, so a block whose voxels all
// equal the first is answered in place after one compare per voxel. The others are copied to a scratch span; up to
// 16 values (a 2×2×2 block is 8) each value's count is taken by comparing it with all the others (n² compares, no
// calls), keeping the larger count and on equal counts the smaller value; larger blocks (general factors) are
// sorted and scanned once for the longest run, keeping the first run on ties (the sort puts the smallest value
// first). Both give the same answer. There is no vector path: gathering 2 × 2 × 2 scattered values per output voxel
// is the cost, not the compare, and the all-equal test already stops at the first difference.
using System.Buffers;
using System.Diagnostics;
using System.Numerics;
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Kernels.Pyramids;

public static partial class Downsample
{
    /// <summary>
    /// Block mode of a label volume (uint8, uint16, uint32, uint64): the most frequent value of each block, 0 counted
    /// like any label, ties to the smallest value (scipy.stats.mode's rule).
    /// </summary>
    public static void Mode<T>(ReadOnlySpan<T> source, Long3 shape, Long3 factor, Span<T> destination)
        where T : unmanaged, IBinaryInteger<T>, IUnsignedNumber<T> =>
        ModeEngine.Run(source, shape, factor, Validate(source.Length, shape, factor, destination.Length), destination);
}

internal static class ModeEngine
{
    /// <summary>Trusts its caller: spans and shapes validated by <see cref="Downsample"/>.</summary>
    internal static void Run<T>(ReadOnlySpan<T> source, Long3 shape, Long3 factor, Long3 output, Span<T> destination)
        where T : unmanaged, IBinaryInteger<T>
    {
        Debug.Assert(source.Length == shape.Volume && destination.Length >= output.Volume);
        if (output.Volume == 0) return;
        int sx = (int)shape.X, sy = (int)shape.Y, sz = (int)shape.Z;
        int fz = (int)factor.Z, fy = (int)factor.Y, fx = (int)factor.X, ox = (int)output.X;
        T[] rented = ArrayPool<T>.Shared.Rent(fz * fy * fx);
        try
        {
            var scratch = rented.AsSpan();
            int o = 0;
            for (int zo = 0; zo < output.Z; zo++)
            {
                int z0 = zo * fz, z1 = Math.Min(z0 + fz, sz);
                for (int yo = 0; yo < output.Y; yo++)
                {
                    int y0 = yo * fy, y1 = Math.Min(y0 + fy, sy);
                    for (int xo = 0, x0 = 0; xo < ox; xo++, x0 += fx)
                    {
                        int w = Math.Min(x0 + fx, sx) - x0;
                        T first = source[(z0 * sy + y0) * sx + x0];
                        if (AllEqual(source, first, z0, z1, y0, y1, x0, w, sy, sx))
                        {
                            destination[o++] = first;                    // inside one object: no copy, no count
                            continue;
                        }
                        int n = 0;
                        for (int z = z0; z < z1; z++)
                            for (int y = y0; y < y1; y++, n += w)
                                source.Slice((z * sy + y) * sx + x0, w).CopyTo(scratch[n..]);
                        destination[o++] = ModeOf(scratch[..n]);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(rented);
        }
    }

    private static bool AllEqual<T>(ReadOnlySpan<T> source, T first, int z0, int z1, int y0, int y1, int x0, int w, int sy, int sx)
        where T : unmanaged, IBinaryInteger<T>
    {
        for (int z = z0; z < z1; z++)
            for (int y = y0; y < y1; y++)
                foreach (T v in source.Slice((z * sy + y) * sx + x0, w))
                    if (v != first) return false;
        return true;
    }

    /// <summary>Blocks up to this size are counted pairwise (n² compares, no sort); larger ones are sorted.</summary>
    private const int PairwiseLimit = 16;

    /// <summary>The most frequent value, the smallest among equally frequent ones. May reorder <paramref name="values"/>.</summary>
    internal static T ModeOf<T>(Span<T> values) where T : unmanaged, IBinaryInteger<T>
    {
        Debug.Assert(values.Length > 0);
        T best = values[0];
        int bestCount = 0;
        if (values.Length <= PairwiseLimit)
        {
            // A 2×2×2 block is 8 values: 64 compares beat a general sort's calls and branches.
            for (int i = 0; i < values.Length; i++)
            {
                T v = values[i];
                int count = 0;
                foreach (T u in values) count += u == v ? 1 : 0;
                if (count > bestCount || (count == bestCount && v < best)) { bestCount = count; best = v; }
            }
            return best;
        }

        values.Sort();
        for (int start = 0; start < values.Length;)
        {
            int end = start + 1;
            while (end < values.Length && values[end] == values[start]) end++;
            if (end - start > bestCount) { bestCount = end - start; best = values[start]; }   // strictly more: ties keep the smaller
            start = end;
        }
        return best;
    }
}
