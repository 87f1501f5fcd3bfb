using System.Text.Json;
using System.Text.Json.Nodes;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Internal;
using ChunkSeg.Storage.Zarr;

namespace ChunkSeg.Storage.Tests;

/// <summary>
/// Zarr v3 arrays, sharded and not, against zarrita 0.7.5 (tools/reference/zarr_v3.mjs): what ChunkSeg writes, in
/// boxes that cross chunk and shard borders, zarrita reads back equal; what zarrita writes, ChunkSeg reads equal.
/// zarrita cannot write shards or crc32c, so sharded and crc32c arrays are checked in the first direction only.
/// </summary>
public sealed class ZarrV3ReferenceTests
{
    private static readonly long[] Shape = TiledWrites.Shape;
    private static readonly int[] Chunks = [4, 5, 6];
    private static readonly int[] Shards = [8, 10, 12];

    private const string Little = """{"name": "bytes", "configuration": {"endian": "little"}}""";
    private const string Big = """{"name": "bytes", "configuration": {"endian": "big"}}""";
    private const string Crc = """{"name": "crc32c"}""";

    /// <summary>Codec lists as they stand in zarr.json ({T}: the data type's size, for blosc's typesize).</summary>
    private static readonly (string Name, string Codecs)[] CodecLists =
    [
        ("bytes_little", $"[{Little}]"),
        ("bytes_big", $"[{Big}]"),
        ("transpose", C("""[{"name": "transpose", "configuration": {"order": [2, 0, 1]}}, @L]""")),
        ("gzip", C("""[@L, {"name": "gzip", "configuration": {"level": 5}}]""")),
        ("blosc_lz4_shuffle", C("""[@L, {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle", "typesize": {T}, "blocksize": 0}}]""")),
        ("blosc_zstd_bitshuffle", C("""[@L, {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 3, "shuffle": "bitshuffle", "typesize": {T}, "blocksize": 0}}]""")),
        ("blosc_blosclz_noshuffle", C("""[@L, {"name": "blosc", "configuration": {"cname": "blosclz", "clevel": 9, "shuffle": "noshuffle", "typesize": {T}, "blocksize": 0}}]""")),
        ("zstd_checksum", C("""[@L, {"name": "zstd", "configuration": {"level": 3, "checksum": true}}]""")),
        ("zstd", C("""[@L, {"name": "zstd", "configuration": {"level": 1, "checksum": false}}]""")),
        ("crc32c", $"[{Little}, {Crc}]"),
        ("transpose_big_gzip_crc32c", C("""[{"name": "transpose", "configuration": {"order": [1, 2, 0]}}, @B, {"name": "gzip", "configuration": {"level": 1}}, @C]""")),
        ("shard_zstd", Shard(C("""[@L, {"name": "zstd", "configuration": {"level": 3, "checksum": false}}]"""), $"[{Little}, {Crc}]")),
        ("shard_transpose_big_blosc_plain_index", Shard(C("""[{"name": "transpose", "configuration": {"order": [2, 1, 0]}}, @B, {"name": "blosc", "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle", "typesize": {T}, "blocksize": 0}}]"""), $"[{Little}]")),
        ("shard_gzip_crc32c", Shard(C("""[@L, {"name": "gzip", "configuration": {"level": 6}}, @C]"""), $"[{Little}, {Crc}]")),
        ("shard_raw", Shard($"[{Little}]", $"[{Little}, {Crc}]")),
    ];

    private static string Shard(string inner, string index, string location = "end") =>
        """[{"name": "sharding_indexed", "configuration": {"chunk_shape": [""" + string.Join(", ", Chunks) + """], "codecs": """ + inner +
        ", \"index_codecs\": " + index + ", \"index_location\": \"" + location + "\"}}]";

    /// <summary>A codec list with @L, @B, @C standing for bytes little, bytes big and crc32c.</summary>
    private static string C(string codecs) => codecs.Replace("@L", Little, StringComparison.Ordinal)
        .Replace("@B", Big, StringComparison.Ordinal).Replace("@C", Crc, StringComparison.Ordinal);

