using System.Diagnostics;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Execution;
using ChunkSeg.Coordinator.Labeling;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Labeling;
using ChunkSeg.Storage.Meshing;
using Microsoft.Extensions.Logging;

namespace ChunkSeg.Pipelines;

/// <summary>What `chunkseg run` asks for. <see cref="MeshFormat"/> is "obj", "ply" or null (no mesh).</summary>
public sealed record RunRequest(
    IVolume Raw,
    string OutDir,
    LoadedClassifier? Classifier,
    IReadOnlyDictionary<string, string> ClassifierParameters,
    Segmentation Segmentation,
    Connectivity Connectivity,
    ObjectFilter Filter,
    string? MeshFormat,
    bool ExportProbabilities,
    Long3? ChunkShape,
    Long3? StorageChunks,
    int Workers,
    bool Overwrite)
{
    /// <summary>
    /// Carries the chunk passes (classify + label, relabel, the dilation or erosion, the mesh's marching cubes; with
    /// <see cref="Split"/> the predict pass and the split's passes instead of classify + label) to remote workers; null runs them on
    /// this machine. The coordinator's own steps (merge, HDF5 copies, mesh weld: outputs one process writes) run here
    /// either way.
    /// </summary>
    public Func<IChunkTransport>? RemoteTransport { get; init; }

    /// <summary>Where the features, the forest and the segmentation run (the same results on each); not part of the run's identity.</summary>
    public ComputeBackend Backend { get; init; } = ComputeBackend.Cpu;

    /// <summary>
    /// Split the touching objects of the segmentation (<c>--split voronoi</c>; its <see cref="SplitSpec.Foreground"/> is
    /// <see cref="Segmentation"/>): the probabilities are written first, then split and labelled (<see cref="SplitJob"/>).
    /// </summary>
    public SplitSpec? Split { get; init; }

    /// <summary>
    /// The final labels grown (<c>--dilate r</c>) or shrunk (<c>--erode r</c>) as `label` does it, in a pass after
    /// relabelling: the filters judge the objects before it; the labels, the table, the HDF5 copy and the mesh are of the
    /// objects after it.
    /// </summary>
    public LabelMorphology? Morphology { get; init; }

    /// <summary>
    /// <c>--threshold otsu</c>: the probabilities are written first (as with <see cref="Split"/>), then <see cref="Segmentation"/>'s
    /// channel is thresholded at Otsu's threshold of it over the whole volume (<see cref="OtsuSegmentation"/>); until the
    /// threshold is found (<see cref="RunJob.ThresholdedAt"/>) the segmentation's threshold is a stand-in.
    /// </summary>
    public bool OtsuThreshold { get; init; }

    /// <summary>The OME-Zarr outputs' Zarr version and shards (<c>--format</c>, <c>--shard</c>); null: the default (v3, sharded).</summary>
    public ZarrLayout? Zarr { get; init; }

    /// <summary>
    /// Multiscale pyramids of the OME-Zarr outputs (<c>--levels</c>): the labels' levels by the block's mode (every id
    /// kept), the exported probabilities' by the mean; null or one level: none.
    /// </summary>
    public int? Levels { get; init; } = 1;

    /// <summary>
    /// Whether the probabilities are written whole before any chunk is segmented (<c>--split</c>, <c>--threshold otsu</c>,
    /// or an export with a pyramid: the fused pass writes its export chunk by chunk beside the labelling, and its levels
    /// are passes of a job of their own); a run without a classifier (<c>--voronoi-otsu</c>) splits the raw image itself.
    /// </summary>
    public bool ClassifiesFirst => Split is not null || OtsuThreshold || (ExportProbabilities && Levels != 1);

    /// <summary>The classifier, which every run but a <c>--voronoi-otsu</c> one has.</summary>
    public LoadedClassifier Classifies => Classifier ?? throw new InvalidOperationException("a --voronoi-otsu run has no classifier");
}

/// <summary>
/// One stage of a run as the summary and the manifest report it. <see cref="Chunks"/> 0 for coordinator steps.
/// <see cref="PeakRssMb"/>: the process's memory high-water mark when the stage was recorded (0 when not known).
/// </summary>
public sealed record RunStage(string Name, double Seconds, long Chunks, long ChunksResumed, long Voxels, double PeakRssMb = 0);

/// <summary>How a run ended: its stages in order, the objects found and the files written (relative to the output folder).</summary>
public sealed record RunOutcome(bool AlreadyComplete, bool Resumed, IReadOnlyList<RunStage> Stages, long Objects, Long3 ChunkShape, long Chunks,
    IReadOnlyList<RunOutput> Outputs, string ManifestPath)
{
    /// <summary>With <c>--threshold otsu</c>: the threshold the run found and labelled with.</summary>
    public OtsuFound? Otsu { get; init; }

    /// <summary>The input's voxels, all time points (what a batch's table lists).</summary>
    public long Voxels { get; init; }
}

