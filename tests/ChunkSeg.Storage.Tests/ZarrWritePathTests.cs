using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Internal;
using ChunkSeg.Storage.Zarr;

namespace ChunkSeg.Storage.Tests;

/// <summary>
/// A chunk the box covers whole inside the array is encoded straight from the source (a shard so covered is copied into
/// the unit buffer without a fill first), and a chunk that lies whole and contiguous in a read box is decoded straight into
/// it. All must give the bytes of the read-modify-write path, which the reference tests check against zarr-python and zarrita.
/// </summary>
public sealed class ZarrWritePathTests
{
    private static readonly long[] Shape = [12, 10, 18];
    private static readonly int[] Chunks = [4, 5, 6];

    [Theory]
    [InlineData("none", 2, false)]
    [InlineData("blosc-lz4", 2, false)]
    [InlineData("none", 3, false)]
    [InlineData("none", 3, true)]
    [InlineData("zstd", 3, true)]
    public void Whole_unit_writes_and_reads_match_the_read_modify_write_path(string codec, int format, bool sharded)
    {
        using var dir = new TempDir();
        var type = DataType.UInt16;
        int size = type.SizeInBytes();
        // Shards of 8 × 10 × 12: the last shard on z and x reaches past the array's edge.
        var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), Shape, type, Chunks, VoxelSize.Isotropic, CodecSpec.Parse(codec), 3,
            ZarrFormat: format, ShardShape: sharded ? [8, 10, 12] : null);
        long[] unit = sharded ? [8, 10, 12] : [4, 5, 6];
        byte[] data = TestArrays.Random(type, Shape.Aggregate(1L, (a, b) => a * b), 11);
        // The first chunk's worth of z planes is the fill value: sharded, those inner chunks are not stored.
        Scalars.Fill(data.AsSpan(0, 4 * 10 * 18 * size), Scalars.Encode(3, type));

        var stores = new[] { "whole", "units", "planes" }.Select(n => dir[$"{n}.zarr"]).ToArray();
        // One box for the array: units inside it are not contiguous in the source.
        using (var v = ZarrVolume.CreateArray(stores[0], options))
            v.Write(NdBox.Whole(Shape), data);
        // One box per unit: contiguous in the source.
        using (var v = ZarrVolume.CreateArray(stores[1], options))
            foreach (var box in Grid(unit))
                v.Write(box, Slice(data, box, size));
        // One z plane at a time: every unit is read, patched and rewritten.
        using (var v = ZarrVolume.CreateArray(stores[2], options))
            for (long z = 0; z < Shape[0]; z++)
            {
                var box = new NdBox([z, 0, 0], [1, Shape[1], Shape[2]]);
                v.Write(box, Slice(data, box, size));
            }

        var files = Files(stores[2]);
        Assert.NotEmpty(files);
        foreach (string store in stores[..2])
        {
            Assert.Equal(files.Keys, Files(store).Keys);
            foreach (var (name, bytes) in Files(store))
                Assert.True(bytes.AsSpan().SequenceEqual(files[name]), $"{Path.GetFileName(store)}: {name} differs");
        }

        // Reads: the whole array (chunks not contiguous in it), and one box per chunk (contiguous, decoded in place).
        using var back = VolumeStore.Open(stores[0]);
        var actual = new byte[data.Length];
        back.Read(NdBox.Whole(Shape), actual);
        Assert.Equal(data, actual);
        foreach (var box in Grid([4, 5, 6]))
        {
            var part = new byte[box.ElementCount * size];
            back.Read(box, part);
            Assert.Equal(Slice(data, box, size), part);
        }
    }

    private static IEnumerable<NdBox> Grid(long[] cell)
    {
        for (long z = 0; z < Shape[0]; z += cell[0])
            for (long y = 0; y < Shape[1]; y += cell[1])
                for (long x = 0; x < Shape[2]; x += cell[2])
                    yield return new NdBox([z, y, x],
                        [Math.Min(cell[0], Shape[0] - z), Math.Min(cell[1], Shape[1] - y), Math.Min(cell[2], Shape[2] - x)]);
    }

    private static byte[] Slice(byte[] data, NdBox box, int size)
    {
        var part = new byte[box.ElementCount * size];
        Strided.CopyBox(data, Shape, box.Start, part, box.Shape, new long[3], box.Shape, size);
        return part;
    }

    private static Dictionary<string, byte[]> Files(string store) =>
        Directory.EnumerateFiles(store, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(store, f), File.ReadAllBytes);
}
