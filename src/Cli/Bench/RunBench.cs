using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using Spectre.Console;

namespace ChunkSeg.Cli.Bench;

/// <summary>
/// `chunkseg bench run`: the whole pipeline end to end on a synthetic uint16 nuclei volume, `chunkseg run` against the
/// stack ilastik users run today (VIGRA features and forest block by block, scipy.ndimage.label, scikit-image marching
/// cubes; tools/reference/pipeline_reference.py) on this machine. Both train their own forest of --trees trees on the
/// same brush strokes, painted in one crop as a user paints in ilastik; training is not timed. `chunkseg run` runs as its
/// own process, so its peak memory (from its manifest) is the run's alone.
/// </summary>
internal static class RunBench
{
    public static Command Create(CommandContext context)
    {
        var size = new Option<int>("--size") { Description = "Edge of the cubic uint16 volume", DefaultValueFactory = _ => 512 };
        var features = new Option<string>("--features") { Description = "Feature spec ('all' = ilastik's full 3D set)", DefaultValueFactory = _ => "all" };
        var trees = new Option<int>("--trees") { Description = "Trees per forest", DefaultValueFactory = _ => 100 };
        var block = new Option<int>("--block") { Description = "Block edge of the reference's blockwise features (and of the training crop)", DefaultValueFactory = _ => 128 };
        var workers = Options.Workers();
        var keep = new Option<string?>("--keep") { Description = "Keep the data and outputs in this folder (default: a temporary one, removed)" };
        var noReference = new Option<bool>("--no-reference") { Description = "Measure chunkseg run alone (the reference takes hours on big volumes)" };
        var python = BenchCommand.Python("vigra, scipy and scikit-image");
        var command = new Command("run", "End-to-end voxels/s and peak memory of chunkseg run vs VIGRA + scipy + scikit-image")
        {
            size, features, trees, block, workers, keep, noReference, python,
        };
        command.SetAction(async (parse, ct) =>
        {
            int n = parse.GetValue(size), t = parse.GetValue(trees), b = parse.GetValue(block);
            if (n < 32 || t < 1 || b < 16) throw new UsageException("--size ≥ 32, --trees ≥ 1 and --block ≥ 16");
            var set = FeatureSet.Parse(parse.GetValue(features)!);
            int threads = OptionValues.CheckWorkers(parse.GetValue(workers));
            string dir = parse.GetValue(keep) ?? Path.Combine(Path.GetTempPath(), "chunkseg-bench-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(dir);
            try
            {
                var ci = CultureInfo.InvariantCulture;
                context.Error.WriteLine($"bench run: preparing a {n}^3 uint16 volume and strokes in {dir}");
                string raw = Path.Combine(dir, "raw.zarr"), strokesZarr = Path.Combine(dir, "strokes.zarr");
                string rawH5 = Path.Combine(dir, "raw.h5"), strokesH5 = Path.Combine(dir, "strokes.h5");
                int nuclei = (int)Math.Max(10, (long)n * n * n / 27_000);
                await Chunkseg(["demo", "--data-only", "--out", dir, "--shape", $"{n},{n},{n}", "--voxel-size", "0.5,0.5,0.5", "--nuclei", nuclei.ToString(ci),
                    "--workers", threads.ToString(ci)], ct).ConfigureAwait(false);
                Directory.Move(Path.Combine(dir, "nuclei.zarr"), raw);
                File.Move(Path.Combine(dir, "nuclei.h5"), rawH5);
                CropStrokes(Path.Combine(dir, "strokes.zarr"), strokesH5, b);

                string model = Path.Combine(dir, "bench.model"), outDir = Path.Combine(dir, "run");
                await Chunkseg(["train", raw, strokesH5 + "/strokes", "--out", model, "--features", set.ToString(), "--trees", t.ToString(ci),
                    "--workers", threads.ToString(ci)], ct).ConfigureAwait(false);
                var clock = Stopwatch.StartNew();
                await Chunkseg(["run", raw, "--model", model, "--out", outDir, "--workers", threads.ToString(ci), "--overwrite"], ct).ConfigureAwait(false);
                double ourWall = clock.Elapsed.TotalSeconds;
                using var manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(outDir, "manifest.json")));
                var ours = manifest.RootElement;

                if (parse.GetValue(noReference))
                {
                    context.Out.WriteLine(string.Format(ci, "bench run: chunkseg run on {0}^3 uint16 ({1} features, {2} trees, {3} threads): {4:0.0} s process wall time, {5}, " +
                        "peak RSS {6:0} MB, {7:N0} objects, chunks of {8}; stages: {9}", n, set.ChannelCount(n, 1), t, threads, ourWall, Units.Rate((double)n * n * n / ourWall),
                        ours.GetProperty("peak_rss_mb").GetDouble(), ours.GetProperty("objects").GetInt64(), string.Join("x", ours.GetProperty("chunk_shape").EnumerateArray()),
                        string.Join(", ", ours.GetProperty("stages").EnumerateArray().Select(s => string.Format(ci, "{0} {1:0.0} s", s.GetProperty("name").GetString(), s.GetProperty("seconds").GetDouble())))));
                    return CliApp.Ok;
                }
                context.Error.WriteLine("bench run: the reference pipeline (VIGRA, scipy, scikit-image) ...");
                BenchCommand.ExtractScript("vigra_features.py", dir);
                string script = BenchCommand.ExtractScript("pipeline_reference.py", dir);
                var required = set.RequiredHalo(n);
                int halo = Math.Max(required.Z, Math.Max(required.Y, required.X));
                var reference = BenchCommand.RunPython(parse.GetValue(python)!, script, rawH5, "raw", strokesH5, "strokes", set.ToString(),
                    t.ToString(ci), b.ToString(ci), halo.ToString(ci), "1", "0.5");
                Report(context, n, set, t, threads, ours, ourWall, reference, b, halo);
                return CliApp.Ok;
            }
            finally
            {
                if (parse.GetValue(keep) is null) Directory.Delete(dir, recursive: true);
            }
        });
        return command;
    }

    private static void Report(CommandContext context, int n, FeatureSet set, int trees, int threads, JsonElement ours, double ourWall, JsonElement reference,
        int block, int halo)
    {
        var ci = CultureInfo.InvariantCulture;
        double voxels = (double)n * n * n;
        double Stage(string name) => ours.GetProperty("stages").EnumerateArray().Where(s => s.GetProperty("name").GetString() == name)
            .Sum(s => s.GetProperty("seconds").GetDouble());
        var theirs = reference.GetProperty("seconds");
        double Theirs(string name) => theirs.GetProperty(name).GetDouble();
        string F(double s) => s.ToString("0.0", ci) + " s";
        int channels = set.ChannelCount(n, 1);
        var table = new Table().Border(TableBorder.Rounded)
            .Title(Markup.Escape($"{n}^3 uint16, {channels} features ({(set.Entries.Count == FeatureSet.IlastikFull.Entries.Count ? "ilastik's full 3D set" : set.ToString())}), {trees}-tree forest"))
            .AddColumns("stage", "ChunkSeg run", "VIGRA + scipy + scikit-image");
        table.AddRow("features + forest", F(Stage("classify + label")) + " (fused with local labels)", F(Theirs("features") + Theirs("forest")) +
            string.Format(ci, " (features {0:0.0} s, forest {1:0.0} s; blocks {2}^3 + halo {3})", Theirs("features"), Theirs("forest"), block, halo));
        table.AddRow("connected components", F(Stage("merge") + Stage("relabel")) + " (merge, relabel to OME-Zarr)", F(Theirs("label")) + " (ndimage.label, whole volume)");
        table.AddRow("HDF5 copies", F(Stage("HDF5 copies")), "-");
        table.AddRow("marching cubes", F(Stage("mesh")) + " (per object, welded, OBJ written)", F(Theirs("mesh")) + " (foreground, in memory)");
        table.AddRow("[bold]total[/]", F(ourWall) + " (process wall time)", F(Theirs("total")));
        table.AddRow("voxels/s", Units.Rate(voxels / ourWall), Units.Rate(voxels / Theirs("total")));
        table.AddRow("peak memory", ours.GetProperty("peak_rss_mb").GetDouble().ToString("0", ci) + " MB", reference.GetProperty("peak_rss_mb").GetDouble().ToString("0", ci) + " MB");
        table.AddRow("objects", ours.GetProperty("objects").GetInt64().ToString("N0", ci), reference.GetProperty("objects").GetInt64().ToString("N0", ci));
        context.Stdout.Write(table);
        var v = reference.GetProperty("versions");
        context.Out.WriteLine(string.Format(ci, "bench run: ChunkSeg is {0:0.00}x the reference end to end ({1} threads; reference: vigra {2}, scipy {3}, scikit-image {4}, single-threaded " +
            "as those libraries run); each trained its own forest on the same strokes, so object counts differ slightly.",
            Theirs("total") / ourWall, threads, v.GetProperty("vigra").GetString(), v.GetProperty("scipy").GetString(), v.GetProperty("skimage").GetString()));
    }

    /// <summary>The demo's strokes kept only inside the first block-sized crop (as a user paints a small crop), in HDF5 for both sides.</summary>
    private static void CropStrokes(string zarr, string h5, int crop)
    {
        using var strokes = VolumeStore.Open(zarr);
        var shape = strokes.Info.Shape;
        var values = new byte[strokes.Info.ElementCount];
        strokes.Read(NdBox.Whole(shape), values);
        for (long z = 0, i = 0; z < shape[0]; z++)
        for (long y = 0; y < shape[1]; y++)
        for (long x = 0; x < shape[2]; x++, i++)
            if (z >= crop || y >= crop || x >= crop) values[i] = 0;
        using var output = VolumeStore.Create(VolumeStore.ParseAddress(h5 + "/strokes"),
            new VolumeCreateOptions(strokes.Info.Axes, shape, DataType.UInt8, [64, 64, 64], strokes.Info.VoxelSize, CodecSpec.Gzip(1)));
        output.Write(NdBox.Whole(shape), values);
    }

    /// <summary>Runs chunkseg as its own process (its memory and time are then its own); fails with its error output.</summary>
    private static async Task Chunkseg(string[] args, CancellationToken ct)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(RunBench).Assembly.Location);
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new UsageException("could not start dotnet");
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct).ConfigureAwait(false);
        if (process.ExitCode != 0)
            throw new UsageException($"chunkseg {string.Join(' ', args)} failed: {(await stderr.ConfigureAwait(false)).Trim()}");
        await stdout.ConfigureAwait(false);
    }
}
