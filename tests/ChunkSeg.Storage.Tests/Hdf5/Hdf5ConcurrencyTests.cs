using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Tests.Hdf5;

/// <summary>Many threads on one HDF5 volume never corrupt each other: writers share chunks; readers share nothing and take no lock.</summary>
public sealed class Hdf5ConcurrencyTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    [Fact]
    public void Parallel_writes_and_reads_of_disjoint_boxes_sharing_chunks()
    {
        long[] shape = [9, 23, 31];
        // Chunks 4x8x8 do not align with the 3x5x7 tiles below, so neighbouring writers share chunks.
        var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), shape, DataType.UInt32, [4, 8, 8], VoxelSize.Isotropic, CodecSpec.Gzip(1));
        var tiles = new List<NdBox>();
        for (long z = 0; z < shape[0]; z += 3)
            for (long y = 0; y < shape[1]; y += 5)
                for (long x = 0; x < shape[2]; x += 7)
                    tiles.Add(new NdBox([z, y, x], [Math.Min(3, shape[0] - z), Math.Min(5, shape[1] - y), Math.Min(7, shape[2] - x)]));

        static uint Value(long z, long y, long x) => (uint)(x + 31 * (y + 23 * z)) + 1;
        static uint[] TileValues(NdBox b)
        {
            var v = new uint[b.ElementCount];
            int i = 0;
            for (long z = 0; z < b.Shape[0]; z++)
                for (long y = 0; y < b.Shape[1]; y++)
                    for (long x = 0; x < b.Shape[2]; x++)
                        v[i++] = Value(b.Start[0] + z, b.Start[1] + y, b.Start[2] + x);
            return v;
        }

        using (var volume = VolumeStore.Create(new VolumeAddress(VolumeFormat.Hdf5, dir["c.h5"], "labels"), options))
        {
            Parallel.ForEach(tiles, new ParallelOptions { MaxDegreeOfParallelism = 8 }, tile => volume.Write(tile, TileValues(tile).AsSpan()));
            volume.Flush();
        }

        using var reopened = VolumeStore.Open(dir["c.h5"] + "/labels");
        var all = new uint[reopened.Info.ElementCount];
        reopened.Read(NdBox.Whole(shape), all.AsSpan());
        Assert.Equal(TileValues(NdBox.Whole(shape)), all);

        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.ForEach(tiles, new ParallelOptions { MaxDegreeOfParallelism = 8 }, tile =>
        {
            var back = new uint[tile.ElementCount];
            reopened.Read(tile, back.AsSpan());
            if (!back.SequenceEqual(TileValues(tile))) failures.Add(tile.ToString());
        });
        Assert.Empty(failures);
    }
}
