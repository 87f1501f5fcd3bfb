using System.Globalization;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Memory;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Internal;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Kernels.Splitting;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Labeling;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// How touching objects are split, with sigmas z, y, x in voxels. Without <see cref="Foreground"/>: clEsperanto's
/// Voronoi-Otsu labelling of a raw image (the foreground is its outline blur above Otsu's threshold). With it
/// (<c>--split voronoi</c>): the foreground is that segmentation of the probabilities, and the seeds are the
/// maxima of its channel (the thresholded one, or argmax's foreground) blurred by the spot sigma, flooded the same way.
/// With <see cref="Watershed"/> as well (<c>--split distance</c>): the binary watershed of that foreground's distance
/// map (DistanceWatershed), seeds its maxima within the window; no blur.
/// Every time point is its own image (its own threshold and flood), as napari's assistant applies clEsperanto
/// frame by frame.
/// </summary>
public sealed record SplitSpec(VoronoiOtsuSigmas Sigmas, Segmentation? Foreground = null, DistanceSplit? Watershed = null)
{
    /// <summary>The binary watershed of <paramref name="foreground"/>'s distance map.</summary>
    public static SplitSpec Distance(Segmentation foreground, DistanceSplit watershed) => new(VoronoiOtsuSigmas.SpotOnly((0, 0, 0)), foreground, watershed);

    /// <summary>Whether this is the distance split (<c>--split distance</c>).</summary>
    public bool IsDistance => Watershed is not null;

    /// <summary>The seeds' channel of the input.</summary>
    public int SpotChannel => Foreground?.Channel ?? 0;

    public void AddTo(IDictionary<string, string> parameters) =>
        parameters["split"] = Foreground is null
            ? string.Create(CultureInfo.InvariantCulture,
                $"voronoi-otsu spot={Sigmas.Spot.Z},{Sigmas.Spot.Y},{Sigmas.Spot.X} outline={Sigmas.Outline.Z},{Sigmas.Outline.Y},{Sigmas.Outline.X}")
            : Watershed is { } w
                ? string.Create(CultureInfo.InvariantCulture,
                    $"distance min-distance={w.MinDistance.Z},{w.MinDistance.Y},{w.MinDistance.X} voxel-size={w.VoxelSize.Z:R},{w.VoxelSize.Y:R},{w.VoxelSize.X:R} ") + Describe(Foreground)
                : string.Create(CultureInfo.InvariantCulture, $"voronoi spot={Sigmas.Spot.Z},{Sigmas.Spot.Y},{Sigmas.Spot.X} ") + Describe(Foreground);

    private static string Describe(Segmentation segmentation)
    {
        var parts = new SortedDictionary<string, string>(StringComparer.Ordinal);
        segmentation.AddTo(parts);
        return string.Join(' ', parts.Select(p => $"{p.Key}={p.Value}"));
    }
}

/// <summary>
/// The distance split's own settings: the seeds' window (voxels per axis, z 0 in 2D) and the voxel size z, y, x the
/// distances are measured in (the input image's, carried here because the probabilities a run splits may not keep it).
/// </summary>
public sealed record DistanceSplit(Halo MinDistance, (double Z, double Y, double X) VoxelSize);

/// <summary>Reads one channel of a chunk's box as float32, z, y, x order.</summary>
internal static class SplitReads
{
    public static float[] ReadFloats(IVolume volume, long timePoint, Box3 box, int channel = 0)
    {
        byte[] planar = PlanarRead.Rent(volume, timePoint, box, out int bytes);
        try
        {
            var values = new float[box.VoxelCount];
            ToFloat.Channel(planar, channel, volume.Info.DataType, values);
            return values;
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(planar);
        }
    }

    /// <summary>A chunk's box of a volume holding <typeparamref name="T"/> as it is (flood states, squared distances).</summary>
    public static T[] Read<T>(IVolume volume, long timePoint, Box3 box) where T : unmanaged
    {
        byte[] planar = PlanarRead.Rent(volume, timePoint, box, out int bytes);
        try
        {
            return MemoryMarshal.Cast<byte, T>(planar.AsSpan(0, bytes)).ToArray();
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(planar);
        }
    }