    [Fact]
    public void Zarrita_reads_what_ChunkSeg_wrote()
    {
        using var dir = new TempDir();
        var cases = new List<(string Name, DataType Type, string Codecs, bool V2Keys)>();
        foreach (var (name, codecs) in CodecLists)
            foreach (var type in new[] { DataType.UInt16, DataType.Float32 })
                cases.Add(($"{name}_{type.Name()}", type, codecs, false));
        foreach (var type in Enum.GetValues<DataType>())
        {
            cases.Add(($"dtype_{type.Name()}_blosc", type, CodecLists[4].Codecs, type == DataType.Int16));
            cases.Add(($"dtype_{type.Name()}_shard_zstd", type, CodecLists[11].Codecs, false));
        }

        // The arrays are independent: written side by side (each one's writes stay sequential, seeded by its index).
        var expectedByName = new System.Collections.Concurrent.ConcurrentDictionary<string, (DataType, byte[])>();
        Parallel.For(0, cases.Count, i =>
        {
            var (name, type, codecsTemplate, v2Keys) = cases[i];
            int seed = i + 1;
            string codecs = codecsTemplate.Replace("{T}", type.SizeInBytes().ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
            bool sharded = codecs.Contains("sharding_indexed", StringComparison.Ordinal);
            double fill = seed % 3 == 0 ? 0 : type.IsFloat() ? (seed % 2 == 0 ? double.NaN : -2.5) : 5;
            var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), Shape, type, Chunks, VoxelSize.Isotropic, CodecSpec.None, fill,
                ZarrFormat: 3, ShardShape: sharded ? Shards : null);
            string store = dir[$"{name}.zarr"];
            byte[] expected;
            using (var volume = ZarrVolume.CreateArrayV3(store, options, codecs, v2KeyEncoding: v2Keys, separator: v2Keys ? '.' : '/'))
            {
                Assert.Equal(sharded ? Shards : null, volume.Info.ShardShape);
                Assert.Equal(sharded ? Shards : Chunks, volume.Info.WriteUnit);
                Assert.Equal(Chunks, volume.Info.StorageChunks);
                expected = TiledWrites.Write(volume, type, seed);
            }
            using (var reopened = VolumeStore.Open(store))
            {
                Assert.Equal("zyx", reopened.Info.Axes.Names);
                var actual = new byte[expected.Length];
                reopened.Read(NdBox.Whole(Shape), actual);
                TestArrays.AssertEqual(type, expected, actual, Shape, $"{name} read by ChunkSeg");
                // A box inside one inner chunk, and one across shards: reads decode only what they touch.
                AssertReadsBox(reopened, expected, type, new NdBox([5, 6, 7], [2, 3, 4]), name);
                AssertReadsBox(reopened, expected, type, new NdBox([3, 4, 5], [7, 9, 11]), name);
            }
            expectedByName[name] = (type, expected);
        });

