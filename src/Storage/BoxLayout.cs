using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage;

/// <summary>Maps chunk geometry (time point + spatial box) onto a volume's own axes, and reorders axes.</summary>
public static class BoxLayout
{
    /// <summary>
    /// The box of a volume with <paramref name="axes"/> and <paramref name="shape"/> covering time point
    /// <paramref name="t"/>, every channel, and the spatial <paramref name="box"/> (z ignored for 2D).
    /// </summary>
    public static NdBox ForChunk(AxisOrder axes, long[] shape, long t, Box3 box)
    {
        var start = new long[axes.Rank];
        var size = new long[axes.Rank];
        for (int d = 0; d < axes.Rank; d++)
        {
            (start[d], size[d]) = axes[d] switch
            {
                't' => (t, 1L),
                'c' => (0L, shape[d]),
                'z' => (box.Start.Z, box.Size.Z),
                'y' => (box.Start.Y, box.Size.Y),
                _ => (box.Start.X, box.Size.X),
            };
        }
        return new NdBox(start, size);
    }

    /// <summary>
    /// Reorders a C-ordered block from axis order <paramref name="from"/> to <paramref name="to"/>
    /// (same axes): <c>dst[to-index] = src[from-index]</c>. Rows along a shared innermost axis are copied whole.
    /// </summary>
    public static void Transpose(ReadOnlySpan<byte> src, long[] srcShape, AxisOrder from, Span<byte> dst, AxisOrder to, int elementSize)
    {
        if (from.Equals(to))
        {
            src.CopyTo(dst);
            return;
        }
        int rank = from.Rank;
        int[] perm = from.PermutationTo(to);               // dst axis k is src axis perm[k]
        Span<long> srcStrides = stackalloc long[rank];
        Strided.RowMajorStrides(srcShape, srcStrides);
        var dstShape = new long[rank];
        for (int k = 0; k < rank; k++) dstShape[k] = srcShape[perm[k]];
        long total = dstShape.Aggregate(1L, (a, b) => a * b);
        if (total == 0) return;

        long innerStride = srcStrides[perm[rank - 1]];
        long innerCount = dstShape[rank - 1];
        Span<long> index = stackalloc long[rank];
        index.Clear();
        long written = 0;
        while (written < total)
        {
            long s = 0;
            for (int k = 0; k < rank - 1; k++) s += index[k] * srcStrides[perm[k]];
            for (long i = 0; i < innerCount; i++, written++)
                src.Slice((int)((s + i * innerStride) * elementSize), elementSize).CopyTo(dst.Slice((int)(written * elementSize), elementSize));
            int axis = rank - 2;
            while (axis >= 0 && ++index[axis] == dstShape[axis]) index[axis--] = 0;
            if (axis < 0) break;
        }
    }
}
