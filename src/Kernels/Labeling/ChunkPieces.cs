using System.Numerics;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Labeling;

namespace ChunkSeg.Kernels.Labeling;

/// <summary>
/// Turns the components of one chunk's core into its <see cref="ChunkLabelSummary"/>: per-piece sums
/// and extremes (computed from the runs, a few operations per run rather than per voxel) and the six
/// face planes of its local labels.
/// </summary>
public static class ChunkPieces
{
    /// <param name="runs">The components of the core (block = the core).</param>
    /// <param name="values">The core's input values, from which each piece's <see cref="PieceStats.Value"/> is taken.</param>
    /// <param name="intensity">Per-voxel intensity over the core for mean intensities, or empty.</param>
    /// <param name="labels">The core's local label image, written by <see cref="ComponentRuns.WriteLabels"/>.</param>
    /// <param name="borderAxes">Which axes (z, y, x) have a volume border that counts for
    /// <see cref="PieceStats.TouchesVolumeBorder"/> (false for z of a 2D image).</param>
    public static ChunkLabelSummary Summarize<T>(ComponentRuns runs, ReadOnlySpan<T> values, ReadOnlySpan<float> intensity,
        ReadOnlySpan<uint> labels, long chunk, Box3 core, Long3 volumeShape, (bool Z, bool Y, bool X) borderAxes)
        where T : unmanaged, IBinaryInteger<T>
    {
        ArgumentNullException.ThrowIfNull(runs);
        var size = core.Size;
        if (size != new Long3(runs.Sz, runs.Sy, runs.Sx))
            throw new ArgumentException($"the runs cover {runs.Sz}x{runs.Sy}x{runs.Sx} voxels but the core is {size}");
        if (!intensity.IsEmpty && intensity.Length < core.VoxelCount)
            throw new ArgumentException($"the intensity holds {intensity.Length} values; the core has {core.VoxelCount} voxels");

        var pieces = new PieceStats[runs.Components];
        var seen = new bool[runs.Components];
        long sx = runs.Sx, sy = runs.Sy, volumeX = volumeShape.X, volumeXY = volumeShape.X * volumeShape.Y;
        long borderZ0 = borderAxes.Z ? 0 : -1, borderZ1 = borderAxes.Z ? volumeShape.Z - 1 : -1;
        long borderY0 = borderAxes.Y ? 0 : -1, borderY1 = borderAxes.Y ? volumeShape.Y - 1 : -1;
        long borderX0 = borderAxes.X ? 0 : -1, borderX1 = borderAxes.X ? volumeShape.X - 1 : -1;
        foreach (ref readonly var run in runs.Runs)
        {
            long z = core.Start.Z + run.Row / sy, y = core.Start.Y + run.Row % sy;
            long x0 = core.Start.X + run.Start, x1 = core.Start.X + run.End - 1, length = run.Length;
            ref var p = ref pieces[run.Label - 1];
            if (!seen[run.Label - 1])
            {
                // Runs come in raster order: the first run of a label holds its first voxel.
                seen[run.Label - 1] = true;
                p.First = z * volumeXY + y * volumeX + x0;
                p.Value = ulong.CreateTruncating(values[(int)(run.Row * sx + run.Start)]);
                (p.MinZ, p.MinY, p.MinX, p.MaxZ, p.MaxY, p.MaxX) = (z, y, x0, z, y, x1);
            }
            else
            {
                p.MinY = Math.Min(p.MinY, y);
                p.MinX = Math.Min(p.MinX, x0);
                p.MaxZ = z;                                     // rows come in z order
                p.MaxY = Math.Max(p.MaxY, y);
                p.MaxX = Math.Max(p.MaxX, x1);
            }
            p.Voxels += length;
            p.SumZ += z * length;
            p.SumY += y * length;
            p.SumX += (x0 + x1) * length / 2;                   // x0 + … + x1
            if (!intensity.IsEmpty)
            {
                double sum = 0;
                foreach (float v in intensity.Slice((int)(run.Row * sx + run.Start), (int)length)) sum += v;
                p.IntensitySum += sum;
            }
            p.TouchesVolumeBorder |= z == borderZ0 || z == borderZ1 || y == borderY0 || y == borderY1 || x0 == borderX0 || x1 == borderX1;
        }
        return new ChunkLabelSummary(chunk, core, pieces, Faces(labels, size));
    }

    /// <summary>The six face planes of a core label image (see <see cref="ChunkLabelSummary"/> for their shapes).</summary>
    public static uint[][] Faces(ReadOnlySpan<uint> labels, Long3 size)
    {
        int sz = (int)size.Z, sy = (int)size.Y, sx = (int)size.X;
        var faces = new uint[6][];
        faces[(int)Face.ZLow] = labels[..(sy * sx)].ToArray();
        faces[(int)Face.ZHigh] = labels.Slice((sz - 1) * sy * sx, sy * sx).ToArray();
        var yLow = new uint[sz * sx];
        var yHigh = new uint[sz * sx];
        var xLow = new uint[sz * sy];
        var xHigh = new uint[sz * sy];
        for (int z = 0; z < sz; z++)
        {
            labels.Slice(z * sy * sx, sx).CopyTo(yLow.AsSpan(z * sx));
            labels.Slice((z * sy + sy - 1) * sx, sx).CopyTo(yHigh.AsSpan(z * sx));
            for (int y = 0; y < sy; y++)
            {
                int row = (z * sy + y) * sx;
                xLow[z * sy + y] = labels[row];
                xHigh[z * sy + y] = labels[row + sx - 1];
            }
        }
        faces[(int)Face.YLow] = yLow;
        faces[(int)Face.YHigh] = yHigh;
        faces[(int)Face.XLow] = xLow;
        faces[(int)Face.XHigh] = xHigh;
        return faces;
    }
}
