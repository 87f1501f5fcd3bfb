using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Pyramids;

namespace ChunkSeg.Kernels.Tests.Pyramids;

/// <summary>
/// The level plan on anisotropic and isotropic voxel sizes, worked out by hand from the rule (halve an axis of
/// extent above 1 when its spacing is below twice the finest such spacing; shapes rounded up; auto until one chunk).
/// </summary>
public sealed class PyramidPlanTests
{
    private static void AssertLevels(PyramidPlan plan, params (Long3 Shape, Long3 Factor, double Z, double Y, double X)[] expected)
    {
        Assert.Equal(expected.Length, plan.Count);
        var cumulative = Long3.Uniform(1);
        for (int k = 0; k < expected.Length; k++)
        {
            var level = plan[k];
            cumulative = new Long3(cumulative.Z * expected[k].Factor.Z, cumulative.Y * expected[k].Factor.Y, cumulative.X * expected[k].Factor.X);
            Assert.Equal(k, level.Index);
            Assert.Equal(expected[k].Shape, level.Shape);
            Assert.Equal(expected[k].Factor, level.Factor);
            Assert.Equal(cumulative, level.CumulativeFactor);
            Assert.Equal((expected[k].Z, expected[k].Y, expected[k].X), (level.Scale.Z, level.Scale.Y, level.Scale.X));
            Assert.Equal(plan[0].Scale.Unit, level.Scale.Unit);
        }
    }

    [Fact]
    public void Light_sheet_z_step_of_4_gets_y_and_x_halved_twice_before_z()
    {
        var plan = PyramidPlan.Create(new Long3(16, 1000, 999), new VoxelSize(4, 1, 1), Long3.Uniform(64));
        AssertLevels(plan,
            (new Long3(16, 1000, 999), new Long3(1, 1, 1), 4, 1, 1),
            (new Long3(16, 500, 500), new Long3(1, 2, 2), 4, 2, 2),
            (new Long3(16, 250, 250), new Long3(1, 2, 2), 4, 4, 4),      // 4 < 2·2 fails: still only y, x
            (new Long3(8, 125, 125), new Long3(2, 2, 2), 8, 8, 8),       // isotropic: all three
            (new Long3(4, 63, 63), new Long3(2, 2, 2), 16, 16, 16));     // fits one 64³ chunk: auto stops
    }

    [Fact]
    public void Isotropic_voxels_halve_every_axis_and_auto_stops_at_one_chunk()
    {
        var plan = PyramidPlan.Create(new Long3(100, 200, 300), new VoxelSize(0.5, 0.5, 0.5), Long3.Uniform(32));
        AssertLevels(plan,
            (new Long3(100, 200, 300), new Long3(1, 1, 1), 0.5, 0.5, 0.5),
            (new Long3(50, 100, 150), new Long3(2, 2, 2), 1, 1, 1),
            (new Long3(25, 50, 75), new Long3(2, 2, 2), 2, 2, 2),
            (new Long3(13, 25, 38), new Long3(2, 2, 2), 4, 4, 4),        // 38 > 32: one more
            (new Long3(7, 13, 19), new Long3(2, 2, 2), 8, 8, 8));
    }

    [Theory]
    [InlineData(1.5, 2, 2, 2)]     // within a factor 2: halve all at once
    [InlineData(1.999, 2, 2, 2)]
    [InlineData(2.0, 1, 2, 2)]     // exactly twice the finest is not below it: z waits
    [InlineData(3.0, 1, 2, 2)]
    public void An_axis_is_halved_only_below_twice_the_finest_spacing(double z, long fz, long fy, long fx)
    {
        var plan = PyramidPlan.Create(new Long3(64, 64, 64), new VoxelSize(z, 1, 1), Long3.Uniform(64), levels: 2);
        Assert.Equal(new Long3(fz, fy, fx), plan[1].Factor);
    }

    [Fact]
    public void Anisotropy_in_y_and_x_is_respected_too()
    {
        // y 0.3 µm, z and x 1 µm: y alone (1 ≥ 0.6), then at 0.6 all three (1 < 1.2), then all again (2 < 2.4).
        var plan = PyramidPlan.Create(new Long3(40, 400, 100), new VoxelSize(1, 0.3, 1), Long3.Uniform(8), levels: 4);
        Assert.Equal(new Long3(1, 2, 1), plan[1].Factor);
        Assert.Equal(new Long3(2, 2, 2), plan[2].Factor);
        Assert.Equal(new Long3(2, 2, 2), plan[3].Factor);
        Assert.Equal(new Long3(10, 50, 25), plan[3].Shape);
    }

    [Fact]
    public void A_2D_image_never_halves_z_and_its_nominal_z_spacing_does_not_block_y_and_x()
    {
        // z "spacing" 0.1 under 0.5 µm pixels: taken over all axes it would stop y and x for ever (0.5 ≥ 0.2).
        var plan = PyramidPlan.Create(new Long3(1, 1000, 1000), new VoxelSize(0.1, 0.5, 0.5), new Long3(1, 256, 256));
        AssertLevels(plan,
            (new Long3(1, 1000, 1000), new Long3(1, 1, 1), 0.1, 0.5, 0.5),
            (new Long3(1, 500, 500), new Long3(1, 2, 2), 0.1, 1, 1),
            (new Long3(1, 250, 250), new Long3(1, 2, 2), 0.1, 2, 2));
    }

