using System.Text.Json;
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Storage.Tests;

/// <summary>What the reader tests check of a volume a reference library wrote: the whole of it, then each box the script cut out.</summary>
internal static class ReferenceReads
{
    /// <summary>
    /// <paramref name="volume"/> read whole equals <paramref name="expected"/> (named <paramref name="whole"/> in a failure),
    /// and each of the case's "boxes" (start, shape, npy) equals its .npy.
    /// </summary>
    public static void AssertWholeAndBoxes(IVolume volume, NpyArray expected, JsonElement testCase, string whole)
    {
        var info = volume.Info;
        var all = new byte[expected.Data.Length];
        volume.Read(NdBox.Whole(info.Shape), all);
        TestArrays.AssertEqual(info.DataType, expected.Data, all, info.Shape, whole);
        foreach (var b in testCase.GetProperty("boxes").EnumerateArray())
        {
            var box = new NdBox(b.GetProperty("start").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                b.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray());
            var slice = NpyFile.Read(b.GetProperty("npy").GetString()!);
            var actual = new byte[slice.Data.Length];
            volume.Read(box, actual);
            TestArrays.AssertEqual(info.DataType, slice.Data, actual, box.Shape, $"box {box}");
        }
    }
}
