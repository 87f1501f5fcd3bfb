using System.CommandLine;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Labeling;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Labeling;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// `chunkseg label IN OUT`: objects from a probability map (threshold or argmax) or a binary/label volume,
/// connected chunk by chunk and merged exactly across chunk borders; optional size/border filters and an
/// object table. A batch, <c>label IN... --out DIR</c> (or <c>--inputs LIST.txt</c>), writes each input's labels as the
/// single command would to <c>DIR/{nickname}.zarr</c>; a rerun skips the finished ones.
/// </summary>
internal static class LabelCommand
{
    public static Command Create(CommandContext context)
    {
        var paths = new BatchArguments("the probabilities (float, channels) or a binary/label image (integers), x.zarr or file.h5/dataset, and the labels to write (out.zarr or out.h5/labels)");
        var objectOptions = new ObjectOptions();
        var voronoiOtsu = new Option<string?>("--voronoi-otsu")
        {
            Description = "SPOT,OUTLINE: split touching objects of a raw image as clEsperanto's voronoi_otsu_labeling(spot_sigma, outline_sigma), " +
                "sigmas in voxels (3D: every axis; 2D+t: each time point in 2D); exact across chunks",
        };
        var splitMode = new Option<string?>("--split")
        {
            Description = "Split the touching objects of the segmented probabilities (--threshold/--channel or --argmax), exact across chunks. voronoi: seeds " +
                "are the maxima of the segmented channel blurred by --spot-sigma, flooded through the foreground as --voronoi-otsu floods; distance: the " +
                "watershed of the foreground's distance map (voxel size aware), seeds its maxima within --min-distance (also on a mask: --threshold 1)",
        };
        var minDistance = new Option<string?>("--min-distance")
        {
            Description = $"With --split distance: a seed is the largest distance within this many voxels, d or z,y,x (default {OptionValues.DefaultMinDistance})",
        };
        var spotSigma = new Option<string?>("--spot-sigma")
        {
            Description = "With --split voronoi (required) or --voronoi-otsu: the spot sigma, s or z,y,x in voxels (per axis for anisotropic voxels)",
        };
        var outlineSigma = new Option<string?>("--outline-sigma") { Description = "With --voronoi-otsu: the outline sigma per axis, s or z,y,x in voxels" };
        var fillHoles = new Option<bool>("--fill-holes") { Description = "Fill holes first: background not connected (by faces) to the volume's border becomes foreground" };
        var objects = new Option<string?>("--objects") { Description = "Write the object table (CSV): id, size, volume, centroid, bounding box, mean intensity" };
        var intensity = new Option<string?>("--intensity") { Description = "A single-channel volume of the same shape whose mean per object the table reports" };
        var chunk = new Option<string?>("--chunk") { Description = "Compute chunk core shape z,y,x (default 128^3, aligned to storage chunks)" };
        var chunks = new Option<string?>("--chunks") { Description = "Output storage chunk shape z,y,x (default: --chunk if given, else 64,64,64; 2D: y,x 256,256)" };
        var codec = new Option<string?>("--codec") { Description = "Output compression (default blosc-lz4:5 for Zarr, gzip:1 for HDF5)" };
        var axes = Options.Axes();
        var workers = Options.Workers();
        var backend = Options.Backend("the segmentation steps (smoothing, then threshold or argmax) and the split's blurs");
        var overwrite = Options.Overwrite();
        var (format, shard) = (Options.ZarrFormat(), Options.Shard());
        var (levels, downsample) = (Options.Levels(), Options.Downsample("default mode"));
        var command = new Command("label", "Connected components with an exact merge across chunks, size filters and an object table")
        {
            voronoiOtsu, splitMode, spotSigma, minDistance, outlineSigma, fillHoles, objects, intensity, chunk, chunks, codec, format, shard, levels, downsample, axes, workers, backend, overwrite,
        };
        objectOptions.AddTo(command);
        paths.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            if (!paths.IsBatch(parse))
            {
                var (input, output) = paths.Single(parse, "label");
                return (await LabelOne(input, output).ConfigureAwait(false)).Code;
            }
            if (parse.GetValue(objects) is not null || parse.GetValue(intensity) is not null)
                throw new UsageException($"label: {(parse.GetValue(objects) is not null ? "--objects" : "--intensity")} names one file, not one per input; " +
                    "a batch does not take it (batch.csv counts each input's objects; `chunkseg run` writes each one's table)");
            var (outDir, batch) = paths.Batch(parse, "label");
            return await BatchConsole.RunAsync(context, "label", outDir, batch, RunBatch.LabelColumns, async (input, output) =>
            {
                Directory.CreateDirectory(outDir);
                var (code, objectCount, voxels, already) = await LabelOne(input.Input, output).ConfigureAwait(false);
                if (code != CliApp.Ok) throw new InvalidOperationException($"label incomplete (exit {code}); a rerun resumes it");
                return new BatchDone(objectCount, voxels, already);
            }, ct).ConfigureAwait(false);

            // The single command: IN into OUT. In a batch a finished output (committed, no workspace left) is skipped, where
            // the single command refuses it.
            async Task<(int Code, long? Objects, long Voxels, bool AlreadyDone)> LabelOne(string inputAddress, string outputAddress)
            {
                var target = VolumeStore.ParseAddress(outputAddress);
                var morphology = objectOptions.Morphology(parse);
                var requestedCompute = OptionValues.ParseLong3("--chunk", parse.GetValue(chunk));
                // Compute chunks are whole storage chunks: a --chunk alone sets both, so it is honoured as given.
                var requestedChunks = OptionValues.ParseLong3("--chunks", parse.GetValue(chunks)) ?? requestedCompute;
                var codecSpec = OptionValues.ParseCodec(parse.GetValue(codec));
                int workerCount = OptionValues.CheckWorkers(parse.GetValue(workers));
                using var source = VolumeStore.Open(inputAddress, OptionValues.ParseAxes(parse.GetValue(axes)));
                var info = source.Info;
                long voxels = info.SpatialShape.Volume * info.TimePoints;
                if (paths.IsBatch(parse) && !parse.GetValue(overwrite) && StagedOutput.IsCommitted(target) && !Directory.Exists(LabelWorkspace.For(target.RootPath).Root))
                {
                    context.Out.WriteLine($"label: {target.RootPath} already exists; skipped (pass --overwrite to recompute).");
                    return (CliApp.Ok, null, voxels, true);
                }

                var split = parse.GetValue(splitMode) is { } mode
                    ? SeededSplitOf(mode, parse.GetValue(voronoiOtsu) is not null, parse.GetValue(spotSigma), parse.GetValue(minDistance), parse.GetValue(outlineSigma), info,
                        parse, objectOptions)
                    : SplitOf(parse.GetValue(voronoiOtsu), parse.GetValue(spotSigma), parse.GetValue(outlineSigma), info, parse, objectOptions);
                if (parse.GetValue(minDistance) is not null && split?.IsDistance != true) throw new UsageException("--min-distance goes with --split distance");
                var segmentation = split is null ? SegmentationOf(info, parse, objectOptions) : new Segmentation(SegmentationMode.Labels);
                if (objectOptions.OtsuThreshold(parse))
                {
                    // Otsu over the whole volume first; the job then thresholds every chunk at that value.
                    var thresholded = split?.Foreground ?? segmentation;
                    double otsu = OtsuSegmentation.Find(source, thresholded, workerCount, ct);
                    context.Error.WriteLine(OtsuSegmentation.Describe("label", thresholded.Channel, thresholded.Smooths, otsu));
                    thresholded = OtsuSegmentation.At(thresholded, otsu);
                    if (split is not null) split = split with { Foreground = thresholded };
                    else segmentation = thresholded;
                }
                var conn = split is null ? objectOptions.ConnectivityOf(parse, info) : Kernels.Labeling.Connectivity.All;
                var filter = objectOptions.Filter(parse);
                string? objectsPath = parse.GetValue(objects) is { } o ? Path.GetFullPath(o) : null;
                if (objectsPath is not null && !Directory.Exists(Path.GetDirectoryName(objectsPath)))
                    throw new UsageException($"--objects {objectsPath}: the directory does not exist");
                using var intensityVolume = parse.GetValue(intensity) is { } i ? OpenIntensity(i, info) : null;
                using var compute = Options.OpenBackend(parse.GetValue(backend));    // unused by a label image, which is taken as it is

                var request = new LabelRequest(source, target, segmentation, conn, filter,
                    objectsPath, intensityVolume, requestedCompute, requestedChunks, codecSpec, workerCount, parse.GetValue(overwrite), parse.GetValue(fillHoles))
                {
                    Backend = compute,
                    Split = split,
                    Zarr = Options.ZarrLayoutOf(parse, format, shard),
                    Pyramid = OptionValues.Pyramid(parse.GetValue(levels), parse.GetValue(downsample), DownsampleMethod.Mode),
                    Morphology = morphology,
                };
                var status = new SynchronousProgress<string>(s => context.Error.WriteLine(s));
                var outcome = await LabelJob.RunAsync(request, (title, job, token) => JobConsole.RunWithProgressAsync(context, title, job, token), status, ct)
                    .ConfigureAwait(false);
                if (!outcome.Components.Result.IsComplete) return (JobConsole.Summarize(context, "label (components)", outcome.Components), null, voxels, false);
                if (!outcome.Relabel.Result.IsComplete) return (JobConsole.Summarize(context, "label (relabel)", outcome.Relabel), null, voxels, false);
                int code = JobConsole.Summarize(context, "label", outcome.Final);
                if (code != CliApp.Ok) return (code, null, voxels, false);
                string reshaped = morphology is null ? ""
                    : morphology.Mode == Kernels.Labeling.LabelMorphologyMode.Dilate
                        ? $", dilated by {morphology.Radius.ToString(CultureInfo.InvariantCulture)} voxels"
                        : $", eroded by {morphology.Radius.ToString(CultureInfo.InvariantCulture)} voxels ({outcome.Numbered - outcome.Objects:N0} of {outcome.Numbered:N0} erased)";
                context.Out.WriteLine($"label: {outcome.Objects:N0} objects kept ({(int)conn}-connected{reshaped}); before filtering, {outcome.CrossingObjects:N0} objects " +
                    $"reached a shared chunk face ({outcome.CrossingPieces:N0} pieces, {outcome.Equivalences:N0} equivalences), merged in {outcome.MergeTime.TotalSeconds:0.00} s " +
                    $"using {Units.Bytes(outcome.MergeMemoryBytes)}" + (objectsPath is null ? "." : $"; table: {objectsPath}"));
                return (code, checked((long)outcome.Objects), voxels, false);
            }
        });
        return command;
    }

    /// <summary>
    /// --voronoi-otsu SPOT,OUTLINE as sigmas per axis (z unused in 2D), --spot-sigma / --outline-sigma z,y,x replacing
    /// either; null without --voronoi-otsu.
    /// </summary>
    private static SplitSpec? SplitOf(string? text, string? spotText, string? outlineText, VolumeInfo info, ParseResult parse, ObjectOptions options)
    {
        if (text is null && spotText is not null)
            throw new UsageException("--spot-sigma goes with --split voronoi or --voronoi-otsu SPOT,OUTLINE");
        var split = OptionValues.VoronoiOtsu(text, spotText, outlineText, info);
        if (split is null) return null;
        if (options.ProbabilityOptionGiven(parse) is { } probability)
            throw new UsageException($"--voronoi-otsu segments the raw image itself (Otsu's threshold); {probability} does not apply");
        if (parse.GetValue(options.Connectivity) is not null)
            throw new UsageException("--voronoi-otsu labels the flooded regions, which grow through all 26 (8 in 2D) neighbours; --connectivity does not apply");
        return split;
    }

    /// <summary>--split voronoi --spot-sigma s|z,y,x or --split distance on the segmentation the probability options describe.</summary>
    private static SplitSpec SeededSplitOf(string mode, bool voronoiOtsu, string? spotText, string? minDistance, string? outlineText, VolumeInfo info,
        ParseResult parse, ObjectOptions options)
    {
        if (voronoiOtsu)
            throw new UsageException($"--split {mode} splits a segmentation of probabilities; --voronoi-otsu segments a raw image itself: give one of them");
        if (outlineText is not null)
            throw new UsageException($"--outline-sigma goes with --voronoi-otsu; --split {mode} takes its foreground from the segmentation");
        return OptionValues.SeededSplit(mode, spotText, minDistance, parse.GetValue(options.Connectivity), () =>
        {
            // A mask or an image is thresholded as given; without a threshold an integer volume is a label image, as it is.
            bool thresholded = options.OtsuThreshold(parse) || (mode == "distance" && options.ThresholdValue(parse) is not null);
            if (!info.DataType.IsFloat() && !thresholded)
                throw new UsageException($"{info.Location}: holds {info.DataType.Name()} labels; --split {mode} splits the segmentation of a probability map " +
                    "(float32) or of an image thresholded with --threshold otsu" + (mode == "distance" ? " (a mask: --threshold 1)" : ""));
            return options.ProbabilitySegmentation(parse, info.Location, info.Channels, info);
        }, info)!;
    }

    private static Segmentation SegmentationOf(VolumeInfo info, ParseResult parse, ObjectOptions options)
    {
        if (!info.DataType.IsFloat() && !options.OtsuThreshold(parse))
        {
            if (options.ProbabilityOptionGiven(parse) is { } probabilityOption)
                throw new UsageException($"{info.Location}: holds {info.DataType.Name()} labels, used as they are; {probabilityOption} applies to probability maps (float32)");
            if (info.Channels != 1)
                throw new UsageException($"{info.Location}: a label image has one channel; this one has {info.Channels}");
            return new Segmentation(SegmentationMode.Labels);
        }
        return options.ProbabilitySegmentation(parse, info.Location, info.Channels, info);
    }

    private static IVolume OpenIntensity(string address, VolumeInfo input)
    {
        var volume = VolumeStore.Open(address);
        var info = volume.Info;
        if (info.SpatialShape != input.SpatialShape || info.TimePoints != input.TimePoints || info.Channels != 1)
        {
            volume.Dispose();
            throw new UsageException($"--intensity {info.Location}: shape [{string.Join(", ", info.Shape)}] ({info.Axes}) does not match " +
                $"{input.Location} [{string.Join(", ", input.Shape)}] ({input.Axes}) with one channel");
        }
        return volume;
    }
}