/// <summary>A file or store a run wrote, what it holds and how to open it.</summary>
public sealed record RunOutput(string Path, string Holds, string OpenWith);

/// <summary>Receives a run's progress: a stage begins (with its share of the whole), advances, ends.</summary>
public interface IRunMonitor
{
    void Plan(IReadOnlyList<(string Stage, double Weight)> stages);
    IProgress<JobProgress> Begin(string stage);
    void End(string stage);
}

/// <summary>
/// `chunkseg run`: the whole pipeline on one machine, with every output in one folder.
/// <code>
///   1 classify + label  (workers)      raw + halo → features → forest → probabilities → segmentation → local labels and
///                                      summaries, per chunk, nothing in between on disk (<see cref="ClassifyAndLabelStage"/>);
///                                      probabilities exported to probabilities.h5 when asked. With --split or
///                                      --threshold otsu the probabilities are written whole first (predict), then
///     Otsu threshold    (coordinator)  only with --threshold otsu: of the segmented channel over all of them, then
///                                      the split's passes or the labelling of those probabilities (workers)
///   2 merge             (coordinator)  pieces across chunk borders → final ids, filters, objects.csv
///   3 relabel           (workers)      labels.ome.zarr (an OME-NGFF label image)
///     dilate or erode   (workers)      only with --dilate r / --erode r: relabel writes to the labelling's workspace and
///                                      this pass writes labels.ome.zarr (`label`'s fourth pass), objects.csv after it
///   4 labels → HDF5     (workers)      labels.h5/labels with axistags (ilastik, Fiji)
///   5 mesh              (workers)      one closed surface per object from the final labels: pieces per chunk (workers),
///                       (coordinator)  welded → mesh.obj|ply
///   manifest.json                      inputs with checksums, model hash, parameters, version, timings: written last
/// </code>
/// Passes 1 to 4 are the `label`, `convert` and `mesh` jobs' own resumable passes; the run adds a journal
/// (.chunkseg-run.json) holding its key and the timings of stages done, so a rerun of the same command resumes and a
/// different one is refused. A folder holds a finished run exactly when manifest.json exists.
/// </summary>
public static class RunJob
{
    public const string Labels = "labels.ome.zarr", LabelsHdf5 = "labels.h5", Probabilities = "probabilities.ome.zarr", ProbabilitiesHdf5 = "probabilities.h5",
        Objects = "objects.csv", Manifest = "manifest.json", Journal = ".chunkseg-run.json";

    /// <summary>
    /// The whole probabilities a split or <c>--threshold otsu</c> reads (<see cref="RunRequest.ClassifiesFirst"/>): scratch,
    /// removed once the run is finished.
    /// </summary>
    public const string SplitProbabilities = ".chunkseg-split-probabilities.zarr";

    /// <summary>
    /// The job parameter carrying the Otsu threshold the coordinator found (<c>--threshold otsu</c>, "R" format) to the
    /// workers of the passes after it, which rebuild the segmentation from the run's spec (<see cref="RunPasses"/>); part
    /// of those passes' job keys.
    /// </summary>
    public const string OtsuParameter = "run.otsu";
    public const string LabelsDataset = "labels", ProbabilitiesDataset = "exported_data";   // ilastik's export name
    public const string Classify = "classify + label", VoronoiOtsu = "Voronoi-Otsu", Otsu = "Otsu threshold", Merge = "merge", Relabel = "relabel", Hdf5Copy = "HDF5 copies", Mesh = "mesh";

