using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage;

public static class VolumeExtensions
{
    /// <summary>Reads a box into a typed buffer; <typeparamref name="T"/> must match the volume's dtype.</summary>
    public static void Read<T>(this IVolume volume, NdBox box, Span<T> destination) where T : unmanaged
    {
        CheckType<T>(volume);
        volume.Read(box, MemoryMarshal.AsBytes(destination));
    }

    /// <summary>Writes a box from a typed buffer; <typeparamref name="T"/> must match the volume's dtype.</summary>
    public static void Write<T>(this IVolume volume, NdBox box, ReadOnlySpan<T> source) where T : unmanaged
    {
        CheckType<T>(volume);
        volume.Write(box, MemoryMarshal.AsBytes(source));
    }

    /// <summary>
    /// Reads a box that may extend past the volume on any side (a halo at the border). Voxels outside are
    /// filled according to <paramref name="border"/>; the inside is read chunk-wise as usual.
    /// </summary>
    public static void ReadPadded(this IVolume volume, NdBox box, Span<byte> destination, BorderMode border = BorderMode.Constant)
    {
        var info = volume.Info;
        if (box.IsInside(info.Shape))
        {
            volume.Read(box, destination);
            return;
        }
        int rank = info.Axes.Rank;
        if (box.Rank != rank)
            throw new VolumeException(info.Location, $"box {box} has {box.Rank} dimensions but the volume has {rank} ({info.Axes})");
        int elementSize = info.DataType.SizeInBytes();
        if (destination.Length < box.ElementCount * elementSize)
            throw new ArgumentException($"destination holds {destination.Length} bytes; box {box} needs {box.ElementCount * elementSize}");

        // The part of the box inside the volume; empty when the box misses the volume entirely.
        var innerStart = new long[rank];
        var innerShape = new long[rank];
        bool empty = false;
        for (int d = 0; d < rank; d++)
        {
            innerStart[d] = Math.Clamp(box.Start[d], 0, info.Shape[d]);
            long end = Math.Clamp(box.Start[d] + box.Shape[d], 0, info.Shape[d]);
            innerShape[d] = end - innerStart[d];
            empty |= innerShape[d] <= 0;
        }

        if (box.ElementCount == 0) return;
        // Mirror and nearest are defined even for a box that misses the volume entirely (as numpy.pad's are).
        if (border == BorderMode.Constant)
        {
            Scalars.Fill(destination, Scalars.Encode(info.FillValue, info.DataType));
            if (empty) return;
            var inner = new byte[new NdBox(innerStart, innerShape).ElementCount * elementSize];
            volume.Read(new NdBox(innerStart, innerShape), inner);
            var offset = new long[rank];
            for (int d = 0; d < rank; d++) offset[d] = innerStart[d] - box.Start[d];
            Strided.CopyBox(inner, innerShape, new long[rank], destination, box.Shape, offset, innerShape, elementSize);
            return;
        }

        // Mirror or nearest: every destination coordinate maps to a volume coordinate on each axis, and
        // the volume box spanned by those coordinates is read once.
        var maps = new long[rank][];
        for (int d = 0; d < rank; d++)
        {
            maps[d] = new long[box.Shape[d]];
            long lo = long.MaxValue, hi = long.MinValue;
            for (long i = 0; i < box.Shape[d]; i++)
            {
                long c = MapCoordinate(box.Start[d] + i, info.Shape[d], border);
                maps[d][i] = c;
                lo = Math.Min(lo, c);
                hi = Math.Max(hi, c);
            }
            innerStart[d] = lo;
            innerShape[d] = hi - lo + 1;
            for (long i = 0; i < box.Shape[d]; i++) maps[d][i] -= lo;
        }
        var source = new byte[new NdBox(innerStart, innerShape).ElementCount * elementSize];
        volume.Read(new NdBox(innerStart, innerShape), source);
        GatherMapped(source, innerShape, destination, box.Shape, maps, elementSize);
    }

    private static long MapCoordinate(long c, long n, BorderMode border)
    {
        if (c >= 0 && c < n) return c;
        if (border == BorderMode.Nearest || n == 1) return Math.Clamp(c, 0, n - 1);
        long period = 2 * (n - 1);                  // reflect-101: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
        long m = ((c % period) + period) % period;
        return m < n ? m : period - m;
    }

    private static void GatherMapped(ReadOnlySpan<byte> src, long[] srcShape, Span<byte> dst, long[] dstShape, long[][] maps, int elementSize)
    {
        int rank = dstShape.Length;
        Span<long> srcStrides = stackalloc long[rank];
        Strided.RowMajorStrides(srcShape, srcStrides);
        long total = dstShape.Aggregate(1L, (a, b) => a * b);
        Span<long> index = stackalloc long[rank];
        index.Clear();
        for (long linear = 0; linear < total; linear++)
        {
            long s = 0;
            for (int d = 0; d < rank; d++) s += maps[d][index[d]] * srcStrides[d];
            src.Slice((int)(s * elementSize), elementSize).CopyTo(dst.Slice((int)(linear * elementSize), elementSize));
            for (int d = rank - 1; d >= 0 && ++index[d] == dstShape[d]; d--) index[d] = 0;
        }
    }

    private static void CheckType<T>(IVolume volume) where T : unmanaged
    {
        var wanted = DataTypes.Of<T>();
        if (wanted != volume.Info.DataType)
            throw new VolumeException(volume.Info.Location, $"holds {volume.Info.DataType.Name()} but was accessed as {wanted.Name()}");
    }
}
