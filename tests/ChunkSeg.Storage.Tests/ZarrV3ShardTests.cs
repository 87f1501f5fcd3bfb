using System.Buffers.Binary;
using System.Text.Json.Nodes;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Internal;
using ChunkSeg.Storage.Zarr;

namespace ChunkSeg.Storage.Tests;

/// <summary>The shard file layout ChunkSeg writes and the errors it gives for shards and v3 metadata it cannot use.</summary>
public sealed class ZarrV3ShardTests
{
    private static readonly AxisOrder Yx = AxisOrder.Parse("yx");

    private static VolumeCreateOptions Options(int[]? shards, string codec = "zstd", double fill = 0) =>
        new(Yx, [16, 24], DataType.UInt16, [4, 4], VoxelSize.Isotropic, CodecSpec.Parse(codec), fill, ZarrFormat: 3, ShardShape: shards);

    /// <summary>(offset, nbytes) per inner chunk, after checking the crc32c of a [bytes, crc32c] index.</summary>
    private static ulong[] Index(string shardFile, int inner, bool atStart)
    {
        byte[] file = File.ReadAllBytes(shardFile);
        int size = 16 * inner + 4;
        var encoded = atStart ? file.AsSpan(0, size) : file.AsSpan(file.Length - size);
        Assert.Equal(Crc32C.Compute(encoded[..^4]), BinaryPrimitives.ReadUInt32LittleEndian(encoded[^4..]));
        var index = new ulong[2 * inner];
        for (int i = 0; i < index.Length; i++) index[i] = BinaryPrimitives.ReadUInt64LittleEndian(encoded[(8 * i)..]);
        return index;
    }

    [Fact]
    public void Inner_chunks_equal_to_the_fill_value_are_not_stored_and_an_all_fill_shard_has_no_file()
    {
        using var dir = new TempDir();
        string store = dir["a.zarr"];
        var expected = new ushort[16 * 24];
        Array.Fill(expected, (ushort)7);
        using (var v = ZarrVolume.CreateArray(store, Options([8, 8], fill: 7)))
        {
            // Shard (0, 0): only inner chunk (1, 0) differs from the fill; shard (1, 2): inner chunk (0, 1) only.
            // Shard (0, 1) gets data and is then overwritten with fill: its file must go.
            var box = new NdBox([5, 1], [2, 2]);
            v.Write(box, new byte[] { 1, 0, 2, 0, 3, 0, 4, 0 });
            expected[5 * 24 + 1] = 1; expected[5 * 24 + 2] = 2; expected[6 * 24 + 1] = 3; expected[6 * 24 + 2] = 4;
            v.Write(new NdBox([9, 21], [1, 1]), new byte[] { 9, 0 });
            expected[9 * 24 + 21] = 9;
            v.Write(new NdBox([2, 10], [1, 1]), new byte[] { 5, 0 });
            v.Write(new NdBox([2, 10], [1, 1]), new byte[] { 7, 0 });
        }
        string c = Path.Combine(store, "c");
        Assert.Equal(["c/0/0", "c/1/2"], Directory.EnumerateFiles(c, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(store, f).Replace('\\', '/')).Order());
        var index = Index(Path.Combine(c, "0", "0"), 4, atStart: false);
        Assert.Equal(0ul, index[4]);                           // inner chunk (1, 0) first and only, at offset 0
        foreach (int i in new[] { 0, 1, 3 })
            Assert.Equal((ShardingCodec.Missing, ShardingCodec.Missing), (index[2 * i], index[2 * i + 1]));
        Assert.Equal((long)index[5] + 16 * 4 + 4, new FileInfo(Path.Combine(c, "0", "0")).Length);

        using var back = VolumeStore.Open(store);
        var actual = new byte[16 * 24 * 2];
        back.Read(NdBox.Whole([16, 24]), actual);
        Assert.Equal(expected, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(actual).ToArray());

        // zarrita reads the skipped inner chunks and the missing shards as the fill value too.
        var results = ZarrV3ReferenceTests.RunZarrita(dir, "read", [new() { ["name"] = "a", ["path"] = store, ["out"] = dir["a.raw"] }]);
        Assert.Null(results["a"]!["error"]);
        Assert.Equal(actual, File.ReadAllBytes(dir["a.raw"]));
    }

