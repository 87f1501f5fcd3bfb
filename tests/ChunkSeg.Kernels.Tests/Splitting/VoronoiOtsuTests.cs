using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Splitting;

namespace ChunkSeg.Kernels.Tests.Splitting;

/// <summary>
/// Voronoi-Otsu labelling against tools/reference/voronoi_otsu.py (clEsperanto's definition in numpy, written from
/// its source): the same labels, voxel for voxel, and the same Otsu threshold.
/// </summary>
public sealed class VoronoiOtsuTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    /// <summary>Nuclei-like blobs (some touching, some isolated), a flat plateau, depth attenuation and noise, as uint16 values.</summary>
    internal static float[] Nuclei(int sz, int sy, int sx, int count, double radius, int seed, bool plateau = true)
    {
        var rng = new Random(seed);
        var image = new float[sz * sy * sx];
        var centres = new List<(double Z, double Y, double X)>();
        for (int i = 0; i < count; i++)
        {
            var c = (Z: sz == 1 ? 0 : rng.NextDouble() * sz, Y: rng.NextDouble() * sy, X: rng.NextDouble() * sx);
            if (i % 3 == 1 && centres.Count > 0)
            {
                // Touching its predecessor: closer than two radii.
                var p = centres[^1];
                c = (sz == 1 ? 0 : Math.Clamp(p.Z + radius * 0.4, 0, sz - 1), Math.Clamp(p.Y + radius * 1.2, 0, sy - 1), Math.Clamp(p.X + radius * 0.9, 0, sx - 1));
            }
            centres.Add(c);
        }
        for (int z = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
                for (int x = 0; x < sx; x++)
                {
                    double v = 100;
                    foreach (var c in centres)
                    {
                        double d2 = (z - c.Z) * (z - c.Z) * 4 + (y - c.Y) * (y - c.Y) + (x - c.X) * (x - c.X);
                        v += 900 * Math.Exp(-d2 / (2 * radius * radius));
                    }
                    v *= 1 - 0.3 * z / Math.Max(1, sz);
                    v += rng.Next(0, 40);
                    image[(z * sy + y) * sx + x] = (float)Math.Round(Math.Min(v, 65535));
                }
        if (plateau)
        {
            // A flat-topped object: equal values, so equal blurred values, ties in maxima and flood.
            int pz = sz / 2, py = sy / 4, px = sx * 3 / 4;
            for (int z = Math.Max(0, pz - 3); z < Math.Min(sz, pz + 3); z++)
                for (int y = Math.Max(0, py - 5); y < Math.Min(sy, py + 5); y++)
                    for (int x = Math.Max(0, px - 5); x < Math.Min(sx, px + 5); x++)
                        image[(z * sy + y) * sx + x] = 1200;
        }
        return image;
    }

    private (uint[] Labels, double Threshold) Reference(float[] image, long[] shape, string spot, string outline)
    {
        NpyFile.Write(dir["in.npy"], DataType.Float32, shape, MemoryMarshal.AsBytes(image.AsSpan()));
        string output = PythonReference.Run("voronoi_otsu.py", dir["in.npy"], dir["out.npy"], spot, outline, "--otsu-trim");
        var info = JsonDocument.Parse(output).RootElement;
        var labels = MemoryMarshal.Cast<byte, uint>(NpyFile.Read(dir["out.npy"]).Data).ToArray();
        return (labels, info.GetProperty("threshold").GetDouble());
    }

    private static (double, double, double) Sigma(string text, bool threeD)
    {
        var parts = text.Split(',').Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        if (parts.Length == 1) return (threeD ? parts[0] : 0, parts[0], parts[0]);
        return threeD ? (parts[0], parts[1], parts[2]) : (0, parts[0], parts[1]);
    }

    [Theory]
    [InlineData(20, 40, 44, 9, 3.0, "2", "1", 1)]                 // 3D, isotropic sigmas
    [InlineData(16, 36, 40, 7, 3.5, "1,2,2", "0.5,1,1", 2)]       // 3D, anisotropic (z sampled coarser)
    [InlineData(24, 30, 30, 12, 2.5, "1.5", "1.5", 3)]            // 3D, crowded: many touching
    [InlineData(1, 64, 72, 10, 4.0, "2", "1", 4)]                 // 2D
    [InlineData(1, 48, 50, 6, 3.0, "3,1.5", "1,1", 5)]            // 2D, anisotropic
    public void Labels_equal_the_reference_voxel_for_voxel(int sz, int sy, int sx, int nuclei, double radius, string spot, string outline, int seed)
    {
        bool threeD = sz > 1;
        var image = Nuclei(sz, sy, sx, nuclei, radius, seed);
        long[] shape = threeD ? [sz, sy, sx] : [sy, sx];
        var (expected, threshold) = Reference(image, shape, spot, outline);

        var labels = new uint[image.Length];
        var result = VoronoiOtsu.Label(image, new Long3(sz, sy, sx), threeD,
            new VoronoiOtsuSigmas(Sigma(spot, threeD), Sigma(outline, threeD)), labels);
        Assert.Equal(threshold, result.Threshold);
        Assert.True(result.Seeds >= 2, $"the scene should have several seeds; found {result.Seeds}");
        int differ = expected.Zip(labels).Count(p => p.First != p.Second);
        Assert.True(differ == 0, $"{differ} of {labels.Length} voxels differ from the reference ({result.Seeds} seeds, threshold {result.Threshold})");
    }

    /// <summary>
    /// Probability-like maps (blobs scaled to [0, 1], saturated plateaus of exactly 1, as a classifier's output) split
    /// inside a thresholded foreground (`--split voronoi`), against the reference's --foreground mode.
    /// </summary>
    [Theory]
    [InlineData(18, 40, 44, 10, 3.0, "2", 0.5f, 1)]
    [InlineData(16, 36, 40, 8, 3.5, "1,2,2", 0.4f, 2)]
    [InlineData(1, 64, 72, 12, 4.0, "2", 0.5f, 3)]
    [InlineData(1, 48, 50, 6, 3.0, "3,1.5", 0.6f, 4)]
    public void A_given_foreground_splits_as_the_reference_splits_it(int sz, int sy, int sx, int nuclei, double radius, string spot, float threshold, int seed)
    {
        bool threeD = sz > 1;
        var probabilities = Nuclei(sz, sy, sx, nuclei, radius, seed, plateau: false).Select(v => Math.Clamp((v - 150f) / 700f, 0f, 1f)).ToArray();
        var mask = probabilities.Select(p => p >= threshold ? (byte)1 : (byte)0).ToArray();
        long[] shape = threeD ? [sz, sy, sx] : [sy, sx];
        NpyFile.Write(dir["p.npy"], DataType.Float32, shape, MemoryMarshal.AsBytes(probabilities.AsSpan()));
        NpyFile.Write(dir["mask.npy"], DataType.UInt8, shape, mask);
        PythonReference.Run("voronoi_otsu.py", dir["p.npy"], dir["split.npy"], spot, "--foreground", dir["mask.npy"]);
        var expected = MemoryMarshal.Cast<byte, uint>(NpyFile.Read(dir["split.npy"]).Data).ToArray();

        var labels = new uint[probabilities.Length];
        var (seeds, _) = VoronoiOtsu.Split(probabilities, mask, new Long3(sz, sy, sx), threeD, Sigma(spot, threeD), labels);
        Assert.True(seeds >= 2 && probabilities.Count(p => p == 1f) > 0, $"the scene should have several seeds and saturated plateaus; {seeds} seeds");
        int differ = expected.Zip(labels).Count(p => p.First != p.Second);
        Assert.True(differ == 0, $"{differ} of {labels.Length} voxels differ from the reference ({seeds} seeds)");
        // Every foreground component holding a seed is split; one without a seed stays background, as in clEsperanto.
        Assert.All(labels.Zip(mask), p => Assert.True(p.First == 0 || p.Second != 0));
    }

    [Fact]
    public void A_constant_image_has_no_objects()
    {
        var image = Enumerable.Repeat(500f, 8 * 10 * 12).ToArray();
        var labels = new uint[image.Length];
        var result = VoronoiOtsu.Label(image, new Long3(8, 10, 12), true, new VoronoiOtsuSigmas((1, 1, 1), (1, 1, 1)), labels);
        Assert.Equal(0, result.Seeds);
        Assert.All(labels, l => Assert.Equal(0u, l));
    }
}

