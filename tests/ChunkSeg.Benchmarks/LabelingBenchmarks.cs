using BenchmarkDotNet.Attributes;
using ChunkSeg.Kernels.Filters;
using ChunkSeg.Kernels.Labeling;

namespace ChunkSeg.Benchmarks;

/// <summary>
/// Connected components of one 128³ chunk (2,097,152 voxels): smooth random blobs (Gaussian-smoothed noise,
/// sigma 4, thresholded at its mean: about half the voxels, large objects) and white noise at 30 % (many tiny
/// objects, one run per voxel or two). Voxels/s = 2,097,152 / mean seconds. Label + WriteLabels, as a chunk does.
/// </summary>
[MemoryDiagnoser]
public class LabelingBenchmarks
{
    private const int N = 128;
    private byte[] _blobs = [];
    private byte[] _noise = [];
    private readonly uint[] _labels = new uint[N * N * N];

    [Params(Connectivity.Faces, Connectivity.All)]
    public Connectivity Connectivity { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        var a = new float[N * N * N];
        var b = new float[a.Length];
        for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
        _noise = a.Select(v => v < -0.2f ? (byte)1 : (byte)0).ToArray();
        var kernel = FirKernel.Gaussian(0, 4, 3.0);
        SeparableConvolution.Apply(a, b, N, N, N, 2, kernel);
        SeparableConvolution.Apply(b, a, N, N, N, 1, kernel);
        SeparableConvolution.Apply(a, b, N, N, N, 0, kernel);
        _blobs = b.Select(v => v > 0 ? (byte)1 : (byte)0).ToArray();
    }

    [Benchmark(Baseline = true)]
    public int Blobs() => Label(_blobs);

    [Benchmark]
    public int Noise30Percent() => Label(_noise);

    private int Label(byte[] mask)
    {
        using var runs = ConnectedComponents.Label<byte>(mask, N, N, N, Connectivity);
        runs.WriteLabels(_labels);
        return runs.Components;
    }
}
