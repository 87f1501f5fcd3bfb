// Growing and shrinking a label image by a Euclidean radius r (in voxels), exactly as whole-volume numpy defines it.
//
// Expand (`--dilate r`) is scikit-image's expand_labels(labels, distance=r): a background voxel p takes the label of
// the labelled voxel nearest to it when that distance is ≤ r; labelled voxels keep theirs. expand_labels finds "the
// nearest" with scipy.ndimage.distance_transform_edt(labels == 0, return_indices=True), Maurer's separable feature
// transform, so on ties (several labelled voxels at the same smallest distance) the winner is whatever that algorithm
// leaves. Reading scipy's _VoronoiFT/_ComputeFT: axis 0 is swept first, then axis 1 over the planes of axes 0–1, and
// so on; each sweep keeps, per position, the candidate of the lowest line index among those at the smallest
// distance (its query loop advances only on a strictly smaller distance, and its hull removes a candidate only when
// it is strictly dominated). Nesting the sweeps, the feature scipy reports for p is the lexicographic minimum of
//
//      ( |p − q|², x_q, y_q, z_q )        over labelled voxels q        (last axis first, then back to axis 0)
//
// which tools/reference/expand_shrink.py's tests confirm against scipy on tie-heavy images. This file computes the
// same minimum with its own separable sweeps (z, then y, then x; every sweep a lower envelope of parabolas compared
// in exact integer arithmetic, ties to the lower index), then applies expand_labels' test √|p − q|² ≤ r in float64.
//
// Shrink (`--erode r`): a labelled voxel p keeps its label L only when no voxel of another value (0 included) lies
// within distance r of it; the volume's outside is not background, so objects touching the border are not eaten
// from there. The nearest voxel q of another value is 6-adjacent to a voxel of L (stepping q one voxel towards p
// along any axis where they differ brings it closer to p, so that voxel holds L), hence q lies in B, the voxels with
// a face neighbour of another value. Voxels farther than r from all of B keep their label at once (one exact EDT to
// B); the others scan the ball's offsets nearest first and stop at the first voxel of another value.
//
// Why a chunk needs a halo of ⌊r⌋ voxels per axis (in plane for 2D), and nothing else:
//
//           ┌──────────── read box = core grown by ⌊r⌋, clipped to the volume ────────────┐
//           │                  ·  ·  ·                                                    │
//           │              ·     ╭───╮     ·        every q with |p − q| ≤ r has          │
//           │            ·       │ p │       ·      |z_q − z_p|, |y_q − y_p|, |x_q − x_p|  │
//           │              ·     ╰───╯     ·        ≤ ⌊r⌋, so it lies in the read box      │
//           │                  ·  ·  ·            (or outside the volume, where there is   │
//           │                 core                 no voxel in the whole volume either)    │
//           └────────────────────────────────────────────────────────────────────────────┘
//
// Expand: a core voxel p changes only when its nearest labelled voxel is within r. Then every labelled voxel at that
// smallest distance is within r, inside the read box, and the lexicographic tie rule above compares only those; the
// labelled voxels outside the box are all farther. So the read box yields the whole volume's minimum, ties included,
// and the label for p; when the nearest labelled voxel is farther than r, both leave p at 0. A larger ⌈r⌉ halo works
// as well; ⌊r⌋ is the least that suffices. Shrink: p's fate depends on the values of the voxels within r, all in the
// read box; the prefilter set B is computed from in-box neighbours, which include the witness q and its neighbour
// of L, so it never skips a voxel that must erode. Every chunk shape and worker count thus gives the whole volume's
// result bit for bit.
using System.Diagnostics;
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Kernels.Labeling;

/// <summary>Which way <see cref="LabelMorphology"/> moves label borders.</summary>
public enum LabelMorphologyMode
{
    /// <summary>Grow labels into the background, never over another label (scikit-image's expand_labels).</summary>
    Dilate,

    /// <summary>Shrink labels: a voxel keeps its label only with no voxel of another value within the radius.</summary>
    Erode,
}

/// <summary>
/// Dilation (expand_labels) and erosion of a label image by a Euclidean radius in voxels, on a block (z, y, x, x
/// fastest) of which only <c>core</c> is written: exact for the whole volume when the block is the core grown by
/// <see cref="Reach"/> voxels per axis (see the file header).
/// </summary>
public sealed class LabelMorphology
{
    private readonly (int Z, int Y, int X)[] _ball;

    public LabelMorphology(LabelMorphologyMode mode, double radius)
    {
        if (!(radius > 0) || double.IsInfinity(radius))
            throw new ArgumentOutOfRangeException(nameof(radius), radius, "the radius must be a positive finite number of voxels");
        if (radius > MaxRadius)
            throw new ArgumentOutOfRangeException(nameof(radius), radius, $"the radius is at most {MaxRadius} voxels");
        Mode = mode;
        Radius = radius;
        Reach = (int)Math.Floor(radius);
        _ball = mode == LabelMorphologyMode.Erode ? Ball(Reach, radius) : [];
    }

