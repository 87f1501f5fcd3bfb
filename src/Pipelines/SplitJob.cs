using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Kernels.Splitting;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Labeling;

namespace ChunkSeg.Pipelines;

/// <summary>What a split left for labelling: the final flood state and, per time point, the flood's last iteration.</summary>
public sealed record SplitOutcome(JobOutcome? Failed, VolumeAddress State, ChunkGrid Grid, IReadOnlyDictionary<long, int> LastIteration);

/// <summary>
/// A split chunk by chunk before labelling. Voronoi-Otsu (Kernels/Splitting/VoronoiOtsuChunk has the argument):
/// <code>
///   1 outline    (workers)      outline blur → outline.zarr; extremes per chunk
///                               (--split voronoi: the segmentation as 1 and 0 instead)
///                (coordinator)  range per time point
///   2 maxima     (workers)      spot blur maxima → seeds.zarr (global keys); histogram counts per row
///                (coordinator)  Otsu per time point → cut (--split voronoi: 0.5)
///   3 flood      (workers)      rounds of K iterations → round-R.zarr; which iterations changed, per chunk
///                (coordinator)  each time point's flood stops at the first iteration no chunk changed in
/// </code>
/// The distance split (Kernels/Splitting/DistanceWatershed): 1 the segmentation as 1 and 0; 2 its exact squared
/// distance map → distance.zarr; 3 the map's maxima within the window → seeds.zarr; 4 the downhill flood's rounds,
/// then the filling flood's, both climbing distance.zarr.
/// Every pass is a resumable pass of the spine; the labelling that follows reads the last round's state, cut back.
/// </summary>
public static class SplitJob
{
    /// <summary>Flood iterations per round, at most: the halo each round reads.</summary>
    public const int MaxRoundIterations = 32;

    public static async Task<SplitOutcome> RunAsync(IVolume input, SplitSpec split, SplitWorkspace workspace, Long3? chunkShape, int workers,
        IReadOnlyDictionary<string, string> parameters, LabelJob.PassRunner runPass, IProgress<string>? status, CancellationToken ct,
        ComputeBackend? backend = null)
    {
        backend ??= ComputeBackend.Cpu;
        var info = input.Info;
        bool threeD = info.Axes.HasZ;
        var outlineAddress = new VolumeAddress(VolumeFormat.Zarr, workspace.Outline, "");
        var seedsAddress = new VolumeAddress(VolumeFormat.Zarr, workspace.Seeds, "");
        string passes = split.IsDistance ? "4" : "3";

        // 1: the outline blur and its range per time point, or the given segmentation as 1 and 0.
        var firstStage = FirstStage(split, workspace, threeD, backend);
        var outline = await runPass($"split 1/{passes}: " + (split.Foreground is null ? "outline" : "foreground"), new JobRequest("split-outline", input, outlineAddress,
            OutputLayout.Labels(info, VolumeFormat.Zarr, DataType.Float32, chunkShape, CodecSpec.Default), chunkShape, workers, Overwrite: false,
            parameters, PlanningBytesPerVoxel: 16 + 8 * info.Channels, Stage: firstStage), ct).ConfigureAwait(false);
        var grid = outline.Grid;
        if (!outline.Result.IsComplete) return new SplitOutcome(outline, outlineAddress, grid, new Dictionary<long, int>());
        using var outlineVolume = VolumeStore.Open(outlineAddress);
        if (split.IsDistance) return await DistanceAsync(input, split, workspace, grid, workers, parameters, runPass, outlineVolume, ct).ConfigureAwait(false);

        var range = split.Foreground is null ? RangesOf(grid, workspace) : [];

        // 2: maxima (and for Otsu, histograms); the cut per time point.
        var maxima = await runPass("split 2/3: maxima", new JobRequest("split-maxima", input, seedsAddress,
            OutputLayout.Labels(info, VolumeFormat.Zarr, DataType.UInt64, grid.ChunkShape, CodecSpec.Default), grid.ChunkShape, workers, Overwrite: false,
            parameters, PlanningBytesPerVoxel: 32, Stage: MaximaStageOf(split, workspace, outlineVolume, t => range[t], grid.VolumeShape, threeD, backend)), ct)
            .ConfigureAwait(false);
        if (!maxima.Result.IsComplete) return new SplitOutcome(maxima, seedsAddress, grid, new Dictionary<long, int>());
        var cut = split.Foreground is null ? OtsuCuts(grid, workspace, range) : Enumerable.Range(0, (int)grid.TimePoints).ToDictionary(t => (long)t, _ => VoronoiOtsuSigmas.MaskCut);
        if (split.Foreground is null)
            status?.Report("split: Otsu threshold " + string.Join(", ", cut.OrderBy(p => p.Key).Select(p => grid.TimePoints > 1 ? $"t{p.Key} {p.Value:G6}" : $"{p.Value:G6}")));

        // 3: flood rounds until every time point's flood has stopped.
        using var seeds = VolumeStore.Open(seedsAddress);
        var flood = await FloodAsync("split 3/3: flood", 0, seeds, info, grid, workspace, workers, parameters, runPass,
            (round, last) => FloodStage(round, grid, workspace, threeD, outlineVolume, t => cut[t], last), ct).ConfigureAwait(false);
        return flood.Outcome;
    }

