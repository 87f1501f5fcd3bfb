// The squared Euclidean distance from every foreground voxel to the nearest background voxel, voxel size aware,
// the same bit for bit on a chunk as on the whole image, and how a chunk proves it.
//
// The definition (what scipy.ndimage.distance_transform_edt(mask, sampling=…)² computes, up to rounding):
//
//      D²(v) = min over background voxels b of  fl( fl( Tx(|vx − bx|) + Ty(|vy − by|) ) + Tz(|vz − bz|) )
//      Ta(d) = (d·sa)·(d·sa)   in float64, sa the voxel size along axis a         D²(background) = 0
//
// with the sum in that order and nothing outside the image counted as background (a time point without background
// is +∞ everywhere). It is separable because float addition is monotone (fl(a + t) ≤ fl(a' + t) when a ≤ a'):
//
//      x pass   gx(v)  = Tx(distance to the nearest background on v's row)
//      y pass   gxy(v) = min over y' of fl( gx(z, y', x) + Ty(|y − y'|) )         each a true minimum, so the result
//      z pass   D²(v)  = min over z' of fl( gxy(z', y, x) + Tz(|z − z'|) )        is the minimum over all b, exactly
//
// The y and z passes search outward from v and stop at the first offset r with Ta(r) ≥ the best so far: every
// farther candidate is at least Ta(r) (all terms are ≥ 0). Their cost is the distance in voxels, not the line.
//
// A chunk computes D² over its read box (its core grown by a halo), treating what lies outside the box as unknown.
// For a core voxel v, any background outside the box lies across a face where the box was cut short of the
// image; crossing the face along axis a takes at least g = (voxels from v to just past the face), so such a b
// gives at least Ta(g). Hence
//
//      D²box(v) ≤ min over cut faces of Ta(g)    ⇒    D²(v) = D²box(v)      (nothing outside could be nearer)
//
//      ┌──────────── read box ─────────────┐          ○ core voxel, ● nearest background in the box
//      │        ┌──── core ────┐           │          the proof holds when the ball through ● stays
//      │   ●····│·····○        │           │          inside the box; otherwise the chunk reads again
//      │        └──────────────┘           │          with a halo as wide as the farthest D the core
//      └───────────────────────────────────┘          saw (doubling where it saw none)
//
// Memory is the core grown by the widest inscribed radius near it; a chunk of thin objects reads its first halo only.
namespace ChunkSeg.Kernels.Splitting;

/// <summary>Exact squared Euclidean distance maps of a mask block (see the header).</summary>
public static class ExactDistance
{
    /// <summary>
    /// D² of every voxel of a block of <paramref name="sz"/>×<paramref name="sy"/>×<paramref name="sx"/> (x fastest)
    /// from <paramref name="mask"/> (non-zero: foreground) into <paramref name="squared"/>; <paramref name="spacing"/> is
    /// the voxel size z, y, x. Foreground with no background in the block gets +∞.
    /// </summary>
    public static void Squared(ReadOnlySpan<byte> mask, int sz, int sy, int sx, (double Z, double Y, double X) spacing, Span<double> squared)
    {
        long n = (long)sz * sy * sx;
        if (mask.Length < n || squared.Length < n) throw new ArgumentException($"a {sz}x{sy}x{sx} block needs {n} mask values and distances");
        if (!(spacing.Z > 0 && spacing.Y > 0 && spacing.X > 0)) throw new ArgumentOutOfRangeException(nameof(spacing), spacing, "voxel sizes must be positive");
        var tx = Terms(spacing.X, sx);
        var ty = Terms(spacing.Y, sy);
        var tz = Terms(spacing.Z, sz);

        // x: the nearest background on each row, two sweeps.
        for (int row = 0; row < sz * sy; row++)
        {
            var m = mask.Slice(row * sx, sx);
            var g = squared.Slice(row * sx, sx);
            int last = -1;
            for (int x = 0; x < sx; x++)
            {
                if (m[x] == 0) last = x;
                g[x] = last < 0 ? double.PositiveInfinity : tx[x - last];
            }
            last = -1;
            for (int x = sx - 1; x >= 0; x--)
            {
                if (m[x] == 0) last = x;
                if (last >= 0) g[x] = Math.Min(g[x], tx[last - x]);
            }
        }
        var line = new double[Math.Max(sy, sz)];
        var result = new double[line.Length];
        // y, then z: the outward search along each column.
        for (int z = 0; z < sz; z++)
            for (int x = 0; x < sx; x++)
                Pass(squared, z * sy * sx + x, sx, sy, ty, line, result);
        if (sz > 1)
            for (int p = 0; p < sy * sx; p++)
                Pass(squared, p, sy * sx, sz, tz, line, result);
    }

