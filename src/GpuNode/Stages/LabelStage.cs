using ChunkSeg.Contracts.Memory;
using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Labeling;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.GpuNode.Internal;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Labeling;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>How the foreground is found: an integer input as is, a threshold on one probability channel, or argmax.</summary>
public enum SegmentationMode { Labels, Threshold, Argmax }

/// <summary>
/// The segmentation before labelling. <see cref="Channel"/> is 0-based along the input's c axis (the
/// thresholded class, or the foreground class of argmax); a voxel is foreground when its (smoothed)
/// probability is ≥ <see cref="Threshold"/>, or when <see cref="Channel"/> holds its largest probability
/// (the first one on ties, as numpy.argmax). <see cref="Smoothing"/>: Gaussian sigmas (z, y, x) in voxels
/// applied to the probabilities first (0 = none on that axis), with a window of 3 sigma.
/// </summary>
public sealed record Segmentation(SegmentationMode Mode, int Channel = 1, float Threshold = 0.5f, Sigma3 Smoothing = default)
{
    public bool Smooths => Smoothing.Z > 0 || Smoothing.Y > 0 || Smoothing.X > 0;

    public void AddTo(IDictionary<string, string> parameters)
    {
        parameters["segmentation"] = Mode.ToString().ToLowerInvariant();
        if (Mode == SegmentationMode.Labels) return;
        parameters["channel"] = Channel.ToString(CultureInfo.InvariantCulture);
        if (Mode == SegmentationMode.Threshold) parameters["threshold"] = Threshold.ToString("R", CultureInfo.InvariantCulture);
        if (Smooths) parameters["smoothing"] = Smoothing.ToString();
    }
}

/// <summary>Fills <paramref name="destination"/> with channel <paramref name="channel"/> of a chunk's read box, as float32.</summary>
public delegate void ChannelReader(int channel, Span<float> destination);

/// <summary>
/// Pass 1 of labelling: segment a chunk's core (smoothing reads the halo), label its components locally
/// (1 … n by first voxel), write the local labels (uint32) as the chunk's output and its
/// <see cref="ChunkLabelSummary"/> to the workspace. The coordinator later merges pieces across chunks.
/// </summary>
public sealed class LabelStage : IChunkStage
{
    private readonly Segmentation _segmentation;
    private readonly Connectivity _connectivity;
    private readonly LabelWorkspace _workspace;
    private readonly IVolume? _intensity;
    private readonly Long3 _volumeShape;
    private readonly bool _is2D;
    private readonly IChunkSegmenter? _segmenter;
    private readonly HoleFilling? _holes;

    /// <param name="intensity">An optional single-channel volume of the input's shape whose mean per object is reported.</param>
    /// <param name="is2D">The volume has no z axis: z neither smooths nor counts as a border.</param>
    /// <param name="backend">Where the segmentation (smoothing, threshold or argmax) runs (default: the CPU).</param>
    public LabelStage(Segmentation segmentation, Connectivity connectivity, LabelWorkspace workspace, Long3 volumeShape, bool is2D, IVolume? intensity,
        HoleFilling? holes = null, ComputeBackend? backend = null)
    {
        _holes = holes;
        _segmentation = segmentation;
        _connectivity = connectivity;
        _workspace = workspace;
        _volumeShape = volumeShape;
        _is2D = is2D;
        _intensity = intensity;
        if (segmentation.Mode != SegmentationMode.Labels)
        {
            _segmenter = (backend ?? ComputeBackend.Cpu).Segmenter(segmentation, is2D);
            RequiredHalo = BlockSmoothing.HaloOf(BlockSmoothing.Kernels(segmentation.Smoothing, is2D));
        }
    }

