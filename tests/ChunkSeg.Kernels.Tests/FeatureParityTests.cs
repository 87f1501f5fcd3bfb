using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Features;

namespace ChunkSeg.Kernels.Tests;

/// <summary>
/// Sanity parity with VIGRA (Debian's python3-vigra, double arithmetic), called the way ilastik calls it:
/// every feature at every ilastik scale within 1e-4 × the data range. (Exact equality with ilastik is the
/// forest issue's probability check; VIGRA's double arithmetic differs from fastfilters' float32 by design.)
/// </summary>
public sealed class FeatureParityTests : IDisposable
{
    private readonly TempDir _dir = new();

    private (float[] Ours, float[] Vigra, int Channels) Run(float[] volume, int[] shape, FeatureSet set, bool twoD)
    {
        var extra = twoD ? "2d-data" : set.VigraStructureTensor ? "st=vigra" : set.AxisScales.Equals(Sigma3.One) ? null : $"axis-scales={set.AxisScales}";
        string input = _dir["in.npy"], output = _dir["out.npy"];
        NpyFile.Write(input, DataType.Float32, shape.Select(s => (long)s).ToArray(), MemoryMarshal.AsBytes(volume.AsSpan()));
        var args = new List<string> { input, set.ToString(), output };
        if (extra is not null) args.Add(extra);
        PythonReference.Run("vigra_features.py", args.ToArray());
        var vigra = MemoryMarshal.Cast<byte, float>(NpyFile.Read(output).Data).ToArray();

        int sz = twoD ? 1 : shape[0], sy = shape[^2], sx = shape[^1];
        int n = sz * sy * sx, channels = set.ChannelCount(sz);
        var ours = new float[n * channels];
        var offsets = new List<int>();
        int next = 0;
        foreach (var e in set.Entries) { offsets.Add(next); next += set.ChannelsOf(e, sz); }
        new FeatureEngine(set, sz).Compute(volume, sz, sy, sx, (entry, component, image) =>
        {
            int ch = offsets[entry] + component;
            for (int i = 0; i < n; i++) ours[i * channels + ch] = image[i];
        });
        Assert.Equal(ours.Length, vigra.Length);
        return (ours, vigra, channels);
    }

    /// <summary>
    /// Every channel within 1e-4 × the data range. Structure-tensor eigenvalues are in squared intensity
    /// units, so their "data" is the tensor, and their bound is 2e-4 × the range of the block's own values:
    /// ilastik's float32 closed-form solver (which we reproduce bit for bit) is only that accurate for the
    /// middle eigenvalue when one eigenvalue dominates. Applied to VIGRA's exact tensor of the ilastik
    /// fixture it is off by up to 1.0e-4 of the largest eigenvalue (233 voxels); this suite's random
    /// volumes reach 1.16e-4.
    /// </summary>
    private static void AssertClose(float[] ours, float[] vigra, int channels, float range, FeatureSet set, long volumeZ)
    {
        var names = set.ChannelNames(volumeZ);
        var kinds = set.Entries.SelectMany(e => Enumerable.Repeat(e.Kind, set.ChannelsOf(e, volumeZ))).ToArray();
        for (int ch = 0; ch < channels; ch++)
        {
            double tolerance = kinds[ch] == FeatureKind.StructureTensorEigenvalues ? 2e-4 * BlockRange(vigra, channels, kinds, ch) : 1e-4 * range;
            double worst = 0;
            int at = 0;
            for (int i = ch; i < ours.Length; i += channels)
            {
                double d = Math.Abs(ours[i] - vigra[i]);
                if (d > worst) { worst = d; at = i / channels; }
            }
            Assert.True(worst <= tolerance, $"{names[ch]}: max |ChunkSeg - VIGRA| = {worst:G4} at voxel {at} > {tolerance:G4} (1e-4 x data range)");
        }
    }

    /// <summary>max − min of VIGRA's values over every channel of the block <paramref name="ch"/> belongs to.</summary>
    private static double BlockRange(float[] vigra, int channels, FeatureKind[] kinds, int ch)
    {
        int first = ch, last = ch;
        while (first > 0 && kinds[first - 1] == kinds[ch]) first--;
        while (last + 1 < channels && kinds[last + 1] == kinds[ch]) last++;
        float lo = float.MaxValue, hi = float.MinValue;
        for (int i = 0; i < vigra.Length; i += channels)
            for (int c = first; c <= last; c++) { lo = Math.Min(lo, vigra[i + c]); hi = Math.Max(hi, vigra[i + c]); }
        return hi - lo;
    }

