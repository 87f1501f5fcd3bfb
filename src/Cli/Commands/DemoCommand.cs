using System.CommandLine;
using System.Globalization;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// `chunkseg demo`: the whole workflow on a synthetic nuclei-like light-sheet stack (anisotropic voxels, noise), with
/// no input file. It generates the image (OME-Zarr, and HDF5 for ilastik), sparse brush strokes and the true nuclei,
/// then runs the same commands a user would type, printing each: train a forest on the strokes, run the pipeline,
/// score the labels against the truth; and says how to open every output in napari, Fiji and Blender.
/// </summary>
internal static class DemoCommand
{
    /// <summary>A small, fast feature selection that separates the demo's nuclei from their background well.</summary>
    public const string Features = "GaussianSmoothing:1.0,3.5;LaplacianOfGaussian:1.6;GaussianGradientMagnitude:1.6;DifferenceOfGaussians:3.5;HessianOfGaussianEigenvalues:1.6";

    /// <param name="chunkseg">Runs another chunkseg command line in this process (same console, same error policy).</param>
    public static Command Create(CommandContext context, Func<string[], CancellationToken, Task<int>> chunkseg)
    {
        var outDir = new Option<string>("--out") { Description = "Output folder", DefaultValueFactory = _ => "demo-out" };
        var shape = new Option<string>("--shape") { Description = "Volume shape z,y,x", DefaultValueFactory = _ => "64,256,256" };
        var voxelSize = new Option<string>("--voxel-size") { Description = "Voxel size z,y,x in micrometers", DefaultValueFactory = _ => "2.0,0.4,0.4" };
        var nuclei = new Option<int>("--nuclei") { Description = "Number of nuclei", DefaultValueFactory = _ => 150 };
        var seed = new Option<ulong>("--seed") { Description = "Random seed (the volume is a pure function of it)", DefaultValueFactory = _ => 42UL };
        var dataOnly = new Option<bool>("--data-only") { Description = "Only write the synthetic image, strokes and truth; do not train or run" };
        var workers = Options.Workers();
        var overwrite = new Option<bool>("--overwrite") { Description = "Regenerate outputs that already exist" };
        var command = new Command("demo", "The whole workflow on a synthetic nuclei volume: data, sparse labels, train, run, evaluate")
        {
            outDir, shape, voxelSize, nuclei, seed, dataOnly, workers, overwrite,
        };
        command.SetAction(async (parse, ct) =>
        {
            var size = OptionValues.ParseLong3("--shape", parse.GetValue(shape))!.Value;
            var voxel = OptionValues.ParseVoxelSize(parse.GetValue(voxelSize))!;
            int workerCount = OptionValues.CheckWorkers(parse.GetValue(workers));
            if (parse.GetValue(nuclei) < 0) throw new Contracts.Errors.UsageException("--nuclei must not be negative");
            string dir = parse.GetValue(outDir)!;
            Directory.CreateDirectory(dir);
            bool replace = parse.GetValue(overwrite);
            var ci = CultureInfo.InvariantCulture;
            var parameters = new Dictionary<string, string>
            {
                ["nuclei"] = parse.GetValue(nuclei).ToString(ci),
                ["seed"] = parse.GetValue(seed).ToString(ci),
            };

            // The data: image, strokes and truth, each a pure function of the seed, through the chunk spine.
            string raw = Path.Combine(dir, "nuclei.zarr"), strokes = Path.Combine(dir, "strokes.zarr"), truth = Path.Combine(dir, "truth.zarr");
            foreach (var (path, kind) in new[] { (raw, SyntheticKind.Raw), (strokes, SyntheticKind.Strokes), (truth, SyntheticKind.Truth) })
            {
                var options = new VolumeCreateOptions(AxisOrder.Parse("zyx"), [size.Z, size.Y, size.X], SynthesizeStage.TypeOf(kind),
                    [(int)Math.Min(64, size.Z), (int)Math.Min(128, size.Y), (int)Math.Min(128, size.X)], voxel, CodecSpec.Default,
                    LabelImage: kind != SyntheticKind.Raw);
                string title = $"synthesize {kind.ToString().ToLowerInvariant()}";
                var synth = await JobConsole.RunWithProgressAsync(context, title, new JobRequest(StageCatalog.Synthesize, null, VolumeStore.ParseAddress(path),
                    options, null, workerCount, replace, new Dictionary<string, string>(parameters) { ["kind"] = kind.ToString() }), ct).ConfigureAwait(false);
                int code = JobConsole.Summarize(context, title, synth);
                if (code != CliApp.Ok) return code;
            }
            var h5 = VolumeStore.ParseAddress(Path.Combine(dir, "nuclei.h5") + "/raw");
            using (var source = VolumeStore.Open(raw))
            {
                var convert = await JobConsole.RunWithProgressAsync(context, "convert", new JobRequest(StageCatalog.Convert, source, h5,
                    OutputLayout.For(source.Info, VolumeFormat.Hdf5, null, null, null), null, workerCount, replace, new Dictionary<string, string>()), ct).ConfigureAwait(false);
                int code = JobConsole.Summarize(context, "convert", convert);
                if (code != CliApp.Ok) return code;
            }
            if (parse.GetValue(dataOnly))
            {
                context.Out.WriteLine($"Open {raw} in napari (napari-ome-zarr) or {h5} in ilastik/Fiji; inspect with: chunkseg info {raw}");
                return CliApp.Ok;
            }

            // The workflow, as a user types it.
            string model = Path.Combine(dir, "nuclei.model"), run = Path.Combine(dir, "run"), split = Path.Combine(dir, "split.ome.zarr");
            string watershed = Path.Combine(dir, "run-split");
            string threads = workerCount.ToString(ci);
            string[][] steps =
            [
                ["train", raw, strokes, "--out", model, "--features", Features, "--trees", "40", "--workers", threads],
                ["run", raw, "--model", model, "--out", run, "--export-probabilities", "--min-size", "30", "--workers", threads, .. replace ? ["--overwrite"] : (string[])[]],
                ["evaluate", Path.Combine(run, RunJob.Labels), truth, "--workers", threads],
                // Touching nuclei split as clEsperanto's Voronoi-Otsu labelling does, on the raw image; scored the same way. The
                // sigmas are per axis, 0.8 and 0.6 µm on each, since z is sampled 5 times coarser than y and x.
                ["label", raw, split, "--voronoi-otsu", "2,1.5", "--spot-sigma", SigmaFor(voxel, 0.8), "--outline-sigma", SigmaFor(voxel, 0.6),
                    "--min-size", "30", "--workers", threads, .. replace ? ["--overwrite"] : (string[])[]],
                ["evaluate", split, truth, "--workers", threads],
                // The same run with the classifier's nuclei split at the necks of their distance map (a binary watershed), seeds
                // at least 2 µm apart; the stricter threshold keeps the classifier's soft rims out of the objects.
                ["run", raw, "--model", model, "--out", watershed, "--split", "distance", "--channel", "1", "--threshold", "0.8",
                    "--min-distance", VoxelsFor(voxel, 2.0), "--min-size", "30", "--workers", threads, .. replace ? ["--overwrite"] : (string[])[]],
                ["evaluate", Path.Combine(watershed, RunJob.Labels), truth, "--workers", threads],
            ];
            foreach (var step in steps)
            {
                if (step[0] == "train" && File.Exists(model) && !replace)
                    continue;   // not retrained: a new model is a different run, which the run folder would refuse without --overwrite
                if (step[0] == "label" && StagedOutput.IsCommitted(VolumeStore.ParseAddress(split)) && !replace)
                    continue;   // already split; --overwrite splits again
                context.Out.WriteLine();
                context.Out.WriteLine("$ chunkseg " + string.Join(' ', step.Select(Quote)));
                int code = await chunkseg(step, ct).ConfigureAwait(false);
                if (code != CliApp.Ok) return code;
            }

            context.Out.WriteLine();
            context.Out.WriteLine("Look at the results:");
            context.Out.WriteLine($"  napari:  napari --plugin napari-ome-zarr {raw} {Path.Combine(run, RunJob.Labels)} {split} {Path.Combine(watershed, RunJob.Labels)}   " +
                "(image + three labels layers; voxel sizes in µm)");
            context.Out.WriteLine($"  Fiji:    File > Import > HDF5... {Path.Combine(dir, "nuclei.h5")} and {Path.Combine(run, RunJob.LabelsHdf5)} (axistags set)");
            context.Out.WriteLine($"  ilastik: open {Path.Combine(dir, "nuclei.h5")}/raw as raw data; {Path.Combine(run, RunJob.ProbabilitiesHdf5)}/exported_data holds the probabilities");
            context.Out.WriteLine($"  Blender: File > Import > Wavefront (.obj) {Path.Combine(run, "mesh.obj")}   (one object per nucleus, µm)");
            context.Out.WriteLine($"  table:   {Path.Combine(run, RunJob.Objects)}; provenance: {Path.Combine(run, RunJob.Manifest)}");
            return CliApp.Ok;
        });
        return command;
    }

    /// <summary>A sigma of <paramref name="micrometres"/> on every axis, in voxels z,y,x.</summary>
    private static string SigmaFor(VoxelSize voxel, double micrometres) =>
        string.Join(',', new[] { voxel.Z, voxel.Y, voxel.X }.Select(v => (micrometres / v).ToString("0.###", CultureInfo.InvariantCulture)));

    /// <summary>A distance of <paramref name="micrometres"/> on every axis in whole voxels z,y,x (at least 1).</summary>
    private static string VoxelsFor(VoxelSize voxel, double micrometres) =>
        string.Join(',', new[] { voxel.Z, voxel.Y, voxel.X }.Select(v => Math.Max(1, (int)Math.Round(micrometres / v)).ToString(CultureInfo.InvariantCulture)));

    private static string Quote(string argument) => argument.Contains(' ') || argument.Contains(';') ? $"'{argument}'" : argument;
}