    public static Halo InPlane(Halo halo, bool threeD) => threeD ? halo : halo with { Z = 0 };
}

/// <summary>Split pass 1: the outline blur of each chunk's core (float32) and its extremes, for Otsu's histogram range.</summary>
public sealed class OutlineStage(VoronoiOtsuChunk steps, SplitWorkspace workspace, bool threeD) : IChunkStage
{
    public Halo RequiredHalo => SplitReads.InPlane(steps.OutlineHalo, threeD);

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var read = SplitReads.ReadFloats(input, chunk.TimePoint, chunk.Read);
        var core = MemoryMarshal.Cast<byte, float>(coreOutput.Span)[..checked((int)chunk.Core.VoxelCount)];
        steps.Outline(read, chunk.Read.Size, new Box3(chunk.CoreOffsetInRead, chunk.Core.Size), core);
        var (min, max) = OtsuThreshold.Extremes(core);
        workspace.WriteExtremes(chunk.Id.Value, min, max);
    }
}

/// <summary>
/// Split pass 1 of <c>--split voronoi</c>: the segmentation of each chunk's core (its smoothing reads the halo) as
/// float32 1 (foreground) and 0, the "outline" the flood's round 0 cuts at <see cref="VoronoiOtsuSigmas.MaskCut"/>.
/// </summary>
public sealed class ForegroundStage(IChunkSegmenter segmenter, Halo halo) : IChunkStage
{
    public Halo RequiredHalo => halo;

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var info = input.Info;
        int channels = checked((int)info.Channels);
        var mask = new byte[chunk.Core.VoxelCount];
        byte[] planar = PlanarRead.Rent(input, chunk.TimePoint, chunk.Read, out _);
        try
        {
            segmenter.Segment(chunk, channels, (c, destination) => ToFloat.Channel(planar, c, info.DataType, destination), mask);
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(planar);
        }
        var core = MemoryMarshal.Cast<byte, float>(coreOutput.Span)[..mask.Length];
        for (int i = 0; i < mask.Length; i++) core[i] = mask[i];
    }
}

/// <summary>
/// Split pass 2: the global keys of the spot blur's maxima (of channel <paramref name="channel"/>) in each chunk's
/// core (uint64, 0 elsewhere); for Voronoi-Otsu (<paramref name="outline"/> given) also the histogram counts per row of
/// its outline blur over its time point's range.
/// </summary>
public sealed class MaximaStage(VoronoiOtsuChunk steps, SplitWorkspace workspace, IVolume? outline, Func<long, (float Min, float Max)> rangeOf,
    Long3 volumeShape, bool threeD, int channel = 0) : IChunkStage
{
    public Halo RequiredHalo => SplitReads.InPlane(steps.SpotHalo, threeD);

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var read = SplitReads.ReadFloats(input, chunk.TimePoint, chunk.Read, channel);
        var keys = MemoryMarshal.Cast<byte, ulong>(coreOutput.Span)[..checked((int)chunk.Core.VoxelCount)];
        steps.Maxima(read, chunk.Read.Size, new Box3(chunk.CoreOffsetInRead, chunk.Core.Size), chunk.Read.Start, volumeShape, keys);
        if (outline is null) return;

        var size = chunk.Core.Size;
        var blurred = SplitReads.ReadFloats(outline, chunk.TimePoint, chunk.Core);
        var (min, max) = rangeOf(chunk.TimePoint);
        var counts = new long[size.Y * OtsuThreshold.Bins];
        OtsuThreshold.CountRows(blurred, (int)size.Z, (int)size.Y, (int)size.X, (0, 0, 0, (int)size.Z, (int)size.Y, (int)size.X), min, max, counts);
        workspace.WriteRowCounts(chunk.Id.Value, counts);
    }
}

