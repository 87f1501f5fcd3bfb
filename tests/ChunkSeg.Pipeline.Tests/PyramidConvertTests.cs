using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Pyramids;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using ChunkSeg.Tests.Shared;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg convert IN OUT.zarr --levels N|auto`: every level equals the kernel applied to the whole previous level,
/// shapes and transformations as PyramidPlan says, zarr-python reads the pyramid, labels take the mode, chunking and
/// workers do not change the bytes, a convert killed mid-pyramid resumes to the same bytes, and bad requests are refused.
/// </summary>
public sealed class PyramidConvertTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Data3D => SharedData.Require("ilastik/Data_3D.h5") + "/data";

    [Fact]
    public async Task Levels_3_of_ilastik_data_are_the_mean_of_the_level_before_and_zarr_python_reads_them()
    {
        string output = _dir["data.zarr"];
        await Ok("convert", Data3D, output, "--levels", "3", "--format", "zarr2");
        var levels = CheckPyramid(output, 3, DownsampleMethod.Mean);
        CheckWithZarrPython(output, levels);
    }

    [Fact]
    public async Task Auto_levels_respect_anisotropy_and_end_in_one_chunk()
    {
        // 20 z-slices at 4 µm over 61 × 67 pixels of 1 µm: y and x halve twice before z does; ragged blocks everywhere.
        var shape = new long[] { 20, 61, 67 };
        var random = new Random(27);
        var data = new ushort[shape[0] * shape[1] * shape[2]];
        for (int i = 0; i < data.Length; i++) data[i] = (ushort)random.Next(0, 65536);
        string input = TestVolumes.WriteZarr(_dir, "aniso-in.zarr", "zyx", shape, DataType.UInt16, MemoryMarshal.AsBytes(data.AsSpan()).ToArray(),
            new VoxelSize(4, 1, 1));
        string output = _dir["aniso.zarr"];
        await Ok("convert", input, output, "--levels", "auto", "--chunks", "8,16,16", "--format", "zarr2");

        var plan = PyramidPlan.Create(new Long3(20, 61, 67), new VoxelSize(4, 1, 1), new Long3(8, 16, 16));
        Assert.Equal(new Long3(1, 2, 2), plan[1].Factor);
        var levels = CheckPyramid(output, plan.Count, DownsampleMethod.Mean);
        Assert.True(plan[^1].Shape.Z <= 8 && plan[^1].Shape.Y <= 16 && plan[^1].Shape.X <= 16, $"coarsest level {plan[^1].Shape}");
        CheckWithZarrPython(output, levels);
    }

    [Fact]
    public async Task Every_time_point_and_channel_is_downsampled_on_its_own()
    {
        var shape = new long[] { 2, 3, 9, 10, 11 };
        var data = new byte[shape.Aggregate(1L, (a, b) => a * b)];
        new Random(3).NextBytes(data);
        string input = TestVolumes.WriteZarr(_dir, "tc-in.zarr", "tczyx", shape, DataType.UInt8, data);
        string output = _dir["tc.zarr"];
        await Ok("convert", input, output, "--levels", "3", "--chunks", "4,4,4", "--workers", "3", "--format", "zarr2");
        var levels = CheckPyramid(output, 3, DownsampleMethod.Mean);
        Assert.Equal(new long[] { 2, 3, 3, 3, 3 }, levels[2].Shape);
        CheckWithZarrPython(output, levels);
    }

    [Fact]
    public void The_stage_catalog_rebuilds_a_downsample_stage_from_its_parameters()
    {
        var stage = new DownsampleStage(new Long3(1, 2, 2), DownsampleMethod.Mode);
        var rebuilt = Assert.IsType<DownsampleStage>(StageCatalog.Create(StageCatalog.Downsample, stage.Parameters, new Long3(4, 4, 4), VoxelSize.Isotropic));
        Assert.Equal(stage.Factor, rebuilt.Factor);
        Assert.Equal(stage.Method, rebuilt.Method);
        Assert.Equal(Halo.None, rebuilt.RequiredHalo);
    }

    [Fact]
    public async Task A_label_pyramid_takes_the_mode_and_keeps_only_ids_of_the_level_before()
    {
        var shape = new long[] { 19, 23, 29 };
        var labels = new uint[shape[0] * shape[1] * shape[2]];
        var random = new Random(5);
        for (int n = 1; n <= 40; n++)   // boxes of random ids over a background of 0
        {
            int z0 = random.Next(19), y0 = random.Next(23), x0 = random.Next(29), d = random.Next(1, 7);
            uint id = (uint)random.Next(1, 1_000_000);
            for (int z = z0; z < Math.Min(19, z0 + d); z++)
                for (int y = y0; y < Math.Min(23, y0 + d); y++)
                    for (int x = x0; x < Math.Min(29, x0 + d); x++)
                        labels[x + 29 * (y + 23 * z)] = id;
        }
        string input = TestVolumes.WriteZarr(_dir, "labels-in.zarr", "zyx", shape, DataType.UInt32, MemoryMarshal.AsBytes(labels.AsSpan()).ToArray());
        string output = _dir["labels.zarr"];
        await Ok("convert", input, output, "--levels", "4", "--downsample", "mode", "--chunks", "8,8,8", "--chunk", "8,8,8", "--workers", "2");
        var levels = CheckPyramid(output, 4, DownsampleMethod.Mode);
        for (int k = 1; k < levels.Count; k++)
        {
            var previous = MemoryMarshal.Cast<byte, uint>(levels[k - 1].Bytes).ToArray().ToHashSet();
            Assert.All(MemoryMarshal.Cast<byte, uint>(levels[k].Bytes).ToArray().Distinct(), id => Assert.Contains(id, previous));
        }
    }

    [Fact]
    public async Task Chunk_size_and_workers_do_not_change_the_bytes()
    {
        string a = _dir["a.zarr"], b = _dir["b.zarr"];
        // Zarr v2: one file per chunk whatever the compute chunks (a v3 output's default shards follow them).
        await Ok("convert", Data3D, a, "--levels", "auto", "--chunks", "16,16,16", "--chunk", "16,16,16", "--workers", "1", "--format", "zarr2");
        await Ok("convert", Data3D, b, "--levels", "auto", "--chunks", "16,16,16", "--workers", "2", "--format", "zarr2");
        CheckPyramid(a, 3, DownsampleMethod.Mean);   // 64³ in 16³ chunks: 64, 32, 16
        AssertSameStore(a, b);
    }

    [Fact]
    public async Task A_convert_killed_mid_pyramid_resumes_to_the_same_bytes()
    {
        var shape = new long[] { 96, 96, 96 };
        var random = new Random(11);
        var data = new ushort[shape[0] * shape[1] * shape[2]];
        for (int i = 0; i < data.Length; i++) data[i] = (ushort)random.Next(0, 4096);
        string input = TestVolumes.WriteZarr(_dir, "kill-in.zarr", "zyx", shape, DataType.UInt16, MemoryMarshal.AsBytes(data.AsSpan()).ToArray());
        string[] options = ["--levels", "3", "--chunks", "8,8,8", "--chunk", "8,8,8", "--workers", "1"];
        string reference = _dir["kill-reference.zarr"];
        await Ok(["convert", input, reference, .. options]);

        string killed = _dir["killed.zarr"];
        string levelManifest = Path.Combine(killed + StagedOutput.PartialSuffix, ".chunkseg", "level-1-manifest.jsonl");
        bool wasKilled = false;
        for (int attempt = 0; attempt < 5 && !wasKilled; attempt++)
        {
            if (Directory.Exists(killed)) Directory.Delete(killed, recursive: true);
            // Kill once level 1 has recorded a few chunks: level 0 is complete, level 1 part done.
            wasKilled = await RunAndKill([input, killed, .. options], () => Lines(levelManifest) > 3);
        }
        Assert.True(wasKilled, "every convert finished before level 1 had recorded a chunk");
        Assert.False(Directory.Exists(killed), "a killed convert must not leave the final store");
        Assert.True(Directory.Exists(killed + StagedOutput.PartialSuffix));

        var (code, stdout, err) = await Cli.Run(["convert", input, killed, .. options]);
        Assert.True(code == 0, err);
        AssertSameStore(reference, killed);
        Assert.False(Directory.Exists(killed + StagedOutput.PartialSuffix));
        // Rerunning a finished convert is a no-op, not an error.
        await Ok(["convert", input, killed, .. options]);
        _ = stdout;
    }

    [Fact]
    public async Task Bad_pyramid_requests_are_refused_before_any_work()
    {
        await Cli.Expect(2, "pyramids are written to OME-Zarr", "convert", Data3D, _dir["p.h5"] + "/data", "--levels", "2");
        await Cli.Expect(2, "pyramids are written to OME-Zarr", "convert", Data3D, _dir["p.tif"], "--levels", "auto");
        await Cli.Expect(2, "--levels 0", "convert", Data3D, _dir["p0.zarr"], "--levels", "0");
        await Cli.Expect(2, "at most", "convert", Data3D, _dir["p40.zarr"], "--levels", "40");
        await Cli.Expect(2, "must be mean (images) or mode (labels)", "convert", Data3D, _dir["pm.zarr"], "--levels", "2", "--downsample", "median");
        await Cli.Expect(2, "--downsample goes with --levels", "convert", Data3D, _dir["pd.zarr"], "--downsample", "mode");
        Assert.False(Directory.Exists(_dir["p40.zarr.partial"]), "refused before any work");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_zarr_v3_output_gets_an_ome_0_5_pyramid_with_the_v2_values(bool sharded)
    {
        using var source = VolumeStore.Open(Data3D);
        var options = OutputLayout.For(source.Info, VolumeFormat.Zarr, new Long3(8, 8, 8), null, null) with { ZarrFormat = 3 };
        // Shards of 2 × 2 × 2 chunks: a level pass's compute chunks cover whole shards (clipped to each level's shape).
        if (sharded) options = options with { ShardShape = [.. options.Axes.Names.Select(a => a == 'c' ? 1 : 16)] };
        var target = VolumeStore.ParseAddress(_dir[$"v3-{sharded}.zarr"]);
        var request = new JobRequest(StageCatalog.Convert, source, target, options, sharded ? new Long3(16, 16, 16) : null, 2, false, new Dictionary<string, string>(),
            Pyramid: new PyramidRequest(3, DownsampleMethod.Mean));
        var outcome = await EmbeddedJob.RunAsync(request, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, null, CancellationToken.None);
        Assert.True(outcome.Result.IsComplete);
        var ome = JsonNode.Parse(File.ReadAllText(Path.Combine(target.RootPath, "zarr.json")))!["attributes"]!["ome"]!;
        Assert.Equal("0.5", ome["version"]!.GetValue<string>());
        Assert.Equal(3, ome["multiscales"]![0]!["datasets"]!.AsArray().Count);
        var levels = CheckPyramid(target.RootPath, 3, DownsampleMethod.Mean);
        if (sharded)
        {
            using var level1 = VolumeStore.Open(new VolumeAddress(VolumeFormat.Zarr, target.RootPath, "1"), levels[1].Axes);
            Assert.Equal(new[] { 1, 16, 16, 16 }, level1.Info.WriteUnit);
        }
        // Every level is sharded like level 0 (the shards one per compute chunk there, unless asked for), clipped to its shape.
        for (int k = 0; k < 3; k++)
            Assert.Contains("sharding_indexed", File.ReadAllText(Path.Combine(target.RootPath, k.ToString(System.Globalization.CultureInfo.InvariantCulture), "zarr.json")));
        string v2 = _dir[$"v2-{sharded}.zarr"];
        await Ok("convert", Data3D, v2, "--levels", "3", "--chunks", "16,16,16", "--format", "zarr2");
        var v2Levels = ReadLevels(v2, 3);
        for (int k = 0; k < 3; k++) Assert.Equal(v2Levels[k].Bytes, levels[k].Bytes);
    }

    // ---- helpers ----

    internal sealed record Level(long[] Shape, AxisOrder Axes, DataType Type, byte[] Bytes);

    internal static List<Level> ReadLevels(string store, int count)
    {
        AxisOrder axes;
        using (var level0 = VolumeStore.Open(store)) axes = level0.Info.Axes;
        var levels = new List<Level>();
        for (int k = 0; k < count; k++)
        {
            using var v = VolumeStore.Open(new VolumeAddress(VolumeFormat.Zarr, store, k.ToString(System.Globalization.CultureInfo.InvariantCulture)), axes);
            var bytes = new byte[v.Info.SizeInBytes];
            v.Read(NdBox.Whole(v.Info.Shape), bytes);
            levels.Add(new Level(v.Info.Shape, axes, v.Info.DataType, bytes));
        }
        Assert.False(Directory.Exists(Path.Combine(store, count.ToString(System.Globalization.CultureInfo.InvariantCulture))), $"{store} has more than {count} levels");
        return levels;
    }

    /// <summary>
    /// Reads the pyramid; asserts <paramref name="count"/> levels with PyramidPlan's shapes, each equal to the kernel
    /// applied to the whole level before it, and the multiscales transformations PyramidPlan gives.
    /// </summary>
    internal static List<Level> CheckPyramid(string store, int count, DownsampleMethod method)
    {
        var levels = ReadLevels(store, count);
        VolumeInfo info0;
        using (var level0 = VolumeStore.Open(store)) info0 = level0.Info;
        var plan = PyramidPlan.Create(info0.SpatialShape, info0.VoxelSize, new Long3(info0.WriteUnitExtent('z'), info0.WriteUnitExtent('y'), info0.WriteUnitExtent('x')), count);
        for (int k = 1; k < count; k++)
        {
            var axes = levels[k].Axes;
            Assert.Equal(plan[k].Shape, new Long3(Extent(levels[k], 'z'), Extent(levels[k], 'y'), Extent(levels[k], 'x')));
            Assert.Equal(Downsampled(levels[k - 1], plan[k].Factor, method), levels[k].Bytes);
            Assert.Equal(levels[0].Shape.Where((_, d) => !"zyx".Contains(axes[d])), levels[k].Shape.Where((_, d) => !"zyx".Contains(axes[d])));
        }
        var datasets = Multiscales(store)["datasets"]!.AsArray();
        Assert.Equal(count, datasets.Count);
        for (int k = 0; k < count; k++)
        {
            var (scale, translation) = Transforms(datasets[k]!);
            Assert.Equal(k.ToString(System.Globalization.CultureInfo.InvariantCulture), datasets[k]!["path"]!.GetValue<string>());
            Assert.Equal(Expected(levels[k].Axes, a => plan[k].Scale[a], 1), scale);
            Assert.Equal(Expected(levels[k].Axes, a => a switch { 'z' => plan[k].Translation.Z, 'y' => plan[k].Translation.Y, _ => plan[k].Translation.X }, 0), translation);
        }
        return levels;
    }

    private static double[] Expected(AxisOrder axes, Func<char, double> spatial, double other) =>
        axes.Names.Select(a => "zyx".Contains(a) ? spatial(a) : other).ToArray();

    private static long Extent(Level level, char axis) => level.Axes.IndexOf(axis) is var i and >= 0 ? level.Shape[i] : 1;

    /// <summary>The kernel on the whole previous level, one (t, c) slab at a time (spatial axes last in OME order).</summary>
    private static byte[] Downsampled(Level previous, Long3 factor, DownsampleMethod method)
    {
        var spatial = new Long3(Extent(previous, 'z'), Extent(previous, 'y'), Extent(previous, 'x'));
        var outShape = Downsample.OutputShape(spatial, factor);
        int size = previous.Type.SizeInBytes();
        long slabs = previous.Bytes.Length / size / spatial.Volume;
        var result = new byte[slabs * outShape.Volume * size];
        for (long s = 0; s < slabs; s++)
        {
            var src = previous.Bytes.AsSpan((int)(s * spatial.Volume * size), (int)(spatial.Volume * size));
            var dst = result.AsSpan((int)(s * outShape.Volume * size), (int)(outShape.Volume * size));
            switch (previous.Type, method)
            {
                case (DataType.UInt8, DownsampleMethod.Mean): Downsample.Mean(src, spatial, factor, dst); break;
                case (DataType.UInt16, DownsampleMethod.Mean): Downsample.Mean(MemoryMarshal.Cast<byte, ushort>(src), spatial, factor, MemoryMarshal.Cast<byte, ushort>(dst)); break;
                case (DataType.Float32, DownsampleMethod.Mean): Downsample.Mean(MemoryMarshal.Cast<byte, float>(src), spatial, factor, MemoryMarshal.Cast<byte, float>(dst)); break;
                case (DataType.UInt32, DownsampleMethod.Mode): Downsample.Mode(MemoryMarshal.Cast<byte, uint>(src), spatial, factor, MemoryMarshal.Cast<byte, uint>(dst)); break;
                default: throw new NotSupportedException($"{previous.Type} {method}");
            }
        }
        return result;
    }

    private static JsonNode Multiscales(string store)
    {
        string zattrs = Path.Combine(store, ".zattrs");
        var root = File.Exists(zattrs) ? JsonNode.Parse(File.ReadAllText(zattrs))!
            : JsonNode.Parse(File.ReadAllText(Path.Combine(store, "zarr.json")))!["attributes"]!["ome"]!;
        return root["multiscales"]![0]!;
    }

    private static (double[] Scale, double[] Translation) Transforms(JsonNode dataset)
    {
        double[]? scale = null, translation = null;
        foreach (var t in dataset["coordinateTransformations"]!.AsArray())
        {
            string type = t!["type"]!.GetValue<string>();
            var values = t[type]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
            if (type == "scale") scale = values; else if (type == "translation") translation = values;
        }
        return (scale!, translation!);
    }

    /// <summary>zarr-python reads every level the multiscales list: same shapes, bytes and transformations.</summary>
    private static void CheckWithZarrPython(string store, List<Level> levels)
    {
        var lines = PythonReference.Run("pyramid_check.py", store).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(levels.Count, lines.Length);
        var datasets = Multiscales(store)["datasets"]!.AsArray();
        for (int k = 0; k < levels.Count; k++)
        {
            using var doc = JsonDocument.Parse(lines[k]);
            var r = doc.RootElement;
            Assert.Equal(k.ToString(System.Globalization.CultureInfo.InvariantCulture), r.GetProperty("path").GetString());
            Assert.Equal(levels[k].Shape, r.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
            Assert.Equal(levels[k].Type.Name(), r.GetProperty("dtype").GetString());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(levels[k].Bytes)), r.GetProperty("sha256").GetString());
            var (scale, translation) = Transforms(datasets[k]!);
            Assert.Equal(scale, r.GetProperty("scale").EnumerateArray().Select(e => e.GetDouble()));
            Assert.Equal(translation, r.GetProperty("translation").EnumerateArray().Select(e => e.GetDouble()));
        }
    }

    /// <summary>
    /// Every file of two stores, byte for byte, but the manifests (they record chunk shapes, workers and times) and the
    /// image's name in the group metadata (each store's own).
    /// </summary>
    internal static void AssertSameStore(string expected, string actual)
    {
        static byte[] Read(string root, string file) => Path.GetFileName(file) is ".zattrs" or "zarr.json"
            ? System.Text.Encoding.UTF8.GetBytes(File.ReadAllText(file).Replace($"\"{Path.GetFileName(root)}\"", "\"NAME\"", StringComparison.Ordinal))
            : File.ReadAllBytes(file);
        static SortedDictionary<string, byte[]> Files(string root) => new(
            Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
                .Where(f => !Path.GetRelativePath(root, f).StartsWith(".chunkseg", StringComparison.Ordinal))
                .ToDictionary(f => Path.GetRelativePath(root, f), f => Read(root, f)), StringComparer.Ordinal);
        var a = Files(expected);
        var b = Files(actual);
        Assert.Equal(a.Keys, b.Keys);
        foreach (var (name, bytes) in a) Assert.True(bytes.AsSpan().SequenceEqual(b[name]), $"{name} differs");
    }

    /// <summary>Lines of a manifest (0 while it does not exist, or is being replaced).</summary>
    internal static long Lines(string path)
    {
        try { return File.Exists(path) ? File.ReadLines(path).LongCount() : 0; }
        catch (IOException) { return 0; }
    }

    /// <summary>Starts `chunkseg convert` as its own process and kills it (SIGKILL) once <paramref name="when"/> holds; false if it finished first.</summary>
    private static Task<bool> RunAndKill(string[] args, Func<bool> when) =>
        ChunkSegProcess.RunAndKill(["convert", .. args], when, TimeSpan.FromMinutes(1));

    private static async Task Ok(params string[] args)
    {
        var (code, _, err) = await Cli.Run(args);
        Assert.True(code == 0, $"chunkseg {string.Join(' ', args)} exited {code}: {err}");
    }
}
