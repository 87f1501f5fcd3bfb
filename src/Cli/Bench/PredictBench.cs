using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using ChunkSeg.Cli.Commands;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Storage;
using ChunkSeg.Kernels.Forest;
using ChunkSeg.Pipelines;
using Spectre.Console;

namespace ChunkSeg.Cli.Bench;

/// <summary>
/// `chunkseg bench predict`: random-forest training and prediction on the same synthetic data (two
/// overlapping classes in --features dimensions), ChunkSeg against scikit-learn and VIGRA on this machine.
/// Each library trains its own forest of --trees trees on the same samples, then predicts the same voxels. With
/// --demo, the samples are a `chunkseg demo` folder's brush strokes with the demo's features (what `chunkseg train`
/// collects there), and the voxels those features over the first chunk of its image.
/// </summary>
internal static class PredictBench
{
    public static Command Create(CommandContext context)
    {
        var features = new Option<int>("--features") { Description = "Features per voxel", DefaultValueFactory = _ => 40 };
        var samples = new Option<int>("--samples") { Description = "Training samples", DefaultValueFactory = _ => 20_000 };
        var voxels = new Option<int>("--voxels") { Description = "Voxels to predict", DefaultValueFactory = _ => 1_000_000 };
        var trees = new Option<int>("--trees") { Description = "Trees per forest", DefaultValueFactory = _ => 100 };
        var threads = new Option<int>("--threads") { Description = "ChunkSeg threads", DefaultValueFactory = _ => Environment.ProcessorCount };
        var demo = new Option<string>("--demo") { Description = "A `chunkseg demo` output folder: train on its brush strokes with the demo's features and predict its first 64x128x128 voxels (--features, --samples, --voxels ignored)" };
        var repeats = BenchCommand.Repeats(3, "Prediction runs (best kept)");
        var python = BenchCommand.Python("scikit-learn and vigra");
        var command = new Command("predict", "Forest training time and prediction voxels/s of ChunkSeg vs scikit-learn and VIGRA")
        {
            features, samples, voxels, trees, threads, demo, repeats, python,
        };
        command.SetAction(parse =>
        {
            int f = parse.GetValue(features), n = parse.GetValue(samples), m = parse.GetValue(voxels), t = parse.GetValue(trees);
            int threadCount = OptionValues.CheckWorkers(parse.GetValue(threads)), r = Math.Max(1, parse.GetValue(repeats));
            if (f < 2 || n < 10 || m < 1 || t < 1) throw new Contracts.Errors.UsageException("--features ≥ 2, --samples ≥ 10, --voxels ≥ 1 and --trees ≥ 1");
            string? demoDir = parse.GetValue(demo);
            float[] trainX, testX;
            int[] trainY;
            if (demoDir is null)
            {
                (trainX, trainY) = Synthesize(n, f, seed: 1);
                testX = Synthesize(m, f, seed: 2).X;
            }
            else (trainX, trainY, testX, f) = FromDemo(demoDir, threadCount);
            (n, m) = (trainY.Length, testX.Length / f);

            var clock = Stopwatch.StartNew();
            var forest = ForestTrainer.Train(trainX, f, trainY, [1, 2], new ForestTrainingOptions(Trees: t, Seed: 0, MaxThreads: threadCount));
            double ourFit = clock.Elapsed.TotalSeconds;
            var planar = new float[(long)m * f];                         // the predictor reads features planar, as the stages provide them
            for (int v = 0; v < m; v++)
                for (int k = 0; k < f; k++) planar[(long)k * m + v] = testX[(long)v * f + k];
            var probabilities = new float[m * 2];
            double ourPredict = BenchCommand.Best(r, () => ForestPredictor.PredictProbabilities(forest, planar, m, probabilities, threadCount));

            string dir = Path.Combine(Path.GetTempPath(), "chunkseg-bench-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(dir);
            System.Text.Json.JsonElement reference;
            try
            {
                Npy.Write(Path.Combine(dir, "train_x.npy"), trainX, n, f);
                Npy.Write(Path.Combine(dir, "train_y.npy"), trainY, n);
                Npy.Write(Path.Combine(dir, "test_x.npy"), testX, m, f);
                string script = BenchCommand.ExtractScript("forest_reference.py", dir);
                reference = BenchCommand.RunPython(parse.GetValue(python)!, script, Path.Combine(dir, "train_x.npy"), Path.Combine(dir, "train_y.npy"),
                    Path.Combine(dir, "test_x.npy"), t.ToString(CultureInfo.InvariantCulture), r.ToString(CultureInfo.InvariantCulture));
            }
            finally
            {
                Directory.Delete(dir, true);
            }
            double Get(string key) => reference.GetProperty(key).GetDouble();
            double fastest = Math.Min(Get("sklearn_predict"), Get("vigra_predict"));
            var versions = reference.GetProperty("versions");

            var table = new Table().Border(TableBorder.Rounded)
                .Title(Markup.Escape($"{t} trees, {f} features, 2 classes; trained on {n:N0} {(demoDir is null ? "samples" : "brush-stroke voxels of the demo")}, predicting {m:N0} voxels"))
                .AddColumns("implementation", "training s", "prediction Mvoxels/s", "vs faster reference");
            table.AddRow(Markup.Escape($"ChunkSeg ({threadCount} threads)"), F(ourFit), F(m / ourPredict / 1e6), F(fastest / ourPredict) + "x");
            table.AddRow(Markup.Escape($"scikit-learn {versions.GetProperty("sklearn").GetString()} (n_jobs=2)"), F(Get("sklearn_fit")), F(m / Get("sklearn_predict") / 1e6), F(fastest / Get("sklearn_predict")) + "x");
            table.AddRow(Markup.Escape($"VIGRA {versions.GetProperty("vigra").GetString()} (predictProbabilities)"), F(Get("vigra_fit")), F(m / Get("vigra_predict") / 1e6), F(fastest / Get("vigra_predict")) + "x");
            context.Stdout.Write(table);
            return CliApp.Ok;
        });
        return command;
    }

    private static string F(double v) => v.ToString(v >= 100 ? "0" : v >= 1 ? "0.00" : "0.000", CultureInfo.InvariantCulture);

    /// <summary>
    /// The demo's training samples (its strokes, its features, as `chunkseg train` collects them; classes as indices)
    /// and, row-major, the same features over the core of the image's first 64 x 128 x 128 chunk.
    /// </summary>
    private static (float[] TrainX, int[] TrainY, float[] TestX, int Features) FromDemo(string dir, int threads)
    {
        using var raw = VolumeStore.Open(Path.Combine(dir, "nuclei.zarr"));
        using var strokes = VolumeStore.Open(Path.Combine(dir, "strokes.zarr"));
        var set = OptionValues.FitToVolume(Options.SelectFeatures(null, DemoCommand.Features), raw.Info, anisotropic: false);
        var samples = TrainingSampler.Collect(set, raw, strokes, Long3.Uniform(64), threads);
        int[] classes = samples.Labels.Distinct().Order().ToArray();
        if (classes.Length != 2) throw new Contracts.Errors.UsageException($"{dir}: the demo's strokes should hold 2 classes, not {classes.Length}");
        var trainY = samples.Labels.Select(l => Array.IndexOf(classes, l)).ToArray();

        var features = new ChunkFeatures(set, raw.Info.SpatialShape.Z, 1);
        var chunk = new ChunkGrid(raw.Info.SpatialShape, 1, new Long3(64, 128, 128), features.RequiredHalo)[0];
        int f = features.Channels, m = checked((int)chunk.Core.VoxelCount);
        var testX = new float[(long)m * f];
        features.Compute(chunk, raw, (channel, image) =>
        {
            for (int v = 0; v < m; v++) testX[(long)v * f + channel] = image[v];
        });
        return (samples.Features, trainY, testX, f);
    }

    /// <summary>Two overlapping Gaussian classes: class 2's mean is shifted by 0.5 on every feature. Row-major [sample][feature].</summary>
    private static (float[] X, int[] Y) Synthesize(int count, int features, int seed)
    {
        var rng = new Random(seed);
        var x = new float[(long)count * features];
        var y = new int[count];
        for (int i = 0; i < count; i++)
        {
            y[i] = rng.Next(2);
            for (int k = 0; k < features; k++)
            {
                double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                x[(long)i * features + k] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2) + 0.5 * y[i] * (k % 3 == 0 ? 1 : 0.3));
            }
        }
        return (x, y);
    }
}
