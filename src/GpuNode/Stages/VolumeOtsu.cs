// Otsu's threshold of one channel over a whole volume, read block by block (`--threshold otsu`).
//
//      blocks (parallel, + the smoothing's halo) ──▶ smoothed as the segmentation smooths ──▶ min, max per block
//      blocks (parallel) ──▶ 256-bin counts per row y over [min, max] ──▶ added row by row ──▶ OtsuThreshold
//
// The same histogram and formula as clEsperanto's threshold_otsu (Kernels/Splitting/BoxMaxima.cs, OtsuThreshold;
// docs/voronoi-otsu.md): integer counts add exactly in any order, so the threshold is the same for any block size or
// worker count. Every time point goes into the one histogram: the threshold is the whole volume's. The volume is read
// twice; memory holds one block per worker and the counts (256 per row y). With --smooth-sigma the values are those the
// threshold is applied to: each block is read with the smoothing's halo and smoothed as the segmentation smooths it
// (BlockSmoothing: the same values whatever the block), then cropped to its core.
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Splitting;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

public static class VolumeOtsu
{
    /// <summary>
    /// Otsu's threshold of channel <paramref name="channel"/> of <paramref name="volume"/>, as clEsperanto's
    /// <c>threshold_otsu</c> computes it (foreground: values above it). NaN when the channel is constant.
    /// </summary>
    public static double Threshold(IVolume volume, int channel, int workers, CancellationToken ct = default) =>
        Threshold(volume, channel, default, workers, ct);

    /// <summary>As above, of the channel smoothed by <paramref name="smoothing"/> (z, y, x in voxels) as the segmentation smooths it.</summary>
    public static double Threshold(IVolume volume, int channel, Sigma3 smoothing, int workers, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(volume);
        var info = volume.Info;
        var shape = info.SpatialShape;
        // Blocks of whole storage chunks, about 32 × 512 × 512 voxels: bounded whatever the volume's size.
        long Along(char axis, long extent, long target)
        {
            int d = info.Axes.IndexOf(axis);
            long chunk = d < 0 ? 1 : Math.Max(1, info.StorageChunks[d]);
            return Math.Min(extent, Math.Max(1, target / chunk) * chunk);
        }
        var kernels = BlockSmoothing.Kernels(smoothing, !info.Axes.HasZ);
        var grid = new ChunkGrid(shape, info.TimePoints, new Long3(Along('z', shape.Z, 32), Along('y', shape.Y, 512), Along('x', shape.X, 512)),
            BlockSmoothing.HaloOf(kernels));
        float[] Values(ChunkSpec chunk)
        {
            if (kernels.All(k => k is null)) return SplitReads.ReadFloats(volume, chunk.TimePoint, chunk.Core, channel);
            var read = SplitReads.ReadFloats(volume, chunk.TimePoint, chunk.Read, channel);
            var smoothed = BlockSmoothing.Apply(kernels, chunk.Read.Size, read, new float[read.Length]);
            var core = new float[chunk.Core.VoxelCount];
            ChunkFeatures.CropCore(chunk, smoothed, core);
            return core;
        }
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, workers), CancellationToken = ct };

        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        var gate = new Lock();
        Parallel.ForEach(grid.Enumerate(), parallel, chunk =>
        {
            var (lo, hi) = OtsuThreshold.Extremes(Values(chunk));
            lock (gate)
            {
                min = Math.Min(min, lo);
                max = Math.Max(max, hi);
            }
        });
        if (!(max > min)) return double.NaN;

        var rows = new long[shape.Y * OtsuThreshold.Bins];
        Parallel.ForEach(grid.Enumerate(), parallel, chunk =>
        {
            var size = chunk.Core.Size;
            var values = Values(chunk);
            var counts = new long[size.Y * OtsuThreshold.Bins];
            OtsuThreshold.CountRows(values, (int)size.Z, (int)size.Y, (int)size.X, (0, 0, 0, (int)size.Z, (int)size.Y, (int)size.X), min, max, counts);
            long offset = chunk.Core.Start.Y * OtsuThreshold.Bins;
            lock (gate)
                for (int i = 0; i < counts.Length; i++) rows[offset + i] += counts[i];
        });
        return OtsuThreshold.FromRowCounts(rows, min, max);
    }

    /// <summary>
    /// The float32 threshold for ChunkSeg's <c>value ≥ threshold</c> that keeps exactly clEsperanto's
    /// <c>value &gt; (float)otsu</c>.
    /// </summary>
    public static float AsInclusive(double otsu) => MathF.BitIncrement((float)otsu);
}
