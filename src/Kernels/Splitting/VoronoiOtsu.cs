// clEsperanto's voronoi_otsu_labeling(image, spot_sigma, outline_sigma) on one block holding the whole image.
//
//      image ──▶ blur(spot σ) ──▶ box maxima ─────────────┐
//        │                                                 ├─▶ seeds = maxima ∧ foreground ──▶ flood through the
//        └────▶ blur(outline σ) ──▶ Otsu ──▶ foreground ───┘     foreground (VoronoiFlood) ──▶ labels 1 … seeds
//
// The seeds are numbered as clEsperanto numbers them: by their flat index in Fortran order (x slowest, then y,
// then z; clEsperanto's pixel index x·H·D + y·D + z + 1), and the flood gives a voxel the largest number around
// it, so that order decides every tie. A chunked run keeps the same order by flooding with those indices as keys
// (they are global) and numbering the seeds last. docs/voronoi-otsu.md gives each step's definition and source.
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Kernels.Splitting;

/// <summary>The two sigmas of a Voronoi-Otsu labelling, per axis (z, y, x) in voxels (clEsperanto uses one for all).</summary>
public sealed record VoronoiOtsuSigmas((double Z, double Y, double X) Spot, (double Z, double Y, double X) Outline)
{
    /// <summary>
    /// A split of a given foreground: only the spot blur; the "outline" is the foreground itself as 1 and 0 (no blur),
    /// cut at <see cref="MaskCut"/>.
    /// </summary>
    public static VoronoiOtsuSigmas SpotOnly((double Z, double Y, double X) spot) => new(spot, (0, 0, 0));

    /// <summary>Where a foreground given as 1 (foreground) and 0 is cut.</summary>
    public const float MaskCut = 0.5f;

    public ClesperantoGaussian SpotBlur() => new(Spot.Z, Spot.Y, Spot.X);

    public ClesperantoGaussian OutlineBlur() => new(Outline.Z, Outline.Y, Outline.X);
}

/// <summary>What a whole-image labelling found besides the labels.</summary>
public readonly record struct VoronoiOtsuResult(double Threshold, int Seeds, int FloodIterations);

public static class VoronoiOtsu
{
    /// <summary>
    /// Labels <paramref name="image"/> (z, y, x; a 2D image has <c>shape.Z</c> 1 and <paramref name="threeD"/> false) into
    /// <paramref name="labels"/>: 0 background, seeds numbered 1 … n as clEsperanto numbers them.
    /// </summary>
    public static VoronoiOtsuResult Label(ReadOnlySpan<float> image, Long3 shape, bool threeD, VoronoiOtsuSigmas sigmas, Span<uint> labels)
    {
        ArgumentNullException.ThrowIfNull(sigmas);
        int sz = checked((int)shape.Z), sy = checked((int)shape.Y), sx = checked((int)shape.X);
        int n = checked(sz * sy * sx);
        if (image.Length < n || labels.Length < n) throw new ArgumentException($"a {shape} image needs {n} values and labels");
        if (!threeD && sz != 1) throw new ArgumentException($"a 2D image has one plane; got {sz}");
        // The chunked passes with one chunk holding everything (VoronoiOtsuChunk): outline, maxima and histogram, seeds.
        var steps = new VoronoiOtsuChunk(sigmas, threeD);
        var all = new Box3(Long3.Zero, shape);
        var outline = new float[n];
        steps.Outline(image, shape, all, outline);
        var (min, max) = OtsuThreshold.Extremes(outline);
        var rowCounts = new long[sy * OtsuThreshold.Bins];
        OtsuThreshold.CountRows(outline, sz, sy, sx, (0, 0, 0, sz, sy, sx), min, max, rowCounts);
        double threshold = OtsuThreshold.FromRowCounts(rowCounts, min, max);
        var (seeds, iterations) = FloodSeeds(steps, image, outline, (float)threshold, shape, threeD, labels);
        return new VoronoiOtsuResult(threshold, seeds, iterations);
    }

    /// <summary>
    /// The seeded split of a foreground found another way (<c>--split voronoi</c>): seeds are the maxima of
    /// <paramref name="image"/> blurred by <paramref name="spot"/> (z, y, x in voxels) inside <paramref name="mask"/>
    /// (non-zero: foreground), flooded through it as Voronoi-Otsu floods; labels numbered as <see cref="Label"/> numbers them.
    /// </summary>
    public static (int Seeds, int FloodIterations) Split(ReadOnlySpan<float> image, ReadOnlySpan<byte> mask, Long3 shape, bool threeD,
        (double Z, double Y, double X) spot, Span<uint> labels)
    {
        int n = checked((int)shape.Volume);
        if (image.Length < n || mask.Length < n || labels.Length < n) throw new ArgumentException($"a {shape} image needs {n} values, mask voxels and labels");
        if (!threeD && shape.Z != 1) throw new ArgumentException($"a 2D image has one plane; got {shape.Z}");
        var steps = new VoronoiOtsuChunk(VoronoiOtsuSigmas.SpotOnly(spot), threeD);
        var foreground = new float[n];
        for (int i = 0; i < n; i++) foreground[i] = mask[i] != 0 ? 1f : 0f;
        return FloodSeeds(steps, image, foreground, VoronoiOtsuSigmas.MaskCut, shape, threeD, labels);
    }

    /// <summary>Maxima of the spot blur, kept where <c>outline &gt; cut</c>, flooded there and numbered.</summary>
    private static (int Seeds, int Iterations) FloodSeeds(VoronoiOtsuChunk steps, ReadOnlySpan<float> image, ReadOnlySpan<float> outline, float cut,
        Long3 shape, bool threeD, Span<uint> labels)
    {
        int n = (int)shape.Volume;
        var mask = new byte[n];
        var keys = new ulong[n];
        steps.Maxima(image, shape, new Box3(Long3.Zero, shape), Long3.Zero, shape, keys);
        int seeds = VoronoiOtsuChunk.Foreground(outline, cut, mask, keys);
        int iterations = VoronoiFlood.Run<ulong>(keys, mask, (int)shape.Z, (int)shape.Y, (int)shape.X, threeD);
        NumberSeeds(keys, labels[..n]);
        return (seeds, iterations);
    }

    /// <summary>clEsperanto's pixel index of (z, y, x) plus one: x slowest, z fastest (H = height, D = depth).</summary>
    public static ulong FortranKey(long z, long y, long x, long height, long depth) => (ulong)((x * height + y) * depth + z) + 1;

    /// <summary>Replaces each key by its rank among the distinct keys present (1 … n), 0 staying 0.</summary>
    public static void NumberSeeds(ReadOnlySpan<ulong> keys, Span<uint> labels)
    {
        var distinct = new SortedSet<ulong>();
        foreach (ulong k in keys) if (k != 0) distinct.Add(k);
        var rank = new Dictionary<ulong, uint>(distinct.Count);
        uint next = 1;
        foreach (ulong k in distinct) rank[k] = next++;
        for (int i = 0; i < keys.Length; i++) labels[i] = keys[i] == 0 ? 0 : rank[keys[i]];
    }
}