    [Fact]
    public void Axes_at_extent_1_stop_and_too_many_levels_is_an_error_naming_the_most()
    {
        // (3,1,5) iso → (2,1,3) → (1,1,2) [z, x: y has extent 1] → (1,1,1) [x alone]; no fifth level exists.
        var plan = PyramidPlan.Create(new Long3(3, 1, 5), VoxelSize.Isotropic, Long3.Uniform(1), levels: 4);
        AssertLevels(plan,
            (new Long3(3, 1, 5), new Long3(1, 1, 1), 1, 1, 1),
            (new Long3(2, 1, 3), new Long3(2, 1, 2), 2, 1, 2),
            (new Long3(1, 1, 2), new Long3(2, 1, 2), 4, 1, 4),
            (new Long3(1, 1, 1), new Long3(1, 1, 2), 4, 1, 8));
        Assert.Equal(4, PyramidPlan.Create(new Long3(3, 1, 5), VoxelSize.Isotropic, Long3.Uniform(1)).Count);   // auto: one voxel fits
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => PyramidPlan.Create(new Long3(3, 1, 5), VoxelSize.Isotropic, Long3.Uniform(1), levels: 5));
        Assert.Contains("at most 4 pyramid levels", e.Message);
    }

    [Fact]
    public void Levels_counts_level_0_and_a_volume_that_fits_one_chunk_gets_level_0_alone()
    {
        Assert.Equal(1, PyramidPlan.Create(new Long3(10, 20, 30), VoxelSize.Isotropic, Long3.Uniform(64)).Count);
        Assert.Equal(1, PyramidPlan.Create(new Long3(100, 200, 300), VoxelSize.Isotropic, Long3.Uniform(64), levels: 1).Count);
        Assert.Equal(6, PyramidPlan.Create(new Long3(10, 20, 30), VoxelSize.Isotropic, Long3.Uniform(64), levels: 6).Count);   // explicit beyond auto
    }

    [Fact]
    public void Translation_puts_each_level_at_the_centre_of_its_blocks()
    {
        // translation = (scale − scale₀) / 2: the centre of c level-0 voxels lies (c − 1) / 2 voxels past the first's.
        var plan = PyramidPlan.Create(new Long3(16, 1000, 999), new VoxelSize(4, 1, 1), Long3.Uniform(64));
        Assert.Equal((0.0, 0.0, 0.0), plan[0].Translation);
        Assert.Equal((0.0, 0.5, 0.5), plan[1].Translation);
        Assert.Equal((2.0, 3.5, 3.5), plan[3].Translation);   // cumulative (2, 8, 8)
        foreach (var level in plan.Levels)
            Assert.Equal(((level.Scale.Z - 4) / 2, (level.Scale.Y - 1) / 2, (level.Scale.X - 1) / 2), level.Translation);

        // The NGFF spec's multiscales example (ngff-spec#125): level-0 scale 0.5, level-1 scale 1 → translation 0.25.
        var example = PyramidPlan.Create(new Long3(8, 8, 8), new VoxelSize(0.5, 0.5, 0.5), Long3.Uniform(4));
        Assert.Equal((0.25, 0.25, 0.25), example[1].Translation);
    }

    [Fact]
    public void Input_box_of_a_level_is_the_output_box_times_the_factor_clipped_to_the_previous_level()
    {
        var plan = PyramidPlan.Create(new Long3(16, 1000, 999), new VoxelSize(4, 1, 1), Long3.Uniform(64));
        Assert.Equal(Box3.FromBounds(new Long3(0, 128, 448), new Long3(16, 192, 512)), plan.InputBox(1, Box3.FromBounds(new Long3(0, 64, 224), new Long3(16, 96, 256))));
        Assert.Equal(Box3.FromBounds(new Long3(0, 992, 992), new Long3(16, 1000, 999)), plan.InputBox(1, Box3.FromBounds(new Long3(0, 496, 496), new Long3(16, 500, 500))));
        Assert.Throws<ArgumentOutOfRangeException>(() => plan.InputBox(0, new Box3(Long3.Zero, Long3.Uniform(1))));
        Assert.Throws<ArgumentException>(() => plan.InputBox(1, new Box3(Long3.Zero, new Long3(17, 1, 1))));
    }

    [Theory]
    [InlineData(0, 1, 1, 1.0, 0)]
    [InlineData(1, 1, 1, 0.0, null)]
    [InlineData(1, 1, 1, double.NaN, null)]
    [InlineData(1, 1, 1, 1.0, -1)]
    public void Bad_inputs_are_refused_before_any_work(long z, long y, long x, double spacing, int? levels)
    {
        Assert.ThrowsAny<ArgumentException>(() => PyramidPlan.Create(new Long3(z, y, x), new VoxelSize(spacing, 1, 1), Long3.Uniform(8), levels));
    }
}