    [Fact]
    public void Index_at_the_start_is_written_and_read()
    {
        using var dir = new TempDir();
        string store = dir["start.zarr"];
        const string codecs = """
            [{"name": "sharding_indexed", "configuration": {"chunk_shape": [4, 4],
              "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "gzip", "configuration": {"level": 3}}],
              "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
              "index_location": "start"}}]
            """;
        var data = TestArrays.Random(DataType.UInt16, 16 * 24, 3);
        using (var v = ZarrVolume.CreateArrayV3(store, Options([8, 12]), codecs))
        {
            Assert.Contains("index at start", v.Info.Codec, StringComparison.Ordinal);
            v.Write(new NdBox([0, 0], [16, 13]), Slice(data, 13));
            v.Write(new NdBox([0, 13], [16, 11]), Slice(data, 11, 13));
        }
        var index = Index(Path.Combine(store, "c", "0", "0"), 6, atStart: true);
        Assert.Equal((ulong)(16 * 6 + 4), index[0]);           // the first inner chunk follows the index
        using var back = VolumeStore.Open(store);
        var actual = new byte[data.Length];
        back.Read(NdBox.Whole([16, 24]), actual);
        TestArrays.AssertEqual(DataType.UInt16, data, actual, [16, 24], "index at start");
    }

    /// <summary>Columns [from, from + width) of the 16 × 24 uint16 array <paramref name="data"/>, C-ordered.</summary>
    private static byte[] Slice(byte[] data, int width, int from = 0)
    {
        var result = new byte[16 * width * 2];
        Strided.CopyBox(data, [16, 24], [0, from], result, [16, width], [0, 0], [16, width], 2);
        return result;
    }