    public static async Task<RunOutcome> RunAsync(RunRequest request, ILoggerFactory logs, IRunMonitor monitor, CancellationToken ct)
    {
        var info = request.Raw.Info;
        string outDir = Path.GetFullPath(request.OutDir);
        Directory.CreateDirectory(outDir);
        var parameters = RunRecord.ParametersOf(request);
        string manifestPath = Path.Combine(outDir, Manifest);
        string journalPath = Path.Combine(outDir, Journal);
        var journal = RunRecord.Claim(outDir, parameters, request.Overwrite, manifestPath, journalPath, OwnedPaths(outDir));
        if (journal is null)
        {
            var done = RunRecord.ReadOutcome(manifestPath);
            RemoveScratch(outDir);
            return done with { Voxels = info.SpatialShape.Volume * info.TimePoints };
        }

        bool resumed = journal.Stages.Count > 0 || Directory.Exists(LabelWorkspace.For(Path.Combine(outDir, Labels)).Root);
        var meshFiles = MeshPaths(request, info, outDir);
        string? reshape = request.Morphology is { } morphology ? LabelJob.VerbOf(morphology) : null;
        var plan = new List<(string, double)> { (request.Classifier is null ? VoronoiOtsu : Classify, 80) };
        if (request.OtsuThreshold) plan.Add((Otsu, 2));
        plan.AddRange([(Merge, 2), (Relabel, 5)]);
        if (reshape is not null) plan.Add((reshape, 5));
        plan.Add((Hdf5Copy, 3));
        if (meshFiles.Count > 0) plan.Add((Mesh, 10));
        monitor.Plan(plan);

        var labels = new VolumeAddress(VolumeFormat.Zarr, Path.Combine(outDir, Labels), "");
        string objectsPath = Path.Combine(outDir, Objects);
        Long3 chunkShape = default;
        long chunks = 0;

        // 1-3: classify and label, merge, relabel (the labelling job with the fused first pass).
        if (!LabelsDone(labels, objectsPath))
        {
            var outcome = await ClassifyAndLabel(request, labels, objectsPath, parameters, journal, logs, monitor, ct).ConfigureAwait(false);
            if (!outcome.IsComplete)
            {
                var failed = !outcome.Components.Result.IsComplete ? outcome.Components : !outcome.Relabel.Result.IsComplete ? outcome.Relabel : outcome.Final;
                throw new RunIncompleteException(failed);
            }
            chunkShape = outcome.Components.Grid.ChunkShape;
            chunks = outcome.Components.Grid.Count;
            journal.Record(new RunStage(Merge, outcome.MergeTime.TotalSeconds, 0, 0, 0));
            journal.Record(StageOf(Relabel, outcome.Relabel));
            if (outcome.Morphology is { } reshaped) journal.Record(StageOf(reshape!, reshaped));
            journal.Save();
        }
        foreach (var stage in new[] { request.Classifier is null ? VoronoiOtsu : Classify, request.OtsuThreshold ? Otsu : null, Merge, Relabel, reshape }.OfType<string>())
            monitor.End(stage);
        if (chunks == 0) (chunkShape, chunks) = (journal.ChunkShape, journal.Chunks);
        // The later passes run on the classify pass's chunks (not their own defaults, sized by budgets up to 256 MiB a
        // chunk, nor the mesher's 128³ layers): their memory then stays near the classify pass's.
        Long3? passChunk = request.ChunkShape ?? (chunkShape == default ? null : chunkShape);

        // 4: HDF5 copies with axistags, written whole from the committed Zarr results (a killed HDF5 writer leaves a file
        // that cannot be trusted, so a partial copy starts again rather than resuming).
        var copies = new List<(string Zarr, string Hdf5, bool ChannelsLast)> { (Labels, LabelsHdf5 + "/" + LabelsDataset, false) };
        if (request.ExportProbabilities) copies.Add((Probabilities, ProbabilitiesHdf5 + "/" + ProbabilitiesDataset, true));
        int classes = request.Classifier?.Classifier.OutputChannels ?? 0;
        var copyProgress = monitor.Begin(Hdf5Copy);
        var copyClock = Stopwatch.StartNew();
        long copied = 0, copiedChunks = 0;
        foreach (var (zarr, hdf5, channelsLast) in copies)
        {
            var target = VolumeStore.ParseAddress(Path.Combine(outDir, hdf5));
            if (StagedOutput.IsCommitted(target)) continue;
            using var source = VolumeStore.Open(Path.Combine(outDir, zarr));
            // Probabilities as `predict` writes them (channels last); labels in the order of their Zarr.
            var options = channelsLast
                ? OutputLayout.ChannelsLast(info, VolumeFormat.Hdf5, classes, request.StorageChunks, new Long3(64, 64, 64), new Long3(1, 256, 256), null, CodecSpec.Gzip(1))
                : OutputLayout.For(source.Info, VolumeFormat.Hdf5, request.StorageChunks, null, null);
            var copy = await EmbeddedJob.RunAsync(new JobRequest(StageCatalog.Convert, source, target, options, passChunk, request.Workers,
                Overwrite: true, new Dictionary<string, string>()), logs, copyProgress, ct).ConfigureAwait(false);
            if (!copy.Result.IsComplete) throw new RunIncompleteException(copy);
            copied += copy.Result.VoxelsProcessed;
            copiedChunks += copy.Result.ChunksTotal;
        }
        if (copiedChunks > 0) journal.Record(new RunStage(Hdf5Copy, copyClock.Elapsed.TotalSeconds, copiedChunks, 0, copied));
        journal.Save();
        monitor.End(Hdf5Copy);

        // 5: one closed surface per object, per time point.
        if (meshFiles.Count > 0)
        {
            var progress = monitor.Begin(Mesh);
            var clock = Stopwatch.StartNew();
            long meshChunks = 0, meshResumed = 0;
            using var final = VolumeStore.Open(labels);
            var voxelSize = OptionValues.VoxelSizeOf(info, null);
            for (int t = 0; t < meshFiles.Count; t++)
            {
                if (File.Exists(meshFiles[t])) continue;
                int index = t;
                long before = meshChunks;
                var mesh = await MeshJob.RunAsync(new MeshRequest(final, meshFiles[t], new SurfaceSpec(SurfaceKind.PerLabel, TimePoint: t), voxelSize,
                    ArrayOrder: false, Normals: false, TaubinIterations: 0, DecimateFraction: 1, passChunk, request.Workers, Overwrite: false)
                    { Transport = request.RemoteTransport },
                    logs, new SynchronousProgress<(long Done, long Total)>(p => progress.Report(new JobProgress(
                        index * p.Total + p.Done, meshFiles.Count * p.Total, 0, 0, clock.Elapsed))), ct).ConfigureAwait(false);
                meshChunks += mesh.Chunks;
                meshResumed += mesh.ChunksResumed;
            }
            if (meshChunks > 0) journal.Record(new RunStage(Mesh, clock.Elapsed.TotalSeconds, meshChunks, meshResumed, info.SpatialShape.Volume * meshFiles.Count));
            journal.Save();
            monitor.End(Mesh);
        }

        // The manifest goes last: its presence marks the folder as a finished run.
        var outputs = OutputsOf(request, outDir, meshFiles);
        long objects = File.ReadLines(objectsPath).LongCount() - 1;
        var result = new RunOutcome(false, resumed, journal.Stages, objects, chunkShape, chunks, outputs, manifestPath)         {
            Otsu = OtsuOf(request, journal),
            Voxels = info.SpatialShape.Volume * info.TimePoints,
        };
        RunRecord.WriteManifest(manifestPath, request, parameters, journal, result);
        RemoveScratch(outDir);
        return result;
    }