/// <summary>Voronoi-Otsu in chunks (VoronoiOtsuChunk's passes, then flood rounds) equals the whole image, bit for bit.</summary>
public sealed class VoronoiOtsuChunkTests
{
    [Theory]
    [InlineData(18, 40, 44, 9, 3.0, 1.0, 2.0, 5, 9, 11, 2, 1)]
    [InlineData(18, 40, 44, 9, 3.0, 1.0, 2.0, 18, 40, 44, 4, 1)]        // one chunk: the rounds alone
    [InlineData(16, 36, 40, 14, 3.5, 1.5, 1.0, 6, 7, 8, 4, 2)]
    [InlineData(12, 33, 30, 5, 5.0, 2.0, 1.0, 4, 6, 5, 2, 3)]           // big objects, small chunks: floods many chunks wide
    [InlineData(1, 64, 72, 10, 4.0, 2.0, 1.0, 1, 13, 17, 4, 4)]         // 2D
    [InlineData(1, 50, 50, 8, 6.0, 1.0, 1.0, 1, 5, 6, 2, 5)]
    public void Chunked_equals_whole(int sz, int sy, int sx, int nuclei, double radius, double spot, double outline,
        int cz, int cy, int cx, int rounds, int seed)
    {
        bool threeD = sz > 1;
        var image = VoronoiOtsuTests.Nuclei(sz, sy, sx, nuclei, radius, seed);
        var shape = new Long3(sz, sy, sx);
        var sigmas = new VoronoiOtsuSigmas((threeD ? spot : 0, spot, spot), (threeD ? outline : 0, outline, outline));
        var whole = new uint[image.Length];
        var expected = VoronoiOtsu.Label(image, shape, threeD, sigmas, whole);

        var steps = new VoronoiOtsuChunk(sigmas, threeD);
        var volume = new Box3(Long3.Zero, shape);
        var chunk = new Long3(cz, cy, cx);
        var cores = Cores(shape, chunk).ToList();

        // Pass 1: the outline blur and its extremes, each chunk from its own read box.
        var outlines = cores.Select(core => OutlineOf(steps, image, shape, core, steps.OutlineHalo, volume)).ToList();
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (var blurred in outlines)
        {
            var (lo, hi) = OtsuThreshold.Extremes(blurred);
            min = Math.Min(min, lo);
            max = Math.Max(max, hi);
        }
        // Pass 2: maxima keys, and counts per row of the outline.
        var rows = new long[sy * OtsuThreshold.Bins];
        var coreKeys = new List<ulong[]>();
        foreach (var (core, blurred) in cores.Zip(outlines))
        {
            var counts = new long[core.Size.Y * OtsuThreshold.Bins];
            OtsuThreshold.CountRows(blurred, (int)core.Size.Z, (int)core.Size.Y, (int)core.Size.X,
                (0, 0, 0, (int)core.Size.Z, (int)core.Size.Y, (int)core.Size.X), min, max, counts);
            for (int i = 0; i < counts.Length; i++) rows[core.Start.Y * OtsuThreshold.Bins + i] += counts[i];
            var read = core.Grow(steps.SpotHalo, volume);
            var k = new ulong[core.VoxelCount];
            steps.Maxima(Crop(image, shape, read), read.Size, new Box3(core.Start - read.Start, core.Size), read.Start, shape, k);
            coreKeys.Add(k);
        }
        double threshold = OtsuThreshold.FromRowCounts(rows, min, max);
        Assert.Equal(expected.Threshold, threshold);

        // The foreground and the seeds, per chunk.
        var mask = new byte[image.Length];
        var keys = new ulong[image.Length];
        int seeds = 0;
        for (int c = 0; c < cores.Count; c++)
        {
            var m = new byte[cores[c].VoxelCount];
            seeds += VoronoiOtsuChunk.Foreground(outlines[c], (float)threshold, m, coreKeys[c]);
            Paste(m, cores[c], mask, shape);
            Paste(coreKeys[c], cores[c], keys, shape);
        }
        Assert.Equal(expected.Seeds, seeds);

        // The flood in rounds of `rounds`·2 iterations, then the seeds numbered.
        var (flooded, _) = VoronoiFloodTests.FloodInRounds(keys, mask, shape, chunk, 2 * rounds, threeD);
        var labels = new uint[image.Length];
        VoronoiOtsu.NumberSeeds(flooded, labels);
        int differ = whole.Zip(labels).Count(p => p.First != p.Second);
        Assert.True(differ == 0, $"{differ} voxels differ between chunked ({chunk}) and whole");
    }

