// Otsu's threshold of one channel over a whole volume, read block by block (`--threshold otsu`).
//
//      blocks (parallel) ──▶ min, max per block ──▶ volume min, max
//      blocks (parallel) ──▶ 256-bin counts per row y over [min, max] ──▶ added row by row ──▶ OtsuThreshold
//
// The same histogram and formula as clEsperanto's threshold_otsu (Kernels/Splitting/BoxMaxima.cs, OtsuThreshold;
// docs/voronoi-otsu.md): integer counts add exactly in any order, so the threshold is the same for any block size or
// worker count. Every time point goes into the one histogram: the threshold is the whole volume's. The volume is read
// twice; memory holds one block per worker and the counts (256 per row y).
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Splitting;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

public static class VolumeOtsu
{
    /// <summary>
    /// Otsu's threshold of channel <paramref name="channel"/> of <paramref name="volume"/>, as clEsperanto's
    /// <c>threshold_otsu</c> computes it (foreground: values above it). NaN when the channel is constant.
    /// </summary>
    public static double Threshold(IVolume volume, int channel, int workers, CancellationToken ct = default)
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
        var grid = new ChunkGrid(shape, info.TimePoints, new Long3(Along('z', shape.Z, 32), Along('y', shape.Y, 512), Along('x', shape.X, 512)), Halo.None);
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, workers), CancellationToken = ct };

        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        var gate = new Lock();
        Parallel.ForEach(grid.Enumerate(), parallel, chunk =>
        {
            var (lo, hi) = OtsuThreshold.Extremes(SplitReads.ReadFloats(volume, chunk.TimePoint, chunk.Core, channel));
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
            var values = SplitReads.ReadFloats(volume, chunk.TimePoint, chunk.Core, channel);
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