        var manifest = cases.Select(c => new Dictionary<string, object?> { ["name"] = c.Name, ["path"] = dir[$"{c.Name}.zarr"], ["out"] = dir[$"{c.Name}.raw"] }).ToList();
        var results = RunZarrita(dir, "read", manifest);
        var failures = new List<string>();
        foreach (var (name, (type, expected)) in expectedByName)
        {
            var r = results[name]!.AsObject();
            if (r["error"] is { } error) { failures.Add($"{name}: zarrita failed: {error}"); continue; }
            if (r["dtype"]!.GetValue<string>() != type.Name()) failures.Add($"{name}: zarrita dtype {r["dtype"]}");
            if (!r["shape"]!.AsArray().Select(s => s!.GetValue<long>()).SequenceEqual(Shape)) failures.Add($"{name}: zarrita shape {r["shape"]}");
            if (TestArrays.Difference(type, expected, File.ReadAllBytes(dir[$"{name}.raw"]), Shape) is { } d) failures.Add($"{name}: zarrita read {d}");
        }
        if (failures.Count > 0) Assert.Fail(string.Join("\n", failures));
    }

    [Fact]
    public void ChunkSeg_reads_what_zarrita_wrote()
    {
        using var dir = new TempDir();
        // zarrita 0.7.5 encodes bytes, transpose, blosc and zstd; its gzip, zlib and crc32c encoders are unimplemented
        // and it refuses to set() a sharded array.
        var lists = CodecLists.Where(c => !new[] { "crc32c", "sharding", "gzip" }.Any(n => c.Codecs.Contains(n, StringComparison.Ordinal))).ToList();
        var cases = new List<(string Name, DataType Type, string Codecs, string Separator)>();
        foreach (var (name, codecs) in lists)
            foreach (var type in new[] { DataType.UInt16, DataType.Float32 })
                cases.Add(($"{name}_{type.Name()}", type, codecs, "/"));
        foreach (var type in Enum.GetValues<DataType>())
            cases.Add(($"dtype_{type.Name()}_zstd", type, lists.Single(l => l.Name == "zstd_checksum").Codecs, type.IsSigned() ? "." : "/"));

        var manifest = new List<Dictionary<string, object?>>();
        var expected = new Dictionary<string, (DataType, byte[], string)>();
        int seed = 40;
        foreach (var (name, type, template, separator) in cases)
        {
            seed++;
            var data = TestArrays.Random(type, Shape.Aggregate(1L, (a, b) => a * b), seed);
            File.WriteAllBytes(dir[$"{name}.in"], data);
            // No .zarr suffix: VolumeAddress must recognise the store by its zarr.json.
            string path = dir[name];
            object fill = type.IsFloat() ? seed % 2 == 0 ? "NaN" : 1.5 : 3;
            manifest.Add(new()
            {
                ["name"] = name, ["path"] = path, ["shape"] = Shape, ["chunk_shape"] = Chunks, ["dtype"] = type.Name(),
                ["codecs"] = JsonNode.Parse(template.Replace("{T}", type.SizeInBytes().ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)),
                ["fill_value"] = fill, ["separator"] = separator, ["dimension_names"] = new[] { "z", "y", "x" }, ["input"] = dir[$"{name}.in"],
            });
            expected[name] = (type, data, path);
        }
        var written = RunZarrita(dir, "write", manifest);
        var failures = written.Where(r => r.Value!.GetValue<string>() != "ok").Select(r => $"{r.Key}: {r.Value}").ToList();
        if (failures.Count > 0) Assert.Fail(string.Join("\n", failures));

        foreach (var (name, (type, data, path)) in expected)
        {
            using var volume = VolumeStore.Open(path);
            Assert.Equal(type, volume.Info.DataType);
            Assert.Equal(Shape, volume.Info.Shape);
            Assert.Equal(Chunks, volume.Info.StorageChunks);
            Assert.Equal("zyx", volume.Info.Axes.Names);
            var actual = new byte[data.Length];
            volume.Read(NdBox.Whole(Shape), actual);
            TestArrays.AssertEqual(type, data, actual, Shape, $"{name} written by zarrita");
            AssertReadsBox(volume, data, type, new NdBox([3, 4, 5], [7, 9, 11]), name);
        }
    }

    [Fact]
    public void Ome_zarr_0_5_image_is_sharded_zarr_v3_that_zarrita_reads()
    {
        using var dir = new TempDir();
        long[] shape = [2, 13, 21, 22];
        var options = new VolumeCreateOptions(AxisOrder.Parse("czyx"), shape, DataType.UInt32, [1, 4, 8, 8], new VoxelSize(2.0, 0.5, 0.25),
            CodecSpec.Parse("blosc-zstd:5"), LabelImage: true, ZarrFormat: 3, ShardShape: [1, 8, 16, 16]);
        string store = dir["labels.ome.zarr"];
        var data = TestArrays.Random(DataType.UInt32, shape.Aggregate(1L, (a, b) => a * b), 7);
        using (var v = VolumeStore.Create(VolumeStore.ParseAddress($"{store}/labels/cells"), options))
        {
            Assert.Equal(Path.Combine(store, "labels", "cells", "0"), v.Info.Location);
            Assert.Equal([1, 8, 16, 16], v.Info.WriteUnit);
            Assert.Equal(new Long3(8, 16, 16), v.Info.SpatialWriteUnit);
            v.Write(NdBox.Whole(shape), data);
        }

        // Every group on the way down is a v3 group; the image group carries {"ome": {"version": "0.5", ...}}.
        foreach (var group in new[] { store, Path.Combine(store, "labels") })
        {
            var g = JsonNode.Parse(File.ReadAllText(Path.Combine(group, "zarr.json")))!;
            Assert.Equal(3, g["zarr_format"]!.GetValue<int>());
            Assert.Equal("group", g["node_type"]!.GetValue<string>());
        }
        var image = JsonNode.Parse(File.ReadAllText(Path.Combine(store, "labels", "cells", "zarr.json")))!;
        Assert.Equal("group", image["node_type"]!.GetValue<string>());
        var ome = image["attributes"]!["ome"]!;
        Assert.Equal("0.5", ome["version"]!.GetValue<string>());
        Assert.NotNull(ome["image-label"]);
        var ms = ome["multiscales"]![0]!;
        Assert.Null(ms["version"]);
        Assert.Equal("cells", ms["name"]!.GetValue<string>());
        Assert.Equal(["c", "z", "y", "x"], ms["axes"]!.AsArray().Select(a => a!["name"]!.GetValue<string>()));
        Assert.Equal(["channel", "space", "space", "space"], ms["axes"]!.AsArray().Select(a => a!["type"]!.GetValue<string>()));
        var dataset = ms["datasets"]![0]!;
        Assert.Equal("0", dataset["path"]!.GetValue<string>());
        Assert.Equal("scale", dataset["coordinateTransformations"]![0]!["type"]!.GetValue<string>());
        Assert.Equal([1.0, 2.0, 0.5, 0.25], dataset["coordinateTransformations"]![0]!["scale"]!.AsArray().Select(s => s!.GetValue<double>()));
        var array = JsonNode.Parse(File.ReadAllText(Path.Combine(store, "labels", "cells", "0", "zarr.json")))!;
        Assert.Equal(["c", "z", "y", "x"], array["dimension_names"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal("sharding_indexed", array["codecs"]![0]!["name"]!.GetValue<string>());
        Assert.Equal([1, 8, 16, 16], array["chunk_grid"]!["configuration"]!["chunk_shape"]!.AsArray().Select(s => s!.GetValue<int>()));

        // Read back through the image group (axes and voxel size from the 0.5 metadata) and by zarrita.
        using (var back = VolumeStore.Open($"{store}/labels/cells"))
        {
            Assert.Equal("czyx", back.Info.Axes.Names);
            Assert.Equal(new VoxelSize(2.0, 0.5, 0.25), back.Info.VoxelSize);
            Assert.Equal([1, 8, 16, 16], back.Info.ShardShape!);
            var actual = new byte[data.Length];
            back.Read(NdBox.Whole(shape), actual);
            TestArrays.AssertEqual(DataType.UInt32, data, actual, shape, "OME-Zarr 0.5 image");
        }
        // 2 × ceil(13/8) × ceil(21/16) × ceil(22/16) = 16 shard files instead of 2 × 4 × 3 × 3 = 72 chunk files.
        Assert.Equal(16, Directory.EnumerateFiles(Path.Combine(store, "labels", "cells", "0", "c"), "*", SearchOption.AllDirectories).Count());
        var results = RunZarrita(dir, "read", [new() { ["name"] = "image", ["path"] = Path.Combine(store, "labels", "cells", "0"), ["out"] = dir["image.raw"] }]);
        Assert.Null(results["image"]!["error"]);
        TestArrays.AssertEqual(DataType.UInt32, data, File.ReadAllBytes(dir["image.raw"]), shape, "OME-Zarr 0.5 image read by zarrita");
    }

    internal static JsonObject RunZarrita(TempDir dir, string command, List<Dictionary<string, object?>> manifest)
    {
        string path = dir[$"{command}-manifest.json"];
        File.WriteAllText(path, JsonSerializer.Serialize(manifest));
        return JsonNode.Parse(NodeReference.Run("zarr_v3.mjs", command, path))!.AsObject();
    }

    private static void AssertReadsBox(IVolume volume, byte[] whole, DataType type, NdBox box, string context)
    {
        int size = type.SizeInBytes();
        var expected = new byte[box.ElementCount * size];
        Strided.CopyBox(whole, Shape, box.Start, expected, box.Shape, new long[box.Rank], box.Shape, size);
        var actual = new byte[expected.Length];
        volume.Read(box, actual);
        TestArrays.AssertEqual(type, expected, actual, box.Shape, $"{context} box {box}");
    }
}
