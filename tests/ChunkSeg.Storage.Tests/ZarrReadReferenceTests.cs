using System.Text.Json;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Zarr;

namespace ChunkSeg.Storage.Tests;

/// <summary>
/// Arrays written by zarr-python (Python/zarr_write.py: every codec, every dtype in both byte orders, fill values
/// with missing chunks, odd shapes, both dimension separators, nested groups, OME-Zarr and xarray metadata)
/// read by ChunkSeg, whole and in boxes crossing chunk borders, compared with numpy.
/// </summary>
public sealed class ZarrReadReferenceTests
{
    [Fact]
    public void Reads_every_case_zarr_python_wrote()
    {
        using var dir = new TempDir();
        PythonReference.Run("zarr_write.py", dir.Path);
        using var manifest = JsonDocument.Parse(File.ReadAllBytes(dir["manifest.json"]));
        var failures = new List<string>();
        int cases = 0;
        foreach (var c in manifest.RootElement.EnumerateArray())
        {
            cases++;
            string name = c.GetProperty("name").GetString()!;
            try
            {
                CheckCase(c);
            }
            catch (Exception e)
            {
                failures.Add($"{name}: {e.GetType().Name}: {e.Message}");
            }
        }
        Assert.True(cases > 40, $"only {cases} cases");
        if (failures.Count > 0) Assert.Fail(string.Join("\n", failures));
    }

    private static void CheckCase(JsonElement c)
    {
        string store = c.GetProperty("store").GetString()!;
        string inner = c.GetProperty("inner").GetString()!;
        var expected = NpyFile.Read(c.GetProperty("npy").GetString()!);
        using var volume = ZarrVolume.Open(store, inner, axes: null, writable: false);
        var info = volume.Info;
        Assert.Equal(expected.Shape, info.Shape);
        Assert.Equal(expected.DataType, info.DataType);
        Assert.Equal(NpyFile.TypeOf(c.GetProperty("dtype").GetString()!), info.DataType);
        Assert.Equal(c.GetProperty("chunks").EnumerateArray().Select(e => e.GetInt32()), info.StorageChunks);
        if (c.TryGetProperty("axes", out var axes))
        {
            Assert.Equal(axes.GetString(), info.Axes.Names);
            var vs = c.GetProperty("voxel_size").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.Equal(new VoxelSize(vs[0], vs[1], vs[2], c.GetProperty("unit").GetString()!), info.VoxelSize);
        }
        else
        {
            Assert.Equal(AxisOrder.DefaultForRank(info.Shape.Length), info.Axes);
        }
        if (c.GetProperty("codec").GetString() == "blosc-lz4" && !c.TryGetProperty("axes", out _))
            Assert.Equal("blosc(lz4, clevel 5, shuffle)", info.Codec);

        ReferenceReads.AssertWholeAndBoxes(volume, expected, c, "whole array");
    }

    [Fact]
    public void Writes_into_big_endian_arrays_zarr_python_wrote()
    {
        using var dir = new TempDir();
        PythonReference.Run("zarr_write.py", dir.Path);
        var manifest = new List<Dictionary<string, object?>>();
        // codec_3: ">f4", zlib, separator "/"; dtype_*: every dtype with ">" order.
        using var cases = JsonDocument.Parse(File.ReadAllBytes(dir["manifest.json"]));
        foreach (var c in cases.RootElement.EnumerateArray().Where(c => c.GetProperty("dtype").GetString()![0] == '>').Take(6))
        {
            string name = c.GetProperty("name").GetString()!;
            string store = c.GetProperty("store").GetString()!;
            var expected = NpyFile.Read(c.GetProperty("npy").GetString()!);
            using (var volume = VolumeStore.Open(store, writable: true))
            {
                var box = new NdBox([2, 3, 4], [5, 9, 8]);   // crosses chunk borders on every axis
                var data = TestArrays.Random(expected.DataType, box.ElementCount, name.Length);
                volume.Write(box, data);
                Internal.Strided.CopyBox(data, box.Shape, new long[3], expected.Data, expected.Shape, box.Start, box.Shape, expected.DataType.SizeInBytes());
                var actual = new byte[expected.Data.Length];
                volume.Read(NdBox.Whole(expected.Shape), actual);
                TestArrays.AssertEqual(expected.DataType, expected.Data, actual, expected.Shape, name);
            }
            NpyFile.Write(dir[$"{name}.after.npy"], expected.DataType, expected.Shape, expected.Data);
            manifest.Add(new()
            {
                ["name"] = name, ["store"] = store, ["inner"] = "", ["npy"] = dir[$"{name}.after.npy"],
                ["dtype"] = c.GetProperty("dtype").GetString(), ["chunks"] = c.GetProperty("chunks").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                ["compressor"] = c.GetProperty("codec").GetString() switch { "none" => null, var s when s!.StartsWith("blosc", StringComparison.Ordinal) => "blosc", var s => s },
            });
        }
        Assert.Equal(6, manifest.Count);
        ZarrWriteReferenceTests.AssertZarrPythonAgrees(dir, manifest);
    }

    [Fact]
    public void Codec_descriptions_and_nested_addresses()
    {
        using var dir = new TempDir();
        PythonReference.Run("zarr_write.py", dir.Path);
        using var nested = VolumeStore.Open($"{dir.Path}/nested.zarr/labels/cells");
        Assert.Equal("zstd(level 3)", nested.Info.Codec);
        Assert.Equal(Path.Combine(dir.Path, "nested.zarr", "labels/cells"), nested.Info.Location);
        using var image = VolumeStore.Open($"{dir.Path}/image.zarr");
        Assert.EndsWith("0", image.Info.Location, StringComparison.Ordinal);
        Assert.Equal(2, image.Info.Channels);
        using var level1 = VolumeStore.Open($"{dir.Path}/image.zarr/1");
        Assert.Equal([2L, 3, 4, 4], level1.Info.Shape);
        Assert.Equal("czyx", level1.Info.Axes.Names);   // default for rank 4
        using var gzip = VolumeStore.Open($"{dir.Path}/single.zarr");
        Assert.Equal("gzip(level 5)", gzip.Info.Codec);
        using var none = VolumeStore.Open($"{dir.Path}/codec_0.zarr");
        Assert.Equal("none", none.Info.Codec);
        Assert.Equal(7, none.Info.FillValue);
        using var bitshuffle = VolumeStore.Open($"{dir.Path}/codec_14.zarr");
        Assert.Equal("blosc(zlib, clevel 5, bitshuffle)", bitshuffle.Info.Codec);
        using var nan = VolumeStore.Open($"{dir.Path}/codec_1.zarr");
        Assert.True(double.IsNaN(nan.Info.FillValue));
    }
}