    private static async Task<LabelOutcome> ClassifyAndLabel(RunRequest request, VolumeAddress labels, string objectsPath, IReadOnlyDictionary<string, string> parameters,
        RunRecord journal, ILoggerFactory logs, IRunMonitor monitor, CancellationToken ct)
    {
        var info = request.Raw.Info;
        int inputChannels = checked((int)info.Channels);
        var exportAddress = VolumeStore.ParseAddress(Path.Combine(Path.GetDirectoryName(objectsPath)!, Probabilities));
        if (request.ClassifiesFirst)
            return await ClassifyFirst(request, exportAddress, labels, objectsPath, parameters, journal, logs, monitor, ct).ConfigureAwait(false);
        var classifier = request.Classifies;
        long bytesPerVoxel = 4L * (FeatureEngine.MaxScratchBuffers + 2 * inputChannels + 2 * classifier.Classifier.OutputChannels + classifier.Classifier.FeatureCount + 4) + 8;
        const long MaxChunkBytes = 1L << 30;
        StagedOutput? export = null;
        if (request.ExportProbabilities && !StagedOutput.IsCommitted(exportAddress))
        {
            var exportOptions = OutputLayout.WithZarr(ProbabilityLayout(info, classifier.Classifier.OutputChannels, request.StorageChunks), VolumeFormat.Zarr, request.Zarr);
            if (EmbeddedJob.ShardsFollowChunks(exportOptions))
            {
                // The export is written beside the labelling, chunk by chunk: its shards are the compute chunks the
                // labelling's first pass will plan (the same planner, options and stage halo), so no two writers share one.
                var first = new JobRequest("label", request.Raw, labels, LabelJob.LocalOptions(info, request.StorageChunks, request.Zarr), request.ChunkShape,
                    request.Workers, Overwrite: false, parameters, PlanningBytesPerVoxel: bytesPerVoxel, MaxChunkBytes: MaxChunkBytes);
                var halo = ClassifyStage(request, LabelWorkspace.For(labels.RootPath), null).RequiredHalo;
                exportOptions = EmbeddedJob.ShardedBy(exportOptions, EmbeddedJob.Plan(first, halo).ChunkShape);
            }
            export = StagedOutput.Begin(exportAddress, exportOptions, overwrite: false);
        }
        try
        {
            var components = new ComponentsPass(
                workspace => ClassifyStage(request, workspace, export?.Volume),
                parameters,
                BytesPerVoxel: bytesPerVoxel,
                MaxChunkBytes: MaxChunkBytes,
                Completed: () => { export?.Commit(); export = null; });
            var labelRequest = new LabelRequest(request.Raw, labels, request.Segmentation, request.Connectivity, request.Filter, objectsPath,
                IntensityOf(request), request.ChunkShape, request.StorageChunks, null, request.Workers, Overwrite: false,
                Components: components)
            {
                Morphology = request.Morphology,
                Zarr = request.Zarr,
                Pyramid = LabelsPyramid(request),
            };
            // Reported when the merge begins, and with --dilate/--erode once more when its table is written.
            bool merging = false;
            var status = new SynchronousProgress<string>(_ =>
            {
                if (merging) return;
                merging = true;
                monitor.End(Classify);
                monitor.Begin(Merge);
            });
            var outcome = await LabelJob.RunAsync(labelRequest, async (title, job, token) =>
            {
                string stage = StageOfPass(request, job.StageName, Classify);
                if (stage == Relabel) monitor.End(Merge);
                else if (stage != Classify) monitor.End(Relabel);
                var result = await EmbeddedJob.RunAsync(job with { Transport = request.RemoteTransport }, logs, monitor.Begin(stage), token).ConfigureAwait(false);
                if (stage == Classify)
                {
                    journal.SetGrid(result.Grid.ChunkShape, result.Grid.Count);
                    if (!result.AlreadyComplete) journal.Record(StageOf(Classify, result));
                    journal.Save();
                    monitor.End(Classify);
                }
                return result;
            }, status, ct).ConfigureAwait(false);
            return outcome;
        }
        finally
        {
            export?.Dispose();
        }
    }