    /// <summary>Passes 2 to 4 of the distance split (the header), after the foreground.</summary>
    private static async Task<SplitOutcome> DistanceAsync(IVolume input, SplitSpec split, SplitWorkspace workspace, ChunkGrid grid, int workers,
        IReadOnlyDictionary<string, string> parameters, LabelJob.PassRunner runPass, IVolume foreground, CancellationToken ct)
    {
        var info = input.Info;
        bool threeD = info.Axes.HasZ;
        var distanceAddress = new VolumeAddress(VolumeFormat.Zarr, workspace.Distance, "");
        var seedsAddress = new VolumeAddress(VolumeFormat.Zarr, workspace.Seeds, "");
        var distance = await runPass("split 2/4: distance", new JobRequest("split-distance", foreground, distanceAddress,
            OutputLayout.Labels(info, VolumeFormat.Zarr, DataType.Float64, grid.ChunkShape, CodecSpec.Default), grid.ChunkShape, workers, Overwrite: false,
            parameters, PlanningBytesPerVoxel: 32, Stage: DistanceStageOf(split.Watershed!, threeD)), ct).ConfigureAwait(false);
        if (!distance.Result.IsComplete) return new SplitOutcome(distance, distanceAddress, grid, new Dictionary<long, int>());
        using var squared = VolumeStore.Open(distanceAddress);
        var seeds = await runPass("split 3/4: seeds", new JobRequest("split-maxima", squared, seedsAddress,
            OutputLayout.Labels(info, VolumeFormat.Zarr, DataType.UInt64, grid.ChunkShape, CodecSpec.Default), grid.ChunkShape, workers, Overwrite: false,
            parameters, PlanningBytesPerVoxel: 32, Stage: new DistanceSeedsStage(split.Watershed!.MinDistance, threeD)), ct).ConfigureAwait(false);
        if (!seeds.Result.IsComplete) return new SplitOutcome(seeds, seedsAddress, grid, new Dictionary<long, int>());

        using var seedsVolume = VolumeStore.Open(seedsAddress);
        var downhill = await FloodAsync("split 4/4: watershed", 0, seedsVolume, info, grid, workspace, workers, parameters, runPass,
            (round, last) => FloodStage(round, grid, workspace, threeD, foreground, _ => VoronoiOtsuSigmas.MaskCut, last, new WatershedFlood(squared, 0, null)), ct)
            .ConfigureAwait(false);
        if (downhill.Outcome.Failed is not null) return downhill.Outcome;
        using var downhillState = VolumeStore.Open(downhill.Outcome.State);
        var filling = await FloodAsync("split 4/4: filling", downhill.NextRound, downhillState, info, grid, workspace, workers, parameters, runPass,
            (round, last) => FloodStage(round, grid, workspace, threeD, null, null, last, new WatershedFlood(squared, downhill.NextRound, downhill.Outcome.LastIteration)), ct)
            .ConfigureAwait(false);
        return filling.Outcome;
    }

    /// <summary>The distance split's pass 2 stage.</summary>
    public static DistanceStage DistanceStageOf(DistanceSplit split, bool threeD) =>
        new(DistanceStage.FirstHalo(split.VoxelSize, threeD), split.VoxelSize, threeD);

