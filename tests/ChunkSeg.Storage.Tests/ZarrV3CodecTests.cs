using System.Text.Json;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Zarr;

namespace ChunkSeg.Storage.Tests;

/// <summary>The v3 codec pipeline on its own: transpose against an index-by-index reference, and encode → decode round trips.</summary>
public sealed class ZarrV3CodecTests
{
    [Theory]
    [InlineData(new[] { 2, 0, 1 }, 1)]
    [InlineData(new[] { 1, 2, 0 }, 2)]
    [InlineData(new[] { 2, 1, 0 }, 4)]
    [InlineData(new[] { 0, 1, 2 }, 8)]
    public void Transpose_moves_every_element_where_numpy_would(int[] order, int elementSize)
    {
        long[] shape = [3, 4, 5];
        var src = new byte[60 * elementSize];
        new Random(1).NextBytes(src);
        var dst = new byte[src.Length];
        ZarrV3Codecs.Transpose(src, shape, order, dst, elementSize);
        long[] dstShape = order.Select(a => shape[a]).ToArray();
        var i = new long[3];
        for (int o = 0; o < 60; o++)
        {
            long[] j = [o / (dstShape[1] * dstShape[2]), o / dstShape[2] % dstShape[1], o % dstShape[2]];
            for (int d = 0; d < 3; d++) i[order[d]] = j[d];
            long s = (i[0] * shape[1] + i[1]) * shape[2] + i[2];
            Assert.Equal(src.AsSpan((int)s * elementSize, elementSize).ToArray(), dst.AsSpan(o * elementSize, elementSize).ToArray());
        }
    }

    [Theory]
    [InlineData("""[{"name": "transpose", "configuration": {"order": [1, 2, 0]}}, {"name": "bytes", "configuration": {"endian": "big"}}, {"name": "gzip", "configuration": {"level": 1}}, {"name": "crc32c"}]""")]
    [InlineData("""[{"name": "transpose", "configuration": {"order": [2, 0, 1]}}, {"name": "bytes", "configuration": {"endian": "little"}}]""")]
    [InlineData("""[{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}, {"name": "zstd", "configuration": {"level": 3, "checksum": true}}, {"name": "crc32c"}]""")]
    public void Encode_then_decode_is_the_identity(string codecs)
    {
        long[] shape = [4, 5, 6];
        using var doc = JsonDocument.Parse(codecs);
        var pipeline = ZarrV3Codecs.Parse(doc.RootElement, DataType.UInt16, shape, "test");
        var chunk = TestArrays.Random(DataType.UInt16, 120, 4);
        using var encoded = pipeline.Encode(chunk);
        var decoded = new byte[chunk.Length];
        pipeline.Decode(encoded.Span, decoded);
        Assert.Equal(chunk, decoded);
    }
}
