using ChunkSeg.Contracts.Memory;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>Copies voxels unchanged between formats, reordering axes when the output's order differs.</summary>
public sealed class ConvertStage : IChunkStage
{
    public Halo RequiredHalo => Halo.None;

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var inInfo = input.Info;
        var box = BoxLayout.ForChunk(inInfo.Axes, inInfo.Shape, chunk.TimePoint, chunk.Core);
        if (inInfo.Axes.Equals(output.Info.Axes))
        {
            input.Read(box, coreOutput.Span);
            return;
        }
        int bytes = checked((int)(box.ElementCount * inInfo.DataType.SizeInBytes()));
        byte[] buffer = ChunkBufferPool<byte>.Shared.Rent(bytes);
        try
        {
            input.Read(box, buffer.AsSpan(0, bytes));
            BoxLayout.Transpose(buffer.AsSpan(0, bytes), box.Shape, inInfo.Axes, coreOutput.Span, output.Info.Axes, inInfo.DataType.SizeInBytes());
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(buffer);
        }
    }
}
