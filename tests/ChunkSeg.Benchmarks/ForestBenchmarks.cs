using BenchmarkDotNet.Attributes;
using ChunkSeg.Kernels.Forest;

namespace ChunkSeg.Benchmarks;

/// <summary>
/// Random-forest prediction of 128³/8 = 262,144 voxels with 40 planar features and 2 classes: one vigra forest of
/// 100 trees, and ilastik's split of the same 100 trees over 8 forests (IlastikClassifier). The trees are synthetic
/// vigra topologies (splits on random columns at random thresholds, depth 6 to 14, pure leaves as ilastik's),
/// converted by VigraForestConverter. Voxels/s = 262,144 / mean seconds.
/// </summary>
[MemoryDiagnoser]
public class ForestBenchmarks
{
    private const int N = 128 * 128 * 128 / 8;
    private const int Features = 40;
    private RandomForest _forest = null!;
    private IlastikClassifier _classifier = null!;
    private readonly float[] _features = new float[Features * N];
    private readonly float[] _probabilities = new float[2 * N];

    [Params(1, 2)]
    public int MaxThreads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(5);
        for (int i = 0; i < _features.Length; i++) _features[i] = (float)(rng.NextDouble() * 2 - 1);
        var trees = Enumerable.Range(0, 100).Select(_ => RandomVigraTree(rng)).ToArray();
        _forest = VigraForestConverter.FromVigra(trees.Select(t => t.Topology).ToArray(), trees.Select(t => t.Parameters).ToArray(), Features, [1, 2]);
        var forests = new List<RandomForest>();
        for (int f = 0, start = 0; f < 8; f++)
        {
            int count = f < 4 ? 13 : 12;
            var part = trees.Skip(start).Take(count).ToArray();
            start += count;
            forests.Add(VigraForestConverter.FromVigra(part.Select(t => t.Topology).ToArray(), part.Select(t => t.Parameters).ToArray(), Features, [1, 2]));
        }
        _classifier = new IlastikClassifier(forests, [1u, 2u], 2);
    }

    [Benchmark(Baseline = true)]
    public void OneForestOf100Trees() => ForestPredictor.PredictProbabilities(_forest, _features, N, _probabilities, MaxThreads);

    [Benchmark]
    public void IlastikClassifier8Forests() => _classifier.PredictProbabilities(_features, N, _probabilities, MaxThreads);

    private static (int[] Topology, double[] Parameters) RandomVigraTree(Random rng)
    {
        var topology = new List<int> { Features, 2 };
        var parameters = new List<double>();
        Build(0);
        return (topology.ToArray(), parameters.ToArray());

        int Build(int depth)
        {
            int at = topology.Count;
            if (depth >= 14 || (depth >= 6 && rng.Next(4) == 0))
            {
                int vote = rng.Next(2);
                topology.AddRange([VigraForestConverter.ConstProbNode, parameters.Count]);
                parameters.AddRange([1, 1 - vote, vote]);
                return at;
            }
            topology.AddRange([VigraForestConverter.ThresholdNode, parameters.Count, -1, -1, rng.Next(Features)]);
            parameters.AddRange([1, rng.NextDouble() * 1.6 - 0.8]);
            int left = Build(depth + 1);
            int right = Build(depth + 1);
            topology[at + 2] = left;
            topology[at + 3] = right;
            return at;
        }
    }
}
