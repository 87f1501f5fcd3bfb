using BenchmarkDotNet.Attributes;
using ChunkSeg.Kernels.Forest;

namespace ChunkSeg.Benchmarks;

/// <summary>
/// Random-forest training at ilastik scale: 100 trees grown to purity on 100,000 labelled samples × 40
/// features, 3 overlapping Gaussian classes (about 10% of samples sit in another class's cloud, so trees
/// grow deep), on 1 and 2 threads. Long-running: pass `--filter *Training*`.
/// </summary>
[MemoryDiagnoser]
public class TrainingBenchmarks
{
    public const int Samples = 100_000, Features = 40, Classes = 3;
    private float[] _x = [];
    private int[] _y = [];

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup() => (_x, _y) = Data(seed: 5);

    /// <summary>Class centres uniform in [0, 2)^F, unit Gaussian noise per feature.</summary>
    public static (float[] X, int[] Y) Data(int seed)
    {
        var rng = new Random(seed);
        var centres = new double[Classes * Features];
        for (int i = 0; i < centres.Length; i++) centres[i] = rng.NextDouble() * 2;
        var x = new float[Samples * Features];
        var y = new int[Samples];
        for (int i = 0; i < Samples; i++)
        {
            y[i] = rng.Next(Classes);
            for (int f = 0; f < Features; f++)
            {
                double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
                x[i * Features + f] = (float)(centres[y[i] * Features + f] + g);
            }
        }
        return (x, y);
    }

    [Benchmark]
    public RandomForest Train100Trees() =>
        ForestTrainer.Train(_x, Features, _y, [1, 2, 3], new ForestTrainingOptions(Trees: 100, Seed: 1, MaxThreads: Threads));
}