    /// <summary>
    /// A run with <c>--split</c> or <c>--threshold otsu</c>: the probabilities are written whole first (exported, or to
    /// scratch), since the split's flood reaches beyond any chunk's halo and Otsu's threshold is the whole volume's; then
    /// (with otsu) the threshold is found here, on the coordinator, and kept in the journal (a rerun takes it from there);
    /// then `label` (`label --split`) on them, with the raw image's mean intensity per object (one input channel). On a
    /// cluster the predict pass and the later chunk passes run on the remote workers, which rebuild their stages from the
    /// run's spec and the jobs' parameters (<see cref="RunPasses"/>; the threshold is <see cref="OtsuParameter"/>); the
    /// export copy, like the HDF5 copies, runs here.
    /// </summary>
    private static async Task<LabelOutcome> ClassifyFirst(RunRequest request, VolumeAddress exportAddress, VolumeAddress labels,
        string objectsPath, IReadOnlyDictionary<string, string> parameters, RunRecord journal, ILoggerFactory logs, IRunMonitor monitor, CancellationToken ct)
    {
        // The probabilities as `predict` writes them (channels last: what its stage produces); a --voronoi-otsu run splits the raw image.
        var probabilities = new VolumeAddress(VolumeFormat.Zarr, Path.Combine(Path.GetDirectoryName(objectsPath)!, SplitProbabilities), "");
        if (request.Classifier is not null)
            await PredictWhole(request, probabilities, exportAddress, parameters, journal, logs, monitor, ct).ConfigureAwait(false);
        using var predicted = request.Classifier is null ? null : VolumeStore.Open(probabilities);
        var source = predicted ?? request.Raw;
        IReadOnlyDictionary<string, string>? otsuParameter = null;
        if (request.OtsuThreshold)
        {
            monitor.Begin(Otsu);
            if (journal.Otsu is null)
            {
                var clock = Stopwatch.StartNew();
                journal.Otsu = OtsuSegmentation.Find(source, request.Segmentation, request.Workers, ct);
                var spatial = source.Info.SpatialShape;
                journal.Record(new RunStage(Otsu, clock.Elapsed.TotalSeconds, 0, 0, spatial.Volume * source.Info.TimePoints));
                journal.Save();
            }
            request = ThresholdedAt(request, journal.Otsu.Value);
            otsuParameter = new Dictionary<string, string>(StringComparer.Ordinal) { [OtsuParameter] = journal.Otsu.Value.ToString("R", CultureInfo.InvariantCulture) };
            var found = OtsuOf(request, journal)!;
            logs.CreateLogger(typeof(RunJob).FullName!).LogInformation("{Status}", found.Describe("run"));
            monitor.End(Otsu);
        }
        var info = request.Raw.Info;
        var labelRequest = new LabelRequest(source, labels, request.Segmentation, request.Connectivity, request.Filter, objectsPath,
            IntensityOf(request), request.ChunkShape, request.StorageChunks, null, request.Workers, Overwrite: false)
        {
            Split = request.Split,
            Backend = request.Backend,
            Morphology = request.Morphology,
            Zarr = request.Zarr,
            Pyramid = LabelsPyramid(request),
        };
        // The split's passes (or the labelling's first pass) and the labelling of its regions count as the merge, or as
        // the Voronoi-Otsu stage of a run without a classifier (the sum of those passes: they are all its work); then
        // relabel, then --dilate/--erode.
        string early = request.Classifier is null ? VoronoiOtsu : Merge;
        var earlyProgress = monitor.Begin(early);
        var earlyTime = TimeSpan.Zero;
        long earlyChunks = 0, earlyResumed = 0;
        var outcome = await LabelJob.RunAsync(labelRequest, async (title, job, token) =>
        {
            string stage = StageOfPass(request, job.StageName, early);
            if (stage == Relabel) monitor.End(early);
            else if (stage != early) monitor.End(Relabel);
            var pass = job with { Transport = request.RemoteTransport };
            if (otsuParameter is not null)
                pass = pass with { Parameters = new Dictionary<string, string>(job.Parameters.Concat(otsuParameter), StringComparer.Ordinal) };
            var result = await EmbeddedJob.RunAsync(pass, logs, stage == early ? earlyProgress : monitor.Begin(stage), token).ConfigureAwait(false);
            if (stage == early)
            {
                earlyTime += result.Result.Elapsed;
                earlyChunks += result.Result.ChunksTotal;
                earlyResumed += result.Result.ChunksSkipped;
            }
            return result;
        }, status: null, ct).ConfigureAwait(false);
        if (request.Classifier is null && outcome.IsComplete)
        {
            journal.SetGrid(outcome.Components.Grid.ChunkShape, outcome.Components.Grid.Count);
            journal.Record(new RunStage(VoronoiOtsu, earlyTime.TotalSeconds, earlyChunks, earlyResumed, info.SpatialShape.Volume * info.TimePoints));
        }
        return outcome;
    }

