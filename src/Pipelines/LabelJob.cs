using System.Diagnostics;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Labeling;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Labeling;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Labeling;

namespace ChunkSeg.Pipelines;

/// <summary>What `chunkseg label` asks for.</summary>
public sealed record LabelRequest(
    IVolume Input,
    VolumeAddress Output,
    Segmentation Segmentation,
    Connectivity Connectivity,
    ObjectFilter Filter,
    string? ObjectsPath,
    IVolume? Intensity,
    Long3? ChunkShape,
    Long3? StorageChunks,
    CodecSpec? Codec,
    int Workers,
    bool Overwrite,
    bool FillHoles = false,
    ComponentsPass? Components = null)
{
    /// <summary>Where the segmentation runs (the same labels on each); not part of the job's identity.</summary>
    public ComputeBackend Backend { get; init; } = ComputeBackend.Cpu;

    /// <summary>
    /// Split touching objects (<see cref="SplitJob"/>) instead of segmenting: the input is then a raw single-channel
    /// image, the objects are its flooded regions, and their mean intensity is the input's unless <see cref="Intensity"/> is given.
    /// </summary>
    public SplitSpec? Split { get; init; }

    /// <summary>
    /// Labels grown (<c>--dilate r</c>, scikit-image's expand_labels) or shrunk (<c>--erode r</c>) after numbering, in one
    /// more pass; the filters judge the objects before it, the object table describes them after it (LabelMorphology).
    /// </summary>
    public LabelMorphology? Morphology { get; init; }

    /// <summary>The labels' Zarr version and shards (<c>--format</c>, <c>--shard</c>); null: the default (<see cref="ZarrLayout.Default"/>).</summary>
    public ZarrLayout? Zarr { get; init; }

    /// <summary>
    /// A multiscale pyramid of the labels (<c>--levels</c>; OME-Zarr only): written by the last pass (relabel, or the
    /// dilation or erosion) into its staged store before it is committed, levels by the block's mode so every id is kept.
    /// </summary>
    public PyramidRequest? Pyramid { get; init; }
}

/// <summary>
/// Pass 1 computed another way than from the input's values: <see cref="Stage"/>(workspace) makes the stage
/// (`run` classifies raw data in it), <see cref="Parameters"/> identify it in the job key, <see cref="BytesPerVoxel"/>
/// and <see cref="MaxChunkBytes"/> plan its chunks, and <see cref="Completed"/> runs once all its chunks are done
/// (before the workspace can go), on every run that finds them done.
/// </summary>
public sealed record ComponentsPass(
    Func<LabelWorkspace, IChunkStage> Stage,
    IReadOnlyDictionary<string, string> Parameters,
    long BytesPerVoxel,
    long MaxChunkBytes,
    Action? Completed = null);

/// <summary>
/// How a labelling ended. <see cref="Objects"/> counts the objects written: with <c>--erode</c>, those that kept a voxel
/// (<see cref="Numbered"/> counts the ids given before it).
/// </summary>
public sealed record LabelOutcome(JobOutcome Components, JobOutcome Relabel, ulong Objects, int CrossingPieces, int CrossingObjects,
    long Equivalences, TimeSpan MergeTime, long MergeMemoryBytes)
{
    /// <summary>The dilation or erosion pass, when one was asked for.</summary>
    public JobOutcome? Morphology { get; init; }

    /// <summary>Objects numbered (kept by the filters), before any dilation or erosion.</summary>
    public ulong Numbered { get; init; }

    /// <summary>The pass that wrote the output: the morphology pass if any, else relabelling.</summary>
    public JobOutcome Final => Morphology ?? Relabel;

    public bool IsComplete => Components.Result.IsComplete && Relabel.Result.IsComplete && (Morphology?.Result.IsComplete ?? true);
}

