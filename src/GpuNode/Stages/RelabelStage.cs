using ChunkSeg.Contracts.Memory;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Labeling;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// The last pass of labelling: a chunk's local labels (uint32, from pass 1) through its map of final ids
/// (from the coordinator's numbering), written as uint32 or uint64.
/// </summary>
public sealed class RelabelStage(LabelWorkspace workspace, DataType outputType) : IChunkStage
{
    public Halo RequiredHalo => Halo.None;

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var info = input.Info;
        var box = BoxLayout.ForChunk(info.Axes, info.Shape, chunk.TimePoint, chunk.Core);
        int n = checked((int)chunk.Core.VoxelCount);
        uint[] local = ChunkBufferPool<uint>.Shared.Rent(n);
        try
        {
            input.Read(box, MemoryMarshal.AsBytes(local.AsSpan(0, n)));
            ulong[] ids = workspace.ReadMap(chunk.Id.Value);
            var source = local.AsSpan(0, n);
            if (outputType == DataType.UInt64)
            {
                var target = MemoryMarshal.Cast<byte, ulong>(coreOutput.Span);
                for (int i = 0; i < n; i++) target[i] = ids[Checked(source[i])];
            }
            else
            {
                var target = MemoryMarshal.Cast<byte, uint>(coreOutput.Span);
                for (int i = 0; i < n; i++) target[i] = checked((uint)ids[Checked(source[i])]);
            }

            uint Checked(uint l) => l < ids.Length ? l
                : throw new Contracts.Errors.VolumeException(info.Location, $"chunk {chunk.Id.Value} holds local label {l} but its map has {ids.Length - 1}");
        }
        finally
        {
            ChunkBufferPool<uint>.Shared.Return(local);
        }
    }
}
