using System.Runtime.InteropServices;

namespace ChunkSeg.Storage.Internal;

/// <summary>
/// Copies an n-dimensional box between two C-ordered buffers of possibly different shapes. The innermost
/// axis is contiguous in both, so each row of the box is one <see cref="Span{T}.CopyTo"/>; the outer axes
/// are walked with an odometer, with no allocation per row.
/// </summary>
internal static class Strided
{
    /// <param name="src">Source buffer of shape <paramref name="srcShape"/>.</param>
    /// <param name="srcStart">Corner of the box in source coordinates.</param>
    /// <param name="dst">Destination buffer of shape <paramref name="dstShape"/>.</param>
    /// <param name="dstStart">Corner of the box in destination coordinates.</param>
    /// <param name="boxShape">Extent of the box.</param>
    /// <param name="elementSize">Bytes per element.</param>
    public static void CopyBox(
        ReadOnlySpan<byte> src, ReadOnlySpan<long> srcShape, ReadOnlySpan<long> srcStart,
        Span<byte> dst, ReadOnlySpan<long> dstShape, ReadOnlySpan<long> dstStart,
        ReadOnlySpan<long> boxShape, int elementSize)
    {
        int rank = boxShape.Length;
        for (int d = 0; d < rank; d++)
            if (boxShape[d] == 0) return;
        if (rank == 0)
        {
            src[..elementSize].CopyTo(dst);
            return;
        }

        Span<long> srcStrides = stackalloc long[rank];
        Span<long> dstStrides = stackalloc long[rank];
        RowMajorStrides(srcShape, srcStrides);
        RowMajorStrides(dstShape, dstStrides);

        int rowBytes = checked((int)(boxShape[rank - 1] * elementSize));
        Span<long> index = stackalloc long[rank];   // odometer over the outer rank-1 axes
        index.Clear();
        while (true)
        {
            long s = srcStart[rank - 1], t = dstStart[rank - 1];
            for (int d = 0; d < rank - 1; d++)
            {
                s += (srcStart[d] + index[d]) * srcStrides[d];
                t += (dstStart[d] + index[d]) * dstStrides[d];
            }
            src.Slice(checked((int)(s * elementSize)), rowBytes).CopyTo(dst.Slice(checked((int)(t * elementSize)), rowBytes));

            int axis = rank - 2;
            while (axis >= 0 && ++index[axis] == boxShape[axis])
                index[axis--] = 0;
            if (axis < 0) return;
        }
    }

    /// <summary>
    /// Whether a box of extent <paramref name="box"/> in a C-ordered array of <paramref name="shape"/> is one run of
    /// elements (every axis after its first of extent &gt; 1 is whole), so it can be used in place instead of copied.
    /// </summary>
    public static bool IsContiguous(ReadOnlySpan<long> shape, ReadOnlySpan<long> box)
    {
        int d = 0;
        while (d < box.Length - 1 && box[d] == 1) d++;
        for (d++; d < box.Length; d++)
            if (box[d] != shape[d]) return false;
        return true;
    }

    /// <summary>Element offset of <paramref name="index"/> in a C-ordered array of <paramref name="shape"/>.</summary>
    public static long Offset(ReadOnlySpan<long> shape, ReadOnlySpan<long> index)
    {
        long offset = 0;
        for (int d = 0; d < shape.Length; d++) offset = offset * shape[d] + index[d];
        return offset;
    }

    /// <summary>Element strides of a C-ordered array.</summary>
    public static void RowMajorStrides(ReadOnlySpan<long> shape, Span<long> strides)
    {
        long stride = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            strides[d] = stride;
            stride *= shape[d];
        }
    }

    /// <summary>Reverses the bytes of each <paramref name="elementSize"/>-byte element in place.</summary>
    public static void SwapBytes(Span<byte> data, int elementSize)
    {
        switch (elementSize)
        {
            case 1: return;
            case 2: System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, ushort>(data), MemoryMarshal.Cast<byte, ushort>(data)); return;
            case 4: System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, uint>(data), MemoryMarshal.Cast<byte, uint>(data)); return;
            case 8: System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, ulong>(data), MemoryMarshal.Cast<byte, ulong>(data)); return;
            default: throw new ArgumentOutOfRangeException(nameof(elementSize), elementSize, "element size must be 1, 2, 4 or 8");
        }
    }
}
