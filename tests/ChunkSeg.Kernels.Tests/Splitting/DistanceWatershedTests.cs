using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Splitting;

namespace ChunkSeg.Kernels.Tests.Splitting;

/// <summary>
/// The distance split's kernels against tools/reference/distance_split.py (the definition in numpy, brute force): the
/// squared distance map bit for bit (and within rounding of scipy's distance_transform_edt), the keys voxel for voxel;
/// a chunk's distance map, where ExactDistance proves it, equal to the whole image's; and the split beside
/// scikit-image's marker watershed.
/// </summary>
public sealed class DistanceWatershedTests : IDisposable
{
    private readonly TempDir dir = new();

    public void Dispose() => dir.Dispose();

    /// <summary>Balls of varied radii in physical units (some overlapping their predecessor), a flat slab (plateaus), as a mask.</summary>
    internal static byte[] Balls(int sz, int sy, int sx, int count, double radius, (double Z, double Y, double X) spacing, int seed, bool slab = true)
    {
        var rng = new Random(seed);
        var balls = new List<(double Z, double Y, double X, double R)>();
        for (int i = 0; i < count; i++)
        {
            double r = radius * (0.6 + 0.8 * rng.NextDouble());
            var c = (Z: sz == 1 ? 0 : rng.NextDouble() * sz * spacing.Z, Y: rng.NextDouble() * sy * spacing.Y, X: rng.NextDouble() * sx * spacing.X);
            if (i % 2 == 1)
            {
                // Touching its predecessor: centres closer than the radii's sum, a neck between.
                var p = balls[^1];
                c = (p.Z, p.Y + 0.9 * (p.R + r) * 0.6, p.X + 0.9 * (p.R + r) * 0.8);
            }
            balls.Add((c.Z, c.Y, c.X, r));
        }
        var mask = new byte[sz * sy * sx];
        for (int z = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
                for (int x = 0; x < sx; x++)
                    foreach (var b in balls)
                    {
                        double dz = z * spacing.Z - b.Z, dy = y * spacing.Y - b.Y, dx = x * spacing.X - b.X;
                        if (dz * dz + dy * dy + dx * dx < b.R * b.R) { mask[(z * sy + y) * sx + x] = 1; break; }
                    }
        if (slab)
            for (int z = 0; z < sz; z++)
                for (int y = sy / 8; y < sy / 8 + 4 && y < sy; y++)
                    for (int x = sx / 4; x < sx * 3 / 4; x++)
                        mask[(z * sy + y) * sx + x] = 1;
        return mask;
    }

    private (ulong[] Keys, double[] Squared, JsonElement Info) Reference(byte[] mask, int sz, int sy, int sx, string spacing, string window, bool skimage = false)
    {
        long[] shape = sz > 1 ? [sz, sy, sx] : [sy, sx];
        NpyFile.Write(dir["mask.npy"], DataType.UInt8, shape, mask);
        string[] extra = skimage ? ["--skimage", dir["skimage.npy"]] : [];
        string output = PythonReference.Run("distance_split.py", [dir["mask.npy"], dir["keys.npy"], "--spacing", spacing, "--min-distance", window,
            "--distance", dir["d2.npy"], .. extra]);
        return (MemoryMarshal.Cast<byte, ulong>(NpyFile.Read(dir["keys.npy"]).Data).ToArray(),
            MemoryMarshal.Cast<byte, double>(NpyFile.Read(dir["d2.npy"]).Data).ToArray(), JsonDocument.Parse(output).RootElement);
    }

    private static (double Z, double Y, double X) Spacing(string text, bool threeD)
    {
        var v = text.Split(',').Select(p => double.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        return threeD ? (v[0], v[1], v[2]) : (1, v[0], v[1]);
    }

    private static Halo Window(string text, bool threeD)
    {
        var v = text.Split(',').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        return threeD ? new Halo(v[0], v[1], v[2]) : new Halo(0, v[0], v[1]);
    }

    [Theory]
    [InlineData(20, 36, 40, 6, 6.0, "1,1,1", "2,2,2", 1)]              // 3D isotropic, touching pairs, a slab's plateau
    [InlineData(14, 40, 44, 6, 5.0, "2,0.65,0.65", "1,3,3", 2)]        // 3D anisotropic, spacings not exact in binary
    [InlineData(18, 30, 30, 10, 4.0, "1.7,1,1", "1,1,1", 3)]           // 3D crowded, every maximum a seed
    [InlineData(1, 64, 72, 8, 7.0, "1,1", "3,3", 4)]                   // 2D, a wide window: the filling flood runs
    [InlineData(1, 50, 60, 8, 6.0, "0.5,0.3", "2,4", 5)]               // 2D anisotropic
    public void The_split_equals_the_reference_voxel_for_voxel(int sz, int sy, int sx, int balls, double radius, string spacing, string window, int seed)
    {
        bool threeD = sz > 1;
        var s = Spacing(spacing, threeD);
        var mask = Balls(sz, sy, sx, balls, radius, s, seed);
        var (expected, squared, info) = Reference(mask, sz, sy, sx, spacing, window);

        var d2 = new double[mask.Length];
        ExactDistance.Squared(mask, sz, sy, sx, s, d2);
        int distances = squared.Zip(d2).Count(p => BitConverter.DoubleToInt64Bits(p.First) != BitConverter.DoubleToInt64Bits(p.Second));
        Assert.True(distances == 0, $"{distances} squared distances differ from the reference's");
        Assert.True(info.GetProperty("scipy_max_abs_error_um").GetDouble() < 1e-9, $"the definition strays from scipy's distance_transform_edt: {info}");

        var keys = new ulong[mask.Length];
        DistanceWatershed.Split(mask, sz, sy, sx, s, Window(window, threeD), threeD, keys);
        Assert.True(info.GetProperty("objects").GetInt32() >= 3, $"the scene should hold several objects: {info}");
        int differ = expected.Zip(keys).Count(p => p.First != p.Second);
        Assert.True(differ == 0, $"{differ} of {keys.Length} voxels differ from the reference ({info})");
        Assert.All(keys.Zip(mask), p => Assert.Equal(p.Second != 0, p.First != 0));   // every foreground voxel is in an object
    }

    [Fact]
    public void The_filling_flood_gives_a_suppressed_maximum_to_its_neighbour()
    {
        // Two discs joined by a neck; the small one's centre lies within the window of the large one's: one seed, and
        // the small disc's top, which no water reaches downhill, is filled from the neck.
        int sy = 40, sx = 60;
        var mask = new byte[sy * sx];
        for (int y = 0; y < sy; y++)
            for (int x = 0; x < sx; x++)
            {
                double a = (y - 20) * (y - 20) + (x - 18) * (x - 18), b = (y - 20) * (y - 20) + (x - 33) * (x - 33);
                if (a < 11 * 11 || b < 6 * 6) mask[y * sx + x] = 1;
            }
        var (expected, _, info) = Reference(mask, 1, sy, sx, "1,1", "16,16");
        Assert.True(info.GetProperty("filling_iterations").GetInt32() > 0, $"the filling flood should run: {info}");
        var keys = new ulong[mask.Length];
        DistanceWatershed.Split(mask, 1, sy, sx, (1, 1, 1), new Halo(0, 16, 16), false, keys);
        Assert.Equal(expected, keys);
        Assert.Single(keys.Where(k => k != 0).Distinct());
        // With a narrow window each disc is its own object, cut at the neck.
        DistanceWatershed.Split(mask, 1, sy, sx, (1, 1, 1), new Halo(0, 2, 2), false, keys);
        Assert.Equal(2, keys.Where(k => k != 0).Distinct().Count());
        Assert.NotEqual(keys[20 * sx + 18], keys[20 * sx + 33]);
    }

    [Theory]
    [InlineData(20, 36, 40, 6, 6.0, "1,1,1", "2,2,2", 11)]
    [InlineData(1, 64, 72, 10, 6.0, "1,1", "2,2", 12)]
    public void The_split_agrees_with_scikit_image_marker_watershed_from_the_same_seeds(int sz, int sy, int sx, int balls, double radius, string spacing,
        string window, int seed)
    {
        bool threeD = sz > 1;
        var mask = Balls(sz, sy, sx, balls, radius, Spacing(spacing, threeD), seed, slab: false);
        var (keys, _, info) = Reference(mask, sz, sy, sx, spacing, window, skimage: true);
        var skimage = MemoryMarshal.Cast<byte, ulong>(NpyFile.Read(dir["skimage.npy"]).Data).ToArray();
        // The same markers, so the same objects; they may differ only along the cuts, where the priority flood takes ties in
        // queue order: every object overlaps its scikit-image twin by most of its voxels.
        int foreground = mask.Count(m => m != 0), agree = keys.Zip(skimage).Count(p => p.First != 0 && p.First == p.Second);
        var overlaps = keys.Where(k => k != 0).Distinct().Select(k =>
        {
            int both = 0, either = 0;
            for (int i = 0; i < keys.Length; i++)
            {
                bool a = keys[i] == k, b = skimage[i] == k;
                if (a && b) both++;
                if (a || b) either++;
            }
            return (double)both / either;
        }).ToList();
        string context = $"{agree} of {foreground} foreground voxels agree; object IoU {string.Join(", ", overlaps.Select(o => o.ToString("F2", CultureInfo.InvariantCulture)))} ({info})";
        Assert.True(agree >= 0.93 * foreground && overlaps.Min() >= 0.75, context);
    }

    /// <summary>
    /// A chunk's read box: where ExactDistance.Unproven proves the core, its distances are the whole image's, bit for
    /// bit; growing the halo as the stage does ends at a proof. 200 random images, boxes, halos and voxel sizes.
    /// </summary>
    [Fact]
    public void A_chunk_proven_by_its_read_box_equals_the_whole_image()
    {
        var rng = new Random(2026);
        for (int trial = 0; trial < 200; trial++)
        {
            int sz = rng.Next(1, 15), sy = rng.Next(8, 31), sx = rng.Next(8, 31);
            var spacing = (new[] { 1.0, 2.5, 0.7 }[rng.Next(3)], new[] { 1.0, 0.65 }[rng.Next(2)], 0.65);
            var mask = Balls(sz, sy, sx, 4, new[] { 2.0, 4.0, 9.0 }[rng.Next(3)], spacing, rng.Next());
            int z0 = rng.Next(sz), y0 = rng.Next(sy), x0 = rng.Next(sx);
            int z1 = rng.Next(z0 + 1, sz + 1), y1 = rng.Next(y0 + 1, sy + 1), x1 = rng.Next(x0 + 1, sx + 1);
            var whole = new double[mask.Length];
            ExactDistance.Squared(mask, sz, sy, sx, spacing, whole);
            string context = $"trial {trial}: {sz}x{sy}x{sx}, core [{z0},{y0},{x0})-[{z1},{y1},{x1}), spacing {spacing}";
            for (int h = rng.Next(0, 6); ; h = 2 * h + 1)
            {
                int bz0 = Math.Max(0, z0 - h), by0 = Math.Max(0, y0 - h), bx0 = Math.Max(0, x0 - h);
                int bz1 = Math.Min(sz, z1 + h), by1 = Math.Min(sy, y1 + h), bx1 = Math.Min(sx, x1 + h);
                int bz = bz1 - bz0, by = by1 - by0, bx = bx1 - bx0;
                var block = new byte[bz * by * bx];
                for (int z = 0; z < bz; z++)
                    for (int y = 0; y < by; y++)
                        for (int x = 0; x < bx; x++)
                            block[(z * by + y) * bx + x] = mask[((z + bz0) * sy + y + by0) * sx + x + bx0];
                var d2 = new double[block.Length];
                ExactDistance.Squared(block, bz, by, bx, spacing, d2);
                bool everything = bz0 == 0 && by0 == 0 && bx0 == 0 && bz1 == sz && by1 == sy && bx1 == sx;
                var unproven = ExactDistance.Unproven(d2, bz, by, bx, (z0 - bz0, y0 - by0, x0 - bx0, z1 - bz0, y1 - by0, x1 - bx0), spacing,
                    (bz0 > 0, by0 > 0, bx0 > 0), (bz1 < sz, by1 < sy, bx1 < sx));
                if (unproven is not null)
                {
                    Assert.False(everything, $"{context}: the whole image is always proven");
                    continue;
                }
                for (int z = z0; z < z1; z++)
                    for (int y = y0; y < y1; y++)
                        for (int x = x0; x < x1; x++)
                            Assert.True(whole[(z * sy + y) * sx + x] == d2[((z - bz0) * by + y - by0) * bx + x - bx0], $"{context}, halo {h}: ({z},{y},{x})");
                break;
            }
        }
    }

    [Fact]
    public void An_image_without_background_is_infinitely_far_from_it_and_one_object()
    {
        var mask = Enumerable.Repeat((byte)1, 4 * 5 * 6).ToArray();
        var d2 = new double[mask.Length];
        ExactDistance.Squared(mask, 4, 5, 6, (1, 1, 1), d2);
        Assert.All(d2, d => Assert.True(double.IsPositiveInfinity(d)));
        var keys = new ulong[mask.Length];
        DistanceWatershed.Split(mask, 4, 5, 6, (1, 1, 1), Halo.Uniform(1), true, keys);
        Assert.Single(keys.Distinct());
        Assert.NotEqual(0UL, keys[0]);
    }
}