    [Fact]
    public void A_shard_index_failing_its_crc32c_is_a_VolumeException_naming_the_file()
    {
        using var dir = new TempDir();
        string store = dir["corrupt.zarr"];
        using (var v = ZarrVolume.CreateArray(store, Options([8, 8])))
            v.Write(NdBox.Whole([16, 24]), TestArrays.Random(DataType.UInt16, 16 * 24, 5));
        string shard = Path.Combine(store, "c", "1", "1");
        byte[] bytes = File.ReadAllBytes(shard);
        bytes[^10] ^= 0x40;                                     // inside the index, before its crc32c
        File.WriteAllBytes(shard, bytes);

        using var back = VolumeStore.Open(store);
        var e = Assert.Throws<VolumeException>(() => back.Read(new NdBox([9, 9], [2, 2]), new byte[8]));
        Assert.Contains(shard, e.Message, StringComparison.Ordinal);
        Assert.Contains("crc32c checksum mismatch", e.Message, StringComparison.Ordinal);
        // Shards whose index is intact still read.
        back.Read(new NdBox([0, 0], [8, 8]), new byte[128]);

        // A truncated shard (shorter than its index) is named too.
        File.WriteAllBytes(shard, bytes[..20]);
        var t = Assert.Throws<VolumeException>(() => back.Read(new NdBox([9, 9], [2, 2]), new byte[8]));
        Assert.Contains(shard, t.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parallel_writers_of_disjoint_boxes_in_one_shard_keep_each_others_voxels()
    {
        using var dir = new TempDir();
        using var v = ZarrVolume.CreateArray(dir["p.zarr"], Options([16, 24], codec: "gzip"));
        var data = TestArrays.Random(DataType.UInt16, 16 * 24, 9);
        // 2 × 3 boxes of 8 × 8 (one inner-chunk row crossing each), all in the single shard, written at once.
        Parallel.For(0, 6, i =>
        {
            long y = i / 3 * 8, x = i % 3 * 8;
            var box = new NdBox([y, x], [8, 8]);
            var part = new byte[128];
            Strided.CopyBox(data, [16, 24], box.Start, part, [8, 8], [0, 0], [8, 8], 2);
            v.Write(box, part);
        });
        var actual = new byte[data.Length];
        v.Read(NdBox.Whole([16, 24]), actual);
        TestArrays.AssertEqual(DataType.UInt16, data, actual, [16, 24], "parallel writers in one shard");
    }

    [Fact]
    public void Options_are_validated_and_the_default_stays_zarr_v2()
    {
        using var dir = new TempDir();
        var v2 = new VolumeCreateOptions(Yx, [16, 24], DataType.UInt8, [4, 4], VoxelSize.Isotropic, CodecSpec.Parse("gzip"));
        using (var plain = VolumeStore.Create(VolumeStore.ParseAddress(dir["v2.zarr"]), v2))
            Assert.Null(plain.Info.ShardShape);
        Assert.True(File.Exists(Path.Combine(dir["v2.zarr"], ".zgroup")));
        Assert.False(File.Exists(Path.Combine(dir["v2.zarr"], "zarr.json")));

        string Usage(VolumeCreateOptions o) => Assert.Throws<UsageException>(() => VolumeStore.Create(VolumeStore.ParseAddress(dir["x.zarr"]), o)).Message;
        Assert.Contains("need Zarr format 3", Usage(v2 with { ShardShape = [8, 8] }), StringComparison.Ordinal);
        Assert.Contains("12 is not a multiple of 8", Usage(Options([16, 12]) with { Chunks = [4, 8] }), StringComparison.Ordinal);
        Assert.Contains("must be 2 or 3", Usage(v2 with { ZarrFormat = 4 }), StringComparison.Ordinal);
        Assert.Contains("zlib is not a Zarr v3 codec", Usage(Options(null, codec: "zlib")), StringComparison.Ordinal);
        Assert.Contains("HDF5 output takes neither", Assert.Throws<UsageException>(() =>
            VolumeStore.Create(VolumeStore.ParseAddress(dir["x.h5"] + "/data"), Options([8, 8]))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_v3_metadata_is_named()
    {
        using var dir = new TempDir();
        string store = dir["m.zarr"];
        using (var v = ZarrVolume.CreateArray(store, Options(null))) { }
        string json = Path.Combine(store, "zarr.json");
        var original = JsonNode.Parse(File.ReadAllText(json))!;

        string Open(Action<JsonNode> edit)
        {
            var node = original.DeepClone();
            edit(node);
            File.WriteAllText(json, node.ToJsonString());
            return Assert.Throws<VolumeException>(() => VolumeStore.Open(store)).Message;
        }
        Assert.Contains("data_type bool is not supported", Open(n => n["data_type"] = "bool"), StringComparison.Ordinal);
        Assert.Contains("codec \"lz4\" is not supported", Open(n => n["codecs"]!.AsArray().Add(JsonNode.Parse("""{"name": "lz4"}"""))), StringComparison.Ordinal);
        Assert.Contains("chunk_grid \"rectilinear\"", Open(n => n["chunk_grid"]!["name"] = "rectilinear"), StringComparison.Ordinal);
        Assert.Contains("comes before the array→bytes codec", Open(n => n["codecs"] = JsonNode.Parse("""[{"name": "gzip"}]""")), StringComparison.Ordinal);
        Assert.Contains("must divide the shard shape", Open(n => n["codecs"] = JsonNode.Parse(
            """[{"name": "sharding_indexed", "configuration": {"chunk_shape": [3, 4], "codecs": [{"name": "bytes"}]}}]""")), StringComparison.Ordinal);
        Assert.Contains("zarr.json is malformed", Open(n => n.AsObject().Remove("shape")), StringComparison.Ordinal);
    }

    [Fact]
    public void Non_ome_axis_orders_become_plain_v3_arrays_named_by_dimension_names()
    {
        using var dir = new TempDir();
        var options = new VolumeCreateOptions(AxisOrder.Parse("zyxc"), [5, 6, 7, 3], DataType.Float32, [2, 3, 4, 3], VoxelSize.Isotropic,
            CodecSpec.Parse("blosc-lz4"), double.NaN, ZarrFormat: 3, ShardShape: [4, 6, 8, 3]);
        string store = dir["features.zarr"];
        var data = TestArrays.Random(DataType.Float32, 5 * 6 * 7 * 3, 2);
        using (var v = VolumeStore.Create(VolumeStore.ParseAddress(store), options))
            v.Write(NdBox.Whole([5, 6, 7, 3]), data);
        var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(store, "zarr.json")))!;
        Assert.Equal("array", meta["node_type"]!.GetValue<string>());
        Assert.Equal("NaN", meta["fill_value"]!.GetValue<string>());
        Assert.Equal(["z", "y", "x", "c"], meta["dimension_names"]!.AsArray().Select(a => a!.GetValue<string>()));
        using var back = VolumeStore.Open(store);
        Assert.Equal("zyxc", back.Info.Axes.Names);
        Assert.True(double.IsNaN(back.Info.FillValue));
        var actual = new byte[data.Length];
        back.Read(NdBox.Whole([5, 6, 7, 3]), actual);
        TestArrays.AssertEqual(DataType.Float32, data, actual, [5, 6, 7, 3], "plain v3 array");

        // A v3 group without "ome" metadata is refused with the path of an array to give instead.
        Directory.CreateDirectory(dir["group.zarr"]);
        File.WriteAllText(Path.Combine(dir["group.zarr"], "zarr.json"), """{"zarr_format": 3, "node_type": "group", "attributes": {}}""");
        Assert.Contains("without OME-NGFF multiscales", Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["group.zarr"])).Message, StringComparison.Ordinal);
    }
}
