using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Classifiers;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Forest;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Ilastik;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// The decisive test: ilastik's own exported probabilities for its fixtures, reproduced from the raw data by
/// ChunkSeg's features (FeatureEngine) and forests (IlastikClassifier) through ChunkSeg's own readers.
/// </summary>
public sealed class IlastikParityTests(ITestOutputHelper output)
{
    public static TheoryData<string, string, string, int> Fixtures => new()
    {
        { "ilastik/PixelClass3D.ilp", "ilastik/Data_3D.h5", "ilastik/Data_3D_Probabilities.h5", 1 },
        { "ilastik/PixelClass3D.ilp", "ilastik/Data_3D.h5", "ilastik/Data_3D_Probabilities.h5", 2 },
        { "ilastik/PixelClass.ilp", "ilastik/Data_1channel.h5", "ilastik/Data_1channel_Probabilities.h5", 1 },
        { "ilastik/PixelClass.ilp", "ilastik/Data_1channel.h5", "ilastik/Data_1channel_Probabilities.h5", 2 },
    };

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Probabilities_equal_ilastiks_export(string ilp, string data, string expected, int maxThreads)
    {
        using var project = IlastikProject.Open(SharedData.Require(ilp));
        var (features, voxels) = ComputeFeatures(project, SharedData.Require(data));
        var classifier = IlastikClassifierLoader.Load(project);
        var got = new float[voxels * classifier.LabelCount];
        classifier.PredictProbabilities(features, voxels, got, maxThreads);

        var want = ReadAll(SharedData.Require(expected) + "/exported_data");
        Assert.Equal(want.Length, got.Length);
        var (maxAbs, differing, argmaxAgree) = Compare(got, want, classifier.LabelCount);
        output.WriteLine($"{ilp}: max |ChunkSeg - ilastik| = {maxAbs:R}, {differing} values differ, argmax agrees on {argmaxAgree}/{voxels} voxels");
        Assert.Equal(voxels, argmaxAgree);
        Assert.True(maxAbs <= 1e-6, $"max abs error {maxAbs:R}");
        Assert.Equal(0, differing);
    }

    internal static (float[] Planar, int Voxels) ComputeFeatures(IlastikProject project, string dataFile, GpuNode.Backends.ComputeBackend? backend = null)
    {
        var set = SelectedFeatures(project);
        var (block, sz, sy, sx) = ReadBlock(dataFile);
        int n = sz * sy * sx;

        int[] widths = set.Entries.Select(e => set.ChannelsOf(e, sz)).ToArray();
        int channels = widths.Sum();
        var planar = new float[(long)channels * n];
        var engine = backend?.FeatureEngine(set, sz) ?? new FeatureEngine(set, sz);
        engine.Compute(block, sz, sy, sx, new Box3(Long3.Zero, new Long3(sz, sy, sx)), (entry, component, image) =>
            image.CopyTo(planar.AsSpan((widths.Take(entry).Sum() + component) * n, n)));
        Assert.Equal(project.FeatureNames(), set.ChannelNames(sz));
        return (planar, n);
    }

    internal static FeatureSet SelectedFeatures(IlastikProject project)
    {
        var s = project.ReadFeatureSelection();
        return FeatureSet.FromIlastikSelection(s.FeatureIds, s.Scales, s.Selection, s.ComputeIn2d);
    }

    /// <summary>A fixture's one-channel uint8 volume (…, c) as float32, z, y, x (sz = 1 for 2D).</summary>
    internal static (float[] Block, int Sz, int Sy, int Sx) ReadBlock(string dataFile)
    {
        using var volume = VolumeStore.Open(dataFile + "/data");
        var info = volume.Info;
        string axes = info.Axes.Names;
        Assert.EndsWith("c", axes);
        Assert.Equal(1L, info.Shape[^1]);
        int sz = axes.Contains('z') ? (int)info.Shape[axes.IndexOf('z')] : 1;
        int sy = (int)info.Shape[axes.IndexOf('y')], sx = (int)info.Shape[axes.IndexOf('x')];
        var raw = new byte[sz * sy * sx];
        volume.Read(NdBox.Whole(info.Shape), raw.AsSpan());
        return (raw.Select(b => (float)b).ToArray(), sz, sy, sx);
    }

    internal static float[] ReadAll(string address)
    {
        using var v = VolumeStore.Open(address);
        long count = v.Info.Shape.Aggregate(1L, (a, b) => a * b);
        var values = new float[count];
        v.Read(NdBox.Whole(v.Info.Shape), values.AsSpan());
        return values;
    }

    internal static (double MaxAbs, int Differing, int ArgmaxAgree) Compare(float[] got, float[] want, int channels)
    {
        double maxAbs = 0;
        int differing = 0, agree = 0;
        for (int i = 0; i < got.Length; i++)
        {
            maxAbs = Math.Max(maxAbs, Math.Abs((double)got[i] - want[i]));
            if (BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(want[i])) differing++;
        }
        for (int v = 0; v < got.Length / channels; v++)
            if (ArgMax(got.AsSpan(v * channels, channels)) == ArgMax(want.AsSpan(v * channels, channels))) agree++;
        return (maxAbs, differing, agree);
    }

    private static int ArgMax(ReadOnlySpan<float> p)
    {
        int best = 0;
        for (int i = 1; i < p.Length; i++) if (p[i] > p[best]) best = i;
        return best;
    }
}
