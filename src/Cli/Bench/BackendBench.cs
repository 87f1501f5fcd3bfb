using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Coordinator.Labeling;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Forest;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;

namespace ChunkSeg.Cli.Bench;

/// <summary>
/// `chunkseg bench backend`: the CPU backend against the GPU backend (ILGPU: CUDA, OpenCL, or its CPU accelerator) on the same machine and
/// the same data — the feature stack, the forest, both fused on the device, and an end-to-end `run` — with the largest difference between their
/// results beside each timing, so a figure never stands for a wrong answer.
/// </summary>
internal static class BackendBench
{
    public static Command Create(CommandContext context)
    {
        var size = new Option<int>("--size") { Description = "Edge of the float32 cube", DefaultValueFactory = _ => 128 };
        var features = new Option<string>("--features") { Description = "Feature spec ('all' = ilastik's 37 entries / 61 channels)", DefaultValueFactory = _ => "all" };
        var trees = new Option<int>("--trees") { Description = "Trees of the forest", DefaultValueFactory = _ => 100 };
        var chunk = new Option<int>("--chunk") { Description = "Chunk edge of the end-to-end run", DefaultValueFactory = _ => 64 };
        var threads = new Option<int>("--threads") { Description = "CPU threads (the CPU backend's chunks, and the run's workers)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var backend = new Option<string>("--backend") { Description = "The backend measured against the CPU: gpu or auto", DefaultValueFactory = _ => "gpu" };
        var repeats = BenchCommand.Repeats(3, "Runs of each measurement (best kept)");
        var command = new Command("backend", "Feature stack, forest and end-to-end run voxels/s: the CPU backend against the GPU backend on this machine")
        {
            size, features, trees, chunk, threads, backend, repeats,
        };
        command.SetAction(async (parse, ct) =>
        {
            int edge = parse.GetValue(size), t = parse.GetValue(trees), r = Math.Max(1, parse.GetValue(repeats)), chunkEdge = parse.GetValue(chunk);
            int threadCount = OptionValues.CheckWorkers(parse.GetValue(threads));
            if (edge < 40) throw new UsageException("--size must be at least 40 (ilastik's scale 10 needs 36 voxels per axis)");
            if (t < 1 || chunkEdge < 8) throw new UsageException("--trees ≥ 1 and --chunk ≥ 8");
            var set = FeatureSet.Parse(parse.GetValue(features)!);
            using var other = ComputeBackends.Open(parse.GetValue(backend)!);
            var cpu = ComputeBackend.Cpu;
            var backends = new[] { cpu, other };
            float[] volume = BenchCommand.SyntheticCube(edge);
            int n = edge * edge * edge, channels = set.ChannelCount(edge);
            var layout = new FeatureMatrixLayout(set, edge, 1);
            var whole = new Box3(Long3.Zero, Long3.Uniform(edge));

            // Feature stack: the whole cube as one block, its matrix planar (what the forest reads).
            var matrices = new float[2][];
            var featureSeconds = new double[2];
            for (int b = 0; b < 2; b++)
            {
                var matrix = matrices[b] = new float[(long)n * channels];
                IFeatureEngine engine = b == 0 ? new FeatureEngine(set, edge, threadCount) : other.FeatureEngine(set, edge);
                featureSeconds[b] = BenchCommand.Best(r, () => engine.Compute(volume, edge, edge, edge, whole, (entry, component, image) =>
                    image.CopyTo(matrix.AsSpan(layout.ChannelOf(entry, 0, component) * n, n))));
            }
            double featureDiff = MaxRelativeDifference(matrices[0], matrices[1]);

            // Forest: trained on the cube's own features (bright against dark voxels), then applied to every voxel.
            var forest = TrainForest(matrices[0], n, channels, volume, t, threadCount);
            var probabilities = new float[2][];
            var forestSeconds = new double[2];
            for (int b = 0; b < 2; b++)
            {
                var classifier = backends[b].Classifier(new ForestClassifier(forest));
                var p = probabilities[b] = new float[n * 2];
                forestSeconds[b] = BenchCommand.Best(r, () => classifier.Predict(matrices[0], n, p));
            }
            double forestDiff = probabilities[0].Zip(probabilities[1], (a, c) => Math.Abs(a - c)).Max();

            // Features → forest as one device step (the feature matrix stays on the device), where the backend fuses them;
            // the CPU's figure is its two steps together.
            double? fusedSeconds = null, fusedDiff = null;
            if (other.Fused(set, edge, layout, new ForestClassifier(forest)) is { } fused)
            {
                var p = new float[n * 2];
                fusedSeconds = BenchCommand.Best(r, () => fused.Classify(volume, Long3.Uniform(edge), whole, p));
                fusedDiff = probabilities[0].Zip(p, (a, c) => Math.Abs(a - c)).Max();
            }

            // End to end: `run` from a Zarr cube to labels (threshold 0.5 on the bright class), no mesh.
            string dir = Path.Combine(Path.GetTempPath(), "chunkseg-bench-backend-" + Guid.NewGuid().ToString("N")[..8]);
            var runSeconds = new double[2];
            bool labelsEqual;
            try
            {
                string raw = Path.Combine(dir, "raw.zarr"), model = Path.Combine(dir, "model.chunkseg");
                using (var v = VolumeStore.Create(new VolumeAddress(VolumeFormat.Zarr, raw, ""), new VolumeCreateOptions(AxisOrder.Parse("zyx"),
                    [edge, edge, edge], DataType.Float32, [chunkEdge, chunkEdge, chunkEdge], VoxelSize.Isotropic, CodecSpec.Default)))
                    v.Write(NdBox.Whole([edge, edge, edge]), MemoryMarshal.AsBytes(volume.AsSpan()));
                ForestModelFile.Save(model, new ForestModel(set.ToString(), null, false, 1, channels, set.ChannelNames(edge, 1), [1, 2], ["dark", "bright"],
                    ClassifierLoader.ToArrays(forest), "chunkseg bench backend"));
                var labels = new uint[2][];
                for (int b = 0; b < 2; b++)
                {
                    string outDir = Path.Combine(dir, backends[b].Name);
                    using var source = VolumeStore.Open(raw);
                    var request = new RunRequest(source, outDir, ClassifierLoader.FromModel(model), new Dictionary<string, string> { ["model"] = model },
                        new Segmentation(SegmentationMode.Threshold, Channel: 1, Threshold: 0.5f), Connectivity.All, new ObjectFilter(), MeshFormat: null,
                        ExportProbabilities: false, Long3.Uniform(chunkEdge), Long3.Uniform(chunkEdge), threadCount, Overwrite: true) { Backend = backends[b] };
                    runSeconds[b] = double.MaxValue;
                    for (int i = 0; i < r; i++)
                    {
                        var clock = Stopwatch.StartNew();
                        await RunJob.RunAsync(request, NullLoggerFactory.Instance, new SilentMonitor(), ct).ConfigureAwait(false);
                        runSeconds[b] = Math.Min(runSeconds[b], clock.Elapsed.TotalSeconds);
                    }
                    using var result = VolumeStore.Open(Path.Combine(outDir, RunJob.Labels));
                    labels[b] = new uint[n];
                    result.Read(NdBox.Whole(result.Info.Shape), MemoryMarshal.AsBytes(labels[b].AsSpan()));
                }
                labelsEqual = labels[0].AsSpan().SequenceEqual(labels[1]);
            }
            finally
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            }

            var ci = CultureInfo.InvariantCulture;
            string Rate(double seconds) => (n / seconds / 1e6).ToString(n / seconds >= 1e8 ? "0" : "0.0", ci);
            var table = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape($"bench backend: {edge}³ float32, {channels} feature channels, {t} trees; cpu against {other.Name}"))
                .AddColumns("work", "cpu Mvoxels/s", $"{other.Name} Mvoxels/s", "speed-up", "largest difference");
            table.AddRow("feature stack", Rate(featureSeconds[0]), Rate(featureSeconds[1]), F(featureSeconds[0] / featureSeconds[1]) + "x",
                featureDiff.ToString("0.0e+0", ci) + " relative");
            table.AddRow($"forest ({t} trees)", Rate(forestSeconds[0]), Rate(forestSeconds[1]), F(forestSeconds[0] / forestSeconds[1]) + "x",
                forestDiff.ToString("0.0e+0", ci) + " absolute");
            if (fusedSeconds is { } fs)
            {
                double cpuBoth = featureSeconds[0] + forestSeconds[0];
                table.AddRow("features → forest (fused)", Rate(cpuBoth), Rate(fs), F(cpuBoth / fs) + "x", fusedDiff!.Value.ToString("0.0e+0", ci) + " absolute");
            }
            table.AddRow(Markup.Escape($"run (chunks {chunkEdge}³, {threadCount} workers)"), Rate(runSeconds[0]), Rate(runSeconds[1]),
                F(runSeconds[0] / runSeconds[1]) + "x", labelsEqual ? "labels identical" : "[red]labels differ[/]");
            context.Stdout.Write(table);
            context.Out.WriteLine($"cpu: {cpu.Device}; {other.Name}: {other.Device}");
            return labelsEqual ? CliApp.Ok : 1;
        });
        return command;
    }

    /// <summary>Largest |a − b| / max(1, |a|): the parity measure of the backends' features.</summary>
    public static double MaxRelativeDifference(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double a = expected[i], d = Math.Abs(a - actual[i]);
            if (double.IsNaN(d)) return double.NaN;
            worst = Math.Max(worst, d / Math.Max(1, Math.Abs(a)));
        }
        return worst;
    }

    private static RandomForest TrainForest(float[] planar, int n, int channels, float[] volume, int trees, int threads)
    {
        // 20 000 voxels spread over the cube, labelled by brightness against the median.
        int samples = Math.Min(n, 20_000), stride = n / samples;
        float median = volume.Where((_, i) => i % stride == 0).Order().ElementAt(samples / 2);
        var x = new float[(long)samples * channels];
        var y = new int[samples];
        for (int s = 0; s < samples; s++)
        {
            int v = s * stride;
            y[s] = volume[v] > median ? 1 : 0;   // class indices (of the class labels 1, 2)
            for (int k = 0; k < channels; k++) x[(long)s * channels + k] = planar[(long)k * n + v];
        }
        return ForestTrainer.Train(x, channels, y, [1, 2], new ForestTrainingOptions(Trees: trees, Seed: 0, MaxThreads: threads));
    }

    private static string F(double v) => v.ToString(v >= 100 ? "0" : v >= 1 ? "0.00" : "0.000", CultureInfo.InvariantCulture);

    private sealed class SilentMonitor : IRunMonitor
    {
        public void Plan(IReadOnlyList<(string Stage, double Weight)> stages) { }
        public IProgress<JobProgress> Begin(string stage) => new Progress<JobProgress>();
        public void End(string stage) { }
    }
}
