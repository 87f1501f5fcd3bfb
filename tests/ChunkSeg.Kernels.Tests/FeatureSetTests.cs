using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Features;

namespace ChunkSeg.Kernels.Tests;

public class FeatureSetTests
{
    [Fact]
    public void The_full_ilastik_table_has_37_entries_and_61_channels_in_3D()
    {
        var full = FeatureSet.IlastikFull;
        Assert.Equal(37, full.Entries.Count);
        Assert.Equal(61, full.ChannelCount(volumeZ: 64));
        Assert.Equal(7 + 6 + 6 + 6 + 12 + 12, full.ChannelCount(volumeZ: 1));
        Assert.Equal(122, full.ChannelCount(volumeZ: 64, inputChannels: 2));
    }

    // ILASTIK_RECIPE §3.8: scales 0.3/0.7/1.0/1.6/3.5/5/10 need 2/3/6/6/14/19/37 px; the structure tensor
    // adds its gradient radius floor(2·0.5s'+0.5): 0 at s' = 0.3, 1 from 0.7 on.
    [Theory]
    [InlineData(0.3, 2, 2)]
    [InlineData(0.7, 3, 4)]
    [InlineData(1.0, 6, 7)]
    [InlineData(1.6, 6, 7)]
    [InlineData(3.5, 14, 15)]
    [InlineData(5.0, 19, 20)]
    [InlineData(10.0, 37, 38)]
    public void Halo_is_presmoothing_plus_filter_radius(double scale, int halo, int structureTensorHalo)
    {
        var log = new FeatureSet([new FeatureEntry(FeatureKind.LaplacianOfGaussian, scale)]);
        Assert.Equal(Halo.Uniform(halo), log.RequiredHalo(volumeZ: 200));
        var st = new FeatureSet([new FeatureEntry(FeatureKind.StructureTensorEigenvalues, scale)]);
        Assert.Equal(Halo.Uniform(structureTensorHalo), st.RequiredHalo(volumeZ: 200));
    }

    [Fact]
    public void Per_slice_features_need_no_z_halo_beyond_their_presmoothing()
    {
        var set = FeatureSet.Parse("HessianOfGaussianEigenvalues:3.5/2d");
        Assert.Equal(new Halo(0, 14, 14), set.RequiredHalo(volumeZ: 50));
        Assert.Equal(2, set.ChannelsOf(set.Entries[0], 50));
    }

    [Fact]
    public void A_3D_filter_too_wide_for_the_z_extent_falls_back_to_2D_but_keeps_its_3D_presmoothing()
    {
        // ceil(2·1.0)+1 = 3 > Z = 2: the Hessian at s' = 1 runs per slice (ilastik's OpBaseFilter.invalid_z).
        var entry = new FeatureEntry(FeatureKind.HessianOfGaussianEigenvalues, 1.0);
        var set = new FeatureSet([entry]);
        var plan = set.PlanOf(entry, volumeZ: 2);
        Assert.True(plan.Filter2D);
        Assert.False(plan.Presmooth2D);
        Assert.Equal(2, set.ChannelsOf(entry, 2));
        Assert.Equal(3, set.ChannelsOf(entry, 3));
    }

    [Fact]
    public void Presmoothing_and_filter_scales_follow_the_recipe()
    {
        var set = FeatureSet.Parse("gs:0.7,5.0");
        Assert.Equal(new FeaturePlan(Sigma3.Uniform(0.7), Sigma3.Uniform(0.7), false, false), set.PlanOf(set.Entries[0], 100));
        var p = set.PlanOf(set.Entries[1], 100);
        Assert.Equal(Sigma3.Uniform(Math.Sqrt(24)), p.Presmooth);
        Assert.Equal(Sigma3.One, p.Filter);
    }

    [Fact]
    public void Scales_too_large_for_the_volume_are_refused_before_any_work()
    {
        var e = Assert.Throws<ArgumentException>(() => FeatureSet.Parse("gs:3.5").Validate(new Long3(9, 64, 64)));
        Assert.Contains("needs at least 13 voxels along z", e.Message);
        Assert.Contains("/2d", e.Message);
        FeatureSet.Parse("gs:3.5/2d").Validate(new Long3(9, 64, 64));           // per slice: fine
        FeatureSet.IlastikFull.Validate(new Long3(36, 36, 36));                  // scale 10 needs 36
        Assert.Throws<ArgumentException>(() => FeatureSet.IlastikFull.Validate(new Long3(36, 35, 36)));
    }

    [Fact]
    public void Anisotropic_scales_apply_the_recipe_per_axis()
    {
        // z voxels 2.0 µm, xy 0.4 µm: a scale of 3.5 is 3.5 xy voxels but 0.7 z voxels.
        var factors = FeatureSet.ForVoxelSize(2.0, 0.4, 0.4);
        Assert.Equal(new Sigma3(0.2, 1, 1), factors);
        var set = FeatureSet.Parse("hoge:3.5").WithAxisScales(factors);
        var plan = set.PlanOf(set.Entries[0], 100);
        Assert.Equal(0.7000000000000001, plan.Presmooth.Z, 12);      // 3.5 · 0.2 ≤ 1: pre-smoothing and filter at s
        Assert.Equal(Math.Sqrt(3.5 * 3.5 - 1), plan.Presmooth.Y);
        Assert.Equal(new Halo(3, 14, 14), set.RequiredHalo(100));    // z: floor(3.5·0.7+.5) + floor(2·0.7+.5)
        var tooThin = Assert.Throws<ArgumentException>(() => FeatureSet.Parse("ste:1.0").WithAxisScales(factors).Validate(new Long3(50, 50, 50)));
        Assert.Contains("along z", tooThin.Message);
        Assert.Contains("derivative", tooThin.Message);
    }

    [Fact]
    public void Spec_round_trips_in_order()
    {
        var set = FeatureSet.Parse("gs:0.3,1.0; HessianOfGaussianEigenvalues:1.6/2d,3.5;GaussianSmoothing:10");
        Assert.Equal(
            [new(FeatureKind.GaussianSmoothing, 0.3), new(FeatureKind.GaussianSmoothing, 1.0),
             new(FeatureKind.HessianOfGaussianEigenvalues, 1.6, true), new(FeatureKind.HessianOfGaussianEigenvalues, 3.5),
             new FeatureEntry(FeatureKind.GaussianSmoothing, 10)], set.Entries);
        Assert.Equal(set.Entries, FeatureSet.Parse(set.ToString()).Entries);
        Assert.Equal(FeatureSet.IlastikFull.Entries, FeatureSet.Parse("all").Entries);
    }

    [Theory]
    [InlineData("Sharpness:1.0", "unknown feature id")]
    [InlineData("GaussianSmoothing:abc", "is not a scale")]
    [InlineData("GaussianSmoothing:-1", "must be a positive number")]
    [InlineData("GaussianSmoothing", "needs FeatureId:scales")]
    [InlineData(";", "empty")]
    public void Bad_specs_say_what_is_wrong(string spec, string message)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => FeatureSet.Parse(spec));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Channel_names_follow_ilastiks_feature_names()
    {
        var names = FeatureSet.Parse("GaussianSmoothing:0.3;StructureTensorEigenvalues:1.0/2d").ChannelNames(volumeZ: 10);
        Assert.Equal(["Gaussian Smoothing (\u03c3=0.3)", "Structure Tensor Eigenvalues (\u03c3=1.0) in 2D [0]", "Structure Tensor Eigenvalues (\u03c3=1.0) in 2D [1]"], names);
    }
}