    /// <summary>The classifier's probabilities of the whole volume into <paramref name="probabilities"/> (scratch), and their OME-Zarr export when asked.</summary>
    private static async Task PredictWhole(RunRequest request, VolumeAddress probabilities, VolumeAddress exportAddress, IReadOnlyDictionary<string, string> parameters,
        RunRecord journal, ILoggerFactory logs, IRunMonitor monitor, CancellationToken ct)
    {
        var info = request.Raw.Info;
        var stage = SplitPredictStage(request);
        if (!StagedOutput.IsCommitted(probabilities))
        {
            var predict = await EmbeddedJob.RunAsync(new JobRequest(StageCatalog.Predict, request.Raw, probabilities,
                OutputLayout.ChannelsLast(info, VolumeFormat.Zarr, stage.OutputChannels, request.StorageChunks, new Long3(64, 64, 64), new Long3(1, 256, 256),
                    CodecSpec.Default, CodecSpec.Default),
                request.ChunkShape, request.Workers, Overwrite: false, new Dictionary<string, string>(parameters),
                PlanningBytesPerVoxel: stage.PlanningBytesPerVoxel,
                MaxChunkBytes: 1L << 30, Stage: stage, Transport: request.RemoteTransport), logs, monitor.Begin(Classify), ct).ConfigureAwait(false);
            if (!predict.Result.IsComplete) throw new RunIncompleteException(predict);
            journal.SetGrid(predict.Grid.ChunkShape, predict.Grid.Count);
            journal.Record(StageOf(Classify, predict));
            journal.Save();
        }
        if (request.ExportProbabilities && !StagedOutput.IsCommitted(exportAddress))
        {
            using var written = VolumeStore.Open(probabilities);
            var copy = await EmbeddedJob.RunAsync(new JobRequest(StageCatalog.Convert, written, exportAddress,
                OutputLayout.WithZarr(ProbabilityLayout(info, stage.OutputChannels, request.StorageChunks), VolumeFormat.Zarr, request.Zarr),
                request.ChunkShape, request.Workers, Overwrite: false, new Dictionary<string, string>(),
                Pyramid: new PyramidRequest(request.Levels, DownsampleMethod.Mean)), logs, monitor.Begin(Classify), ct).ConfigureAwait(false);
            if (!copy.Result.IsComplete) throw new RunIncompleteException(copy);
        }
        monitor.End(Classify);
    }

    /// <summary>
    /// <paramref name="request"/> with its segmentation (and its split's foreground) thresholded at the Otsu threshold
    /// <paramref name="otsu"/>, as `label --threshold otsu` thresholds. Remote workers apply the coordinator's threshold
    /// (<see cref="OtsuParameter"/>) the same way.
    /// </summary>
    internal static RunRequest ThresholdedAt(RunRequest request, double otsu)
    {
        var segmentation = OtsuSegmentation.At(request.Segmentation, otsu);
        return request with
        {
            Segmentation = segmentation,
            Split = request.Split is { } split ? split with { Foreground = segmentation } : null,
        };
    }

    /// <summary>The Otsu threshold of a run with <c>--threshold otsu</c>, as its journal holds it; null for any other run.</summary>
    private static OtsuFound? OtsuOf(RunRequest request, RunRecord journal) =>
        request.OtsuThreshold && journal.Otsu is { } otsu ? new OtsuFound(request.Segmentation.Channel, request.Segmentation.Smooths, otsu) : null;

    /// <summary>
    /// The first pass of a run with <c>--threshold otsu</c> and no split: the segmentation (thresholded at the Otsu
    /// threshold) and local labels of the whole probabilities <paramref name="probabilities"/>, with the raw image's mean
    /// intensity, as <see cref="LabelJob"/> builds it on the coordinator. Remote workers build it from the run's spec.
    /// </summary>
    internal static LabelStage ThresholdStage(RunRequest request, LabelWorkspace workspace, VolumeInfo probabilities) =>
        new(request.Segmentation, request.Connectivity, workspace, probabilities.SpatialShape, !probabilities.Axes.HasZ, IntensityOf(request),
            backend: request.Backend);

    /// <summary>
    /// The run stage a labelling pass (<paramref name="pass"/>, its job's stage name) counts in: relabel, the dilation or
    /// erosion (named "dilate" or "erode"), or <paramref name="other"/> for the passes before them.
    /// </summary>
    private static string StageOfPass(RunRequest request, string pass, string other) =>
        pass == "relabel" ? Relabel
        : request.Morphology is { } morphology && pass == LabelJob.MorphologyPass(morphology) ? LabelJob.VerbOf(morphology)
        : other;

