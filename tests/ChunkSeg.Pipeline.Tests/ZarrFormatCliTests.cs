using System.Text.Json;
using System.Text.Json.Nodes;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Storage;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `--format zarr3 [--shard z,y,x]` on convert, predict and label: OME-NGFF 0.5 outputs in Zarr v3, sharded by the
/// compute chunk (or the shard asked for), whose values equal the Zarr v2 output's and which zarrita (npm) reads equal;
/// options that do not fit together are refused naming the option.
/// </summary>
public sealed class ZarrFormatCliTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Ilp3D => SharedData.Require("ilastik/PixelClass3D.ilp");
    private static string Data3D => SharedData.Require("ilastik/Data_3D.h5") + "/data";

    [Fact]
    public async Task Convert_to_zarr3_writes_one_shard_per_compute_chunk_or_the_shard_asked_for_with_the_v2_values()
    {
        string v2 = _dir["v2.zarr"], auto = _dir["auto.zarr"], given = _dir["given.zarr"];
        await Ok("convert", Data3D, v2, "--chunks", "16,32,32", "--format", "zarr2");
        // Zarr v3 is the default: no --format needed.
        await Ok("convert", Data3D, auto, "--chunks", "16,32,32", "--chunk", "32,64,64", "--workers", "2");
        await Ok("convert", Data3D, given, "--chunks", "16,32,32", "--format", "zarr3", "--shard", "32,32,64", "--workers", "1");

        using var reference = VolumeStore.Open(v2);
        var shape = reference.Info.Shape;
        var expected = new byte[reference.Info.SizeInBytes];
        reference.Read(NdBox.Whole(shape), expected);
        foreach (var (store, shard) in new[] { (auto, new[] { 32, 64, 64 }), (given, new[] { 32, 32, 64 }) })
        {
            // OME-NGFF 0.5: the image group's zarr.json carries the "ome" attributes; level 0 is a sharded v3 array.
            var group = JsonNode.Parse(File.ReadAllText(Path.Combine(store, "zarr.json")))!;
            Assert.Equal("0.5", group["attributes"]!["ome"]!["version"]!.GetValue<string>());
            var array = JsonNode.Parse(File.ReadAllText(Path.Combine(store, "0", "zarr.json")))!;
            var sharding = array["codecs"]!.AsArray().Single(c => c!["name"]!.GetValue<string>() == "sharding_indexed")!;
            Assert.Equal([16, 32, 32], sharding["configuration"]!["chunk_shape"]!.AsArray().Select(v => v!.GetValue<int>()).TakeLast(3));
            Assert.Equal(shard, array["chunk_grid"]!["configuration"]!["chunk_shape"]!.AsArray().Select(v => v!.GetValue<int>()).TakeLast(3));

            using var volume = VolumeStore.Open(store);
            Assert.Equal(shape, volume.Info.Shape);
            var actual = new byte[expected.Length];
            volume.Read(NdBox.Whole(shape), actual);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{store}: values differ from the v2 output");

            // At most one file per shard (all-background shards are not written), far fewer than the inner chunks.
            long shards = 1, chunks = 1;
            for (int d = 0; d < 3; d++)
            {
                long extent = shape[shape.Length - 3 + d];
                shards *= (extent + shard[d] - 1) / shard[d];
                chunks *= (extent + new[] { 16, 32, 32 }[d] - 1) / new[] { 16, 32, 32 }[d];
            }
            long files = Directory.EnumerateFiles(Path.Combine(store, "0", "c"), "*", SearchOption.AllDirectories).LongCount();
            Assert.InRange(files, 1, shards);
            Assert.True(shards < chunks, $"{shards} shards for {chunks} chunks");

            // An independent reader: zarrita reads level 0 equal.
            string raw = _dir[Path.GetFileName(store) + ".raw"], manifest = _dir[Path.GetFileName(store) + ".json"];
            File.WriteAllText(manifest, JsonSerializer.Serialize(new[] { new Dictionary<string, object?> { ["name"] = "level0", ["path"] = Path.Combine(store, "0"), ["out"] = raw } }));
            var read = JsonNode.Parse(NodeReference.Run("zarr_v3.mjs", "read", manifest))!;
            Assert.Null(read["level0"]!["error"]);
            Assert.True(expected.AsSpan().SequenceEqual(File.ReadAllBytes(raw)), $"{store}: zarrita read different values");
        }
    }

    [Fact]
    public async Task Predict_and_label_in_zarr3_equal_their_zarr2_outputs()
    {
        string[] chunking = ["--chunk", "32,32,32", "--workers", "2"];
        await Ok(["predict", Data3D, _dir["p2.zarr"], "--ilp", Ilp3D, "--format", "zarr2", .. chunking]);
        await Ok(["predict", Data3D, _dir["p3.zarr"], "--ilp", Ilp3D, "--format", "zarr3", .. chunking]);
        Assert.True(File.Exists(Path.Combine(_dir["p3.zarr"], "zarr.json")));
        Assert.Equal(ReadAll(_dir["p2.zarr"]), ReadAll(_dir["p3.zarr"]));

        await Ok(["label", _dir["p2.zarr"], _dir["l2.zarr"], "--format", "zarr2", .. chunking]);
        await Ok(["label", _dir["p3.zarr"], _dir["l3.zarr"], "--format", "zarr3", "--shard", "32,64,64", .. chunking]);
        var group = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir["l3.zarr"], "zarr.json")))!;
        Assert.NotNull(group["attributes"]!["ome"]!["image-label"]);
        var labels = TestVolumes.ReadUInt32(_dir["l2.zarr"]);
        Assert.True(labels.Max() >= 2, "the fixture holds several objects");
        Assert.Equal(labels, TestVolumes.ReadUInt32(_dir["l3.zarr"]));
    }

    [Fact]
    public async Task Options_that_do_not_fit_together_are_refused_by_name()
    {
        await Cli.Expect(2, "shards are a Zarr v3 feature; drop --format zarr2", "convert", Data3D, _dir["a.zarr"], "--format", "zarr2", "--shard", "32,32,32");
        await Cli.Expect(2, "Zarr outputs", "convert", Data3D, _dir["a.h5"] + "/data", "--format", "zarr3");
        await Cli.Expect(2, "--shard", "convert", Data3D, _dir["b.zarr"], "--format", "zarr3", "--chunks", "16,32,32", "--shard", "24,32,32");
        await Cli.Expect(2, "--format zarr4", "convert", Data3D, _dir["c.zarr"], "--format", "zarr4");
        Assert.False(Directory.Exists(_dir["b.zarr"]) || Directory.Exists(_dir["b.zarr"] + ".partial"));
    }

    private static byte[] ReadAll(string address)
    {
        using var v = VolumeStore.Open(address);
        var data = new byte[v.Info.SizeInBytes];
        v.Read(NdBox.Whole(v.Info.Shape), data);
        return data;
    }

    private static async Task Ok(params string[] args)
    {
        var (code, output, err) = await Cli.Run(args);
        Assert.True(code == 0, $"chunkseg {string.Join(' ', args)} exited {code}:\n{err}\n{output}");
    }
}
