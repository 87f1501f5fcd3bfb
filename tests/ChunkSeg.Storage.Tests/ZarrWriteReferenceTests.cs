using System.Text.Json;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Internal;
using ChunkSeg.Storage.Zarr;

namespace ChunkSeg.Storage.Tests;

/// <summary>
/// Arrays and OME-Zarr images written by ChunkSeg in boxes that cross chunk borders, read back by zarr-python
/// (Python/zarr_read.py) and by ChunkSeg, and compared with the expected data.
/// </summary>
public sealed class ZarrWriteReferenceTests
{
    private static readonly long[] Shape = TiledWrites.Shape;
    private static readonly int[] Chunks = [4, 5, 6];


    [Fact]
    public void Zarr_python_reads_what_ChunkSeg_wrote()
    {
        using var dir = new TempDir();
        var cases = new List<(string Name, DataType Type, CodecSpec Codec)>();
        foreach (string codec in CodecSpec.Names)
            foreach (var type in new[] { DataType.UInt16, DataType.Float64 })
                cases.Add(($"codec_{codec}_{type.Name()}", type, CodecSpec.Parse(codec)));
        foreach (var type in Enum.GetValues<DataType>())
            foreach (string codec in new[] { "blosc-lz4", "zstd" })
                cases.Add(($"dtype_{type.Name()}_{codec}", type, CodecSpec.Parse(codec)));

        var manifest = new List<Dictionary<string, object?>>();
        int seed = 0;
        foreach (var (name, type, codec) in cases)
        {
            seed++;
            double fill = seed % 3 == 0 ? 0 : type.IsFloat() ? (seed % 2 == 0 ? double.NaN : -2.5) : 5;
            var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), Shape, type, Chunks, new VoxelSize(2, 0.5, 0.5), codec, fill);
            // Half as OME-Zarr images (separator "/"), half as plain arrays with separator ".".
            bool ome = seed % 2 == 0;
            string store = dir[$"{name}.zarr"];
            using IVolume volume = ome
                ? VolumeStore.Create(new VolumeAddress(VolumeFormat.Zarr, store, ""), options)
                : ZarrVolume.CreateArray(store, options, dimensionSeparator: '.');
            byte[] expected = TiledWrites.Write(volume, type, seed);
            NpyFile.Write(dir[$"{name}.npy"], type, Shape, expected);

            // ChunkSeg reads its own output back through the public entry point.
            using (var reopened = VolumeStore.Open(store))
            {
                Assert.Equal(codec.Name == "none" ? "none" : volume.Info.Codec, reopened.Info.Codec);
                var actual = new byte[expected.Length];
                reopened.Read(NdBox.Whole(Shape), actual);
                TestArrays.AssertEqual(type, expected, actual, Shape, name);
            }