    /// <summary>
    /// The volume whose mean per object the object table reports: the raw image when it has one channel; else none
    /// (the fused first pass then reports the segmented probability, which a pass after it can no longer read).
    /// Remote workers take it from here as the coordinator does.
    /// </summary>
    internal static IVolume? IntensityOf(RunRequest request) => request.Raw.Info.Channels == 1 ? request.Raw : null;

    /// <summary>
    /// The predict pass of a run with <c>--split</c> or <c>--threshold otsu</c>: the classifier's probabilities of each chunk, channels last. Remote
    /// workers build it from the run's spec (<see cref="RunPasses"/>) exactly as the coordinator would.
    /// </summary>
    internal static PredictStage SplitPredictStage(RunRequest request)
    {
        var info = request.Raw.Info;
        var classifier = request.Classifies;
        return new PredictStage(classifier.Features, info.SpatialShape.Z, checked((int)info.Channels), classifier.Classifier, request.Backend);
    }

    /// <summary>
    /// The fused first pass's stage: features, forest, segmentation and local labels of one chunk, with the chunk's
    /// summary written to <paramref name="workspace"/> and its probabilities to <paramref name="export"/> when given.
    /// Remote workers build it from the run's spec (<see cref="RunPasses"/>) exactly as the coordinator would.
    /// </summary>
    internal static ClassifyAndLabelStage ClassifyStage(RunRequest request, LabelWorkspace workspace, IVolume? export)
    {
        var info = request.Raw.Info;
        int inputChannels = checked((int)info.Channels);
        var classifier = request.Classifies;
        return new ClassifyAndLabelStage(classifier.Features, info.SpatialShape, inputChannels, classifier.Classifier,
            new LabelStage(request.Segmentation, request.Connectivity, workspace, info.SpatialShape, !info.Axes.HasZ, IntensityOf(request),
                backend: request.Backend),
            export, request.Backend);
    }

    /// <summary>The labels' pyramid (<c>--levels</c>): levels by the block's mode, so every object keeps its id.</summary>
    private static PyramidRequest LabelsPyramid(RunRequest request) => new(request.Levels, DownsampleMethod.Mode);

    /// <summary>Probabilities as an OME-Zarr image: float32, (t,) c, z, y, x, one storage chunk holding every class.</summary>
    private static VolumeCreateOptions ProbabilityLayout(VolumeInfo raw, int classes, Long3? storageChunks)
    {
        var axes = AxisOrder.Parse("c" + raw.Axes.Names.Replace("c", "", StringComparison.Ordinal)).ToOmeOrder();
        var chunk3 = storageChunks ?? (raw.Axes.HasZ ? new Long3(64, 64, 64) : new Long3(1, 256, 256));
        var shape = axes.Names.Select(a => a == 'c' ? classes : raw.Extent(a)).ToArray();
        var chunks = axes.Names.Select((a, d) => (int)Math.Clamp(a switch { 'z' => chunk3.Z, 'y' => chunk3.Y, 'x' => chunk3.X, 'c' => classes, _ => 1 }, 1, shape[d])).ToArray();
        return new VolumeCreateOptions(axes, shape, DataType.Float32, chunks, raw.VoxelSize, CodecSpec.Default);
    }

    /// <summary>Labelling is done once the labels are committed and the object table moved into place (its last steps).</summary>
    private static bool LabelsDone(VolumeAddress labels, string objectsPath) => StagedOutput.IsCommitted(labels) && File.Exists(objectsPath);

    private static RunStage StageOf(string name, JobOutcome o) =>
        new(name, o.Result.Elapsed.TotalSeconds, o.Result.ChunksTotal, o.Result.ChunksSkipped, o.Result.VoxelsProcessed);

    /// <summary>The mesh files: one per time point of a 3D volume (none without a mesh format, or for 2D).</summary>
    private static List<string> MeshPaths(RunRequest request, VolumeInfo info, string outDir)
    {
        int count = request.MeshFormat is null || !info.Axes.HasZ ? 0 : checked((int)info.TimePoints);
        if (count == 0) return [];
        if (count == 1) return [Path.Combine(outDir, $"mesh.{request.MeshFormat}")];
        int digits = (count - 1).ToString(CultureInfo.InvariantCulture).Length;
        return Enumerable.Range(0, count).Select(t => Path.Combine(outDir, $"mesh_t{t.ToString(new string('0', digits), CultureInfo.InvariantCulture)}.{request.MeshFormat}")).ToList();
    }