/// <summary>
/// Connected components chunk by chunk with an exact merge across chunk borders, in three passes:
/// <code>
///   1 components  (workers)      segment + label each chunk's core locally; write local labels and a
///                                summary (piece statistics, the six face planes)
///   2 merge       (coordinator)  pieces that touch across faces (from the face planes) → union-find over
///                                crossing pieces only → final ids by first voxel, filters, object table
///   3 relabel     (workers)      local labels → final ids, written as uint32 (uint64 when needed)
///   4 dilate or   (workers)      only with --dilate r / --erode r: pass 3 writes to the workspace instead, and
///     erode                      this pass reads it with a halo of ⌊r⌋ and writes the output and per-chunk
///                 (coordinator)  object statistics, added up into the object table
/// </code>
/// Passes 1 and 3 run through the embedded spine (staged, resumable); pass 2 is recomputed on a rerun. The
/// scratch data lives in <see cref="LabelWorkspace"/> beside the output and is removed once all is committed.
/// </summary>
public static class LabelJob
{
    public delegate Task<JobOutcome> PassRunner(string title, JobRequest request, CancellationToken ct);

    public static async Task<LabelOutcome> RunAsync(LabelRequest request, PassRunner runPass, IProgress<string>? status, CancellationToken ct)
    {
        var info = request.Input.Info;
        var spatial = info.SpatialShape;
        var workspace = LabelWorkspace.For(request.Output.RootPath);
        if (request.Split is not null)
        {
            if (request.Split.Foreground is null && info.Channels != 1)
                throw new UsageException($"{info.Location}: Voronoi-Otsu labelling reads one channel; this image has {info.Channels} (select one first, e.g. with convert)");
            if (request.FillHoles || request.Components is not null)
                throw new UsageException("a split labels flooded regions; it does not combine with --fill-holes");
            // Flooded regions are labelled as a label image, connected through box neighbours as the flood grows them.
            // The mean intensity is the raw image's (Voronoi-Otsu) or the given --intensity volume's.
            request = request with
            {
                Segmentation = SplitJob.RegionSegmentation,
                Connectivity = SplitJob.RegionConnectivity,
                Intensity = request.Intensity ?? (request.Split.Foreground is null ? request.Input : null),
            };
        }
        if (StagedOutput.IsCommitted(request.Output) && !request.Overwrite && !Directory.Exists(workspace.Root))
            throw new UsageException($"{request.Output.RootPath}: output already exists; pass --overwrite to replace it");

        var parameters = new Dictionary<string, string>
        {
            ["connectivity"] = ((int)request.Connectivity).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["minSize"] = request.Filter.MinVoxels.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["maxSize"] = request.Filter.MaxVoxels.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["excludeBorder"] = request.Filter.ExcludeBorder ? "1" : "0",
        };
        request.Segmentation.AddTo(parameters);
        request.Split?.AddTo(parameters);
        if (request.Intensity is not null) parameters["intensity"] = request.Intensity.Info.Location;
        if (request.Morphology is { } morphology)
            parameters[VerbOf(morphology)] = morphology.Radius.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (request.FillHoles) parameters["fillHoles"] = "1";
        if (request.Components is { } custom)
        {
            if (request.FillHoles) throw new ArgumentException("hole filling labels the input's own values; it cannot follow a custom components pass");
            foreach (var (key, value) in custom.Parameters) parameters[key] = value;
        }
        string jobKey = $"label {info.Location} -> {request.Output} chunk {request.ChunkShape?.ToString() ?? "auto"} " +
            string.Join(' ', parameters.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));
        if (request.Overwrite) workspace.Delete();
        workspace.Begin(jobKey, request.Overwrite);

        long inputBytes = info.Channels * info.DataType.SizeInBytes();
        long planningBytes = 2 * inputBytes + 4L * (info.Channels + 4) + 8 + (request.FillHoles ? 5 : 0);
        // In the labels' Zarr layout, so the components pass's chunks are whole shards of the final labels too: the relabel
        // pass must run on the same grid.
        var localOptions = LocalOptions(info, request.StorageChunks, request.Zarr);

