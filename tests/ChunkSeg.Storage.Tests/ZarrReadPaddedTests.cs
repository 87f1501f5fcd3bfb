using System.Text.Json;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Storage.Tests;

/// <summary>
/// <see cref="VolumeExtensions.ReadPadded"/> on a Zarr array against numpy.pad: Reflect101 = 'reflect',
/// Nearest = 'edge', Constant = 'constant' with the array's fill value (Python/pad_reference.py).
/// </summary>
public sealed class ZarrReadPaddedTests
{
    [Fact]
    public void Matches_numpy_pad_for_boxes_sticking_out_on_several_sides()
    {
        using var dir = new TempDir();
        PythonReference.Run("pad_reference.py", dir.Path);
        using var volume = VolumeStore.Open(dir["pad.zarr"]);
        Assert.Equal(-9, volume.Info.FillValue);
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(dir["manifest.json"]));
        var failures = new List<string>();
        foreach (var c in manifest.RootElement.EnumerateArray())
        {
            var mode = Enum.Parse<BorderMode>(c.GetProperty("mode").GetString()!);
            var box = new NdBox(c.GetProperty("start").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                c.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray());
            var expected = NpyFile.Read(c.GetProperty("npy").GetString()!);
            var actual = new byte[expected.Data.Length];
            volume.ReadPadded(box, actual, mode);
            if (TestArrays.Difference(DataType.Int16, expected.Data, actual, box.Shape) is { } d)
                failures.Add($"{mode} {box}: {d}");
        }
        if (failures.Count > 0) Assert.Fail(string.Join("\n", failures));
    }
}
