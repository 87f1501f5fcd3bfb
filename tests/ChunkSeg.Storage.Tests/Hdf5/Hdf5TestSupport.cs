using System.Text.Json;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Storage.Internal;

namespace ChunkSeg.Storage.Tests.Hdf5;

internal static class Hdf5TestSupport
{
    /// <summary>../shared/data/<paramref name="relative"/>; see <see cref="ChunkSeg.Tests.Shared.SharedData"/>.</summary>
    public static string SharedData(string relative) => ChunkSeg.Tests.Shared.SharedData.Require(relative);

    /// <summary>Runs a Python script on a JSON list of cases written to <paramref name="dir"/>.</summary>
    public static string RunWithCases(string script, TempDir dir, object cases)
    {
        string path = dir[$"{Path.GetFileNameWithoutExtension(script)}-{Guid.NewGuid():N}.json"];
        File.WriteAllText(path, JsonSerializer.Serialize(cases));
        return PythonReference.Run(script, path);
    }

    /// <summary>The box of <paramref name="whole"/> (C order, shape <paramref name="shape"/>), as NumPy slicing gives it.</summary>
    public static byte[] Slice(byte[] whole, long[] shape, NdBox box, int elementSize)
    {
        var result = new byte[box.ElementCount * elementSize];
        Strided.CopyBox(whole, shape, box.Start, result, box.Shape, new long[box.Rank], box.Shape, elementSize);
        return result;
    }

    /// <summary>Random boxes inside <paramref name="shape"/>, seeded, most of them crossing chunk borders.</summary>
    public static IEnumerable<NdBox> RandomBoxes(long[] shape, int seed, int count)
    {
        var rng = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var start = new long[shape.Length];
            var extent = new long[shape.Length];
            for (int d = 0; d < shape.Length; d++)
            {
                start[d] = rng.NextInt64(0, shape[d]);
                extent[d] = rng.NextInt64(1, shape[d] - start[d] + 1);
            }
            yield return new NdBox(start, extent);
        }
    }
}