        // Holes first (only with --fill-holes): the background's components, numbered with the border ones dropped.
        HoleFilling? holes = null;
        IVolume? holeLabels = null;
        try
        {
            if (request.FillHoles)
            {
                var holeSpace = new LabelWorkspace(Path.Combine(workspace.Root, "holes"));
                holeSpace.Begin(jobKey, overwrite: false);
                var backgroundStage = new LabelStage(request.Segmentation, Connectivity.Faces, holeSpace, spatial, !info.Axes.HasZ, null, HoleFilling.LabelBackground(),
                    request.Backend);
                var holeAddress = new VolumeAddress(VolumeFormat.Zarr, holeSpace.LocalLabels, "");
                var background = await runPass("label 0/3: holes", new JobRequest("label-background", request.Input, holeAddress, localOptions, request.ChunkShape,
                    request.Workers, Overwrite: false, parameters, PlanningBytesPerVoxel: planningBytes, Stage: backgroundStage), ct).ConfigureAwait(false);
                if (!background.Result.IsComplete)
                    return new LabelOutcome(background, background, 0, 0, 0, 0, TimeSpan.Zero, 0);
                status?.Report("label 0/3: finding holes");
                var holeMerge = new BoundaryMerge(background.Grid.Count);
                FindEquivalences(background.Grid, holeSpace, Connectivity.Faces, holeMerge, request.Workers, ct);
                holeMerge.Flatten();
                new ObjectNumbering(background.Grid, holeMerge, holeSpace.ReadSummary, new ObjectFilter(ExcludeBorder: true), keepStats: false)
                    .Run((c, ids) => holeSpace.WriteMap(c, ids));
                holeLabels = VolumeStore.Open(holeAddress);
                holes = HoleFilling.AddHoles(holeLabels, holeSpace);
            }
            if (request.Split is { } split)
            {
                var splitSpace = SplitJob.WorkspaceOf(workspace);
                splitSpace.Begin(jobKey, overwrite: false);
                var flooded = await SplitJob.RunAsync(request.Input, split, splitSpace, request.ChunkShape, request.Workers, parameters, runPass, status, ct,
                    request.Backend).ConfigureAwait(false);
                if (flooded.Failed is { } failed) return new LabelOutcome(failed, failed, 0, 0, 0, 0, TimeSpan.Zero, 0);
                using var state = VolumeStore.Open(flooded.State);
                var stage = SplitJob.LabelStageOf(workspace, info, request.Intensity, flooded.LastIteration);
                // Each time point's last iteration is the labelling's: a remote worker cuts the states back with it.
                var labelParameters = new Dictionary<string, string>(parameters) { [SplitJob.LastParameter] = SplitJob.FormatLast(flooded.LastIteration) };
                return await LabelForeground(request, state, stage, flooded.Grid.ChunkShape, runPass, status, workspace, labelParameters, localOptions, planningBytes,
                    ct).ConfigureAwait(false);
            }
            var foreground = request.Components?.Stage(workspace) ?? new LabelStage(request.Segmentation, request.Connectivity, workspace, spatial, !info.Axes.HasZ,
                request.Intensity, holes, request.Backend);
            return await LabelForeground(request, request.Input, foreground, request.ChunkShape, runPass, status, workspace, parameters, localOptions, planningBytes, ct)
                .ConfigureAwait(false);
        }
        finally
        {
            holeLabels?.Dispose();
        }
    }

    /// <summary>Passes 1 to 3 with <paramref name="stage"/> finding each chunk's components in <paramref name="input"/>.</summary>
    private static async Task<LabelOutcome> LabelForeground(LabelRequest request, IVolume input, IChunkStage stage, Long3? chunkShape, PassRunner runPass,
        IProgress<string>? status, LabelWorkspace workspace, Dictionary<string, string> parameters, VolumeCreateOptions localOptions, long planningBytes,
        CancellationToken ct)
    {
        var info = request.Input.Info;
        // Pass 1: local components and summaries.
        var custom = request.Components;
        var localAddress = new VolumeAddress(VolumeFormat.Zarr, workspace.LocalLabels, "");
        string passes = request.Morphology is null ? "3" : "4";
        var components = await runPass($"label 1/{passes}: components", new JobRequest("label", input, localAddress, localOptions, chunkShape,
            request.Workers, Overwrite: false, parameters, PlanningBytesPerVoxel: custom?.BytesPerVoxel ?? planningBytes,
            MaxChunkBytes: custom?.MaxChunkBytes ?? 256L << 20, Stage: stage), ct).ConfigureAwait(false);
        if (!components.Result.IsComplete)
            return new LabelOutcome(components, components, 0, 0, 0, 0, TimeSpan.Zero, 0);
        custom?.Completed?.Invoke();

        // Pass 2: merge across chunk borders and number the objects.
        var grid = components.Grid;
        var clock = Stopwatch.StartNew();
        status?.Report($"label 2/{passes}: merging pieces across chunk borders");
        var merge = new BoundaryMerge(grid.Count);
        long equivalences = FindEquivalences(grid, workspace, request.Connectivity, merge, request.Workers, ct);
        int sets = merge.Flatten();
        string? tablePartial = request.ObjectsPath is null ? null : request.ObjectsPath + ".partial";
        bool hasIntensity = request.Intensity is not null || request.Segmentation.Mode != SegmentationMode.Labels;
        bool tableNow = tablePartial is not null && request.Morphology is null;     // else the table follows the last pass
        var numbering = new ObjectNumbering(grid, merge, workspace.ReadSummary, request.Filter, keepStats: tableNow);
        using (var table = !tableNow ? null : new ObjectTableWriter(new StreamWriter(tablePartial!), info.VoxelSize, info.Axes.HasTime, info.Axes.HasZ, hasIntensity))
        {
            numbering.Run((c, ids) => workspace.WriteMap(c, ids), table is null ? null : (id, t, o) => table.Write(id, t, o));
        }
        clock.Stop();

        // Pass 3: final ids (to the workspace when a dilation or erosion follows).
        var outputType = numbering.ObjectCount > uint.MaxValue ? DataType.UInt64 : DataType.UInt32;
        var finalOptions = OutputLayout.WithZarr(OutputLayout.Labels(info, request.Output.Format, outputType, request.StorageChunks, request.Codec),
            request.Output.Format, request.Zarr);
        var relabelAddress = request.Morphology is null ? request.Output : new VolumeAddress(VolumeFormat.Zarr, workspace.FinalLabels, "");
        var relabelOptions = request.Morphology is null ? finalOptions : OutputLayout.Labels(info, VolumeFormat.Zarr, outputType, grid.ChunkShape, CodecSpec.Default);
        using var local = VolumeStore.Open(localAddress);
        var objectsParameters = new Dictionary<string, string>(parameters) { ["objects"] = numbering.ObjectCount.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        var relabel = await runPass($"label 3/{passes}: relabel", new JobRequest("relabel", local, relabelAddress, relabelOptions, grid.ChunkShape,
            request.Workers, request.Morphology is null && request.Overwrite, objectsParameters,
            PlanningBytesPerVoxel: 16, Stage: new RelabelStage(workspace, outputType), Pyramid: request.Morphology is null ? request.Pyramid : null), ct).ConfigureAwait(false);

        var outcome = new LabelOutcome(components, relabel, numbering.ObjectCount, merge.NodeCount, sets, equivalences, clock.Elapsed,
            merge.MemoryBytes + numbering.SetMemoryBytes) { Numbered = numbering.ObjectCount };
        if (!relabel.Result.IsComplete) return outcome;
        local.Dispose();

        if (request.Morphology is { } morphology)
        {
            // Pass 4: the final labels dilated or eroded, a halo of ⌊r⌋ around each chunk; then the table of what it wrote.
            // The mean intensity is of --intensity, else of the segmented probability channel of the input; a custom
            // first pass (run) computed its probabilities in memory, so only its Intensity volume can serve.
            using var final = VolumeStore.Open(relabelAddress);
            var (intensity, channel) = request.Intensity is not null ? (request.Intensity, 0)
                : request.Segmentation.Mode != SegmentationMode.Labels && custom is null ? (request.Input, request.Segmentation.Channel) : ((IVolume?)null, 0);
            var reshape = new LabelMorphologyStage(morphology, workspace, grid.VolumeShape, info.Axes.HasZ, intensity, channel);
            string verb = VerbOf(morphology);
            var reshaped = await runPass($"label 4/4: {verb}", new JobRequest(MorphologyPass(morphology), final, request.Output, finalOptions, grid.ChunkShape,
                request.Workers, request.Overwrite, objectsParameters, PlanningBytesPerVoxel: 40, Stage: reshape, Pyramid: request.Pyramid), ct).ConfigureAwait(false);
            outcome = outcome with { Morphology = reshaped };
            if (!reshaped.Result.IsComplete) return outcome;
            status?.Report($"label 4/4: object table after --{verb} {morphology.Radius.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
            outcome = outcome with { Objects = WriteMorphologyTable(reshaped.Grid, workspace, tablePartial, info, intensity is not null) };
        }
        if (tablePartial is not null) File.Move(tablePartial, request.ObjectsPath!, overwrite: true);
        workspace.Delete();
        return outcome;
    }

    /// <summary>
    /// The layout of pass 1's local labels: the final labels' storage chunks and Zarr layout, so its compute chunks are
    /// whole shards of the final labels too (the relabel pass runs on the same grid).
    /// </summary>
    internal static VolumeCreateOptions LocalOptions(VolumeInfo info, Long3? storageChunks, ZarrLayout? zarr) =>
        OutputLayout.WithZarr(OutputLayout.Labels(info, VolumeFormat.Zarr, DataType.UInt32, storageChunks, CodecSpec.Default), VolumeFormat.Zarr, zarr);

    /// <summary>"dilate" or "erode": the option without its dashes, the job parameter holding the radius, and the pass's verb.</summary>
    public static string VerbOf(LabelMorphology morphology) => morphology.Mode == LabelMorphologyMode.Dilate ? "dilate" : "erode";

    /// <summary>The stage name of the dilation or erosion pass ("label-dilate", "label-erode"), by which a remote worker rebuilds it.</summary>
    public static string MorphologyPass(LabelMorphology morphology) => "label-" + VerbOf(morphology);

    /// <summary>
    /// Adds up the per-chunk statistics of the dilated or eroded objects and writes the table (when asked for) in id
    /// order; an object erosion erased has no voxel left, so no row. Returns the number of objects. Holds one entry per
    /// object (about 130 bytes each).
    /// </summary>
    private static ulong WriteMorphologyTable(ChunkGrid grid, LabelWorkspace workspace, string? tablePath, VolumeInfo info, bool hasIntensity)
    {
        var objects = new Dictionary<ulong, (long T, PieceStats Stats)>();
        for (long c = 0; c < grid.Count; c++)
        {
            var (t, pieces) = workspace.ReadObjects(c);
            foreach (var (id, piece) in pieces)
            {
                ref var entry = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(objects, id, out bool exists);
                if (!exists) entry = (t, piece);
                else entry.Stats.Add(piece);
            }
        }
        if (tablePath is not null)
        {
            using var table = new ObjectTableWriter(new StreamWriter(tablePath), info.VoxelSize, info.Axes.HasTime, info.Axes.HasZ, hasIntensity);
            foreach (var id in objects.Keys.Order()) table.Write(id, objects[id].T, objects[id].Stats);
        }
        return (ulong)objects.Count;
    }

    /// <summary>Pass 2's first half on the workspace's summaries (see the overload).</summary>
    private static long FindEquivalences(ChunkGrid grid, LabelWorkspace workspace, Connectivity connectivity, BoundaryMerge merge, int workers, CancellationToken ct) =>
        FindEquivalences(grid, workspace.ReadSummary, connectivity, merge, workers, ct);

    /// <summary>
    /// Pass 2's first half: registers every chunk's face pieces and unites the touching ones, a batch of chunks (in
    /// index order) at a time. A batch's own summaries are read once; its chunks' lower neighbours outside it are read
    /// again when needed (a few small files per chunk) rather than kept, so memory holds one batch, whatever the
    /// volume's area. Returns the number of equivalences.
    /// </summary>
    public static long FindEquivalences(ChunkGrid grid, Func<long, ChunkLabelSummary> summaryOf, Connectivity connectivity, BoundaryMerge merge,
        int workers, CancellationToken ct)
    {
        long batch = Math.Max(64, 16L * workers);
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = workers, CancellationToken = ct };
        long count = 0;
        for (long first = 0; first < grid.Count; first += batch)
        {
            long size = Math.Min(batch, grid.Count - first), start = first;
            var summaries = new ChunkLabelSummary[size];
            Parallel.For(0, size, parallel, k => summaries[k] = summaryOf(start + k));
            for (long k = 0; k < size; k++) merge.Register(start + k, summaries[k].InteriorFaceLabels(grid.VolumeShape));
            ChunkLabelSummary Lookup(long c) => c >= start && c < start + size ? summaries[c - start] : summaryOf(c);
            var pairs = new List<(PieceRef, PieceRef)>[size];
            Parallel.For(0, size, parallel, k => pairs[k] = EquivalenceTask.Run(grid, start + k, Lookup, connectivity));
            foreach (var list in pairs)
                foreach (var (a, b) in list) { merge.Union(a, b); count++; }
        }
        return count;
    }
}