    private static List<RunOutput> OutputsOf(RunRequest request, string outDir, List<string> meshFiles)
    {
        var outputs = new List<RunOutput>
        {
            new(Labels, $"object labels, OME-NGFF {((request.Zarr ?? ZarrLayout.Default).Format == 3 ? "0.5" : "0.4")} label image (uint32, 0 = background), voxel sizes in µm" +
                    (request.Levels == 1 ? "" : ", with a pyramid"),
                "napari: napari --plugin napari-ome-zarr " + Path.Combine(outDir, Labels) + "; Fiji: File > Import > OME-Zarr (MoBIE/n5-zarr)"),
            new(LabelsHdf5 + "/" + LabelsDataset, "the same labels in HDF5 with vigra axistags",
                "ilastik (as data), Fiji: File > Import > HDF5..., h5py"),
            new(Objects, "one row per object: size, volume (µm³), centroid, bounding box, mean intensity", "pandas.read_csv, Excel, napari features"),
        };
        if (request.ExportProbabilities)
        {
            outputs.Insert(0, new(Probabilities, "per-class probabilities, OME-Zarr image (float32, c = the classifier's classes)",
                "napari: napari --plugin napari-ome-zarr " + Path.Combine(outDir, Probabilities)));
            outputs.Insert(1, new(ProbabilitiesHdf5 + "/" + ProbabilitiesDataset, "the same probabilities channels last, as ilastik's Prediction Export",
                "ilastik, Fiji: File > Import > HDF5..., h5py"));
        }
        foreach (var mesh in meshFiles)
            outputs.Add(new(Path.GetFileName(mesh), "one closed surface per object (objects label_<id>), coordinates x y z in µm",
                "Blender: File > Import > " + (mesh.EndsWith(".ply", StringComparison.Ordinal) ? "Stanford (.ply)" : "Wavefront (.obj)") + "; napari: napari-meshio"));
        return outputs;
    }

    /// <summary>Everything a run may write in its folder, for --overwrite to remove (nothing else there is touched).</summary>
    private static IEnumerable<string> OwnedPaths(string outDir)
    {
        string[] names = [Labels, LabelsHdf5, Probabilities, ProbabilitiesHdf5, Objects, Manifest, SplitProbabilities];
        foreach (var name in names)
        {
            string path = Path.Combine(outDir, name);
            yield return path;
            yield return path + StagedOutput.PartialSuffix;
            yield return path + ".work";
            yield return path + ".chunkseg-manifest.jsonl";
            yield return path + StagedOutput.PartialSuffix + ".chunkseg-manifest.jsonl";
            yield return path + StagedOutput.PartialSuffix + ".zarr";          // an HDF5 output's staged store
            yield return path + StagedOutput.WritingSuffix;                     // an HDF5 output being written at commit
        }
        foreach (var mesh in Directory.EnumerateFileSystemEntries(outDir, "mesh*"))
            yield return mesh;
        foreach (var deleting in Directory.EnumerateDirectories(outDir, "*" + JobWorkspace.DeletedSuffix))
            yield return deleting;
        yield return Path.Combine(outDir, Journal);
    }

    /// <summary>
    /// Bookkeeping a finished run no longer needs: the journal, the HDF5 copies' resume manifests, scratch folders of
    /// passes that finished just before an interruption, and temporary files of atomic writes a killed process left.
    /// </summary>
    private static void RemoveScratch(string outDir)
    {
        new LabelWorkspace(LabelWorkspace.For(Path.Combine(outDir, Labels)).Root).Delete();
        string splitProbabilities = Path.Combine(outDir, SplitProbabilities);
        if (Directory.Exists(splitProbabilities)) Directory.Delete(splitProbabilities, recursive: true);
        foreach (var mesh in Directory.EnumerateFiles(outDir, "mesh*.*").Where(f => !f.EndsWith(".partial", StringComparison.Ordinal)))
            MeshWorkspace.For(mesh).Delete();
        foreach (var name in new[] { LabelsHdf5, ProbabilitiesHdf5 })
        {
            string sidecar = Path.Combine(outDir, name) + ".chunkseg-manifest.jsonl";
            if (File.Exists(sidecar)) File.Delete(sidecar);
        }
        string journal = Path.Combine(outDir, Journal);
        if (File.Exists(journal)) File.Delete(journal);
        // A process killed inside an atomic write leaves its temporary file; a finished folder holds only the outputs.
        Storage.Internal.AtomicFile.RemoveLeftovers(journal);
        Storage.Internal.AtomicFile.RemoveLeftovers(Path.Combine(outDir, Manifest));
    }
}

/// <summary>A pass of a run did not finish (failed chunks); the run stops, keeps what is done, and a rerun resumes it.</summary>
public sealed class RunIncompleteException(string output, JobResult result) : ChunkSegException(MessageOf(output, result))
{
    public RunIncompleteException(JobOutcome outcome) : this(outcome.Output.RootPath, outcome.Result)
    {
    }

    public override int ExitCode => 1;

    /// <summary>How the pass ended: its failed chunks with their reasons.</summary>
    public JobResult Result { get; } = result;

    private static string MessageOf(string output, JobResult result)
    {
        var failed = result.Failed;
        string list = string.Join("; ", failed.Take(5).Select(f => $"chunk {f.Chunk.Value}: {f.Reason}")) + (failed.Count > 5 ? $"; and {failed.Count - 5} more" : "");
        return $"{output}: {failed.Count} of {result.ChunksTotal} chunks failed ({list}); what is done is kept and rerunning the same command resumes";
    }
}
