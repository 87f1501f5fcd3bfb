using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Internal;
using ChunkSeg.Storage.Zarr;

namespace ChunkSeg.Storage.Tests;

/// <summary>
/// Many threads write disjoint 1-voxel-thick slabs that share storage chunks, so every chunk sees
/// concurrent read-modify-writes; no slab may be lost.
/// </summary>
public sealed class ZarrConcurrencyTests
{
    [Theory]
    [InlineData("blosc-lz4", 0)]   // slabs along z
    [InlineData("zlib", 2)]        // slabs along x: each slab touches every chunk row
    public void Parallel_writers_sharing_chunks_lose_nothing(string codec, int axis)
    {
        using var dir = new TempDir();
        long[] shape = [13, 14, 15];
        var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), shape, DataType.UInt32, [8, 8, 8], VoxelSize.Isotropic, CodecSpec.Parse(codec), FillValue: 1);
        string store = dir["slabs.zarr"];
        var expected = new byte[shape.Aggregate(1L, (a, b) => a * b) * 4];
        var boxes = Enumerable.Range(0, (int)shape[axis]).Select(i =>
        {
            long[] start = new long[3], extent = (long[])shape.Clone();
            start[axis] = i;
            extent[axis] = 1;
            return new NdBox(start, extent);
        }).ToArray();
        var data = boxes.Select((b, i) => TestArrays.Random(DataType.UInt32, b.ElementCount, 1000 + i)).ToArray();
        for (int i = 0; i < boxes.Length; i++)
            Strided.CopyBox(data[i], boxes[i].Shape, new long[3], expected, shape, boxes[i].Start, boxes[i].Shape, 4);

        using (var volume = VolumeStore.Create(VolumeStore.ParseAddress(store), options))
        {
            // Two handles on the same array: the chunk locks must hold across instances too.
            using var second = VolumeStore.Open(store, writable: true);
            var handles = new[] { volume, second };
            Parallel.For(0, boxes.Length, new ParallelOptions { MaxDegreeOfParallelism = 16 },
                i => handles[i % 2].Write(boxes[i], data[i]));
            var actual = new byte[expected.Length];
            volume.Read(NdBox.Whole(shape), actual);
            TestArrays.AssertEqual(DataType.UInt32, expected, actual, shape, "read back by ChunkSeg");
        }
        Assert.Empty(Directory.EnumerateFiles(store, "*.tmp-*", SearchOption.AllDirectories));

        NpyFile.Write(dir["slabs.npy"], DataType.UInt32, shape, expected);
        ZarrWriteReferenceTests.AssertZarrPythonAgrees(dir, [new()
        {
            ["name"] = "slabs", ["store"] = store, ["inner"] = "0", ["npy"] = dir["slabs.npy"], ["dtype"] = "<u4",
            ["chunks"] = new[] { 8, 8, 8 }, ["compressor"] = codec.StartsWith("blosc", StringComparison.Ordinal) ? "blosc" : codec,
        }]);
    }

    [Fact]
    public async Task Concurrent_readers_see_whole_chunks_while_writers_rewrite_them()
    {
        using var dir = new TempDir();
        long[] shape = [4, 16, 16];
        var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), shape, DataType.UInt16, [4, 16, 16], VoxelSize.Isotropic, CodecSpec.Parse("zstd"));
        using var volume = ZarrVolume.CreateArray(dir["one-chunk.zarr"], options);
        // Each write sets a whole z-plane to one value; a reader must never see a half-written file (a decode error).
        var writers = Task.Run(() => Parallel.For(0, 200, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var plane = new ushort[16 * 16];
            Array.Fill(plane, (ushort)i);
            volume.Write(new NdBox([i % 4, 0, 0], [1, 16, 16]), plane.AsSpan());
        }));
        var buffer = new ushort[4 * 16 * 16];
        while (!writers.IsCompleted)
        {
            volume.Read(NdBox.Whole(shape), buffer.AsSpan());
            for (int z = 0; z < 4; z++)
                Assert.All(buffer.AsSpan(z * 256, 256).ToArray(), v => Assert.Equal(buffer[z * 256], v));
        }
        await writers;
    }
}
