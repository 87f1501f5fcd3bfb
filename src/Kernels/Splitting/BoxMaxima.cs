// clEsperanto's detect_maxima_box with radius 0 (detect_maxima_{2,3}d_x.cl after pyclesperanto_prototype PR #187).
//
// Each voxel scans its 3×3×3 box (3×3 in 2D) in a fixed order, x slowest, z fastest, keeping the first
// position that holds a strictly larger value than the best so far, which starts just below its own value:
//
//      best = c − 1, at = centre                 x = −1 … 1
//      for each in-range position q, in order:     y = −1 … 1
//          if v(q) > best: best = v(q), at = q       z = −1 … 1
//      maximum  ⇔  at = centre
//
// So a maximum has no larger neighbour and no equal neighbour scanned before it (offset x −1; or x 0, y −1; or
// x 0, y 0, z −1): of two equal neighbours only the earlier can be one, so maxima are never adjacent and every
// seed is a single voxel. Positions outside the volume are skipped (past the upper faces clEsperanto reads the
// clamped edge, a value already scanned, which a strict comparison never takes). A chunk needs a halo of 1.
using System.Numerics;

namespace ChunkSeg.Kernels.Splitting;

/// <summary>The local maxima clEsperanto's detect_maxima_box(radius 0) marks.</summary>
public static class BoxMaxima
{
    /// <summary>
    /// Calls <paramref name="found"/> with the block index of every maximum inside <paramref name="region"/> of a block
    /// of <paramref name="sz"/>×<paramref name="sy"/>×<paramref name="sx"/> values (neighbours outside the block are
    /// outside the volume; a chunk passes its read box and its core as the region).
    /// </summary>
    public static void Find(ReadOnlySpan<float> values, int sz, int sy, int sx, bool threeD,
        (int Z0, int Y0, int X0, int Z1, int Y1, int X1) region, Action<int> found)
    {
        ArgumentNullException.ThrowIfNull(found);
        if (values.Length < (long)sz * sy * sx) throw new ArgumentException($"a {sz}x{sy}x{sx} block needs {(long)sz * sy * sx} values; got {values.Length}");
        int sxy = sy * sx;
        int dzMax = threeD ? 1 : 0;
        for (int z = region.Z0; z < region.Z1; z++)
            for (int y = region.Y0; y < region.Y1; y++)
                for (int x = region.X0; x < region.X1; x++)
                {
                    int v = z * sxy + y * sx + x;
                    float c = values[v];
                    float best = c - 1f;
                    bool centre = true;
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int xx = x + dx;
                        if (xx < 0 || xx >= sx) continue;
                        for (int dy = -1; dy <= 1; dy++)
                        {
                            int yy = y + dy;
                            if (yy < 0 || yy >= sy) continue;
                            for (int dz = -dzMax; dz <= dzMax; dz++)
                            {
                                int zz = z + dz;
                                if (zz < 0 || zz >= sz) continue;
                                float q = values[zz * sxy + yy * sx + xx];
                                if (q > best)
                                {
                                    best = q;
                                    centre = dx == 0 && dy == 0 && dz == 0;
                                }
                            }
                        }
                    }
                    if (centre) found(v);
                }
    }
}

/// <summary>
/// clEsperanto's threshold_otsu: a 256-bin histogram of the image over [min, max] counted per row y and summed
/// row after row in float32, then scikit-image's Otsu on it; foreground is <c>v &gt; (float)threshold</c>.
/// The counts per (row, bin) are integers, so chunks add theirs exactly and the float32 sum runs once, on the
/// whole table, in clEsperanto's order.
/// </summary>
public static class OtsuThreshold
{
    public const int Bins = 256;