    /// <summary>Ta(d) for d = 0 … length (the largest offset a block of that length holds, and one past it).</summary>
    public static double[] Terms(double spacing, int length)
    {
        var terms = new double[length + 1];
        for (int d = 0; d <= length; d++)
        {
            double step = d * spacing;
            terms[d] = step * step;
        }
        return terms;
    }

    private static void Pass(Span<double> values, int start, int stride, int length, double[] terms, double[] line, double[] result)
    {
        for (int i = 0; i < length; i++) line[i] = values[start + i * stride];
        for (int i = 0; i < length; i++)
        {
            double best = line[i];
            for (int r = 1; r < length; r++)
            {
                double t = terms[r];
                if (t >= best) break;                           // every candidate r or farther is ≥ t
                if (i - r >= 0) best = Math.Min(best, line[i - r] + t);
                if (i + r < length) best = Math.Min(best, line[i + r] + t);
            }
            result[i] = best;
        }
        for (int i = 0; i < length; i++) values[start + i * stride] = result[i];
    }

    /// <summary>
    /// Whether D² of every voxel of <paramref name="core"/> (block coordinates) is proven exact (header): no nearer
    /// background could lie across a face of the block that the image continues past. <paramref name="cutLow"/> and
    /// <paramref name="cutHigh"/> say, per axis z, y, x, whether the image continues before the block's first and past
    /// its last plane. Returns the widest distance (not squared) a failing voxel saw, +∞ where one saw no background,
    /// or null when every voxel is proven.
    /// </summary>
    public static double? Unproven(ReadOnlySpan<double> squared, int sz, int sy, int sx, (int Z, int Y, int X, int EndZ, int EndY, int EndX) core,
        (double Z, double Y, double X) spacing, (bool Z, bool Y, bool X) cutLow, (bool Z, bool Y, bool X) cutHigh)
    {
        var tz = Terms(spacing.Z, sz);
        var ty = Terms(spacing.Y, sy);
        var tx = Terms(spacing.X, sx);
        double widest = -1;
        for (int z = core.Z; z < core.EndZ; z++)
        {
            double fz = Math.Min(cutLow.Z ? tz[z + 1] : double.PositiveInfinity, cutHigh.Z ? tz[sz - z] : double.PositiveInfinity);
            for (int y = core.Y; y < core.EndY; y++)
            {
                double fzy = Math.Min(fz, Math.Min(cutLow.Y ? ty[y + 1] : double.PositiveInfinity, cutHigh.Y ? ty[sy - y] : double.PositiveInfinity));
                int row = (z * sy + y) * sx;
                for (int x = core.X; x < core.EndX; x++)
                {
                    double reach = Math.Min(fzy, Math.Min(cutLow.X ? tx[x + 1] : double.PositiveInfinity, cutHigh.X ? tx[sx - x] : double.PositiveInfinity));
                    double d2 = squared[row + x];
                    if (d2 <= reach) continue;
                    widest = Math.Max(widest, Math.Sqrt(d2));
                }
            }
        }
        return widest < 0 ? null : widest;
    }
}