/// <summary>
/// One round of the chunked flood (VoronoiFlood's header): <see cref="Iterations"/> iterations from the state the
/// previous round left (a flood's first round builds it from the seeds, the outline blur and the cut, or for the
/// distance split's filling flood from the downhill flood's states cut back), each chunk reading its core grown by
/// that many voxels; it records in which iterations its core changed. A chunk whose neighbourhood did not change in
/// the previous round, or whose time point's flood has stopped, keeps its state.
/// </summary>
public sealed class FloodRoundStage : IChunkStage
{
    private readonly int _round;
    private readonly SplitWorkspace _workspace;
    private readonly ChunkGrid _grid;
    private readonly bool _threeD;
    private readonly IVolume? _outline;
    private readonly Func<long, float>? _cutOf;
    private readonly Func<long, bool> _stopped;
    private readonly WatershedFlood? _watershed;
    private readonly int _firstRound;

    /// <param name="grid">The rounds' chunk grid (for the neighbours of a chunk).</param>
    /// <param name="outline">A flood's first round from seeds: the outline blur, thresholded at <paramref name="cutOf"/>(time point) for the foreground.</param>
    /// <param name="stopped">Whether a time point's flood has already stopped.</param>
    /// <param name="watershed">The distance split's floods: their heights, which of the two, and the round the flood began.</param>
    public FloodRoundStage(int round, int iterations, SplitWorkspace workspace, ChunkGrid grid, bool threeD, IVolume? outline, Func<long, float>? cutOf,
        Func<long, bool> stopped, WatershedFlood? watershed = null)
    {
        if (iterations < 2 || iterations % 2 != 0) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "a round runs an even number of iterations, at least 2");
        _firstRound = watershed?.FirstRound ?? 0;
        if (round < _firstRound) throw new ArgumentOutOfRangeException(nameof(round), round, $"the flood began at round {_firstRound}");
        if (round == _firstRound && watershed?.Continues is null && (outline is null || cutOf is null))
            throw new ArgumentException("a flood's first round builds the state from the outline and the cut");
        _round = round;
        Iterations = iterations;
        _workspace = workspace;
        _grid = grid;
        _threeD = threeD;
        _outline = outline;
        _cutOf = cutOf;
        _stopped = stopped;
        _watershed = watershed;
    }

    public int Iterations { get; }

    /// <summary>The distance split's flood this round belongs to; null for a Voronoi flood.</summary>
    public WatershedFlood? Watershed => _watershed;

    public Halo RequiredHalo => SplitReads.InPlane(Halo.Uniform(Iterations), _threeD);

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var core = MemoryMarshal.Cast<byte, ulong>(coreOutput.Span)[..checked((int)chunk.Core.VoxelCount)];
        var changed = new bool[Iterations];
        if (_round > _firstRound && (_stopped(chunk.TimePoint) || !NeighbourhoodChanged(chunk)))
        {
            // The same state and the same iterations as last round, which changed nothing here: nothing changes.
            SplitReads.Read<ulong>(input, chunk.TimePoint, chunk.Core).CopyTo(core);
            _workspace.WriteRound(_round, chunk.Id.Value, changed);
            return;
        }
        var size = chunk.Read.Size;
        int n = checked((int)chunk.Read.VoxelCount);
        var keys = new ulong[n];
        var settled = new int[n];
        var mask = new byte[n];
        var states = SplitReads.Read<ulong>(input, chunk.TimePoint, chunk.Read);
        if (_round > _firstRound) FloodState.Unpack(states, keys, settled, mask);
        else if (_watershed?.Continues is { } previous)
        {
            // The filling flood starts from the downhill flood's result: its regions are the seeds.
            int last = previous[chunk.TimePoint];
            for (int i = 0; i < n; i++)
            {
                mask[i] = states[i] == 0 ? (byte)0 : (byte)1;
                keys[i] = FloodState.FinalKey(states[i], last);
            }
            VoronoiFlood.InitialiseSettled<ulong>(keys, settled);
        }
        else
        {
            keys = states;
            VoronoiOtsuChunk.Foreground(SplitReads.ReadFloats(_outline!, chunk.TimePoint, chunk.Read), _cutOf!(chunk.TimePoint), mask, keys);
            VoronoiFlood.InitialiseSettled<ulong>(keys, settled);
        }
        var coreBox = new Box3(chunk.CoreOffsetInRead, chunk.Core.Size);
        var heights = _watershed is null ? null : SplitReads.Read<double>(_watershed.Distance, chunk.TimePoint, chunk.Read);
        VoronoiFlood.Advance<ulong>(keys, settled, mask, (int)size.Z, (int)size.Y, (int)size.X, _threeD, (_round - _firstRound) * Iterations, Iterations,
            coreBox, changed, heights: _watershed is null ? default : new FloodHeights(heights, _watershed.Downhill));
        int i0 = 0;
        for (long z = coreBox.Start.Z; z < coreBox.End.Z; z++)
            for (long y = coreBox.Start.Y; y < coreBox.End.Y; y++)
                for (long x = coreBox.Start.X; x < coreBox.End.X; x++)
                {
                    int v = (int)((z * size.Y + y) * size.X + x);
                    core[i0++] = FloodState.Pack(mask[v] != 0, keys[v], settled[v]);
                }
        _workspace.WriteRound(_round, chunk.Id.Value, changed);
    }

    /// <summary>Whether this chunk or a chunk within one round's reach changed in the previous round.</summary>
    private bool NeighbourhoodChanged(ChunkSpec chunk)
    {
        var block = _grid.BlockOf(chunk.Id.Value);
        var shape = _grid.ChunkShape;
        long rz = _threeD ? (Iterations + shape.Z - 1) / shape.Z : 0, ry = (Iterations + shape.Y - 1) / shape.Y, rx = (Iterations + shape.X - 1) / shape.X;
        var blocks = _grid.Blocks;
        for (long z = Math.Max(0, block.Z - rz); z <= Math.Min(blocks.Z - 1, block.Z + rz); z++)
            for (long y = Math.Max(0, block.Y - ry); y <= Math.Min(blocks.Y - 1, block.Y + ry); y++)
                for (long x = Math.Max(0, block.X - rx); x <= Math.Min(blocks.X - 1, block.X + rx); x++)
                    if (_workspace.ReadRound(_round - 1, _grid.IndexOfBlock(chunk.TimePoint, new Long3(z, y, x))).Contains(true))
                        return true;
        return false;
    }
}

