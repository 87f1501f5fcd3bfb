using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Classifiers;
using ChunkSeg.Kernels.Forest;
using ChunkSeg.Storage.Ilastik;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>Each forest of ilastik's fixtures through ChunkSeg (converter + predictor) against vigra's own predictProbabilities, bit for bit.</summary>
public sealed class VigraForestParityTests
{
    [Theory]
    [InlineData("ilastik/PixelClass3D.ilp", "ilastik/Data_3D.h5")]
    [InlineData("ilastik/PixelClass.ilp", "ilastik/Data_1channel.h5")]
    public void Fixture_features_give_vigras_probabilities(string ilp, string data)
    {
        using var project = IlastikProject.Open(SharedData.Require(ilp));
        var (planar, n) = IlastikParityTests.ComputeFeatures(project, SharedData.Require(data));
        AssertEqualsVigra(project, planar, n);
    }

    [Theory]
    [InlineData("ilastik/PixelClass3D.ilp", 1)]
    [InlineData("ilastik/PixelClass.ilp", 2)]
    public void Random_features_at_and_around_the_thresholds_give_vigras_probabilities(string ilp, int seed)
    {
        using var project = IlastikProject.Open(SharedData.Require(ilp));
        var forests = project.ReadForests().Select(f => IlastikClassifierLoader.ToRandomForest(f, project.Path)).ToArray();
        int features = forests[0].FeatureCount, n = 20000;
        // every threshold of every forest, per column: features land on them, just below and just above
        var thresholds = Enumerable.Range(0, features).Select(c => forests.SelectMany(f => f.Trees)
            .SelectMany(t => t.Feature.Select((col, i) => (col, t.Threshold[i]))).Where(p => p.col == c).Select(p => p.Item2).ToArray()).ToArray();
        var rng = new Random(seed);
        var planar = new float[features * n];
        for (int v = 0; v < n; v++)
            for (int c = 0; c < features; c++)
            {
                var ts = thresholds[c];
                float x = ts.Length == 0 || rng.Next(4) == 0 ? (float)(rng.NextDouble() * 200 - 100) : (float)ts[rng.Next(ts.Length)];
                x = rng.Next(3) switch { 0 => MathF.BitDecrement(x), 1 => MathF.BitIncrement(x), _ => x };
                planar[c * n + v] = v % 997 == 5 && c == v % features ? float.NaN : x;
            }
        AssertEqualsVigra(project, planar, n);
    }

    private static void AssertEqualsVigra(IlastikProject project, float[] planar, int n)
    {
        var forests = project.ReadForests();
        int features = forests[0].ColumnCount;
        using var dir = new TempDir();
        var rows = new float[planar.Length];
        for (int c = 0; c < features; c++)
            for (int v = 0; v < n; v++)
                rows[v * features + c] = planar[c * n + v];
        NpyFile.Write(dir["x.npy"], DataType.Float32, [n, features], MemoryMarshal.AsBytes(rows.AsSpan()));
        PythonReference.Run("vigra_forest_predict.py", project.Path, dir["x.npy"], dir.Path);
        foreach (var data in forests)
        {
            var forest = IlastikClassifierLoader.ToRandomForest(data, project.Path);
            var want = NpyFile.Read(dir[data.Name + ".npy"]);
            Assert.Equal([n, (long)forest.ClassCount], want.Shape);
            foreach (int threads in new[] { 1, 2 })
            {
                var got = new float[n * forest.ClassCount];
                ForestPredictor.PredictProbabilities(forest, planar, n, got, threads);
                string? diff = TestArrays.Difference(DataType.Float32, want.Data, MemoryMarshal.AsBytes(got.AsSpan()), want.Shape);
                Assert.True(diff is null, $"{data.Name}, {threads} thread(s): {diff}");
            }
        }
    }
}
