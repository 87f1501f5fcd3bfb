using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage;
using ChunkSeg.Tests.Shared;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// `chunkseg run` on ilastik's own fixtures: one fused pass equals `predict`, then `label` on those probabilities,
/// then `mesh` on those labels, for several chunk shapes, worker counts and options; resume after SIGKILL;
/// refusal of a different command; 2D and 3D+t inputs.
/// </summary>
public sealed class RunCliTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Ilp3D => SharedData.Require("ilastik/PixelClass3D.ilp");
    private static string Data3D => SharedData.Require("ilastik/Data_3D.h5") + "/data";

    [Theory]
    [InlineData("16,24,32", 2, "")]
    [InlineData("64,64,64", 1, "--smooth-sigma 1.0 --min-size 20")]
    [InlineData("20,20,20", 3, "--argmax --connectivity 26 --exclude-border")]
    [InlineData("9,64,13", 2, "--threshold 0.7 --channel 0 --mesh ply")]
    public async Task One_pass_equals_predict_then_label_then_mesh(string chunk, int workers, string options)
    {
        string[] extra = options.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string outDir = _dir["run"];
        await Ok(["run", Data3D, "--ilp", Ilp3D, "--out", outDir, "--export-probabilities", "--chunk", chunk, "--workers", workers.ToString(), .. extra]);

        // The stages run separately, on their own default chunking.
        string probabilities = _dir["p.h5"] + "/p", labels = _dir["l.zarr"], objects = _dir["objects.csv"];
        await Ok("predict", Data3D, probabilities, "--ilp", Ilp3D);
        string[] labelOptions = extra.Where((a, i) => a != "--mesh" && (i == 0 || extra[i - 1] != "--mesh")).ToArray();
        await Ok(["label", probabilities, labels, "--objects", objects, "--intensity", Data3D, .. labelOptions]);
        string format = options.Contains("ply") ? "ply" : "obj";
        await Ok("mesh", labels, _dir["mesh." + format], "--per-label");

        var want = IlastikParityTests.ReadAll(probabilities);
        Assert.Equal(want, IlastikParityTests.ReadAll(Path.Combine(outDir, "probabilities.h5") + "/exported_data"));
        Assert.Equal(want, ChannelsLast(IlastikParityTests.ReadAll(Path.Combine(outDir, "probabilities.ome.zarr")), 2));
        var wantLabels = TestVolumes.ReadUInt32(labels);
        Assert.Contains(wantLabels, l => l != 0);
        Assert.Equal(wantLabels, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
        Assert.Equal(wantLabels, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.h5") + "/labels"));
        Assert.Equal(File.ReadAllText(objects), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
        Assert.Equal(MeshBody(_dir["mesh." + format]), MeshBody(Path.Combine(outDir, "mesh." + format)));

        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
        Assert.Equal(wantLabels.Max(), manifest["objects"]!.GetValue<long>());
        Assert.Equal(64, manifest["classifier"]!["sha256"]!.GetValue<string>().Length);
        Assert.Equal(["classify + label", "merge", "relabel", "HDF5 copies", "mesh"], manifest["stages"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()));
        Assert.False(File.Exists(Path.Combine(outDir, ".chunkseg-run.json")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outDir, "*.work"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outDir, "*.partial*"));

        // OME-NGFF 0.5 by default: the label metadata under "ome" in the group's zarr.json.
        var ome = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "labels.ome.zarr", "zarr.json")))!["attributes"]!["ome"]!;
        Assert.Equal("0.5", ome["version"]!.GetValue<string>());
        Assert.NotNull(ome["image-label"]);
    }

    [Fact]
    public async Task A_rerun_is_a_no_op_a_different_command_is_refused_and_overwrite_replaces()
    {
        string outDir = _dir["run"];
        string[] run = ["run", Data3D, "--ilp", Ilp3D, "--out", outDir, "--chunk", "32,32,32", "--mesh", "none"];
        await Ok(run);
        var first = TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr"));

        var (code, output, err) = await Cli.Run(run);
        Assert.True(code == 0, err);
        Assert.Contains("already holds this run", output);

        await Cli.Expect(2, "threshold 0.5 → 0.8", [.. run, "--threshold", "0.8"]);
        await Cli.Expect(2, "--overwrite", [.. run, "--threshold", "0.8"]);
        Assert.Equal(first, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));   // nothing lost

        File.WriteAllText(Path.Combine(outDir, "notes.txt"), "mine");
        await Ok([.. run, "--threshold", "0.8", "--overwrite"]);
        Assert.NotEqual(first, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
        Assert.Equal("mine", File.ReadAllText(Path.Combine(outDir, "notes.txt")));             // only the run's own files replaced
        Assert.Contains("\"threshold\": \"0.8\"", File.ReadAllText(Path.Combine(outDir, "manifest.json")));

        // Outputs that no run of this command wrote are not taken over.
        string foreign = _dir["foreign"];
        Directory.CreateDirectory(Path.Combine(foreign, "labels.ome.zarr"));
        await Cli.Expect(2, "not written by a run", "run", Data3D, "--ilp", Ilp3D, "--out", foreign);
    }

    [Fact]
    public async Task Bad_options_are_refused_by_name()
    {
        await Cli.Expect(2, "run: give a classifier, --ilp PROJECT.ilp or --model MODEL", "run", Data3D, "--out", _dir["x"]);
        await Cli.Expect(2, "--mesh stl", "run", Data3D, "--ilp", Ilp3D, "--out", _dir["x"], "--mesh", "stl");
        await Cli.Expect(2, "--channel 2", "run", Data3D, "--ilp", Ilp3D, "--out", _dir["x"], "--channel", "2");
        await Cli.Expect(2, "--min-size", "run", Data3D, "--ilp", Ilp3D, "--out", _dir["x"], "--min-size", "-1");
        await Cli.Expect(1, "missing.h5", "run", _dir["missing.h5"] + "/data", "--ilp", Ilp3D, "--out", _dir["x"]);
        Assert.False(File.Exists(Path.Combine(_dir["x"], "manifest.json")));
    }

    [Fact]
    public async Task A_2D_image_is_classified_and_labelled_without_a_mesh()
    {
        string ilp = SharedData.Require("ilastik/PixelClass.ilp"), data = SharedData.Require("ilastik/Data_1channel.h5") + "/data";
        string outDir = _dir["run"];
        await Ok("run", data, "--ilp", ilp, "--out", outDir, "--chunk", "1,48,40", "--workers", "2", "--export-probabilities");
        await Ok("predict", data, _dir["p.h5"] + "/p", "--ilp", ilp);
        await Ok("label", _dir["p.h5"] + "/p", _dir["l.zarr"], "--objects", _dir["objects.csv"], "--intensity", data);

        Assert.Equal(IlastikParityTests.ReadAll(_dir["p.h5"] + "/p"), IlastikParityTests.ReadAll(Path.Combine(outDir, "probabilities.h5") + "/exported_data"));
        Assert.Equal(TestVolumes.ReadUInt32(_dir["l.zarr"]), TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
        Assert.Equal(File.ReadAllText(_dir["objects.csv"]), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
        Assert.Empty(Directory.EnumerateFiles(outDir, "mesh*"));
    }

    [Fact]
    public async Task Time_points_get_their_own_labels_ids_unique_across_time_and_a_mesh_each()
    {
        // t = 0 is Data_3D, t = 1 the same mirrored along x.
        using var source = VolumeStore.Open(Data3D);
        var shape = source.Info.Shape;                                   // z, y, x, c
        var voxels = new byte[source.Info.ElementCount];
        source.Read(NdBox.Whole(shape), voxels);
        var both = new byte[voxels.Length * 2];
        voxels.CopyTo(both, 0);
        long rows = shape[0] * shape[1], width = shape[2];
        for (long r = 0; r < rows; r++)
        for (long x = 0; x < width; x++)
            both[voxels.Length + r * width + x] = voxels[r * width + width - 1 - x];
        string timed = _dir["timed.h5"] + "/data";
        using (var v = VolumeStore.Create(VolumeAddress.Parse(timed), new VolumeCreateOptions(AxisOrder.Parse("tzyxc"), [2, .. shape], DataType.UInt8,
                   [1, 32, 32, 32, 1], VoxelSize.Isotropic, CodecSpec.Gzip())))
            v.Write(NdBox.Whole([2, .. shape]), both);

        string outDir = _dir["run"], single = _dir["single"];
        await Ok("run", timed, "--ilp", Ilp3D, "--out", outDir, "--chunk", "32,32,32", "--workers", "2");
        await Ok("run", Data3D, "--ilp", Ilp3D, "--out", single, "--chunk", "64,64,64");
        await Ok("predict", timed, _dir["p.h5"] + "/p", "--ilp", Ilp3D);
        await Ok("label", _dir["p.h5"] + "/p", _dir["l.zarr"]);

        var labels = TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr"));
        Assert.Equal(TestVolumes.ReadUInt32(_dir["l.zarr"]), labels);
        int half = labels.Length / 2;
        uint lastOfT0 = labels.AsSpan(0, half).ToArray().Max();
        Assert.All(labels.AsSpan(half).ToArray().Where(l => l != 0), l => Assert.True(l > lastOfT0, "ids are unique across time"));
        Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(single, "labels.ome.zarr")), labels.AsSpan(0, half).ToArray());
        Assert.Equal(MeshBody(Path.Combine(single, "mesh.obj")), MeshBody(Path.Combine(outDir, "mesh_t0.obj")));
        Assert.True(File.Exists(Path.Combine(outDir, "mesh_t1.obj")));
        Assert.StartsWith("id,t,", File.ReadLines(Path.Combine(outDir, "objects.csv")).First());
    }

    /// <summary>
    /// A real `chunkseg run` process killed with SIGKILL while it classifies and again while it meshes; another one
    /// killed at random moments over and over. Each rerun of the same command resumes, and the final outputs equal an
    /// uninterrupted run's.
    /// </summary>
    [Fact]
    public async Task Killed_with_SIGKILL_at_any_moment_a_rerun_resumes_to_identical_output()
    {
        string[] options = ["--ilp", Ilp3D, "--chunk", "8,8,16", "--workers", "1", "--export-probabilities"];
        string reference = _dir["reference"];
        await Ok(["run", Data3D, "--out", reference, .. options]);

        string targeted = _dir["targeted"];
        string components = Path.Combine(targeted, "labels.ome.zarr.work", "local.zarr.partial", ".chunkseg", "manifest.jsonl");
        string pieces = Path.Combine(targeted, "mesh.obj.work", "pieces");
        Assert.True(await RunAndKill(targeted, options, () => File.Exists(components) && File.ReadLines(components).Count() > 6), "no kill while classifying");
        Assert.True(await RunAndKill(targeted, options, () => Directory.Exists(pieces) && Directory.EnumerateFiles(pieces).Any()), "no kill while meshing");
        await Ok(["run", Data3D, "--out", targeted, .. options]);
        AssertSameOutputs(reference, targeted);

        string randomly = _dir["random"];
        var random = new Random(7);
        int kills = 0;
        for (bool finished = false; !finished;)
        {
            Assert.True(kills < 400, "the run never finished");
            // A random moment measured in progress, not time: after 1 to 40 more chunks recorded by this attempt. A kill
            // by the clock would, on a busy machine, keep landing in the start-up and the loop would not end (it did).
            long before = Recorded(randomly), step = random.Next(1, 41);
            finished = !await RunAndKill(randomly, options, () => Recorded(randomly) >= before + step);
            if (!finished) kills++;
        }
        Assert.True(kills >= 3, $"only {kills} runs were killed before one finished");
        AssertSameOutputs(reference, randomly);
    }

    /// <summary>
    /// A `run --format zarr3 --levels auto` killed with SIGKILL while it writes the labels' shards (relabel), while it
    /// writes a pyramid level of the labels, and at random moments: each rerun resumes, and every file of the sharded,
    /// multiscale labels and probabilities has the bytes of an uninterrupted run's.
    /// </summary>
    [Fact]
    public async Task Killed_while_writing_shards_or_pyramid_levels_a_rerun_gives_identical_bytes()
    {
        string[] options = ["--ilp", Ilp3D, "--chunk", "8,16,16", "--chunks", "8,8,8", "--workers", "1", "--export-probabilities", "--format", "zarr3",
            "--levels", "auto", "--mesh", "none"];
        string reference = _dir["sharded-reference"];
        await Ok(["run", Data3D, "--out", reference, .. options]);

        string targeted = _dir["sharded-targeted"];
        string staged = Path.Combine(targeted, "labels.ome.zarr" + Storage.StagedOutput.PartialSuffix, ".chunkseg");
        Assert.True(await RunAndKill(targeted, options, () => PyramidConvertTests.Lines(Path.Combine(staged, "manifest.jsonl")) > 4),
            "no kill while writing the labels' shards");
        Assert.True(await RunAndKill(targeted, options, () => PyramidConvertTests.Lines(Path.Combine(staged, "level-1-manifest.jsonl")) > 1),
            "no kill while writing a pyramid level");
        var random = new Random(5);
        for (int kill = 0; kill < 3; kill++)
        {
            long before = Recorded(targeted), step = random.Next(1, 21);
            if (!await RunAndKill(targeted, options, () => Recorded(targeted) >= before + step)) break;
        }
        await Ok(["run", Data3D, "--out", targeted, .. options]);
        foreach (string store in new[] { "labels.ome.zarr", "probabilities.ome.zarr" })
            PyramidConvertTests.AssertSameStore(Path.Combine(reference, store), Path.Combine(targeted, store));
        Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(targeted, "objects.csv")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(targeted, "*.partial*"));
    }

    /// <summary>Chunks recorded so far in the run's pass manifests (the progress a killed run keeps).</summary>
    private static long Recorded(string outDir)
    {
        if (!Directory.Exists(outDir)) return 0;
        long lines = 0;
        foreach (var manifest in Directory.EnumerateFiles(outDir, "*manifest.jsonl", SearchOption.AllDirectories))
        {
            try { lines += File.ReadLines(manifest).LongCount(); }
            catch (IOException) { }   // renamed or replaced while counting
        }
        return lines;
    }

    private static void AssertSameOutputs(string reference, string resumed)
    {
        foreach (var file in new[] { "labels.ome.zarr", "labels.h5/labels", "probabilities.ome.zarr", "probabilities.h5/exported_data" })
            Assert.Equal(ReadBytes(Path.Combine(reference, file)), ReadBytes(Path.Combine(resumed, file)));
        Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(resumed, "objects.csv")));
        Assert.Equal(MeshBody(Path.Combine(reference, "mesh.obj")), MeshBody(Path.Combine(resumed, "mesh.obj")));
        var parameters = (string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")))!["parameters"]!.ToJsonString();
        Assert.Equal(parameters(reference), parameters(resumed));
        Assert.Equal(["labels.h5", "labels.ome.zarr", "manifest.json", "mesh.obj", "objects.csv", "probabilities.h5", "probabilities.ome.zarr"],
            Directory.EnumerateFileSystemEntries(resumed).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    /// <summary>Starts `chunkseg run` as its own process and kills it (SIGKILL) once <paramref name="when"/> holds; false if it finished first.</summary>
    private static Task<bool> RunAndKill(string outDir, string[] options, Func<bool> when) =>
        ChunkSegProcess.RunAndKill(["run", Data3D, "--out", outDir, .. options], when, TimeSpan.FromMinutes(2));

    /// <summary>
    /// `run --split voronoi|distance` equals `predict`, then `label --split …` on those probabilities: the same labels, object
    /// table and exported probabilities, for two chunkings; the scratch probabilities are gone once the run is finished.
    /// </summary>
    [Theory]
    [InlineData("16,24,32", 2, true, "voronoi")]
    [InlineData("64,64,64", 1, false, "voronoi")]
    [InlineData("16,24,32", 2, false, "distance")]
    public async Task A_split_run_equals_predict_then_label_split(string chunk, int workers, bool export, string mode)
    {
        string outDir = _dir[$"split-run-{mode}-{chunk}"];
        string[] split = ["--split", mode, .. mode == "voronoi" ? ["--spot-sigma", "1"] : (string[])["--min-distance", "2"],
            "--channel", "1", "--threshold", "0.5", "--min-size", "5"];
        await Ok(["run", Data3D, "--ilp", Ilp3D, "--out", outDir, "--chunk", chunk, "--workers", workers.ToString(), "--mesh", "none",
            .. export ? ["--export-probabilities"] : (string[])[], .. split]);

        string probabilities = _dir["split-p.h5"] + "/p", labels = _dir[$"split-l-{mode}-{chunk}.zarr"], objects = _dir[$"split-objects-{mode}-{chunk}.csv"];
        if (!File.Exists(_dir["split-p.h5"])) await Ok("predict", Data3D, probabilities, "--ilp", Ilp3D);
        await Ok(["label", probabilities, labels, "--objects", objects, "--intensity", Data3D, .. split]);

        var wantLabels = TestVolumes.ReadUInt32(labels);
        Assert.True(wantLabels.Max() >= 2, $"the fixture should hold several objects; it holds {wantLabels.Max()}");
        Assert.Equal(wantLabels, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
        Assert.Equal(wantLabels, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.h5") + "/labels"));
        Assert.Equal(File.ReadAllText(objects), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
        if (export)
            Assert.Equal(IlastikParityTests.ReadAll(probabilities), ChannelsLast(IlastikParityTests.ReadAll(Path.Combine(outDir, "probabilities.ome.zarr")), 2));
        Assert.Equal(export, Directory.Exists(Path.Combine(outDir, "probabilities.ome.zarr")));
        Assert.False(Directory.Exists(Path.Combine(outDir, ".chunkseg-split-probabilities.zarr")), "the scratch probabilities are removed");
        Assert.Empty(Directory.EnumerateFileSystemEntries(outDir, "*.work"));
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
        Assert.Equal(wantLabels.Max(), manifest["objects"]!.GetValue<long>());
        Assert.Contains(mode, manifest.ToJsonString());

        // Bad split options name themselves, also on a cluster (checked before any pass is sent; a --split voronoi run
        // itself is distributed: DistributedTests), and otsu with argmax in run as in label.
        await Cli.Expect(2, "--split voronoi needs --spot-sigma", "run", Data3D, "--ilp", Ilp3D, "--out", _dir["bad-split"], "--split", "voronoi");
        await Cli.Expect(2, "--spot-sigma goes with --split voronoi", "run", Data3D, "--ilp", Ilp3D, "--out", _dir["bad-split"], "--spot-sigma", "1");
        await Cli.Expect(2, "--threshold otsu thresholds one channel; it does not combine with --argmax", "run", Data3D, "--ilp", Ilp3D, "--out", _dir["bad-split"],
            "--threshold", "otsu", "--argmax");
        Assert.False(Directory.Exists(_dir["bad-split"]) && Directory.EnumerateFileSystemEntries(_dir["bad-split"]).Any(), "refused before any work");
        var spec = new Pipelines.RunSpec(Data3D, _dir["cluster-split"], Ilp: Ilp3D, Split: "voronoi-otsu", SpotSigma: "1");
        var refused = await Assert.ThrowsAsync<Contracts.Errors.UsageException>(() => Pipelines.RunPipeline.ExecuteAsync(spec, () => throw new InvalidOperationException(),
            null, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, null!, resuming: false, CancellationToken.None));
        Assert.Contains("--split voronoi-otsu: the splits available are voronoi", refused.Message);
    }

    /// <summary>
    /// `run --format zarr3 --levels auto` writes sharded OME-NGFF 0.5 outputs with pyramids: level 0 of the labels and
    /// probabilities equals the Zarr v2 run's (so do the table, HDF5 copies and mesh), one shard file per compute chunk,
    /// each level the mode (labels: every id kept) or mean (probabilities) of the whole level before it, zarrita reads
    /// the sharded labels; a v2 run with --levels gets the same levels.
    /// </summary>
    [Theory]
    [InlineData("zarr3", "auto", "--export-probabilities")]
    [InlineData("zarr3", "1", "--export-probabilities")]
    [InlineData("zarr3", "auto", "--split distance --min-distance 2 --channel 1 --threshold 0.5")]
    [InlineData("zarr2", "auto", "--export-probabilities")]
    public async Task A_sharded_multiscale_run_equals_the_single_level_v2_run(string format, string levels, string options)
    {
        string[] extra = options.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string[] common = ["--chunk", "16,32,32", "--chunks", "16,16,16", "--workers", "2", .. extra];
        string plain = _dir["plain-" + extra[0]], pyramid = _dir[$"pyramid-{format}-{levels}-{extra[0]}"];
        if (!Directory.Exists(plain)) await Ok(["run", Data3D, "--ilp", Ilp3D, "--out", plain, "--format", "zarr2", .. common]);
        await Ok(["run", Data3D, "--ilp", Ilp3D, "--out", pyramid, "--format", format, "--levels", levels, .. common]);
        int count = levels == "auto" ? 3 : 1;

        foreach (string file in new[] { "objects.csv" })
            Assert.Equal(File.ReadAllText(Path.Combine(plain, file)), File.ReadAllText(Path.Combine(pyramid, file)));
        Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(plain, "labels.ome.zarr")), TestVolumes.ReadUInt32(Path.Combine(pyramid, "labels.ome.zarr")));
        Assert.Equal(TestVolumes.ReadUInt32(Path.Combine(plain, "labels.h5") + "/labels"), TestVolumes.ReadUInt32(Path.Combine(pyramid, "labels.h5") + "/labels"));
        Assert.Equal(MeshBody(Path.Combine(plain, "mesh.obj")), MeshBody(Path.Combine(pyramid, "mesh.obj")));

        // 64³ in 16³ chunks: levels of 64, 32, 16 (auto stops at one chunk), each the mode of the level before.
        var labels = count > 1
            ? PyramidConvertTests.CheckPyramid(Path.Combine(pyramid, "labels.ome.zarr"), count, GpuNode.Stages.DownsampleMethod.Mode)
            : PyramidConvertTests.ReadLevels(Path.Combine(pyramid, "labels.ome.zarr"), 1);
        var ids = labels[0].Bytes.Chunk(4).Select(b => BitConverter.ToUInt32(b)).ToHashSet();
        Assert.All(labels[^1].Bytes.Chunk(4).Select(b => BitConverter.ToUInt32(b)), id => Assert.Contains(id, ids));
        if (extra.Contains("--export-probabilities"))
        {
            Assert.Equal(IlastikParityTests.ReadAll(Path.Combine(plain, "probabilities.ome.zarr")), IlastikParityTests.ReadAll(Path.Combine(pyramid, "probabilities.ome.zarr")));
            Assert.Equal(IlastikParityTests.ReadAll(Path.Combine(plain, "probabilities.h5") + "/exported_data"),
                IlastikParityTests.ReadAll(Path.Combine(pyramid, "probabilities.h5") + "/exported_data"));
            if (count > 1) PyramidConvertTests.CheckPyramid(Path.Combine(pyramid, "probabilities.ome.zarr"), count, GpuNode.Stages.DownsampleMethod.Mean);
        }
        if (format == "zarr3")
        {
            // One shard file per compute chunk: 4 × 2 × 2 chunks of 16 × 32 × 32.
            Assert.True(File.Exists(Path.Combine(pyramid, "labels.ome.zarr", "zarr.json")));
            static int Shards(string array) => Directory.EnumerateFiles(array, "*", SearchOption.AllDirectories).Count(f => !f.EndsWith("zarr.json", StringComparison.Ordinal));
            Assert.Equal(16, Shards(Path.Combine(pyramid, "labels.ome.zarr", "0")));
            // The probabilities too, also when the fused first pass writes them beside the labelling (one level).
            if (extra.Contains("--export-probabilities")) Assert.Equal(16, Shards(Path.Combine(pyramid, "probabilities.ome.zarr", "0")));
            Assert.Contains("\"sharding_indexed\"", File.ReadAllText(Path.Combine(pyramid, "labels.ome.zarr", "0", "zarr.json")));
            string raw = _dir["zarrita-labels.raw"], manifestPath = _dir["zarrita.json"];
            File.WriteAllText(manifestPath, new JsonArray(new JsonObject
            {
                ["name"] = "labels", ["path"] = Path.Combine(pyramid, "labels.ome.zarr", "0"), ["out"] = raw,
            }).ToJsonString());
            var said = JsonNode.Parse(NodeReference.Run("zarr_v3.mjs", "read", manifestPath))!["labels"]!;
            Assert.True(said["error"] is null, said.ToJsonString());
            Assert.Equal(labels[0].Bytes, File.ReadAllBytes(raw));
        }
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(pyramid, "manifest.json")))!;
        Assert.Equal(levels, manifest["parameters"]!["levels"]!.GetValue<string>());
        Assert.StartsWith(format, manifest["parameters"]!["zarr"]!.GetValue<string>());
        await Cli.Expect(2, "--shard 16,16,16: shards are a Zarr v3 feature", "run", Data3D, "--ilp", Ilp3D, "--out", _dir["bad-shard"], "--format", "zarr2", "--shard", "16,16,16");
        await Cli.Expect(2, "--levels 0: give a number of levels", "run", Data3D, "--ilp", Ilp3D, "--out", _dir["bad-shard"], "--levels", "0");
    }

    /// <summary>
    /// `run --voronoi-otsu SPOT,OUTLINE` (no classifier) equals `label --voronoi-otsu` on the raw image, then `mesh
    /// --per-label`: the same labels (OME-Zarr and HDF5), object table and mesh, for chunkings whose floods cross chunk
    /// borders, 3D (isotropic and per-axis sigmas, with a filter and --dilate) and 2D; the manifest names no classifier and
    /// records the split. Options of a classifier's segmentation are refused by name, before any work.
    /// </summary>
    [Theory]
    [InlineData("3d", "16,24,32", 2, "2,1", "")]
    [InlineData("3d", "64,64,64", 1, "2,1", "--spot-sigma 1,2,2 --outline-sigma 0.5,1,1 --min-size 10 --dilate 1")]
    [InlineData("2d", "1,48,40", 2, "3,1", "--exclude-border")]
    public async Task A_voronoi_otsu_run_equals_label_voronoi_otsu_then_mesh(string kind, string chunk, int workers, string sigmas, string options)
    {
        string data = kind == "3d" ? Data3D : SharedData.Require("ilastik/Data_1channel.h5") + "/data";
        string[] extra = ["--voronoi-otsu", sigmas, .. options.Split(' ', StringSplitOptions.RemoveEmptyEntries)];
        string outDir = _dir[$"vo-run-{chunk}"];
        await Ok(["run", data, "--out", outDir, "--chunk", chunk, "--workers", workers.ToString(CultureInfo.InvariantCulture), .. extra]);

        string labels = _dir[$"vo-l-{chunk}.zarr"], objects = _dir[$"vo-objects-{chunk}.csv"];
        await Ok(["label", data, labels, "--objects", objects, "--intensity", data, .. extra]);
        var wantLabels = TestVolumes.ReadUInt32(labels);
        Assert.True(wantLabels.Max() >= 5, $"the fixture should hold several objects; it holds {wantLabels.Max()}");
        Assert.Equal(wantLabels, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
        Assert.Equal(wantLabels, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.h5") + "/labels"));
        Assert.Equal(File.ReadAllText(objects), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
        if (kind == "3d")
        {
            await Ok("mesh", labels, _dir[$"vo-{chunk}.obj"], "--per-label");
            Assert.Equal(MeshBody(_dir[$"vo-{chunk}.obj"]), MeshBody(Path.Combine(outDir, "mesh.obj")));
        }
        else
        {
            Assert.Empty(Directory.EnumerateFiles(outDir, "mesh*"));
        }
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
        Assert.Null(manifest["classifier"]);
        Assert.StartsWith("voronoi-otsu spot=", manifest["parameters"]!["split"]!.GetValue<string>());
        Assert.Equal("Voronoi-Otsu", manifest["stages"]!.AsArray()[0]!["name"]!.GetValue<string>());
        Assert.Empty(Directory.EnumerateFileSystemEntries(outDir, "*.work"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(outDir, "*.partial*"));

        // A rerun is a no-op; other sigmas in the same folder are a different run.
        await Ok(["run", data, "--out", outDir, "--chunk", chunk, .. extra]);
        await Cli.Expect(2, "split", "run", data, "--out", outDir, "--chunk", chunk, "--voronoi-otsu", "1,1");

        string refused = _dir["vo-refused"];
        await Cli.Expect(2, "--ilp does not apply", "run", Data3D, "--out", refused, "--voronoi-otsu", "2,1", "--ilp", Ilp3D);
        await Cli.Expect(2, "--threshold does not apply", "run", Data3D, "--out", refused, "--voronoi-otsu", "2,1", "--threshold", "otsu");
        await Cli.Expect(2, "--export-probabilities does not apply", "run", Data3D, "--out", refused, "--voronoi-otsu", "2,1", "--export-probabilities");
        await Cli.Expect(2, "--split does not apply", "run", Data3D, "--out", refused, "--voronoi-otsu", "2,1", "--split", "distance");
        await Cli.Expect(2, "--connectivity does not apply", "run", Data3D, "--out", refused, "--voronoi-otsu", "2,1", "--connectivity", "6");
        await Cli.Expect(2, "--voronoi-otsu 2: give two positive sigmas", "run", Data3D, "--out", refused, "--voronoi-otsu", "2");
        await Cli.Expect(2, "--outline-sigma goes with --voronoi-otsu", "run", Data3D, "--out", refused, "--ilp", Ilp3D, "--outline-sigma", "1");
        await Cli.Expect(2, "or label the raw image without one: --voronoi-otsu", "run", Data3D, "--out", refused);
        Assert.False(Directory.Exists(refused) && Directory.EnumerateFileSystemEntries(refused).Any(), "refused before any work");
    }

    /// <summary>
    /// `run --threshold otsu` equals `predict`, then `label --threshold otsu` on those probabilities (with the raw image as
    /// --intensity, as run's table has it): the same threshold, reported the same way and recorded in the manifest, the
    /// same labels and object table; also with --smooth-sigma and with --split distance. (Unsmoothed, this fixture's
    /// threshold, 0.498, keeps what 0.5 keeps; smoothed, it is 0.388, and the labels differ from 0.5's: checked.) A rerun
    /// is a no-op; a number for --threshold in the same folder is a different run.
    /// </summary>
    [Theory]
    [InlineData("16,24,32", 2, "")]
    [InlineData("20,20,20", 1, "--smooth-sigma 1 --min-size 5")]
    [InlineData("16,32,32", 2, "--split distance --min-distance 2 --smooth-sigma 1 --min-size 5")]
    public async Task An_otsu_run_equals_predict_then_label_otsu(string chunk, int workers, string options)
    {
        string[] otsu = ["--threshold", "otsu", "--channel", "1", .. options.Split(' ', StringSplitOptions.RemoveEmptyEntries)];
        string outDir = _dir["otsu-run"];
        string[] run = ["run", Data3D, "--ilp", Ilp3D, "--out", outDir, "--chunk", chunk, "--workers", workers.ToString(CultureInfo.InvariantCulture), "--mesh", "none"];
        var (code, said, err) = await Cli.Run([.. run, .. otsu]);
        Assert.True(code == 0, err);

        string probabilities = _dir["otsu-p.h5"] + "/p", labels = _dir["otsu-l.zarr"], objects = _dir["otsu-objects.csv"];
        await Ok("predict", Data3D, probabilities, "--ilp", Ilp3D);
        var (labelCode, _, labelErr) = await Cli.Run(["label", probabilities, labels, "--objects", objects, "--intensity", Data3D, .. otsu]);
        Assert.True(labelCode == 0, labelErr);

        // The same threshold, reported as label reports it.
        string reported = labelErr.Split('\n').Single(l => l.StartsWith("label: Otsu threshold of channel 1", StringComparison.Ordinal))["label: ".Length..].TrimEnd();
        Assert.Contains("run: " + reported, said);
        var wantLabels = TestVolumes.ReadUInt32(labels);
        Assert.True(wantLabels.Max() >= 2, $"the fixture should hold several objects; it holds {wantLabels.Max()}");
        Assert.Equal(wantLabels, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.ome.zarr")));
        Assert.Equal(wantLabels, TestVolumes.ReadUInt32(Path.Combine(outDir, "labels.h5") + "/labels"));
        Assert.Equal(File.ReadAllText(objects), File.ReadAllText(Path.Combine(outDir, "objects.csv")));
        Assert.False(Directory.Exists(Path.Combine(outDir, ".chunkseg-split-probabilities.zarr")), "the scratch probabilities are removed");
        Assert.Empty(Directory.EnumerateFileSystemEntries(outDir, "*.work"));
        if (options.Contains("--smooth-sigma"))
        {
            // The threshold matters here: the default's labels are not these.
            string half = _dir["otsu-half.zarr"];
            await Ok(["label", probabilities, half, .. otsu.Select(o => o == "otsu" ? "0.5" : o)]);
            Assert.NotEqual(wantLabels, TestVolumes.ReadUInt32(half));
        }

        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "manifest.json")))!;
        Assert.Equal(wantLabels.Max(), manifest["objects"]!.GetValue<long>());
        Assert.Equal("otsu", manifest["parameters"]!["threshold"]!.GetValue<string>());
        var found = manifest["otsu_threshold"]!;
        Assert.Equal(1, found["channel"]!.GetValue<int>());
        Assert.Equal(options.Contains("--smooth-sigma"), found["smoothed"]!.GetValue<bool>());
        Assert.Contains(": " + found["value"]!.GetValue<double>().ToString("G7", CultureInfo.InvariantCulture) + " (foreground above it)", reported);
        Assert.Contains("Otsu threshold", manifest["stages"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()));

        // A rerun is a no-op that reports the threshold again; another threshold is another run.
        (code, said, err) = await Cli.Run([.. run, .. otsu]);
        Assert.True(code == 0, err);
        Assert.Contains("already holds this run", said);
        Assert.Contains("run: " + reported, said);
        await Cli.Expect(2, "threshold otsu → 0.5", [.. run, .. otsu.Select(o => o == "otsu" ? "0.5" : o)]);
    }

    /// <summary>
    /// `run --threshold otsu` killed (SIGKILL) while it labels the whole probabilities: the journal holds the threshold
    /// found, and the rerun labels with it, resuming the pass, to an uninterrupted run's outputs and record.
    /// </summary>
    [Fact]
    public async Task An_otsu_run_killed_while_labelling_resumes_to_identical_output()
    {
        string[] options = ["--ilp", Ilp3D, "--chunk", "8,8,16", "--workers", "1", "--mesh", "none", "--threshold", "otsu", "--channel", "1"];
        string reference = _dir["reference"], killed = _dir["killed"];
        await Ok(["run", Data3D, "--out", reference, .. options]);

        string components = Path.Combine(killed, "labels.ome.zarr.work", "local.zarr.partial", ".chunkseg", "manifest.jsonl");
        Assert.True(await RunAndKill(killed, options, () => File.Exists(components) && File.ReadLines(components).Count() > 6), "no kill while labelling");
        Assert.NotNull(JsonNode.Parse(File.ReadAllText(Path.Combine(killed, ".chunkseg-run.json")))!["otsu_threshold"]);
        await Ok(["run", Data3D, "--out", killed, .. options]);

        Assert.Equal(ReadBytes(Path.Combine(reference, "labels.ome.zarr")), ReadBytes(Path.Combine(killed, "labels.ome.zarr")));
        Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(killed, "objects.csv")));
        var manifest = (string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")))!;
        Assert.Equal(manifest(reference)["parameters"]!.ToJsonString(), manifest(killed)["parameters"]!.ToJsonString());
        Assert.Equal(manifest(reference)["otsu_threshold"]!.ToJsonString(), manifest(killed)["otsu_threshold"]!.ToJsonString());
        Assert.Equal(["labels.h5", "labels.ome.zarr", "manifest.json", "objects.csv"],
            Directory.EnumerateFileSystemEntries(killed).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// `run --dilate r` / `--erode r` equals `run` without it, then `label --dilate r` / `--erode r` on its labels (with
    /// the raw image as --intensity, as run's table has it): the same labels (also the kernel's on the whole volume,
    /// itself tools/reference/expand_shrink.py's), HDF5 copy, object table and mesh; with --split voronoi too. The option
    /// is part of the run's record and its pass a stage of its own.
    /// </summary>
    [Theory]
    [InlineData("--dilate", "2", "16,24,32", 2, "", "obj")]
    [InlineData("--erode", "1", "20,20,20", 1, "--connectivity 26 --min-size 20", "none")]
    [InlineData("--dilate", "1.5", "16,32,32", 2, "--split voronoi --spot-sigma 1 --channel 1 --threshold 0.5 --min-size 5", "none")]
    public async Task A_run_with_dilate_or_erode_equals_the_run_then_label_with_it(string option, string radius, string chunk, int workers, string options,
        string mesh)
    {
        string[] extra = options.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string[] run = ["run", Data3D, "--ilp", Ilp3D, "--chunk", chunk, "--workers", workers.ToString(CultureInfo.InvariantCulture), "--mesh", mesh, .. extra];
        string plain = _dir["plain"], reshaped = _dir["reshaped"];
        await Ok([.. run, "--out", plain]);
        await Ok([.. run, "--out", reshaped, option, radius]);

        // label on the plain run's labels: each label image's components, numbered as they are (by first voxel).
        string connectivity = extra.Contains("--split") || extra.Contains("26") ? "26" : "6";
        string labels = _dir["labelled.zarr"], objects = _dir["labelled.csv"];
        await Ok("label", Path.Combine(plain, "labels.ome.zarr"), labels, "--connectivity", connectivity, option, radius, "--intensity", Data3D, "--objects", objects);

        var before = TestVolumes.ReadUInt32(Path.Combine(plain, "labels.ome.zarr"));
        var want = TestVolumes.ReadUInt32(labels);
        var mode = option == "--erode" ? Kernels.Labeling.LabelMorphologyMode.Erode : Kernels.Labeling.LabelMorphologyMode.Dilate;
        var whole = new Kernels.Labeling.LabelMorphology(mode, double.Parse(radius, CultureInfo.InvariantCulture))
            .Apply(before.Select(l => (ulong)l).ToArray(), new Long3(64, 64, 64));
        Assert.Equal(whole.Select(l => (uint)l).ToArray(), want);
        Assert.NotEqual(before, want);
        var got = TestVolumes.ReadUInt32(Path.Combine(reshaped, "labels.ome.zarr"));
        Assert.Equal(want, got);
        Assert.Equal(want, TestVolumes.ReadUInt32(Path.Combine(reshaped, "labels.h5") + "/labels"));
        Assert.Equal(File.ReadAllText(objects), File.ReadAllText(Path.Combine(reshaped, "objects.csv")));
        if (mesh != "none")
        {
            await Ok("mesh", labels, _dir["labelled.obj"], "--per-label");
            Assert.Equal(MeshBody(_dir["labelled.obj"]), MeshBody(Path.Combine(reshaped, "mesh.obj")));
        }

        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(reshaped, "manifest.json")))!;
        Assert.Equal(radius, manifest["parameters"]![option[2..]]!.GetValue<string>());
        Assert.Equal(File.ReadAllLines(objects).Length - 1, manifest["objects"]!.GetValue<long>());
        string[] stages = ["classify + label", "merge", "relabel", option[2..], "HDF5 copies", .. mesh == "none" ? (string[])[] : ["mesh"]];
        Assert.Equal(stages, manifest["stages"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()));
        Assert.Empty(Directory.EnumerateFileSystemEntries(reshaped, "*.work"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(reshaped, "*.partial*"));

        // A rerun is a no-op; the same folder with another radius (or without) is a different run.
        var (code, said, err) = await Cli.Run([.. run, "--out", reshaped, option, radius]);
        Assert.True(code == 0, err);
        Assert.Contains("already holds this run", said);
        await Cli.Expect(2, $"{option[2..]} {radius} → (none)", [.. run, "--out", reshaped]);
    }

    /// <summary>`run --dilate` killed (SIGKILL) during its dilation pass: the rerun resumes that pass and ends as an uninterrupted run.</summary>
    [Fact]
    public async Task Killed_in_the_dilation_pass_a_rerun_resumes_it_to_identical_output()
    {
        string[] options = ["--ilp", Ilp3D, "--chunk", "8,8,16", "--workers", "1", "--mesh", "none", "--dilate", "2.5"];
        string reference = _dir["reference"], killed = _dir["killed"];
        await Ok(["run", Data3D, "--out", reference, .. options]);

        // The dilation pass writes labels.ome.zarr (relabel writes to the workspace then).
        string dilation = Path.Combine(killed, "labels.ome.zarr.partial", ".chunkseg", "manifest.jsonl");
        Assert.True(await RunAndKill(killed, options, () => File.Exists(dilation) && File.ReadLines(dilation).Count() > 6), "no kill while dilating");
        Assert.True(Directory.Exists(Path.Combine(killed, "labels.ome.zarr.work", "final.zarr")), "killed after relabelling");
        await Ok(["run", Data3D, "--out", killed, .. options]);

        Assert.Equal(ReadBytes(Path.Combine(reference, "labels.ome.zarr")), ReadBytes(Path.Combine(killed, "labels.ome.zarr")));
        Assert.Equal(ReadBytes(Path.Combine(reference, "labels.h5") + "/labels"), ReadBytes(Path.Combine(killed, "labels.h5") + "/labels"));
        Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(killed, "objects.csv")));
        var manifest = (string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")))!;
        Assert.Equal(manifest(reference)["parameters"]!.ToJsonString(), manifest(killed)["parameters"]!.ToJsonString());
        var dilate = manifest(killed)["stages"]!.AsArray().Single(s => s!["name"]!.GetValue<string>() == "dilate")!;
        Assert.True(dilate["chunks_resumed"]!.GetValue<long>() > 0, $"the dilation pass was not resumed: {dilate.ToJsonString()}");
        Assert.Equal(["labels.h5", "labels.ome.zarr", "manifest.json", "objects.csv"],
            Directory.EnumerateFileSystemEntries(killed).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// A `run --split distance` killed (SIGKILL) in the middle of its distance pass, and again in a flood round, resumes
    /// on rerun to the labels and object table of an uninterrupted run.
    /// </summary>
    [Fact]
    public async Task Killed_in_the_split_a_rerun_resumes_it_to_identical_output()
    {
        string[] options = ["--ilp", Ilp3D, "--chunk", "8,16,16", "--workers", "1", "--mesh", "none", "--split", "distance", "--channel", "1",
            "--threshold", "0.5", "--min-distance", "2"];
        string reference = _dir["split-reference"], killed = _dir["split-killed"];
        await Ok(["run", Data3D, "--out", reference, .. options]);

        // A pass's chunk records, wherever the split keeps that pass's output in the run's workspace.
        int Recorded(string pass) => Directory.Exists(killed)
            ? Directory.EnumerateFiles(killed, "manifest.jsonl", SearchOption.AllDirectories)
                .Where(f => f.Contains(Path.DirectorySeparatorChar + pass, StringComparison.Ordinal)).Sum(f => File.ReadLines(f).Count())
            : 0;
        Assert.True(await RunAndKill(killed, options, () => Recorded("distance.zarr") > 3), "no kill in the distance pass");
        Assert.True(await RunAndKill(killed, options, () => Recorded("round-1.zarr") > 3), "no kill in a flood round");
        await Ok(["run", Data3D, "--out", killed, .. options]);

        var labels = TestVolumes.ReadUInt32(Path.Combine(reference, "labels.ome.zarr"));
        Assert.True(labels.Max() >= 2, $"the fixture should hold several objects; it holds {labels.Max()}");
        Assert.Equal(labels, TestVolumes.ReadUInt32(Path.Combine(killed, "labels.ome.zarr")));
        Assert.Equal(File.ReadAllText(Path.Combine(reference, "objects.csv")), File.ReadAllText(Path.Combine(killed, "objects.csv")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(killed, "*.work"));
    }

    /// <summary>
    /// `run` on a TIFF (an ImageJ hyperstack tifffile writes from the fixture's voxels) equals `run` on the same voxels as
    /// OME-Zarr (converted by `chunkseg convert`), bit for bit: labels, HDF5 copy, object table and mesh.
    /// </summary>
    [Fact]
    public async Task A_run_on_a_tiff_equals_the_run_on_the_same_data_as_ome_zarr()
    {
        string zarr = _dir["data.ome.zarr"], tiff = _dir["data.tif"];
        await Ok("convert", Data3D, zarr);
        byte[] voxels;
        using (var source = VolumeStore.Open(Data3D))
        {
            voxels = new byte[source.Info.ElementCount];
            source.Read(NdBox.Whole(source.Info.Shape), voxels);
        }
        NpyFile.Write(_dir["data.npy"], DataType.UInt8, [64, 64, 64], voxels);
        var cases = new[]
        {
            new Dictionary<string, object?>
            {
                ["writer"] = "tifffile", ["file"] = tiff, ["npy"] = _dir["back.npy"], ["dtype"] = "uint8", ["shape"] = new long[] { 64, 64, 64 },
                ["axes"] = "ZYX", ["seed"] = 0, ["data"] = _dir["data.npy"],
                ["kwargs"] = new Dictionary<string, object> { ["imagej"] = true, ["metadata"] = new Dictionary<string, object> { ["axes"] = "ZYX" } },
            },
        };
        File.WriteAllText(_dir["cases.json"], System.Text.Json.JsonSerializer.Serialize(cases));
        PythonReference.Run("tiff_reference.py", _dir["cases.json"]);

        string[] options = ["--ilp", Ilp3D, "--chunk", "16,32,32", "--workers", "2"];
        await Ok(["run", zarr, "--out", _dir["run-zarr"], .. options]);
        await Ok(["run", tiff, "--out", _dir["run-tiff"], .. options]);
        Assert.Equal(ReadBytes(Path.Combine(_dir["run-zarr"], "labels.ome.zarr")), ReadBytes(Path.Combine(_dir["run-tiff"], "labels.ome.zarr")));
        Assert.Equal(ReadBytes(Path.Combine(_dir["run-zarr"], "labels.h5") + "/labels"), ReadBytes(Path.Combine(_dir["run-tiff"], "labels.h5") + "/labels"));
        Assert.Equal(File.ReadAllText(Path.Combine(_dir["run-zarr"], "objects.csv")), File.ReadAllText(Path.Combine(_dir["run-tiff"], "objects.csv")));
        // The mesh's header comment names the run's folder; the geometry is the same.
        static IEnumerable<string> Geometry(string obj) => File.ReadLines(obj).Where(l => !l.StartsWith('#'));
        Assert.Equal(Geometry(Path.Combine(_dir["run-zarr"], "mesh.obj")), Geometry(Path.Combine(_dir["run-tiff"], "mesh.obj")));
        Assert.True(TestVolumes.ReadUInt32(Path.Combine(_dir["run-tiff"], "labels.ome.zarr")).Max() >= 2, "the fixture should hold several objects");
    }

    /// <summary>Bad --dilate/--erode values are refused by run as label refuses them (same message, exit 2), embedded and on a cluster, before any work.</summary>
    [Fact]
    public async Task Bad_dilate_and_erode_values_are_refused_as_label_refuses_them()
    {
        string labels = SharedData.Require("ilastik/Data_3D.h5") + "/data";   // an integer image: label takes it as a label image
        string[][] bad = [["--dilate", "-1"], ["--erode", "0"], ["--dilate", "two"], ["--erode", "1000"], ["--dilate", "2", "--erode", "1"]];
        foreach (var options in bad)
        {
            var (labelCode, _, labelErr) = await Cli.Run(["label", labels, _dir["bad-label.zarr"], .. options]);
            var (runCode, _, runErr) = await Cli.Run(["run", Data3D, "--ilp", Ilp3D, "--out", _dir["bad-run"], .. options]);
            Assert.Equal(2, labelCode);
            Assert.Equal(2, runCode);
            Assert.StartsWith($"error: {options[0]} {options[1]}", runErr);
            Assert.Equal(labelErr, runErr);
            Assert.False(Directory.Exists(_dir["bad-run"]), "nothing is written");

            var spec = new Pipelines.RunSpec(Data3D, _dir["bad-cluster"], Ilp: Ilp3D, Dilate: options[0] == "--dilate" ? options[1] : null,
                Erode: options[0] == "--erode" ? options[1] : options.Length > 2 ? options[3] : null);
            var refused = await Assert.ThrowsAsync<Contracts.Errors.UsageException>(() => Pipelines.RunPipeline.ExecuteAsync(spec, () => throw new InvalidOperationException(),
                null, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, null!, resuming: false, CancellationToken.None));
            Assert.Equal(labelErr.Trim(), "error: " + refused.Message);
        }
    }

    private static async Task Ok(params string[] args)
    {
        var (code, _, err) = await Cli.Run(args);
        Assert.True(code == 0, $"chunkseg {string.Join(' ', args)} exited {code}: {err}");
    }

    /// <summary>A mesh file without its comments (which name the input it was made from).</summary>
    internal static byte[] MeshBody(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (path.EndsWith(".obj", StringComparison.Ordinal))
            return Encoding.UTF8.GetBytes(string.Join('\n', File.ReadLines(path).Where(l => !l.StartsWith('#'))));
        int end = Encoding.ASCII.GetString(bytes, 0, Math.Min(bytes.Length, 1 << 16)).IndexOf("end_header\n", StringComparison.Ordinal) + "end_header\n".Length;
        string header = string.Join('\n', Encoding.ASCII.GetString(bytes, 0, end).Split('\n').Where(l => !l.StartsWith("comment", StringComparison.Ordinal)));
        return [.. Encoding.ASCII.GetBytes(header), .. bytes.AsSpan(end).ToArray()];
    }

    private static byte[] ReadBytes(string address)
    {
        using var v = VolumeStore.Open(address);
        var bytes = new byte[v.Info.SizeInBytes];
        v.Read(NdBox.Whole(v.Info.Shape), bytes);
        return bytes;
    }

    /// <summary>c, spatial… → spatial…, c.</summary>
    private static float[] ChannelsLast(float[] planar, int channels)
    {
        int n = planar.Length / channels;
        var interleaved = new float[planar.Length];
        for (int c = 0; c < channels; c++)
            for (int v = 0; v < n; v++) interleaved[v * channels + c] = planar[c * n + v];
        return interleaved;
    }
}