    /// <summary>
    /// One flood's rounds from <paramref name="start"/> (the seeds, or the flood it continues), from round
    /// <paramref name="firstRound"/> until every time point's flood has stopped; the next flood begins at NextRound.
    /// </summary>
    private static async Task<(SplitOutcome Outcome, int NextRound)> FloodAsync(string name, int firstRound, IVolume start, VolumeInfo info, ChunkGrid grid,
        SplitWorkspace workspace, int workers, IReadOnlyDictionary<string, string> parameters, LabelJob.PassRunner runPass,
        Func<int, IReadOnlyDictionary<long, int>, FloodRoundStage> stageOf, CancellationToken ct)
    {
        var last = new Dictionary<long, int>();
        IVolume previous = start;
        var opened = new List<IVolume>();
        try
        {
            for (int round = firstRound; ; round++)
            {
                var address = new VolumeAddress(VolumeFormat.Zarr, workspace.Round(round), "");
                var stage = stageOf(round, last);
                int iterations = stage.Iterations;
                // The round and the time points already stopped (with their last iterations) are the job's: a remote
                // worker rebuilds the stage from them (FloodStage, LastIterations).
                var flood = await runPass($"{name} round {round - firstRound + 1}", new JobRequest("split-flood", previous, address,
                    OutputLayout.Labels(info, VolumeFormat.Zarr, DataType.UInt64, grid.ChunkShape, CodecSpec.Default), grid.ChunkShape, workers, Overwrite: false,
                    new Dictionary<string, string>(parameters)
                    {
                        [RoundParameter] = round.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        [LastParameter] = FormatLast(last),
                        [FirstRoundParameter] = firstRound.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        [ContinuesParameter] = stage.Watershed?.Continues is { } continues ? FormatLast(continues) : "",
                    },
                    PlanningBytesPerVoxel: 32, Stage: stage), ct).ConfigureAwait(false);
                if (!flood.Result.IsComplete) return (new SplitOutcome(flood, address, grid, last), round + 1);

                // The first iteration in which no chunk of a time point changed ends that time point's flood.
                var changed = new Dictionary<long, bool[]>();
                foreach (var chunk in grid.Enumerate())
                {
                    if (last.ContainsKey(chunk.TimePoint)) continue;
                    if (!changed.TryGetValue(chunk.TimePoint, out var any)) changed[chunk.TimePoint] = any = new bool[iterations];
                    var mine = workspace.ReadRound(round, chunk.Id.Value);
                    for (int k = 0; k < iterations; k++) any[k] |= mine[k];
                }
                foreach (var (t, any) in changed)
                {
                    int stop = Array.IndexOf(any, false);
                    if (stop >= 0) last[t] = (round - firstRound) * iterations + stop;
                }
                previous = VolumeStore.Open(address);
                opened.Add(previous);
                if (last.Count == grid.TimePoints) return (new SplitOutcome(null, address, grid, last), round + 1);
                if ((round - firstRound + 2L) * iterations > FloodState.MaxIterations)
                    throw new InvalidOperationException($"the flood ran {FloodState.MaxIterations} iterations without stopping");
            }
        }
        finally
        {
            foreach (var v in opened) v.Dispose();
        }
    }

    /// <summary>The job parameter naming a flood round (from 0).</summary>
    public const string RoundParameter = "round";

    /// <summary>
    /// The job parameter holding the time points whose flood has stopped and the last iteration of each ("t:i,t:i", by
    /// time point): a flood round leaves those time points as they are, the labelling cuts each state back to its own.
    /// </summary>
    public const string LastParameter = "split.last";

    /// <summary>The job parameter naming the round a flood began (the distance split's filling flood follows its downhill flood).</summary>
    public const string FirstRoundParameter = "split.first-round";

    /// <summary>The job parameter of the filling flood: the downhill flood's last iteration per time point (<see cref="FormatLast"/>); empty otherwise.</summary>
    public const string ContinuesParameter = "split.continues";

