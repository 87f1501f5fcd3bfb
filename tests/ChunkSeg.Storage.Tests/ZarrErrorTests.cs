using System.Text.Json.Nodes;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage.Zarr;

namespace ChunkSeg.Storage.Tests;

/// <summary>Every failure names the array and what is wrong; missing chunks are not failures.</summary>
public sealed class ZarrErrorTests
{
    private static readonly long[] Shape = [6, 7, 8];

    private static ZarrVolume NewArray(TempDir dir, string codec = "zlib", double fill = 0, char separator = '/')
    {
        var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), Shape, DataType.UInt16, [4, 4, 4], VoxelSize.Isotropic, CodecSpec.Parse(codec), fill);
        var v = ZarrVolume.CreateArray(dir["a.zarr"], options, separator);
        v.Write(NdBox.Whole(Shape), TestArrays.Random(DataType.UInt16, 6 * 7 * 8, 3));
        return v;
    }

    private static void EditZarray(TempDir dir, Action<JsonObject> edit)
    {
        string path = Path.Combine(dir["a.zarr"], ".zarray");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    [Fact]
    public void Missing_chunk_files_read_as_the_fill_value()
    {
        using var dir = new TempDir();
        using (NewArray(dir, fill: 42)) { }
        File.Delete(Path.Combine(dir["a.zarr"], "1/0/1"));
        Directory.Delete(Path.Combine(dir["a.zarr"], "0", "1"), recursive: true);
        using var v = ZarrVolume.Open(dir["a.zarr"], "", null, writable: false);
        var buffer = new ushort[2 * 3 * 4];
        v.Read(new NdBox([4, 0, 4], [2, 3, 4]), buffer.AsSpan());            // inside chunk 1/0/1
        Assert.All(buffer, x => Assert.Equal(42, x));
        v.Read(new NdBox([0, 4, 0], [2, 3, 4]), buffer.AsSpan());            // inside chunk 0/1/0
        Assert.All(buffer, x => Assert.Equal(42, x));
    }

    [Theory]
    [InlineData("none")]
    [InlineData("zlib")]
    [InlineData("gzip")]
    [InlineData("zstd")]
    [InlineData("blosc-lz4")]
    public void Corrupt_or_truncated_chunks_name_the_chunk_key(string codec)
    {
        using var dir = new TempDir();
        using (NewArray(dir, codec)) { }
        string chunk = Path.Combine(dir["a.zarr"], "1/1/0");
        byte[] good = File.ReadAllBytes(chunk);
        using var v = ZarrVolume.Open(dir["a.zarr"], "", null, writable: true);
        var buffer = new byte[6 * 7 * 8 * 2];
        // Truncated, garbage, and a valid stream of half the chunk's size. Trailing bytes after a deflate
        // stream are ignored (as Python's zlib does), so only the framed codecs must reject them.
        using var half = Codecs.ChunkCodecs.FromSpec(CodecSpec.Parse(codec)).Encode(new byte[4 * 4 * 4], 2);
        var cases = new List<byte[]> { good[..(good.Length / 2)], Enumerable.Repeat((byte)0x5a, 100).ToArray(), half.Span.ToArray() };
        if (codec is not ("zlib" or "gzip")) cases.Add([.. good, 1, 2, 3]);
        foreach (byte[] bad in cases)
        {
            File.WriteAllBytes(chunk, bad);
            var e = Assert.Throws<VolumeException>(() => v.Read(NdBox.Whole(Shape), buffer));
            Assert.Contains("chunk 1/1/0 is corrupt", e.Message, StringComparison.Ordinal);
            Assert.Equal(dir["a.zarr"], e.Location);
            // A partial write must read the chunk first, and must not replace it with fill.
            Assert.Throws<VolumeException>(() => v.Write(new NdBox([4, 4, 0], [1, 1, 1]), new byte[2]));
            Assert.Equal(bad, File.ReadAllBytes(chunk));
        }
    }

    [Fact]
    public void Unsupported_metadata_is_named()
    {
        using var dir = new TempDir();
        using (NewArray(dir)) { }
        string Open() => Assert.Throws<VolumeException>(() => ZarrVolume.Open(dir["a.zarr"], "", null, false)).Message;

        EditZarray(dir, j => j["order"] = "F");
        Assert.Contains("order F is not supported", Open(), StringComparison.Ordinal);
        EditZarray(dir, j => { j["order"] = "C"; j["compressor"] = new JsonObject { ["id"] = "lzma", ["preset"] = 1 }; });
        Assert.Contains("compressor \"lzma\" is not supported", Open(), StringComparison.Ordinal);
        EditZarray(dir, j => { j["compressor"] = null; j["filters"] = new JsonArray(new JsonObject { ["id"] = "delta", ["dtype"] = "<u2" }); });
        Assert.Contains("filters [delta]", Open(), StringComparison.Ordinal);
        EditZarray(dir, j => { j["filters"] = null; j["dtype"] = "<c8"; });
        Assert.Contains("dtype <c8 is not supported", Open(), StringComparison.Ordinal);
        EditZarray(dir, j => { j["dtype"] = "<u2"; j["zarr_format"] = 3; });
        Assert.Contains("zarr_format 3", Open(), StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(dir["a.zarr"], ".zarray"), "{ not json");
        Assert.Contains(".zarray is malformed", Open(), StringComparison.Ordinal);
    }

    [Fact]
    public void Boxes_outside_read_only_writes_and_rank_mismatches_are_rejected()
    {
        using var dir = new TempDir();
        using (var v = NewArray(dir))
        {
            var e = Assert.Throws<VolumeException>(() => v.Read(new NdBox([0, 0, 5], [6, 7, 4]), new byte[6 * 7 * 4 * 2]));
            Assert.Contains("box [0:6, 0:7, 5:9] is outside the volume of shape [6, 7, 8]", e.Message, StringComparison.Ordinal);
            Assert.Throws<VolumeException>(() => v.Write(new NdBox([-1, 0, 0], [1, 1, 1]), new byte[2]));
            Assert.Throws<VolumeException>(() => v.Read(new NdBox([0, 0], [1, 1]), new byte[2]));
            Assert.Throws<ArgumentException>(() => v.Read(new NdBox([0, 0, 0], [2, 2, 2]), new byte[15]));
        }
        using (var ro = VolumeStore.Open(dir["a.zarr"]))
        {
            var e = Assert.Throws<VolumeException>(() => ro.Write(new NdBox([0, 0, 0], [1, 1, 1]), new byte[2]));
            Assert.Contains("read-only", e.Message, StringComparison.Ordinal);
        }
        var rank = Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["a.zarr"], AxisOrder.Parse("czyx")));
        Assert.Contains(dir["a.zarr"], rank.Message, StringComparison.Ordinal);
        Assert.Contains("rank 4", rank.Message, StringComparison.Ordinal);
        Assert.Contains("rank 3", rank.Message, StringComparison.Ordinal);
        using var overridden = VolumeStore.Open(dir["a.zarr"], AxisOrder.Parse("yxc"));
        Assert.Equal("yxc", overridden.Info.Axes.Names);
    }

    [Fact]
    public void Groups_without_multiscales_and_missing_paths_are_rejected()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["g.zarr"]);
        File.WriteAllText(Path.Combine(dir["g.zarr"], ".zgroup"), "{\"zarr_format\": 2}");
        Assert.Contains("without OME-NGFF multiscales", Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["g.zarr"])).Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["none.zarr"])).Message, StringComparison.Ordinal);
        Directory.CreateDirectory(dir["empty.zarr"]);
        Assert.Contains("neither a Zarr array", Assert.Throws<VolumeException>(() => VolumeStore.Open(dir["empty.zarr"])).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Non_ome_axis_orders_become_plain_arrays_and_existing_data_is_refused()
    {
        using var dir = new TempDir();
        var zyxc = new VolumeCreateOptions(AxisOrder.Parse("zyxc"), [2, 3, 4, 2], DataType.UInt8, [2, 3, 4, 1], VoxelSize.Isotropic, CodecSpec.None);
        // The OME-Zarr writer itself refuses orders NGFF 0.4 forbids...
        var e = Assert.Throws<UsageException>(() => ZarrVolume.Create(dir["ome.zarr"], "", zyxc));
        Assert.Contains("t, c, z, y, x", e.Message, StringComparison.Ordinal);
        Assert.Contains("czyx", e.Message, StringComparison.Ordinal);

        // ...so VolumeStore writes them (a channels-last feature matrix) as plain arrays named in _ARRAY_DIMENSIONS.
        using (VolumeStore.Create(VolumeStore.ParseAddress(dir["plain.zarr"]), zyxc)) { }
        Assert.False(File.Exists(Path.Combine(dir["plain.zarr"], ".zgroup")));
        using (var v = VolumeStore.Open(dir["plain.zarr"])) Assert.Equal("zyxc", v.Info.Axes.Names);

        var czyx = zyxc with { Axes = AxisOrder.Parse("czyx"), Shape = [2, 2, 3, 4], Chunks = [1, 2, 3, 4] };
        using (VolumeStore.Create(VolumeStore.ParseAddress(dir["x.zarr"]), czyx)) { }
        Assert.Contains("already holds Zarr data", Assert.Throws<VolumeException>(() => VolumeStore.Create(VolumeStore.ParseAddress(dir["x.zarr"]), czyx)).Message, StringComparison.Ordinal);
    }
}