    /// <summary>The smallest and largest of <paramref name="values"/>: the histogram's range.</summary>
    public static (float Min, float Max) Extremes(ReadOnlySpan<float> values)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float v in values)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        return (min, max);
    }

    /// <summary>clEsperanto's bin: <c>trunc(((v − min)·255) / range)</c> in float32, saturated to 0 … 255 (NaN → 0).</summary>
    public static int Bin(float value, float min, float range)
    {
        float t = (value - min) * 255f / range;
        if (!(t > 0)) return 0;
        return t >= 255f ? 255 : (int)t;
    }

    /// <summary>
    /// Adds the block's voxels to <paramref name="rowCounts"/>, <see cref="Bins"/> counts per row y of the block
    /// (<c>rowCounts[y·256 + bin]</c>), over the region's voxels only.
    /// </summary>
    public static void CountRows(ReadOnlySpan<float> values, int sz, int sy, int sx,
        (int Z0, int Y0, int X0, int Z1, int Y1, int X1) region, float min, float max, Span<long> rowCounts)
    {
        float range = max - min;
        int sxy = sy * sx;
        for (int z = region.Z0; z < region.Z1; z++)
            for (int y = region.Y0; y < region.Y1; y++)
            {
                var counts = rowCounts.Slice((y - region.Y0) * Bins, Bins);
                var row = values.Slice(z * sxy + y * sx + region.X0, region.X1 - region.X0);
                foreach (float v in row) counts[Bin(v, min, range)]++;
            }
    }

    /// <summary>
    /// The threshold from the whole volume's counts per row (<c>rowCounts[y·256 + bin]</c>, rows in y order) and its
    /// extremes. The rows are summed in float32 as clEsperanto's sum_z_projection does; bins are placed at
    /// <c>i·range/255 + min</c> (float64); empty end bins are dropped before Otsu, as scikit-image does since 0.19
    /// (clEsperanto's older in-file copy of the formula takes an empty bin 255 for the best split, a NaN: see
    /// docs/voronoi-otsu.md).
    /// </summary>
    public static double FromRowCounts(ReadOnlySpan<long> rowCounts, float min, float max)
    {
        if (rowCounts.Length % Bins != 0) throw new ArgumentException($"row counts come in rows of {Bins}; got {rowCounts.Length} values");
        var sums = new float[Bins];
        for (int row = 0; row < rowCounts.Length / Bins; row++)
            for (int b = 0; b < Bins; b++)
                sums[b] += (float)rowCounts[row * Bins + b];
        float range = max - min;
        var centres = new double[Bins];
        for (int i = 0; i < Bins; i++) centres[i] = i * (double)range / 255 + min;
        int start = 0, end = Bins;
        while (start < end && sums[start] == 0) start++;
        while (end > start && sums[end - 1] == 0) end--;
        if (end - start < 2) return centres[start < Bins ? start : 0];
        // scikit-image: weights and means from both ends, the between-class variance of every split, its first maximum.
        int n = end - start;
        var weight1 = new double[n];
        var weight2 = new double[n];
        var mean1 = new double[n];
        var mean2 = new double[n];
        double w = 0, m = 0;
        for (int i = 0; i < n; i++)
        {
            w += sums[start + i];
            m += sums[start + i] * centres[start + i];
            weight1[i] = w;
            mean1[i] = m / w;
        }
        w = 0;
        m = 0;
        for (int i = n - 1; i >= 0; i--)
        {
            w += sums[start + i];
            m += sums[start + i] * centres[start + i];
            weight2[i] = w;
            mean2[i] = m / w;
        }
        int best = 0;
        double bestVariance = double.NegativeInfinity;
        for (int i = 0; i < n - 1; i++)
        {
            double d = mean1[i] - mean2[i + 1];
            double variance = weight1[i] * weight2[i + 1] * (d * d);
            if (variance > bestVariance || double.IsNaN(variance) && !double.IsNaN(bestVariance))
            {
                bestVariance = variance;
                best = i;
                if (double.IsNaN(variance)) break;      // numpy's argmax takes the first NaN
            }
        }
        return centres[start + best];
    }
}