            manifest.Add(new()
            {
                ["name"] = name, ["store"] = store, ["inner"] = "", ["npy"] = dir[$"{name}.npy"],
                ["dtype"] = NpyFile.Descr(type), ["chunks"] = Chunks,
                ["compressor"] = codec.Name == "none" ? null : codec.IsBlosc ? "blosc" : codec.Name,
                ["fill_value"] = double.IsNaN(fill) ? "NaN" : fill,
                ["ome"] = ome ? new Dictionary<string, object?>
                {
                    ["axes"] = new[] { new object?[] { "z", "space", "micrometer" }, ["y", "space", "micrometer"], ["x", "space", "micrometer"] },
                    ["scale"] = new[] { 2.0, 0.5, 0.5 },
                } : null,
            });
        }
        AssertZarrPythonAgrees(dir, manifest);
    }

    [Fact]
    public void Ome_zarr_metadata_is_what_ngff_0_4_asks_for()
    {
        using var dir = new TempDir();
        var manifest = new List<Dictionary<string, object?>>();

        // A 5-D image at the store root.
        long[] shape5 = [2, 3, 5, 6, 7];
        var o5 = new VolumeCreateOptions(AxisOrder.Parse("tczyx"), shape5, DataType.UInt8, [1, 2, 3, 4, 5], new VoxelSize(2.0, 0.5, 0.25), CodecSpec.Parse("blosc-zstd"));
        string store5 = dir["image.zarr"];
        using (var v = VolumeStore.Create(VolumeStore.ParseAddress(store5), o5))
        {
            var data = TestArrays.Random(DataType.UInt8, 2 * 3 * 5 * 6 * 7, 11);
            v.Write(NdBox.Whole(shape5), data);
            NpyFile.Write(dir["image.npy"], DataType.UInt8, shape5, data);
            Assert.Equal(Path.Combine(store5, "0"), v.Info.Location);
            Assert.Equal("blosc(zstd, clevel 5, shuffle)", v.Info.Codec);
        }
        using (var back = VolumeStore.Open(store5))
        {
            Assert.Equal("tczyx", back.Info.Axes.Names);
            Assert.Equal(new VoxelSize(2.0, 0.5, 0.25), back.Info.VoxelSize);
        }
        manifest.Add(new()
        {
            ["name"] = "image", ["store"] = store5, ["inner"] = "", ["npy"] = dir["image.npy"], ["dtype"] = "|u1",
            ["chunks"] = new[] { 1, 2, 3, 4, 5 }, ["compressor"] = "blosc", ["fill_value"] = 0,
            ["ome"] = new Dictionary<string, object?>
            {
                ["axes"] = new[]
                {
                    new object?[] { "t", "time", null }, ["c", "channel", null],
                    ["z", "space", "micrometer"], ["y", "space", "micrometer"], ["x", "space", "micrometer"],
                },
                ["scale"] = new[] { 1.0, 1.0, 2.0, 0.5, 0.25 },
            },
        });

        // A 2-D label image two groups down in an existing store; the groups on the way get .zgroup.
        long[] shape2 = [9, 13];
        var o2 = new VolumeCreateOptions(AxisOrder.Parse("yx"), shape2, DataType.UInt32, [4, 4], new VoxelSize(1, 0.3, 0.3, "nanometer"), CodecSpec.Parse("gzip:6"));
        string store2 = dir["labels.zarr"];
        using (var v = VolumeStore.Create(VolumeStore.ParseAddress($"{store2}/labels/cells"), o2))
        {
            var data = TestArrays.Random(DataType.UInt32, 9 * 13, 12);
            v.Write(NdBox.Whole(shape2), data);
            NpyFile.Write(dir["labels.npy"], DataType.UInt32, shape2, data);
        }
        manifest.Add(new()
        {
            ["name"] = "labels", ["store"] = store2, ["inner"] = "labels/cells", ["npy"] = dir["labels.npy"], ["dtype"] = "<u4",
            ["chunks"] = new[] { 4, 4 }, ["compressor"] = "gzip",
            ["ome"] = new Dictionary<string, object?>
            {
                ["axes"] = new[] { new object?[] { "y", "space", "nanometer" }, ["x", "space", "nanometer"] },
                ["scale"] = new[] { 0.3, 0.3 },
                ["groups"] = new[] { store2, Path.Combine(store2, "labels"), Path.Combine(store2, "labels", "cells") },
            },
        });
        AssertZarrPythonAgrees(dir, manifest);
    }

    internal static void AssertZarrPythonAgrees(TempDir dir, List<Dictionary<string, object?>> manifest)
    {
        File.WriteAllText(dir["read-manifest.json"], JsonSerializer.Serialize(manifest));
        string output = PythonReference.Run("zarr_read.py", dir["read-manifest.json"]);
        var results = JsonSerializer.Deserialize<Dictionary<string, string>>(output)!;
        Assert.Equal(manifest.Count, results.Count);
        var failures = results.Where(r => r.Value != "ok").Select(r => $"{r.Key}: {r.Value}").ToList();
        if (failures.Count > 0) Assert.Fail(string.Join("\n", failures));
    }
}
