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
        var mask = new byte[n];
        var keys = new ulong[n];
        steps.Maxima(image, shape, all, Long3.Zero, shape, keys);
        int seeds = VoronoiOtsuChunk.Foreground(outline, (float)threshold, mask, keys);
        int iterations = VoronoiFlood.Run<ulong>(keys, mask, sz, sy, sx, threeD);
        NumberSeeds(keys, labels[..n]);
        return new VoronoiOtsuResult(threshold, seeds, iterations);
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
