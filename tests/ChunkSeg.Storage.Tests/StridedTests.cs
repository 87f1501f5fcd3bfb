using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Tests;

public class StridedTests
{
    [Theory]
    [InlineData(new long[] { 4, 5, 6 }, new long[] { 2, 5, 6 }, true)]
    [InlineData(new long[] { 4, 5, 6 }, new long[] { 1, 3, 6 }, true)]
    [InlineData(new long[] { 4, 5, 6 }, new long[] { 1, 1, 4 }, true)]
    [InlineData(new long[] { 4, 5, 6 }, new long[] { 2, 3, 6 }, false)]
    [InlineData(new long[] { 4, 5, 6 }, new long[] { 1, 2, 5 }, false)]
    public void IsContiguous_is_one_run_of_elements(long[] shape, long[] box, bool contiguous)
    {
        Assert.Equal(contiguous, Strided.IsContiguous(shape, box));
        Assert.Equal(2 * 30 + 3 * 6 + 4, Strided.Offset(shape, [2, 3, 4]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void CopyBox_matches_elementwise_reference(int rank)
    {
        var rng = new Random(1234 + rank);
        var srcShape = Enumerable.Range(0, rank).Select(_ => (long)rng.Next(1, 7)).ToArray();
        var dstShape = Enumerable.Range(0, rank).Select(_ => (long)rng.Next(1, 7)).ToArray();
        var box = new long[rank];
        var srcStart = new long[rank];
        var dstStart = new long[rank];
        for (int d = 0; d < rank; d++)
        {
            box[d] = rng.Next(0, (int)Math.Min(srcShape[d], dstShape[d]) + 1);
            srcStart[d] = rng.Next(0, (int)(srcShape[d] - box[d]) + 1);
            dstStart[d] = rng.Next(0, (int)(dstShape[d] - box[d]) + 1);
        }
        var src = Enumerable.Range(0, (int)srcShape.Aggregate(1L, (a, b) => a * b)).Select(i => (ushort)(i + 1)).ToArray();
        var dst = new ushort[dstShape.Aggregate(1L, (a, b) => a * b)];
        Strided.CopyBox(System.Runtime.InteropServices.MemoryMarshal.AsBytes<ushort>(src), srcShape, srcStart,
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(dst.AsSpan()), dstShape, dstStart, box, sizeof(ushort));

        var expected = new ushort[dst.Length];
        foreach (var idx in Indices(box))
        {
            long s = 0, t = 0;
            for (int d = 0; d < rank; d++) { s = s * srcShape[d] + srcStart[d] + idx[d]; t = t * dstShape[d] + dstStart[d] + idx[d]; }
            expected[t] = src[s];
        }
        Assert.Equal(expected, dst);
    }

    private static IEnumerable<long[]> Indices(long[] shape)
    {
        if (shape.Any(s => s == 0)) yield break;
        var idx = new long[shape.Length];
        while (true)
        {
            yield return (long[])idx.Clone();
            int d = shape.Length - 1;
            while (d >= 0 && ++idx[d] == shape[d]) idx[d--] = 0;
            if (d < 0) yield break;
        }
    }
}
