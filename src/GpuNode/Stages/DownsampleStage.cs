using System.Globalization;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Memory;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Pyramids;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>How a pyramid level summarises each block of the level before it.</summary>
public enum DownsampleMethod
{
    /// <summary>The block's mean (images: uint8, uint16, uint32, float32).</summary>
    Mean,

    /// <summary>The block's most frequent value, ties to the smallest (labels: any unsigned integer type).</summary>
    Mode,
}

/// <summary>
/// One chunk of a pyramid level: reads the block of the previous level that the chunk's core covers
/// (<see cref="Downsample.InputBox"/>; input = level k − 1, output = level k, same axes) and writes its
/// <see cref="Downsample.Mean(ReadOnlySpan{byte}, Long3, Long3, Span{byte})"/> or <see cref="Downsample.Mode{T}"/>,
/// every channel separately (channels come before z, y, x in OME order, so each is one contiguous block); time points
/// are the chunk's own. No halo: a level's voxel depends on its block alone, so any chunking gives the same bytes.
/// Parameters (for <see cref="StageCatalog"/>): "factor" = "z,y,x" (1 or 2 each), "method" = mean | mode.
/// </summary>
public sealed class DownsampleStage : IChunkStage
{
    public DownsampleStage(Long3 factor, DownsampleMethod method)
    {
        _ = Downsample.OutputShape(Long3.Zero, factor);   // validates the factor
        Factor = factor;
        Method = method;
    }

    public Long3 Factor { get; }
    public DownsampleMethod Method { get; }

    public Halo RequiredHalo => Halo.None;

    /// <summary>The stage's parameters as a job carries them.</summary>
    public IReadOnlyDictionary<string, string> Parameters => new Dictionary<string, string>
    {
        ["factor"] = string.Create(CultureInfo.InvariantCulture, $"{Factor.Z},{Factor.Y},{Factor.X}"),
        ["method"] = Method == DownsampleMethod.Mean ? "mean" : "mode",
    };

    /// <summary>Rebuilds the stage from its job's parameters (see <see cref="Parameters"/>).</summary>
    public static DownsampleStage FromParameters(IReadOnlyDictionary<string, string> parameters)
    {
        var f = parameters["factor"].Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        if (f.Length != 3) throw new ArgumentException($"downsample factor \"{parameters["factor"]}\" must be z,y,x");
        return new DownsampleStage(new Long3(f[0], f[1], f[2]), ParseMethod(parameters["method"]));
    }

    public static DownsampleMethod ParseMethod(string text) => text.Trim().ToLowerInvariant() switch
    {
        "mean" => DownsampleMethod.Mean,
        "mode" => DownsampleMethod.Mode,
        _ => throw new UsageException($"downsampling method \"{text}\" must be mean (images) or mode (labels)"),
    };

    /// <summary>
    /// The default method for a volume: mode for label images and for uint64 (a label type: no mean kernel), mean otherwise.
    /// </summary>
    public static DownsampleMethod DefaultFor(DataType type, bool labelImage) =>
        labelImage || type == DataType.UInt64 ? DownsampleMethod.Mode : DownsampleMethod.Mean;

    /// <summary>Null when <paramref name="method"/> can downsample <paramref name="type"/>, else why not.</summary>
    public static string? Unsupported(DataType type, DownsampleMethod method) => method switch
    {
        DownsampleMethod.Mean when type is DataType.UInt8 or DataType.UInt16 or DataType.UInt32 or DataType.Float32 => null,
        DownsampleMethod.Mean => $"the mean downsamples uint8, uint16, uint32 and float32 images; got {type.Name()} (use mode for labels)",
        DownsampleMethod.Mode when type is DataType.UInt8 or DataType.UInt16 or DataType.UInt32 or DataType.UInt64 => null,
        _ => $"the mode downsamples unsigned integer labels (uint8 to uint64); got {type.Name()}",
    };

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var inInfo = input.Info;
        if (!inInfo.Axes.Equals(output.Info.Axes) || inInfo.DataType != output.Info.DataType)
            throw new VolumeException(output.Info.Location, $"a pyramid level must have its previous level's axes and type ({inInfo.Axes}, {inInfo.DataType.Name()})");
        if (Unsupported(inInfo.DataType, Method) is { } why) throw new VolumeException(inInfo.Location, why);

        var inBox = Downsample.InputBox(chunk.Core, Factor, inInfo.SpatialShape);
        var read = BoxLayout.ForChunk(inInfo.Axes, inInfo.Shape, chunk.TimePoint, inBox);
        int size = inInfo.DataType.SizeInBytes();
        int bytes = checked((int)(read.ElementCount * size));
        long channels = inInfo.Extent('c');
        int inPerChannel = checked((int)(inBox.VoxelCount * size)), outPerChannel = checked((int)(chunk.Core.VoxelCount * size));
        byte[] buffer = ChunkBufferPool<byte>.Shared.Rent(bytes);
        try
        {
            input.Read(read, buffer.AsSpan(0, bytes));
            for (int c = 0; c < channels; c++)
            {
                var src = buffer.AsSpan(c * inPerChannel, inPerChannel);
                var dst = coreOutput.Span.Slice(c * outPerChannel, outPerChannel);
                Run(inInfo.DataType, src, inBox.Size, dst);
            }
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(buffer);
        }
    }

    private void Run(DataType type, ReadOnlySpan<byte> src, Long3 shape, Span<byte> dst)
    {
        if (Method == DownsampleMethod.Mean)
        {
            switch (type)
            {
                case DataType.UInt8: Downsample.Mean(src, shape, Factor, dst); return;
                case DataType.UInt16: Downsample.Mean(MemoryMarshal.Cast<byte, ushort>(src), shape, Factor, MemoryMarshal.Cast<byte, ushort>(dst)); return;
                case DataType.UInt32: Downsample.Mean(MemoryMarshal.Cast<byte, uint>(src), shape, Factor, MemoryMarshal.Cast<byte, uint>(dst)); return;
                case DataType.Float32: Downsample.Mean(MemoryMarshal.Cast<byte, float>(src), shape, Factor, MemoryMarshal.Cast<byte, float>(dst)); return;
            }
        }
        else
        {
            switch (type)
            {
                case DataType.UInt8: Downsample.Mode(src, shape, Factor, dst); return;
                case DataType.UInt16: Downsample.Mode(MemoryMarshal.Cast<byte, ushort>(src), shape, Factor, MemoryMarshal.Cast<byte, ushort>(dst)); return;
                case DataType.UInt32: Downsample.Mode(MemoryMarshal.Cast<byte, uint>(src), shape, Factor, MemoryMarshal.Cast<byte, uint>(dst)); return;
                case DataType.UInt64: Downsample.Mode(MemoryMarshal.Cast<byte, ulong>(src), shape, Factor, MemoryMarshal.Cast<byte, ulong>(dst)); return;
            }
        }
        throw new InvalidOperationException($"unreachable: {Method} of {type} was validated");
    }
}