    /// <summary>The distance split's flood a flood round's job <paramref name="parameters"/> name, climbing <paramref name="distance"/>.</summary>
    public static WatershedFlood WatershedOf(IReadOnlyDictionary<string, string> parameters, IVolume distance)
    {
        int first = parameters.TryGetValue(FirstRoundParameter, out var text)
            ? int.Parse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture) : 0;
        return new WatershedFlood(distance, first, first == 0 ? null : ParseLast(parameters[ContinuesParameter]));
    }

    /// <summary>The split's scratch folder inside a labelling's workspace.</summary>
    public static SplitWorkspace WorkspaceOf(LabelWorkspace labels) => new(Path.Combine(labels.Root, "split"));

    /// <summary>
    /// Pass 1's stage: the outline blur (Voronoi-Otsu), or the segmentation as 1 and 0 (<c>--split voronoi</c>), each on
    /// <paramref name="backend"/>.
    /// </summary>
    public static IChunkStage FirstStage(SplitSpec split, SplitWorkspace workspace, bool threeD, ComputeBackend backend) =>
        split.Foreground is { } segmentation
            ? new ForegroundStage(backend.Segmenter(segmentation, !threeD), BlockSmoothing.HaloOf(BlockSmoothing.Kernels(segmentation.Smoothing, !threeD)))
            : new OutlineStage(new VoronoiOtsuChunk(split.Sigmas, threeD, backend.ClesperantoBlur), workspace, threeD);

    /// <summary>
    /// Pass 2's stage: the spot blur's maxima (the blur on <paramref name="backend"/>); for Voronoi-Otsu also the
    /// histograms of <paramref name="outline"/> over <paramref name="rangeOf"/>.
    /// </summary>
    public static MaximaStage MaximaStageOf(SplitSpec split, SplitWorkspace workspace, IVolume? outline, Func<long, (float Min, float Max)> rangeOf,
        Long3 volumeShape, bool threeD, ComputeBackend backend) =>
        new(new VoronoiOtsuChunk(split.Sigmas, threeD, backend.ClesperantoBlur), workspace, split.Foreground is null ? outline : null, rangeOf, volumeShape,
            threeD, split.SpotChannel);

    /// <summary>
    /// Flood round <paramref name="round"/>'s stage on <paramref name="grid"/>: round 0 cuts <paramref name="outline"/> at
    /// <paramref name="cutOf"/>; the time points in <paramref name="last"/> have stopped.
    /// </summary>
    public static FloodRoundStage FloodStage(int round, ChunkGrid grid, SplitWorkspace workspace, bool threeD, IVolume? outline, Func<long, float>? cutOf,
        IReadOnlyDictionary<long, int> last, WatershedFlood? watershed = null) =>
        new(round, RoundIterations(grid.ChunkShape, threeD), workspace, grid, threeD, round == 0 ? outline : null, cutOf, last.ContainsKey, watershed);

    /// <summary>
    /// The labelling pass's stage after a split: the flooded regions of each time point's state cut back to its last
    /// iteration (<paramref name="last"/>), labelled as a label image through all box neighbours.
    /// </summary>
    public static FloodLabelStage LabelStageOf(LabelWorkspace workspace, VolumeInfo info, IVolume? intensity, IReadOnlyDictionary<long, int> last) =>
        new(new LabelStage(RegionSegmentation, RegionConnectivity, workspace, info.SpatialShape, !info.Axes.HasZ, intensity), t => last[t]);

    /// <summary>How the flooded regions are labelled: as a label image, connected through all box neighbours.</summary>
    public static readonly Segmentation RegionSegmentation = new(SegmentationMode.Labels);

    public const Connectivity RegionConnectivity = Connectivity.All;

    /// <summary><see cref="LastParameter"/>'s text for <paramref name="last"/>.</summary>
    public static string FormatLast(IReadOnlyDictionary<long, int> last) =>
        string.Join(',', last.OrderBy(p => p.Key).Select(p => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{p.Key}:{p.Value}")));

    /// <summary>The time points and last iterations <see cref="FormatLast"/> wrote.</summary>
    public static Dictionary<long, int> ParseLast(string text)
    {
        var last = new Dictionary<long, int>();
        foreach (var entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = entry.Split(':');
            if (parts.Length != 2 || !long.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long t)
                || !int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i))
                throw new FormatException($"{LastParameter}: \"{entry}\" is not time:iteration");
            last[t] = i;
        }
        return last;
    }

    /// <summary>Voronoi-Otsu's outline range per time point, from the extremes pass 1 recorded for each chunk of <paramref name="grid"/>.</summary>
    internal static Dictionary<long, (float Min, float Max)> RangesOf(ChunkGrid grid, SplitWorkspace workspace)
    {
        var range = new Dictionary<long, (float Min, float Max)>();
        foreach (var chunk in grid.Enumerate())
        {
            var (min, max) = workspace.ReadExtremes(chunk.Id.Value);
            range[chunk.TimePoint] = range.TryGetValue(chunk.TimePoint, out var r) ? (Math.Min(r.Min, min), Math.Max(r.Max, max)) : (min, max);
        }
        return range;
    }

    /// <summary>Otsu's threshold per time point from the row counts of its chunks.</summary>
    internal static Dictionary<long, float> OtsuCuts(ChunkGrid grid, SplitWorkspace workspace, Dictionary<long, (float Min, float Max)> range)
    {
        var rows = new Dictionary<long, long[]>();
        foreach (var chunk in grid.Enumerate())
        {
            if (!rows.TryGetValue(chunk.TimePoint, out var table)) rows[chunk.TimePoint] = table = new long[grid.VolumeShape.Y * OtsuThreshold.Bins];
            var counts = workspace.ReadRowCounts(chunk.Id.Value);
            long offset = chunk.Core.Start.Y * OtsuThreshold.Bins;
            for (int i = 0; i < counts.Length; i++) table[offset + i] += counts[i];
        }
        return rows.ToDictionary(p => p.Key, p => (float)OtsuThreshold.FromRowCounts(p.Value, range[p.Key].Min, range[p.Key].Max));
    }

    /// <summary>Iterations per round: even, at most <see cref="MaxRoundIterations"/>, at most a chunk's extent along a flooded axis.</summary>
    public static int RoundIterations(Long3 chunk, bool threeD)
    {
        long smallest = Math.Min(chunk.Y, chunk.X);
        if (threeD) smallest = Math.Min(smallest, chunk.Z);
        return (int)Math.Max(2, Math.Min(MaxRoundIterations, smallest) / 2 * 2);
    }
}
