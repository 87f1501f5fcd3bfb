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
