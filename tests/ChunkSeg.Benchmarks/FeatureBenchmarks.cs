using BenchmarkDotNet.Attributes;
using ChunkSeg.Kernels.Features;

namespace ChunkSeg.Benchmarks;

/// <summary>
/// ilastik's whole feature table (37 entries, 61 channels) on a 64³ float32 block, single-threaded as
/// a worker runs it on a chunk, against one cheap feature. Mvoxels/s = 0.262 / mean seconds.
/// `chunkseg bench features` runs the 128³ comparison with VIGRA.
/// </summary>
[MemoryDiagnoser]
public class FeatureBenchmarks
{
    private const int Edge = 64;
    private readonly float[] _volume = new float[Edge * Edge * Edge];
    private FeatureEngine _full = null!, _smoothing = null!;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        for (int i = 0; i < _volume.Length; i++) _volume[i] = (float)(100 + 50 * Math.Sin(i * 0.01) + rng.Next(0, 30));
        _full = new FeatureEngine(FeatureSet.IlastikFull, Edge);
        _smoothing = new FeatureEngine(FeatureSet.Parse("gs:1.0"), Edge);
    }

    [Benchmark(Baseline = true)]
    public void GaussianSmoothing1() => _smoothing.Compute(_volume, Edge, Edge, Edge, static (_, _, _) => { });

    [Benchmark]
    public void FullIlastikTable() => _full.Compute(_volume, Edge, Edge, Edge, static (_, _, _) => { });
}
