using System.Buffers;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Internal;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// ilastik's pixel-feature matrix for a chunk: the read box (core plus the feature set's halo) of every
/// input channel is cast to float32 and run through <see cref="FeatureEngine"/>; the core of each feature
/// image lands in the float32 output, channels last, in ilastik's order (feature block, then input
/// channel, then eigenvalue).
/// </summary>
public sealed class FeaturesStage : IChunkStage
{
    private readonly FeatureSet _set;
    private readonly long _volumeZ;
    private readonly int _inputChannels;
    private readonly int[] _blockOffsets;   // first output channel of each entry, for input channel 0
    private readonly int[] _blockWidths;    // eigenvalue count of each entry

    public FeaturesStage(FeatureSet set, long volumeZ, int inputChannels)
    {
        _set = set;
        _volumeZ = volumeZ;
        _inputChannels = inputChannels;
        _blockWidths = set.Entries.Select(e => set.ChannelsOf(e, volumeZ)).ToArray();
        _blockOffsets = new int[_blockWidths.Length];
        for (int i = 1; i < _blockWidths.Length; i++) _blockOffsets[i] = _blockOffsets[i - 1] + _blockWidths[i - 1] * inputChannels;
        OutputChannels = set.ChannelCount(volumeZ, inputChannels);
    }

    public int OutputChannels { get; }

    public Halo RequiredHalo => _set.RequiredHalo(_volumeZ);

    /// <summary>The feature matrix's axes: the input's axes without c, then c.</summary>
    public static AxisOrder OutputAxes(AxisOrder input) => AxisOrder.Parse(input.Names.Replace("c", "", StringComparison.Ordinal) + "c");

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var info = input.Info;
        var readBox = BoxLayout.ForChunk(info.Axes, info.Shape, chunk.TimePoint, chunk.Read);
        int elementSize = info.DataType.SizeInBytes();
        int n = checked((int)chunk.Read.VoxelCount);
        int raw = checked(n * _inputChannels * elementSize);
        byte[] read = ArrayPool<byte>.Shared.Rent(raw);
        byte[] planar = ArrayPool<byte>.Shared.Rent(raw);
        float[] block = ArrayPool<float>.Shared.Rent(n);
        try
        {
            input.Read(readBox, read.AsSpan(0, raw));
            // (any order of t, c, z, y, x) → c, z, y, x: each channel's block is then contiguous.
            var planarAxes = info.Axes.ToOmeOrder();
            BoxLayout.Transpose(read.AsSpan(0, raw), readBox.Shape, info.Axes, planar.AsSpan(0, raw), planarAxes, elementSize);

            var size = chunk.Read.Size;
            var offset = chunk.CoreOffsetInRead;
            var core = chunk.Core.Size;
            var engine = new FeatureEngine(_set, _volumeZ);
            for (int c = 0; c < _inputChannels; c++)
            {
                ToFloat.Convert(planar.AsSpan(c * n * elementSize, n * elementSize), info.DataType, block.AsSpan(0, n));
                int channel = c;
                engine.Compute(block.AsSpan(0, n), (int)size.Z, (int)size.Y, (int)size.X, (entry, component, image) =>
                    ScatterCore(image, size, offset, core, MemoryMarshal.Cast<byte, float>(coreOutput.Span), OutputChannels,
                        _blockOffsets[entry] + channel * _blockWidths[entry] + component));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(read);
            ArrayPool<byte>.Shared.Return(planar);
            ArrayPool<float>.Shared.Return(block);
        }
    }

    /// <summary>Copies the core of a read-box image into channel <paramref name="channel"/> of the channel-last core output.</summary>
    private static void ScatterCore(ReadOnlySpan<float> image, Long3 size, Long3 offset, Long3 core, Span<float> output, int channels, int channel)
    {
        int o = channel;
        for (long z = 0; z < core.Z; z++)
        for (long y = 0; y < core.Y; y++)
        {
            var row = image.Slice((int)(((offset.Z + z) * size.Y + offset.Y + y) * size.X + offset.X), (int)core.X);
            for (int x = 0; x < row.Length; x++, o += channels)
                output[o] = row[x];
        }
    }
}
