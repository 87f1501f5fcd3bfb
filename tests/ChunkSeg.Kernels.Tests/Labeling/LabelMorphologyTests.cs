using System.Globalization;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Labeling;

namespace ChunkSeg.Kernels.Tests.Labeling;

/// <summary>
/// Label dilation and erosion against tools/reference/expand_shrink.py (scikit-image's expand_labels; the erosion
/// with scipy's EDT per label), voxel for voxel, ties at equal distance included; and any core of a block grown by
/// the reach equal to the same core of the whole volume.
/// </summary>
public sealed class LabelMorphologyTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Labels 1..values on a background: sparse seeds (ties everywhere) or dense blobs (touching labels).</summary>
    internal static ulong[] RandomLabels(int sz, int sy, int sx, double density, int values, int seed, bool blobs)
    {
        var rng = new Random(seed);
        var labels = new ulong[sz * sy * sx];
        if (!blobs)
        {
            for (int i = 0; i < labels.Length; i++)
                if (rng.NextDouble() < density) labels[i] = (ulong)rng.Next(1, values + 1);
            return labels;
        }
        int count = Math.Max(1, (int)(density * labels.Length / 20));
        for (int k = 0; k < count; k++)
        {
            int cz = rng.Next(sz), cy = rng.Next(sy), cx = rng.Next(sx);
            double radius = 1 + rng.NextDouble() * 3;
            ulong value = (ulong)rng.Next(1, values + 1);
            for (int z = 0; z < sz; z++)
                for (int y = 0; y < sy; y++)
                    for (int x = 0; x < sx; x++)
                        if ((z - cz) * (z - cz) + (y - cy) * (y - cy) + (x - cx) * (x - cx) <= radius * radius)
                            labels[(z * sy + y) * sx + x] = value;
        }
        return labels;
    }

    private ulong[] Reference(string mode, ulong[] labels, long[] shape, double radius)
    {
        NpyFile.Write(_dir["in.npy"], DataType.UInt64, shape, MemoryMarshal.AsBytes(labels.AsSpan()));
        PythonReference.Run("expand_shrink.py", mode, _dir["in.npy"], _dir["out.npy"], radius.ToString("R", CultureInfo.InvariantCulture));
        return MemoryMarshal.Cast<byte, ulong>(NpyFile.Read(_dir["out.npy"]).Data).ToArray();
    }

    [Theory]
    [InlineData(LabelMorphologyMode.Dilate, 9, 14, 17, 0.02, false, 1.0, 1)]     // sparse seeds: ties at every distance
    [InlineData(LabelMorphologyMode.Dilate, 9, 14, 17, 0.03, false, 2.5, 2)]
    [InlineData(LabelMorphologyMode.Dilate, 10, 13, 15, 0.01, false, 4.0, 3)]
    [InlineData(LabelMorphologyMode.Dilate, 12, 16, 18, 0.3, true, 2.5, 4)]      // blobs, touching
    [InlineData(LabelMorphologyMode.Dilate, 1, 40, 44, 0.02, false, 2.5, 5)]     // 2D
    [InlineData(LabelMorphologyMode.Dilate, 1, 33, 31, 0.005, false, 4.0, 6)]
    [InlineData(LabelMorphologyMode.Erode, 12, 16, 18, 0.5, true, 1.0, 7)]
    [InlineData(LabelMorphologyMode.Erode, 12, 16, 18, 0.6, true, 2.5, 8)]
    [InlineData(LabelMorphologyMode.Erode, 14, 18, 16, 1.0, true, 4.0, 9)]
    [InlineData(LabelMorphologyMode.Erode, 8, 10, 12, 0.6, false, 1.5, 10)]      // speckle: almost all erodes
    [InlineData(LabelMorphologyMode.Erode, 1, 40, 44, 0.8, true, 2.5, 11)]       // 2D
    public void Equals_the_reference_voxel_for_voxel(LabelMorphologyMode mode, int sz, int sy, int sx, double density, bool blobs, double radius, int seed)
    {
        var labels = RandomLabels(sz, sy, sx, density, 5, seed, blobs);
        long[] shape = sz == 1 ? [sy, sx] : [sz, sy, sx];
        var expected = Reference(mode == LabelMorphologyMode.Dilate ? "expand" : "shrink", labels, shape, radius);
        var actual = new LabelMorphology(mode, radius).Apply(labels, new Long3(sz, sy, sx));
        int changed = expected.Zip(labels).Count(p => p.First != p.Second);
        Assert.True(changed > 0, "the case should change some voxels");
        int differ = expected.Zip(actual).Count(p => p.First != p.Second);
        Assert.True(differ == 0, $"{differ} of {labels.Length} voxels differ from the reference ({changed} changed there)");
    }

    [Fact]
    public void Ties_go_to_the_smallest_x_then_y_then_z_as_scipy_reports_them()
    {
        // Along z: (2,0,0) is 2 from both; the lower z wins.
        var column = new ulong[5];
        column[0] = 1; column[4] = 2;
        var line = new LabelMorphology(LabelMorphologyMode.Dilate, 2).Apply(column, new Long3(5, 1, 1));
        Assert.Equal(Reference("expand", column, [5, 1, 1], 2), line);
        Assert.Equal(1ul, line[2]);

        // x against z: (1,0,1) is √2 from (0,0,2) and (2,0,0); the smaller x wins although its z is larger.
        var slab = new ulong[3 * 3];
        slab[0 * 3 + 2] = 5; slab[2 * 3 + 0] = 6;
        var xz = new LabelMorphology(LabelMorphologyMode.Dilate, 1.5).Apply(slab, new Long3(3, 1, 3));
        Assert.Equal(Reference("expand", slab, [3, 1, 3], 1.5), xz);
        Assert.Equal(6ul, xz[1 * 3 + 1]);

        // 2D, x against y: (1,1) is √2 from (0,2) and (2,0); the smaller x wins: (2,0).
        var plane = new ulong[3 * 3];
        plane[0 * 3 + 2] = 7; plane[2 * 3 + 0] = 9;
        var xy = new LabelMorphology(LabelMorphologyMode.Dilate, 1.5).Apply(plane, new Long3(1, 3, 3));
        Assert.Equal(Reference("expand", plane, [3, 3], 1.5), xy);
        Assert.Equal(9ul, xy[1 * 3 + 1]);

        // y against z at equal x: (1,1,0) is √2 from (0,2,0) and (2,0,0); the smaller y wins.
        var yz = new ulong[3 * 3];
        yz[(0 * 3 + 2)] = 3; yz[(2 * 3 + 0)] = 4;
        var byY = new LabelMorphology(LabelMorphologyMode.Dilate, 1.5).Apply(yz, new Long3(3, 3, 1));
        Assert.Equal(Reference("expand", yz, [3, 3, 1], 1.5), byY);
        Assert.Equal(4ul, byY[1 * 3 + 1]);
    }

    [Fact]
    public void A_core_grown_by_the_reach_equals_the_whole_volume_for_any_core()
    {
        var rng = new Random(12);
        for (int trial = 0; trial < 120; trial++)
        {
            bool twoD = trial % 4 == 0;
            int sz = twoD ? 1 : rng.Next(1, 12), sy = rng.Next(1, 16), sx = rng.Next(1, 16);
            var mode = trial % 2 == 0 ? LabelMorphologyMode.Dilate : LabelMorphologyMode.Erode;
            double radius = new[] { 0.5, 1, 1.5, 2.5, 3, 4 }[rng.Next(6)];
            var labels = RandomLabels(sz, sy, sx, mode == LabelMorphologyMode.Dilate ? 0.05 : 0.7, 4, trial, blobs: trial % 3 != 0);
            var shape = new Long3(sz, sy, sx);
            var morphology = new LabelMorphology(mode, radius);
            var whole = morphology.Apply(labels, shape);

            var start = new Long3(rng.Next(sz), rng.Next(sy), rng.Next(sx));
            var core = Box3.FromBounds(start, new Long3(rng.Next((int)start.Z + 1, sz + 1), rng.Next((int)start.Y + 1, sy + 1), rng.Next((int)start.X + 1, sx + 1)));
            int reach = morphology.Reach;
            var block = core.Grow(new Halo(twoD ? 0 : reach, reach, reach), new Box3(Long3.Zero, shape));
            var part = new ulong[block.VoxelCount];
            for (long z = 0, i = 0; z < block.Size.Z; z++)
                for (long y = 0; y < block.Size.Y; y++)
                    for (long x = 0; x < block.Size.X; x++)
                        part[i++] = labels[((block.Start.Z + z) * sy + block.Start.Y + y) * sx + block.Start.X + x];
            var output = new ulong[core.VoxelCount];
            morphology.Apply(part, block.Size, new Box3(core.Start - block.Start, core.Size), output);
            for (long z = 0, i = 0; z < core.Size.Z; z++)
                for (long y = 0; y < core.Size.Y; y++)
                    for (long x = 0; x < core.Size.X; x++, i++)
                    {
                        ulong expected = whole[((core.Start.Z + z) * sy + core.Start.Y + y) * sx + core.Start.X + x];
                        if (output[i] != expected)
                            Assert.Fail($"trial {trial} {mode} r={radius} shape {shape} core {core}: voxel {core.Start + new Long3(z, y, x)} is {output[i]}, the whole gives {expected}");
                    }
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Refuses_a_radius_that_is_not_positive_and_finite(double radius) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new LabelMorphology(LabelMorphologyMode.Dilate, radius));
}
