using System.CommandLine;
using System.Diagnostics;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Forest;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Ilastik;
using ChunkSeg.Storage.Models;
using Spectre.Console;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// `chunkseg train RAW LABELS --out MODEL`: a random forest from sparse labels (0 = unlabelled, 1..K =
/// classes, as ilastik's brush strokes). Features are computed only for chunks holding labels.
/// </summary>
internal static class TrainCommand
{
    public static Command Create(CommandContext context)
    {
        var raw = new Argument<string>("raw") { Description = "The image: x.zarr, x.zarr/0 or file.h5/dataset" };
        var labels = new Argument<string>("labels") { Description = "Labels of the same spatial shape: 0 = unlabelled, 1..K = classes" };
        var outPath = new Option<string>("--out") { Description = "Model file to write", Required = true };
        var features = new Option<string?>("--features") { Description = "Feature spec ('all' or e.g. 'GaussianSmoothing:0.3,1.0;HessianOfGaussianEigenvalues:3.5')" };
        var ilp = new Option<string?>("--ilp") { Description = "Take the feature selection (and label names) from an ilastik project" };
        var trees = new Option<int>("--trees") { Description = "Number of trees", DefaultValueFactory = _ => 100 };
        var seed = new Option<ulong>("--seed") { Description = "Random seed (same seed, same forest)", DefaultValueFactory = _ => 0UL };
        var maxDepth = new Option<int?>("--max-depth") { Description = "Limit tree depth (default: grow to purity)" };
        var anisotropic = new Option<bool>("--anisotropic") { Description = "Scale sigmas per axis by the voxel size" };
        var chunk = new Option<string?>("--chunk") { Description = "Chunk core shape z,y,x used to visit labelled regions (default 64,64,64)" };
        var axes = Options.Axes();
        var labelAxes = new Option<string?>("--labels-axes") { Description = "Axis order of LABELS when its file does not say" };
        var workers = Options.Workers();
        var backend = Options.Backend("the features of the labelled chunks");
        var command = new Command("train", "Train a random forest on sparse labels")
        {
            raw, labels, outPath, features, ilp, trees, seed, maxDepth, anisotropic, chunk, axes, labelAxes, workers, backend,
        };
        command.SetAction(parse =>
        {
            string? ilpPath = parse.GetValue(ilp);
            var set = Options.SelectFeatures(ilpPath, parse.GetValue(features));
            int treeCount = parse.GetValue(trees);
            if (treeCount < 1) throw new UsageException($"--trees must be at least 1; got {treeCount}");
            if (parse.GetValue(maxDepth) is < 1) throw new UsageException("--max-depth must be at least 1");
            int workerCount = OptionValues.CheckWorkers(parse.GetValue(workers));
            var chunkShape = OptionValues.ParseLong3("--chunk", parse.GetValue(chunk)) ?? new Long3(64, 64, 64);

            string[]? ilastikNames = null;
            if (ilpPath is not null)
            {
                using var project = IlastikProject.Open(ilpPath);
                ilastikNames = project.LabelNames();
            }

            using var image = VolumeStore.Open(parse.GetValue(raw)!, OptionValues.ParseAxes(parse.GetValue(axes)));
            using var labelVolume = VolumeStore.Open(parse.GetValue(labels)!, OptionValues.ParseAxes(parse.GetValue(labelAxes)));
            var info = image.Info;
            set = OptionValues.FitToVolume(set, info, parse.GetValue(anisotropic));
            using var compute = Options.OpenBackend(parse.GetValue(backend));

            var clock = Stopwatch.StartNew();
            TrainingSamples samples = null!;
            context.Console.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(progress =>
                {
                    var task = progress.AddTask("sampling labelled chunks", maxValue: 1);
                    samples = TrainingSampler.Collect(set, image, labelVolume, chunkShape, workerCount,
                        new SynchronousProgress<(long Done, long Total)>(p => { task.MaxValue = p.Total; task.Value = p.Done; }), compute);
                    task.StopTask();
                });
            double samplingSeconds = clock.Elapsed.TotalSeconds;
            if (samples.Count == 0)
                throw new Contracts.Errors.VolumeException(labelVolume.Info.Location, "holds no labelled voxels (all 0); paint some labels first");

            int[] classLabels = samples.Labels.Distinct().Order().ToArray();
            var classIndex = samples.Labels.Select(l => Array.BinarySearch(classLabels, l)).ToArray();
            clock.Restart();
            var forest = ForestTrainer.Train(samples.Features, samples.FeatureCount, classIndex, classLabels,
                new ForestTrainingOptions(Trees: treeCount, Seed: parse.GetValue(seed), MaxDepth: parse.GetValue(maxDepth), MaxThreads: workerCount));
            double trainingSeconds = clock.Elapsed.TotalSeconds;

            string[] classNames = classLabels.Select(l => ilastikNames is not null && l - 1 < ilastikNames.Length ? ilastikNames[l - 1] : $"Label {l}").ToArray();
            var model = new ForestModel(set.ToString(), set.AxisScales.Equals(Sigma3.One) ? null : set.AxisScales.ToString(), set.VigraStructureTensor,
                (int)info.Channels, samples.FeatureCount, set.ChannelNames(info.SpatialShape.Z, (int)info.Channels), classLabels, classNames,
                ClassifierLoader.ToArrays(forest),
                $"chunkseg train {info.Location} {labelVolume.Info.Location}, {treeCount} trees, seed {parse.GetValue(seed)}, {DateTime.UtcNow:O}");
            ForestModelFile.Save(parse.GetValue(outPath)!, model);

            var perClass = classLabels.Select(l => $"{l}: {samples.Labels.Count(v => v == l):N0}");
            context.Out.WriteLine($"train: {samples.Count:N0} labelled voxels ({string.Join(", ", perClass)}), {samples.FeatureCount} features; " +
                $"sampling {samplingSeconds:0.00} s, {treeCount} trees in {trainingSeconds:0.00} s; wrote {parse.GetValue(outPath)}");
            return CliApp.Ok;
        });
        return command;
    }
}