    [Fact]
    public void Every_3D_feature_at_every_ilastik_scale_matches_vigra()
    {
        int[] shape = [40, 41, 43];
        var volume = FeatureEngineTests.SmoothRandomVolume(40, 41, 43, 3);
        var (ours, vigra, channels) = Run(volume, shape, FeatureSet.IlastikFull, twoD: false);
        AssertClose(ours, vigra, channels, volume.Max() - volume.Min(), FeatureSet.IlastikFull, 40);
    }

    [Fact]
    public void Every_2D_feature_at_every_ilastik_scale_matches_vigra()
    {
        int[] shape = [47, 53];
        var volume = FeatureEngineTests.SmoothRandomVolume(1, 47, 53, 4);
        var (ours, vigra, channels) = Run(volume, shape, FeatureSet.IlastikFull, twoD: true);
        AssertClose(ours, vigra, channels, volume.Max() - volume.Min(), FeatureSet.IlastikFull, 1);
    }

    [Fact]
    public void Per_slice_2D_features_on_3D_data_match_vigra()
    {
        int[] shape = [9, 40, 44];
        var set = FeatureSet.Parse("gs:0.3/2d,3.5/2d;log:1.0/2d;ggm:1.6/2d;dog:5.0/2d;ste:0.7/2d,10/2d;hoge:1.0/2d,1.6;gs:1.6");   // 3D scales whose radii fit 9 slices
        var volume = FeatureEngineTests.SmoothRandomVolume(9, 40, 44, 8);
        var (ours, vigra, channels) = Run(volume, shape, set, twoD: false);
        AssertClose(ours, vigra, channels, volume.Max() - volume.Min(), set, 9);
    }

    [Fact]
    public void Anisotropic_sigmas_match_vigra_with_per_axis_scales()
    {
        int[] shape = [24, 40, 44];
        // z steps twice the xy steps: every sigma is halved along z.
        var set = FeatureSet.Parse("gs:1.6,3.5;log:1.6;ggm:3.5;dog:1.6;ste:3.5;hoge:1.6,3.5").WithAxisScales(new Sigma3(0.5, 1, 1));
        var volume = FeatureEngineTests.SmoothRandomVolume(24, 40, 44, 9);
        var (ours, vigra, channels) = Run(volume, shape, set, twoD: false);
        AssertClose(ours, vigra, channels, volume.Max() - volume.Min(), set, 24);
    }

    [Fact]
    public void The_vigra_structure_tensor_compatibility_order_matches_vigra()
    {
        int[] shape = [30, 36, 40];
        var set = FeatureSet.Parse("ste:0.7,1.6,3.5").WithVigraStructureTensor();
        var volume = FeatureEngineTests.SmoothRandomVolume(30, 36, 40, 12);
        var (ours, vigra, channels) = Run(volume, shape, set, twoD: false);
        AssertClose(ours, vigra, channels, volume.Max() - volume.Min(), set, 30);
        // ...and it is a different feature from the default (fastfilters) order.
        var (fast, _, _) = Run(volume, shape, FeatureSet.Parse("ste:0.7,1.6,3.5"), twoD: false);
        Assert.NotEqual(fast, ours);
    }

    [Fact]
    public void Ilastik_fixture_features_match_vigra()
    {
        string h5 = SharedData.Require("ilastik/Data_3D.h5");
        string npy = _dir["data3d.npy"];
        PythonReference.Run("h5_to_npy.py", h5, "data", npy);
        var raw = NpyFile.Read(npy);
        var volume = raw.Data.Select(b => (float)b).ToArray();        // uint8 zyxc with one channel
        int[] shape = [(int)raw.Shape[0], (int)raw.Shape[1], (int)raw.Shape[2]];
        var (ours, vigra, channels) = Run(volume, shape, FeatureSet.IlastikFull, twoD: false);
        AssertClose(ours, vigra, channels, volume.Max() - volume.Min(), FeatureSet.IlastikFull, shape[0]);
    }

    [Fact]
    public void Ilastik_2D_fixture_features_match_vigra()
    {
        string h5 = SharedData.Require("ilastik/Data_1channel.h5");
        string npy = _dir["data2d.npy"];
        PythonReference.Run("h5_to_npy.py", h5, "data", npy);
        var raw = NpyFile.Read(npy);                                   // uint8 yxc with one channel
        var volume = raw.Data.Select(b => (float)b).ToArray();
        int[] shape = [(int)raw.Shape[0], (int)raw.Shape[1]];
        var (ours, vigra, channels) = Run(volume, shape, FeatureSet.IlastikFull, twoD: true);
        AssertClose(ours, vigra, channels, volume.Max() - volume.Min(), FeatureSet.IlastikFull, 1);
    }

    public void Dispose() => _dir.Dispose();
}
