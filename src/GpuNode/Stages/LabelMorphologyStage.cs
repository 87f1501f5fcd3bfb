using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Labeling;
using ChunkSeg.Contracts.Memory;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Labeling;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// The pass after relabelling with <c>--dilate r</c> / <c>--erode r</c>: each chunk reads the final labels of its core
/// grown by ⌊r⌋ voxels per axis (in plane for 2D; LabelMorphology's header argues why that is exact), writes the
/// dilated or eroded labels of its core (uint32 or uint64, as the input), and records the statistics of the objects
/// its core now holds, so the object table describes the objects as written.
/// </summary>
/// <param name="intensity">The volume whose mean per object the table reports (channel <paramref name="intensityChannel"/>), or null.</param>
public sealed class LabelMorphologyStage(LabelMorphology morphology, LabelWorkspace workspace, Long3 volumeShape, bool threeD, IVolume? intensity,
    int intensityChannel = 0) : IChunkStage
{
    public Halo RequiredHalo => SplitReads.InPlane(Halo.Uniform(morphology.Reach), threeD);

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var type = input.Info.DataType;
        var labels = new ulong[chunk.Read.VoxelCount];
        byte[] planar = PlanarRead.Rent(input, chunk.TimePoint, chunk.Read, out int bytes);
        try
        {
            if (type == DataType.UInt64) MemoryMarshal.Cast<byte, ulong>(planar.AsSpan(0, bytes)).CopyTo(labels);
            else
            {
                var narrow = MemoryMarshal.Cast<byte, uint>(planar.AsSpan(0, bytes));
                for (int i = 0; i < labels.Length; i++) labels[i] = narrow[i];
            }
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(planar);
        }

        var core = new ulong[chunk.Core.VoxelCount];
        morphology.Apply(labels, chunk.Read.Size, new Box3(chunk.CoreOffsetInRead, chunk.Core.Size), core);
        if (type == DataType.UInt64) core.CopyTo(MemoryMarshal.Cast<byte, ulong>(coreOutput.Span));
        else
        {
            var target = MemoryMarshal.Cast<byte, uint>(coreOutput.Span);
            for (int i = 0; i < core.Length; i++) target[i] = (uint)core[i];     // never above the input's own ids
        }
        workspace.WriteObjects(chunk.Id.Value, chunk.TimePoint, Statistics(chunk, core));
    }

    /// <summary>Per object in the core, in id order: voxels, first voxel, box, coordinate sums and intensity sum.</summary>
    private List<(ulong Id, PieceStats Stats)> Statistics(ChunkSpec chunk, ulong[] core)
    {
        float[]? values = intensity is null ? null : SplitReads.ReadFloats(intensity, chunk.TimePoint, chunk.Core, intensityChannel);
        var objects = new Dictionary<ulong, PieceStats>();
        var start = chunk.Core.Start;
        var size = chunk.Core.Size;
        int i = 0;
        for (long z = start.Z; z < start.Z + size.Z; z++)
            for (long y = start.Y; y < start.Y + size.Y; y++)
                for (long x = start.X; x < start.X + size.X; x++, i++)
                {
                    ulong id = core[i];
                    if (id == 0) continue;
                    ref var p = ref CollectionsMarshal.GetValueRefOrAddDefault(objects, id, out bool exists);
                    if (!exists)
                    {
                        // Raster order: the first voxel met is the object's first in this core.
                        p.First = (z * volumeShape.Y + y) * volumeShape.X + x;
                        (p.MinZ, p.MinY, p.MinX, p.MaxZ, p.MaxY, p.MaxX) = (z, y, x, z, y, x);
                    }
                    else
                    {
                        p.MinY = Math.Min(p.MinY, y); p.MinX = Math.Min(p.MinX, x);
                        p.MaxZ = z; p.MaxY = Math.Max(p.MaxY, y); p.MaxX = Math.Max(p.MaxX, x);
                    }
                    p.Voxels++;
                    p.SumZ += z; p.SumY += y; p.SumX += x;
                    if (values is not null) p.IntensitySum += values[i];
                }
        return [.. objects.OrderBy(o => o.Key).Select(o => (o.Key, o.Value))];
    }
}