/// <summary>
/// The distance split's floods (DistanceWatershed's header): the squared distance map they climb, the round the
/// flood began, and for the filling flood the last iteration of the downhill flood it continues, per time point.
/// </summary>
public sealed record WatershedFlood(IVolume Distance, int FirstRound, IReadOnlyDictionary<long, int>? Continues)
{
    /// <summary>The first flood: labels only flow to voxels no farther from the background.</summary>
    public bool Downhill => Continues is null;
}

/// <summary>
/// The labelling pass after a split: each chunk's final flood state cut back to its time point's last iteration,
/// read as keys (0 background) and labelled as a label image (26-connected: a flooded region is connected through
/// its box neighbours), with the raw image's mean intensity per object.
/// </summary>
public sealed class FloodLabelStage(LabelStage labels, Func<long, int> lastIterationOf) : IChunkStage
{
    public Halo RequiredHalo => Halo.None;

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var states = SplitReads.Read<ulong>(input, chunk.TimePoint, chunk.Core);
        int last = lastIterationOf(chunk.TimePoint);
        var keys = new ulong[states.Length];
        for (int i = 0; i < keys.Length; i++) keys[i] = FloodState.FinalKey(states[i], last);
        labels.LabelValues(chunk, keys, MemoryMarshal.Cast<byte, uint>(coreOutput.Span)[..keys.Length]);
    }
}
