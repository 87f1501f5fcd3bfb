using System.Text.Json;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>The `chunkseg` command end to end, in process: outputs, exit codes, messages, resume.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "chunkseg-tests", Guid.NewGuid().ToString("N"));

    public CliTests() => Directory.CreateDirectory(_dir);

    private string P(string name) => Path.Combine(_dir, name);

    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => Cli.Run(args);

    private static ushort[] ReadAll(string address)
    {
        using var v = VolumeStore.Open(address);
        var data = new ushort[v.Info.ElementCount];
        v.Read<ushort>(NdBox.Whole(v.Info.Shape), data);
        return data;
    }

    [Fact]
    public async Task Demo_writes_ome_zarr_and_hdf5_with_the_same_voxels_and_voxel_size()
    {
        var (code, _, err) = await Run("demo", "--data-only", "--out", _dir, "--shape", "20,48,40", "--nuclei", "12", "--workers", "3");
        Assert.True(code == 0, err);
        Assert.False(Directory.Exists(P("nuclei.zarr.partial")));
        Assert.False(Directory.Exists(P("nuclei.h5.partial.zarr")));      // the HDF5 output's staged store, gone once written

        var (infoCode, json, _) = await Run("info", P("nuclei.zarr"), "--json");
        Assert.Equal(0, infoCode);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("zyx", doc.RootElement.GetProperty("axes").GetString());
        Assert.Equal([20L, 48L, 40L], doc.RootElement.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray());
        Assert.Equal("uint16", doc.RootElement.GetProperty("dtype").GetString());
        Assert.Equal(2.0, doc.RootElement.GetProperty("voxelSize").GetProperty("z").GetDouble());
        Assert.Equal(0.4, doc.RootElement.GetProperty("voxelSize").GetProperty("x").GetDouble());

        var zarr = ReadAll(P("nuclei.zarr"));
        Assert.Equal(zarr, ReadAll(P("nuclei.h5") + "/raw"));
        Assert.True(zarr.Max() > 600, "the demo should contain bright nuclei");

        using var h5 = VolumeStore.Open(P("nuclei.h5") + "/raw");
        Assert.Equal(new VoxelSize(2.0, 0.4, 0.4), h5.Info.VoxelSize);
    }

    [Fact]
    public async Task The_demo_volume_does_not_depend_on_chunking_or_workers()
    {
        Assert.Equal(0, (await Run("demo", "--data-only", "--out", P("a"), "--shape", "9,37,23", "--nuclei", "5", "--workers", "1")).Code);
        Assert.Equal(0, (await Run("demo", "--data-only", "--out", P("b"), "--shape", "9,37,23", "--nuclei", "5", "--workers", "4")).Code);
        Assert.Equal(ReadAll(P("a/nuclei.zarr")), ReadAll(P("b/nuclei.zarr")));
        Assert.Equal(TestVolumes.ReadUInt32(P("a/truth.zarr")), TestVolumes.ReadUInt32(P("b/truth.zarr")));
        Assert.Contains(TestVolumes.ReadUInt32(P("a/truth.zarr")), id => id != 0);
    }

    [Fact]
    public async Task The_demo_trains_runs_and_scores_the_whole_workflow_and_says_how_to_open_the_results()
    {
        var (code, output, err) = await Run("demo", "--out", _dir, "--shape", "24,96,96", "--nuclei", "20");
        Assert.True(code == 0, err);
        foreach (var step in new[] { "$ chunkseg train", "$ chunkseg run", "$ chunkseg evaluate" }) Assert.Contains(step, output);
        foreach (var tool in new[] { "napari", "Fiji", "Blender", "ilastik" }) Assert.Contains(tool, output);
        foreach (var file in new[] { "labels.ome.zarr", "labels.h5", "probabilities.h5", "mesh.obj", "objects.csv", "manifest.json" })
            Assert.True(Path.Exists(Path.Combine(P("run"), file)), file);

        // The forest trained on a few strokes finds the true nuclei well (scored as `evaluate` prints it).
        var dice = System.Text.RegularExpressions.Regex.Match(output, @"│ Dice\s+│ ([0-9.]+)");
        Assert.True(dice.Success, output);
        Assert.True(double.Parse(dice.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 0.75, $"pixel Dice {dice.Groups[1].Value}");
        // Scored before the split, after Voronoi-Otsu and after the run's distance split.
        Assert.Contains("--split distance", output);
        Assert.Equal(3, System.Text.RegularExpressions.Regex.Matches(output, @"│ F1\s+│ ([0-9.]+)").Count);
        Assert.True(Path.Exists(Path.Combine(P("run-split"), "labels.ome.zarr")));

        (code, output, err) = await Run("demo", "--out", _dir, "--shape", "24,96,96", "--nuclei", "20");
        Assert.True(code == 0, err);
        Assert.Contains("already holds this run", output);
    }

    [Theory]
    [InlineData("7,5,9", 1)]
    [InlineData("16,16,16", 2)]
    [InlineData("64,64,64", 3)]
    public async Task Convert_of_ilastik_data_round_trips_for_any_chunking(string chunks, int workers)
    {
        string source = SharedData.Require("ilastik/Data_3D.h5") + "/data";
        var (code, _, err) = await Run("convert", source, P("d.zarr"), "--chunks", chunks, "--workers", workers.ToString());
        Assert.True(code == 0, err);
        using (var z = VolumeStore.Open(P("d.zarr")))
        {
            Assert.Equal("czyx", z.Info.Axes.Names);
            Assert.Equal([1L, 64L, 64L, 64L], z.Info.Shape);
        }
        (code, _, err) = await Run("convert", P("d.zarr"), P("back.h5") + "/data", "--workers", workers.ToString());
        Assert.True(code == 0, err);

        using var original = VolumeStore.Open(source);
        using var back = VolumeStore.Open(P("back.h5") + "/data");
        Assert.Equal("czyx", back.Info.Axes.Names);
        var a = new byte[original.Info.ElementCount];
        var b = new byte[back.Info.ElementCount];
        original.Read(NdBox.Whole(original.Info.Shape), a);    // zyxc with one channel: same bytes as czyx
        back.Read(NdBox.Whole(back.Info.Shape), b);
        Assert.Equal(a, b);
    }

    [Fact]
    public async Task Info_convert_and_label_read_tiff()
    {
        // tifffile writes a 2-channel z-stack (pages c fastest, then z) with 0.5 × 0.25 µm pixels and 2 µm z spacing.
        var spec = new Dictionary<string, object?>
        {
            ["writer"] = "tifffile", ["file"] = P("stack.tif"), ["npy"] = P("stack.npy"), ["dtype"] = "uint16",
            ["shape"] = new long[] { 6, 2, 20, 30 }, ["axes"] = "ZCYX", ["seed"] = 3,
            ["kwargs"] = new Dictionary<string, object>
            {
                ["imagej"] = true, ["resolution"] = new[] { 4.0, 2.0 },
                ["metadata"] = new Dictionary<string, object> { ["axes"] = "ZCYX", ["spacing"] = 2.0, ["unit"] = "um" },
            },
        };
        var mask = new Dictionary<string, object?>
        {
            ["writer"] = "tifffile", ["file"] = P("mask.tif"), ["npy"] = P("mask.npy"), ["dtype"] = "uint8",
            ["shape"] = new long[] { 6, 20, 30 }, ["axes"] = "ZYX", ["seed"] = 4, ["kwargs"] = null,
        };
        File.WriteAllText(P("cases.json"), JsonSerializer.Serialize(new[] { spec, mask }));
        PythonReference.Run("tiff_reference.py", P("cases.json"));

        var (code, text, err) = await Run("info", P("stack.tif"));
        Assert.True(code == 0, err);
        foreach (var expected in new[] { "TIFF", "czyx", "2 x 6 x 20 x 30", "uint16", "2 x 0.5 x 0.25" }) Assert.Contains(expected, text);
        (code, var json, err) = await Run("info", P("stack.tif"), "--json");
        Assert.True(code == 0, err);
        using (var doc = JsonDocument.Parse(json))
        {
            Assert.Equal("tiff", doc.RootElement.GetProperty("format").GetString());
            Assert.Equal("czyx", doc.RootElement.GetProperty("axes").GetString());
            Assert.Equal([2L, 6L, 20L, 30L], doc.RootElement.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray());
            var voxel = doc.RootElement.GetProperty("voxelSize");
            Assert.Equal(2.0, voxel.GetProperty("z").GetDouble(), 6);
            Assert.Equal(0.5, voxel.GetProperty("y").GetDouble(), 6);
            Assert.Equal(0.25, voxel.GetProperty("x").GetDouble(), 6);
        }

        (code, _, err) = await Run("convert", P("stack.tif"), P("stack.zarr"), "--chunks", "4,8,16", "--workers", "2");
        Assert.True(code == 0, err);
        using var zarr = VolumeStore.Open(P("stack.zarr"));
        Assert.Equal("czyx", zarr.Info.Axes.Names);
        Assert.Equal(2.0, zarr.Info.VoxelSize.Z, 6);
        var data = new byte[zarr.Info.SizeInBytes];
        zarr.Read(NdBox.Whole(zarr.Info.Shape), data);
        Assert.Equal(NpyFile.Read(P("stack.npy")).Data, data);

        // Other commands open TIFF the same way: label a plain TIFF z-stack (integers: used as labels), chunk by chunk.
        (code, _, err) = await Run("label", P("mask.tif"), P("labels.zarr"), "--chunk", "3,8,16", "--workers", "2");
        Assert.True(code == 0, err);
        using (var labels = VolumeStore.Open(P("labels.zarr")))
            Assert.Equal(new Long3(6, 20, 30), labels.Info.SpatialShape);

        // convert writes TIFF (an ImageJ hyperstack, page by page); chunked outputs of other commands refuse it before any work.
        (code, _, err) = await Run("convert", P("stack.zarr"), P("back.tif"));
        Assert.True(code == 0, err);
        using (var back = VolumeStore.Open(P("back.tif")))
        {
            Assert.Equal("czyx", back.Info.Axes.Names);
            var again = new byte[back.Info.SizeInBytes];
            back.Read(NdBox.Whole(back.Info.Shape), again);
            Assert.Equal(data, again);
        }
        (code, _, err) = await Run("label", P("mask.tif"), P("labels.tif"));
        Assert.Equal(2, code);
        Assert.Contains("cannot write TIFF", err);
    }

    [Fact]
    public async Task Rerunning_a_finished_job_does_nothing()
    {
        Assert.Equal(0, (await Run("demo", "--data-only", "--out", _dir, "--shape", "4,16,16", "--nuclei", "2")).Code);
        var (code, output, _) = await Run("demo", "--data-only", "--out", _dir, "--shape", "4,16,16", "--nuclei", "2");
        Assert.Equal(0, code);
        Assert.Contains("already complete", output);
    }

    [Fact]
    public async Task A_failed_run_keeps_only_a_partial_output_and_a_rerun_resumes_it()
    {
        Assert.Equal(0, (await Run("demo", "--data-only", "--out", _dir, "--shape", "8,64,64", "--nuclei", "6")).Code);
        // Storage chunks of 8x16x16: corrupt one of the 16 chunk files of the input.
        Assert.Equal(0, (await Run("convert", P("nuclei.zarr"), P("small.zarr"), "--chunks", "8,16,16", "--format", "zarr2")).Code);
        string chunkFile = Path.Combine(P("small.zarr"), "0", "0", "1", "2");
        Assert.True(File.Exists(chunkFile), "expected the 0/1/2 chunk file");
        byte[] good = File.ReadAllBytes(chunkFile);
        File.WriteAllBytes(chunkFile, [1, 2, 3, 4, 5]);

        var (code, _, err) = await Run("convert", P("small.zarr"), P("out.h5") + "/data", "--chunks", "8,16,16", "--chunk", "8,16,16", "--workers", "2");
        Assert.Equal(1, code);
        Assert.Contains("0/1/2", err);                         // names the corrupt chunk
        Assert.Contains("partial", err);
        Assert.False(File.Exists(P("out.h5")));                  // never mistaken for finished
        Assert.True(Directory.Exists(P("out.h5.partial.zarr")));  // an HDF5 output is staged as Zarr, written at commit

        File.WriteAllBytes(chunkFile, good);
        (code, var output, err) = await Run("convert", P("small.zarr"), P("out.h5") + "/data", "--chunks", "8,16,16", "--chunk", "8,16,16", "--workers", "2");
        Assert.True(code == 0, err);
        Assert.Contains("resumed with 15 chunks already done", output);
        Assert.Equal(ReadAll(P("nuclei.zarr")), ReadAll(P("out.h5") + "/data"));
        Assert.False(Directory.Exists(P("out.h5.partial.zarr")));
        Assert.False(File.Exists(P("out.h5.writing")));
    }

    [Fact]
    public async Task Bench_io_times_every_format_beside_the_reference_libraries()
    {
        var (code, output, err) = await Run("bench", "io", "--shape", "8,40,36", "--chunks", "4,16,16", "--repeats", "1");
        Assert.True(code == 0, err + output);
        // The table wraps in a narrow console: look for words, not whole cells.
        foreach (var word in new[] { "Zarr", "HDF5", "thread", "threads", "h5py", "zarr-python", "TIFF", "tifffile", "deflate", "uncompressed", "strip", "tiles", "memmap", "imwrite", "hyperstack" })
            Assert.Contains(word, output);
    }

    [Fact]
    public async Task Bench_mesh_times_every_surface_in_rounds_beside_skimage()
    {
        var (code, output, err) = await Run("bench", "mesh", "--size", "24", "--chunk", "12", "--repeats", "2");
        Assert.True(code == 0, err + output);
        // The table wraps in a narrow console: look for words, not whole cells.
        foreach (var word in new[] { "isosurface", "foreground", "per", "kernel", "weld", "Zarr", "PLY", "skimage", "marching_cubes", "bounding" })
            Assert.Contains(word, output);
        // skimage was timed in every round: an untimed reference would make every ratio astronomical.
        var ratios = System.Text.RegularExpressions.Regex.Matches(output, @"│ ([0-9.E+]+)x +│").Select(m => double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(11, ratios.Count);   // per surface kernel, chunked and skimage (1x), and the command for two of them
        Assert.All(ratios, r => Assert.InRange(r, 0, 1e4));
    }

    [Fact]
    public async Task Bench_predict_on_a_demo_trains_every_library_on_its_strokes()
    {
        Assert.Equal(0, (await Run("demo", "--data-only", "--out", P("d"), "--shape", "20,48,40", "--nuclei", "12", "--workers", "2")).Code);
        var (code, output, err) = await Run("bench", "predict", "--demo", P("d"), "--trees", "5", "--repeats", "1");
        Assert.True(code == 0, err + output);
        // 20 x 48 x 40 voxels (the first chunk is the whole image), the demo's 8 feature channels.
        Assert.Contains("8 features", output);
        Assert.Contains("38,400 voxels", output);
        foreach (var word in new[] { "brush-stroke", "ChunkSeg", "scikit-learn", "VIGRA" }) Assert.Contains(word, output);
    }

    [Fact]
    public async Task Bench_split_times_chunkseg_beside_skimage_and_the_numpy_reference()
    {
        var (code, output, err) = await Run("bench", "split", "--shape", "24,40,40", "--chunk", "12,20,20", "--workers", "2", "--repeats", "1");
        Assert.True(code == 0, err + output);
        // The table wraps in a narrow console: look for words, not whole cells.
        foreach (var word in new[] { "VoronoiOtsu.Label", "--voronoi-otsu", "numpy", "skimage", "watershed", "Mvoxels/s", "DistanceWatershed.Split", "--split distance",
                     "distance_split.py", "peak_local_max" })
            Assert.Contains(word, output);
        // The summary line (it does not wrap): both splits' figures.
        Assert.Matches(@"Voronoi-Otsu: ChunkSeg [0-9.]+ Mvoxels/s whole image .*Distance split: ChunkSeg [0-9.]+ whole image, [0-9.]+ chunked; skimage [0-9.]+, numpy reference [0-9.]+", output);
        // Both splits: whole image = chunked = numpy reference (the distance split's runs on volumes this small); skimage's agreement.
        foreach (var split in new[] { "Voronoi-Otsu", "distance split" })
        {
            Assert.Contains($"{split}: whole image vs chunked: identical partitions", output);
            Assert.Contains($"{split}: whole image vs numpy reference: identical partitions", output);
            Assert.Matches($@"{split}: whole image vs skimage: [0-9,]+ vs [0-9,]+ objects, agreeing on [0-9.]+ % of the foreground", output);
        }
        Assert.Contains("cores", output);
    }

    [Fact]
    public async Task Info_and_convert_read_n5()
    {
        // A BigStitcher-like container written here from the N5 spec (the reference writers are exercised in
        // ChunkSeg.Storage.Tests' N5ReadTests): 3 x 5 x 7 uint16 in raw 2 x 3 x 4 blocks, edge blocks cut, x first on disk.
        string dataset = WriteN5(P("stitched.n5"), "setup0/timepoint0/s0", [3, 5, 7], [2, 3, 4]);
        var (code, text, err) = await Run("info", P("stitched.n5") + "/setup0/timepoint0/s0");
        Assert.True(code == 0, err);
        foreach (var expected in new[] { "N5", "zyx", "3 x 5 x 7", "uint16", "2 x 0.5 x 0.25" }) Assert.Contains(expected, text);

        (code, _, err) = await Run("convert", dataset, P("from_n5.zarr"), "--workers", "2");
        Assert.True(code == 0, err);
        Assert.Equal(Enumerable.Range(0, 3 * 5 * 7).Select(i => (ushort)i).ToArray(), ReadAll(P("from_n5.zarr")));
        await Expect(2, "ChunkSeg reads N5; write Zarr", "convert", P("from_n5.zarr"), P("out.n5") + "/data");
    }

    /// <summary>A raw uint16 N5 dataset holding 0, 1, 2, … in C order over <paramref name="shape"/> (z, y, x), resolution 0.25, 0.5, 2 µm (x, y, z).</summary>
    private static string WriteN5(string root, string inner, long[] shape, int[] blocks)
    {
        Directory.CreateDirectory(Path.Combine(root, inner));
        File.WriteAllText(Path.Combine(root, "attributes.json"), """{"n5": "4.0.0"}""");
        File.WriteAllText(Path.Combine(root, "setup0", "attributes.json"), """{"downsamplingFactors": [[1, 1, 1]], "dataType": "uint16"}""");
        File.WriteAllText(Path.Combine(root, "setup0", "timepoint0", "attributes.json"), """{"resolution": [0.25, 0.5, 2.0]}""");
        string dataset = Path.Combine(root, inner);
        File.WriteAllText(Path.Combine(dataset, "attributes.json"), JsonSerializer.Serialize(new
        {
            dimensions = shape.Reverse(), blockSize = blocks.Reverse(), dataType = "uint16", compression = new { type = "raw" },
        }));
        for (long bz = 0; bz * blocks[0] < shape[0]; bz++)
            for (long by = 0; by * blocks[1] < shape[1]; by++)
                for (long bx = 0; bx * blocks[2] < shape[2]; bx++)
                {
                    long[] start = [bz * blocks[0], by * blocks[1], bx * blocks[2]];
                    long[] size = [Math.Min(blocks[0], shape[0] - start[0]), Math.Min(blocks[1], shape[1] - start[1]), Math.Min(blocks[2], shape[2] - start[2])];
                    using var block = new MemoryStream();
                    void U16(int v) { block.WriteByte((byte)(v >> 8)); block.WriteByte((byte)v); }
                    void U32(long v) { U16((int)(v >> 16)); U16((int)(v & 0xFFFF)); }
                    U16(0);
                    U16(3);
                    U32(size[2]); U32(size[1]); U32(size[0]);
                    for (long z = 0; z < size[0]; z++)
                        for (long y = 0; y < size[1]; y++)
                            for (long x = 0; x < size[2]; x++)
                                U16((int)(start[2] + x + shape[2] * (start[1] + y + shape[1] * (start[0] + z))));
                    string file = Path.Combine(dataset, bx.ToString(), by.ToString(), bz.ToString());
                    Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                    File.WriteAllBytes(file, block.ToArray());
                }
        return dataset;
    }

    [Fact]
    public async Task Bad_input_gets_one_clear_line_and_the_right_exit_code()
    {
        Assert.Equal(0, (await Run("demo", "--data-only", "--out", _dir, "--shape", "4,16,16", "--nuclei", "2")).Code);
        string h5 = P("nuclei.h5");

        await Expect(1, "missing.h5", "convert", P("missing.h5") + "/data", P("x.zarr"));
        await Expect(1, "nope", "info", h5 + "/nope");                                         // missing dataset
        await Expect(2, "unknown codec", "convert", h5 + "/raw", P("x.zarr"), "--codec", "lzma");
        await Expect(2, "--chunks", "convert", h5 + "/raw", P("x.zarr"), "--chunks", "0,4,4");
        await Expect(2, "--axes", "info", h5 + "/raw", "--axes", "zyq");
        await Expect(1, "zyxc", "info", h5 + "/raw", "--axes", "zyxc");                          // axis count mismatch
        await Expect(2, "HDF5 output supports", "convert", P("nuclei.zarr"), P("y.h5") + "/d", "--codec", "zstd");
        await Expect(2, "not a volume address", "info", P("plain.txt"));
        await Expect(1, "missing.tif: no such file", "info", P("missing.tif"));
        await Expect(2, "TIFF file has no inner paths", "info", P("missing.tif") + "/data");
        await Expect(2, "--workers", "convert", h5 + "/raw", P("x.zarr"), "--workers", "0");
        await Expect(2, "already exists", "convert", h5 + "/raw", P("nuclei.zarr"));              // would overwrite
        await Expect(2, "", "convert", "--no-such-option");
        await Expect(2, "different file", "convert", h5 + "/raw", h5 + "/copy", "--overwrite");   // would delete the input
        Assert.True(File.Exists(h5));
    }

    [Fact]
    public async Task Stack_traces_only_with_verbose()
    {
        var quiet = await Run("info", P("missing.zarr"));
        var loud = await Run("info", P("missing.zarr"), "--verbose");
        Assert.Equal(1, quiet.Code);
        Assert.Equal(1, loud.Code);
        Assert.DoesNotContain("   at ", quiet.Err);
        Assert.Contains("   at ", loud.Err);
    }

    private static Task Expect(int code, string fragment, params string[] args) => Cli.Expect(code, fragment, args);

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (DirectoryNotFoundException) { }
    }
}