    public Halo RequiredHalo { get; }

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var info = input.Info;
        var labels = MemoryMarshal.Cast<byte, uint>(coreOutput.Span)[..checked((int)chunk.Core.VoxelCount)];
        int channels = checked((int)info.Channels);
        int elementSize = info.DataType.SizeInBytes();
        byte[] planar = PlanarRead.Rent(input, chunk.TimePoint, chunk.Read, out int bytes);
        try
        {
            var values = planar.AsSpan(0, bytes);
            if (_segmentation.Mode == SegmentationMode.Labels)
            {
                switch (elementSize)
                {
                    case 1: LabelIntegers(chunk, MemoryMarshal.Cast<byte, byte>(values), info.Location, labels); break;
                    case 2: LabelIntegers(chunk, MemoryMarshal.Cast<byte, ushort>(values), info.Location, labels); break;
                    case 4: LabelIntegers(chunk, MemoryMarshal.Cast<byte, uint>(values), info.Location, labels); break;
                    default: LabelIntegers(chunk, MemoryMarshal.Cast<byte, ulong>(values), info.Location, labels); break;
                }
                return;
            }
            var type = info.DataType;
            SegmentAndLabel(chunk, channels, (c, destination) => ToFloat.Channel(planar, c, type, destination), labels);
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(planar);
        }
    }

    /// <summary>
    /// Segments and labels a chunk from its probabilities over <paramref name="chunk"/>'s read box (the core grown by
    /// <see cref="RequiredHalo"/>): <paramref name="readChannel"/>(c, destination) fills one channel's image, z, y, x order.
    /// Writes the core's local labels and the chunk's summary, as <see cref="Process"/> does.
    /// </summary>
    public void SegmentAndLabel(ChunkSpec chunk, int channels, ChannelReader readChannel, Span<uint> labels)
    {
        if (_segmenter is null)
            throw new InvalidOperationException("a label image is labelled as it is; there are no probabilities to segment");
        var mask = new byte[chunk.Core.VoxelCount];
        float[]? intensity = ReadIntensity(chunk);
        if (intensity is null)
        {
            // No intensity volume: the segmented channel's own core values, as read (before smoothing), are the intensity.
            var own = intensity = new float[mask.Length];
            var reader = readChannel;
            readChannel = (c, image) =>
            {
                reader(c, image);
                if (c == _segmentation.Channel) ChunkFeatures.CropCore(chunk, image, own);
            };
        }
        _segmenter.Segment(chunk, channels, readChannel, mask);
        Label(chunk, (ReadOnlySpan<byte>)mask, intensity, labels);
    }

    /// <summary>
    /// Labels a chunk's core values as a label image (neighbouring equal values form one component) and writes its
    /// summary, as <see cref="Process"/> does for an integer input: for stages that compute the values themselves.
    /// </summary>
    public void LabelValues(ChunkSpec chunk, ReadOnlySpan<ulong> values, Span<uint> labels) => LabelIntegers(chunk, values, "", labels);

    /// <summary>An integer image as it is; with hole filling, as a binary foreground (any value but 0 and 1 refused).</summary>
    private void LabelIntegers<T>(ChunkSpec chunk, ReadOnlySpan<T> values, string location, Span<uint> labels) where T : unmanaged, IBinaryInteger<T>
    {
        float[]? intensity = ReadIntensity(chunk);
        if (_holes is null)
        {
            Label(chunk, values, intensity, labels);
            return;
        }
        var mask = new byte[chunk.Core.VoxelCount];
        for (int i = 0; i < mask.Length; i++)
        {
            if (values[i] > T.One)
                throw new Contracts.Errors.VolumeException(location, $"--fill-holes needs a binary image (0 and 1); found the value {values[i]}");
            mask[i] = values[i] == T.Zero ? (byte)0 : (byte)1;
        }
        Label(chunk, (ReadOnlySpan<byte>)mask, intensity, labels);
    }

    private void Label<T>(ChunkSpec chunk, ReadOnlySpan<T> values, float[]? intensity, Span<uint> labels) where T : unmanaged, IBinaryInteger<T>
    {
        if (typeof(T) == typeof(byte) && _holes is not null)
        {
            // A binary mask: either label its background (the hole search) or add the holes found before.
            var mask = MemoryMarshal.Cast<T, byte>(values).ToArray();
            _holes.Apply(chunk, mask);
            values = MemoryMarshal.Cast<byte, T>(mask.AsSpan());
        }
        var size = chunk.Core.Size;
        using var runs = ConnectedComponents.Label(values, (int)size.Z, (int)size.Y, (int)size.X, _connectivity);
        runs.WriteLabels(labels);
        var summary = ChunkPieces.Summarize(runs, values, intensity, labels, chunk.Id.Value, chunk.Core, _volumeShape, (!_is2D, true, true));
        _workspace.WriteSummary(summary);
    }

    /// <summary>The intensity volume over the chunk's core, as float32, or null when none was given.</summary>
    private float[]? ReadIntensity(ChunkSpec chunk)
    {
        if (_intensity is null) return null;
        var info = _intensity.Info;
        var box = BoxLayout.ForChunk(info.Axes, info.Shape, chunk.TimePoint, chunk.Core);
        int n = (int)chunk.Core.VoxelCount, bytes = n * info.DataType.SizeInBytes();
        byte[] raw = ChunkBufferPool<byte>.Shared.Rent(bytes);
        byte[] ordered = ChunkBufferPool<byte>.Shared.Rent(bytes);
        try
        {
            _intensity.Read(box, raw.AsSpan(0, bytes));
            BoxLayout.Transpose(raw.AsSpan(0, bytes), box.Shape, info.Axes, ordered.AsSpan(0, bytes), info.Axes.ToOmeOrder(), info.DataType.SizeInBytes());
            var values = new float[n];
            ToFloat.Convert(ordered.AsSpan(0, bytes), info.DataType, values);
            return values;
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(raw);
            ChunkBufferPool<byte>.Shared.Return(ordered);
        }
    }
}

/// <summary>
/// Hole filling in two labelling runs, as scipy.ndimage.binary_fill_holes defines holes: background components
/// (face-connected) that do not touch the volume's border. The first run labels the background
/// (<see cref="LabelBackground"/>); its numbering keeps only components off the border, so a non-zero final id
/// marks a hole voxel. The second run reads those local labels and maps and adds the holes to the foreground.
/// </summary>
public sealed class HoleFilling
{
    private readonly IVolume? _backgroundLabels;
    private readonly LabelWorkspace? _background;

    private HoleFilling(IVolume? backgroundLabels, LabelWorkspace? background)
    {
        _backgroundLabels = backgroundLabels;
        _background = background;
    }

    /// <summary>For the first run: the stage labels the complement of the foreground.</summary>
    public static HoleFilling LabelBackground() => new(null, null);

    /// <summary>For the second run: holes are the background pieces whose final id (from <paramref name="background"/>'s maps) is not 0.</summary>
    public static HoleFilling AddHoles(IVolume backgroundLabels, LabelWorkspace background) => new(backgroundLabels, background);

    internal void Apply(ChunkSpec chunk, byte[] mask)
    {
        if (_backgroundLabels is null)
        {
            for (int i = 0; i < mask.Length; i++) mask[i] ^= 1;
            return;
        }
        var info = _backgroundLabels.Info;
        var local = new uint[mask.Length];
        _backgroundLabels.Read(BoxLayout.ForChunk(info.Axes, info.Shape, chunk.TimePoint, chunk.Core), MemoryMarshal.AsBytes(local.AsSpan()));
        ulong[] ids = _background!.ReadMap(chunk.Id.Value);
        for (int i = 0; i < mask.Length; i++)
            if (local[i] != 0 && ids[local[i]] != 0) mask[i] = 1;
    }
}
