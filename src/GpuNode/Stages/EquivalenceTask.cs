using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Labeling;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Storage.Labeling;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// Pass 2 of labelling, one chunk at a time: which of its pieces touch pieces of its lower neighbours,
/// from the face planes in the workspace's summaries (no voxel data is read).
/// </summary>
public static class EquivalenceTask
{
    public static List<(PieceRef, PieceRef)> Run(ChunkGrid grid, long chunk, Func<long, ChunkLabelSummary> summaryOf, Connectivity connectivity)
    {
        var pairs = new List<(PieceRef, PieceRef)>();
        ChunkEquivalences.Find(grid, summaryOf(chunk), summaryOf, connectivity, (a, b) => pairs.Add((a, b)));
        return pairs;
    }

    public static List<(PieceRef, PieceRef)> Run(ChunkGrid grid, long chunk, LabelWorkspace workspace, Connectivity connectivity) =>
        Run(grid, chunk, workspace.ReadSummary, connectivity);
}