    /// <summary>The largest radius: its halo and ball stay of a size a chunk can hold.</summary>
    public const double MaxRadius = 256;

    public LabelMorphologyMode Mode { get; }
    public double Radius { get; }

    /// <summary>Voxels of context needed per axis: ⌊r⌋, the largest offset along one axis within distance r.</summary>
    public int Reach { get; }

    /// <summary>Whether a squared distance in voxels lies within the radius, tested as expand_labels does: √d² ≤ r in float64.</summary>
    public bool Within(long squaredDistance) => Math.Sqrt(squaredDistance) <= Radius;

    /// <summary>
    /// Writes the result for <paramref name="core"/> (a box inside the block, block coordinates) to
    /// <paramref name="output"/>, core-sized, z, y, x order.
    /// </summary>
    public void Apply(ReadOnlySpan<ulong> labels, Long3 shape, Box3 core, Span<ulong> output)
    {
        if (labels.Length != shape.Volume) throw new ArgumentException($"the block holds {labels.Length} labels; its shape {shape} needs {shape.Volume}");
        if (!new Box3(Long3.Zero, shape).Contains(core)) throw new ArgumentException($"the core {core} does not lie inside the block {shape}");
        if (output.Length != core.VoxelCount) throw new ArgumentException($"the output holds {output.Length} labels; the core needs {core.VoxelCount}");
        if (core.IsEmpty) return;
        if (Mode == LabelMorphologyMode.Dilate) Expand(labels, shape, core, output);
        else Shrink(labels, shape, core, output);
    }

    /// <summary>The whole block as its own core: what the whole volume gives.</summary>
    public ulong[] Apply(ReadOnlySpan<ulong> labels, Long3 shape)
    {
        var output = new ulong[labels.Length];
        Apply(labels, shape, new Box3(Long3.Zero, shape), output);
        return output;
    }

    private void Expand(ReadOnlySpan<ulong> labels, Long3 shape, Box3 core, Span<ulong> output)
    {
        var feature = new int[checked((int)shape.Volume)];
        for (int i = 0; i < feature.Length; i++) feature[i] = labels[i] != 0 ? i : -1;
        FeatureTransform.Run(feature, shape);
        int sy = (int)shape.Y, sx = (int)shape.X, o = 0;
        for (long z = core.Start.Z; z < core.End.Z; z++)
            for (long y = core.Start.Y; y < core.End.Y; y++)
                for (long x = core.Start.X; x < core.End.X; x++)
                {
                    int i = (int)((z * sy + y) * sx + x);
                    ulong label = labels[i];
                    if (label == 0 && feature[i] >= 0 && Within(FeatureTransform.SquaredDistance(i, feature[i], sy, sx)))
                        label = labels[feature[i]];
                    output[o++] = label;
                }
    }

