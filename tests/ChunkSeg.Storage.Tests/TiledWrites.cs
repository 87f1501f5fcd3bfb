using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Tests;

/// <summary>
/// The write pattern of the Zarr reference tests: an 11 × 17 × 19 array written in boxes that tile it without following
/// any chunk or shard grid (4 × 5 × 6 chunks, 8 × 10 × 12 shards), the last box never written (it must read as the fill).
/// </summary>
internal static class TiledWrites
{
    public static readonly long[] Shape = [11, 17, 19];

    public static readonly NdBox[] Boxes = Tiles([0, 3, 7, 11], [0, 8, 17], [0, 10, 19]);

    /// <summary>Writes every box but the last from seeded data; returns the whole expected array.</summary>
    public static byte[] Write(IVolume volume, DataType type, int seed)
    {
        int size = type.SizeInBytes();
        var expected = new byte[Shape.Aggregate(1L, (a, b) => a * b) * size];
        Scalars.Fill(expected, Scalars.Encode(volume.Info.FillValue, type));
        for (int i = 0; i < Boxes.Length - 1; i++)
        {
            var box = Boxes[i];
            var data = TestArrays.Random(type, box.ElementCount, seed * 100 + i);
            volume.Write(box, data);
            Strided.CopyBox(data, box.Shape, new long[3], expected, Shape, box.Start, box.Shape, size);
        }
        return expected;
    }

    private static NdBox[] Tiles(long[] zs, long[] ys, long[] xs)
    {
        var boxes = new List<NdBox>();
        for (int z = 0; z + 1 < zs.Length; z++)
            for (int y = 0; y + 1 < ys.Length; y++)
                for (int x = 0; x + 1 < xs.Length; x++)
                    boxes.Add(new NdBox([zs[z], ys[y], xs[x]], [zs[z + 1] - zs[z], ys[y + 1] - ys[y], xs[x + 1] - xs[x]]));
        return [.. boxes];
    }
}