    private static float[] OutlineOf(VoronoiOtsuChunk steps, float[] image, Long3 shape, Box3 core, Halo halo, Box3 volume)
    {
        var read = core.Grow(halo, volume);
        var blurred = new float[core.VoxelCount];
        steps.Outline(Crop(image, shape, read), read.Size, new Box3(core.Start - read.Start, core.Size), blurred);
        return blurred;
    }

    private static IEnumerable<Box3> Cores(Long3 shape, Long3 chunk)
    {
        for (long z = 0; z < shape.Z; z += chunk.Z)
            for (long y = 0; y < shape.Y; y += chunk.Y)
                for (long x = 0; x < shape.X; x += chunk.X)
                    yield return new Box3(new Long3(z, y, x), chunk).Intersect(new Box3(Long3.Zero, shape));
    }

    private static float[] Crop(float[] source, Long3 shape, Box3 box)
    {
        var result = new float[box.VoxelCount];
        VoronoiOtsuChunk.Crop(source, shape, box, result);
        return result;
    }

    private static void Paste<T>(T[] core, Box3 box, T[] target, Long3 shape)
    {
        int i = 0;
        for (long z = box.Start.Z; z < box.End.Z; z++)
            for (long y = box.Start.Y; y < box.End.Y; y++)
                for (long x = box.Start.X; x < box.End.X; x++)
                    target[(z * shape.Y + y) * shape.X + x] = core[i++];
    }
}