    private void Shrink(ReadOnlySpan<ulong> labels, Long3 shape, Box3 core, Span<ulong> output)
    {
        int sz = (int)shape.Z, sy = (int)shape.Y, sx = (int)shape.X;
        // B: voxels with a face neighbour (inside the block) of another value; the EDT to B prefilters the scan.
        var boundary = new int[checked((int)shape.Volume)];
        for (int z = 0, i = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
                for (int x = 0; x < sx; x++, i++)
                {
                    ulong v = labels[i];
                    bool differs = (x > 0 && labels[i - 1] != v) || (x + 1 < sx && labels[i + 1] != v) ||
                                   (y > 0 && labels[i - sx] != v) || (y + 1 < sy && labels[i + sx] != v) ||
                                   (z > 0 && labels[i - sx * sy] != v) || (z + 1 < sz && labels[i + sx * sy] != v);
                    boundary[i] = differs ? i : -1;
                }
        FeatureTransform.Run(boundary, shape);
        int o = 0;
        for (int z = (int)core.Start.Z; z < core.End.Z; z++)
            for (int y = (int)core.Start.Y; y < core.End.Y; y++)
                for (int x = (int)core.Start.X; x < core.End.X; x++)
                {
                    int i = (z * sy + y) * sx + x;
                    ulong label = labels[i];
                    if (label != 0 && boundary[i] >= 0 && Within(FeatureTransform.SquaredDistance(i, boundary[i], sy, sx)) &&
                        HasOtherWithin(labels, sz, sy, sx, z, y, x, label))
                        label = 0;
                    output[o++] = label;
                }
    }

    /// <summary>Whether a voxel of a value other than <paramref name="label"/> lies within the ball around (z, y, x), inside the block.</summary>
    private bool HasOtherWithin(ReadOnlySpan<ulong> labels, int sz, int sy, int sx, int z, int y, int x, ulong label)
    {
        foreach (var (dz, dy, dx) in _ball)
        {
            int qz = z + dz, qy = y + dy, qx = x + dx;
            if ((uint)qz >= (uint)sz || (uint)qy >= (uint)sy || (uint)qx >= (uint)sx) continue;   // outside the volume: not background
            if (labels[(qz * sy + qy) * sx + qx] != label) return true;
        }
        return false;
    }

    /// <summary>The offsets within the radius but the centre, nearest first (a differing neighbour is usually close).</summary>
    private (int Z, int Y, int X)[] Ball(int reach, double radius)
    {
        var offsets = new List<(int, int, int, long)>();
        for (int dz = -reach; dz <= reach; dz++)
            for (int dy = -reach; dy <= reach; dy++)
                for (int dx = -reach; dx <= reach; dx++)
                {
                    long d2 = (long)dz * dz + dy * dy + dx * dx;
                    if (d2 > 0 && Math.Sqrt(d2) <= radius) offsets.Add((dz, dy, dx, d2));
                }
        return [.. offsets.OrderBy(o => o.Item4).Select(o => (o.Item1, o.Item2, o.Item3))];
    }
}

/// <summary>
/// The exact Euclidean feature transform of a block: for every voxel, the linear index of the feature voxel that
/// minimises (squared distance, x, y, z) lexicographically, or −1 when the block has none: scipy's tie rule
/// (LabelMorphology's header). Three sweeps, z then y then x; each is a 1-D lower envelope of parabolas.
/// </summary>
internal static class FeatureTransform
{
    /// <param name="feature">In: a voxel's own index where it is a feature, else −1. Out: its nearest feature's index.</param>
    public static void Run(int[] feature, Long3 shape)
    {
        int sz = (int)shape.Z, sy = (int)shape.Y, sx = (int)shape.X, sxy = sy * sx;
        int longest = Math.Max(sz, Math.Max(sy, sx));
        var line = new Line(longest);

        // Sweep 1 along z (plain 1-D nearest, ties to the lower z), then y, then x: every voxel ends up with the
        // best feature of its z-line, its (z, y) plane, then the block.
        for (int y = 0; y < sy; y++)
            for (int x = 0; x < sx; x++)
                line.Sweep(feature, y * sx + x, sxy, sz, sy, sx);
        for (int z = 0; z < sz; z++)
            for (int x = 0; x < sx; x++)
                line.Sweep(feature, z * sxy + x, sx, sy, sy, sx);
        for (int z = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
                line.Sweep(feature, (z * sy + y) * sx, 1, sx, sy, sx);
    }

    public static long SquaredDistance(int a, int b, int sy, int sx)
    {
        int sxy = sy * sx;
        long dz = a / sxy - b / sxy, dy = a % sxy / sx - b % sxy / sx, dx = a % sx - b % sx;
        return dz * dz + dy * dy + dx * dx;
    }

    /// <summary>Scratch for one line: the envelope's parabolas and their left boundaries as exact fractions.</summary>
    private sealed class Line(int length)
    {
        private readonly int[] _candidate = new int[length];   // the feature each position of the line holds, −1 for none
        private readonly long[] _height = new long[length];    // its squared distance off the line (the parabola's height)
        private readonly int[] _hull = new int[length];        // envelope: positions, left to right
        private readonly long[] _num = new long[length];       // hull[k] owns the positions p > num[k] / den[k] (k ≥ 1)
        private readonly long[] _den = new long[length];

        /// <summary>One line of <paramref name="n"/> voxels from <paramref name="start"/>, <paramref name="stride"/> apart.</summary>
        public void Sweep(int[] feature, int start, int stride, int n, int sy, int sx)
        {
            int k = -1;
            for (int q = 0; q < n; q++)
            {
                int index = start + q * stride;
                int f = _candidate[q] = feature[index];
                if (f < 0) continue;
                // The line's own coordinate of f equals q (earlier sweeps kept it in q's line), so the rest is height.
                long h = _height[q] = SquaredDistance(index, f, sy, sx);
                long num = 0, den = 1;
                while (k >= 0)
                {
                    // q beats hull[k] exactly for positions p > s = num / den (den > 0); at p = s they tie and the lower
                    // position, hull[k], wins. hull[k] owns (num[k]/den[k], …]: if s ≤ that boundary, q beats it on all of it.
                    int v = _hull[k];
                    num = h + (long)q * q - _height[v] - (long)v * v;
                    den = 2L * (q - v);
                    if (k > 0 && num * _den[k] <= _num[k] * den) { k--; continue; }
                    break;
                }
                k++;
                _hull[k] = q;
                _num[k] = num;
                _den[k] = den;
            }
            if (k < 0) return;                                   // no feature on this line: every position keeps −1
            int top = k;
            k = 0;
            for (int p = 0; p < n; p++)
            {
                while (k < top && p * _den[k + 1] > _num[k + 1]) k++;
                Debug.Assert(_candidate[_hull[k]] >= 0);
                feature[start + p * stride] = _candidate[_hull[k]];
            }
        }
    }
}
