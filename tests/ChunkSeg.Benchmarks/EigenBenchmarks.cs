using BenchmarkDotNet.Attributes;
using ChunkSeg.Kernels.Eigen;

namespace ChunkSeg.Benchmarks;

/// <summary>
/// Symmetric eigenvalues over one 128³ chunk (2,097,152 tensors) of random, well-scaled components.
/// Elements/s = 2,097,152 / mean seconds. The scalar rows run every element through the one-lane path
/// (what DOTNET_EnableHWIntrinsic=0 gives) and are the baselines.
/// </summary>
[MemoryDiagnoser]
public class EigenBenchmarks
{
    private const int N = 128 * 128 * 128;
    private readonly float[][] _in = new float[6][];
    private readonly float[][] _out = new float[3][];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(11);
        for (int r = 0; r < 6; r++)
        {
            _in[r] = new float[N];
            for (int i = 0; i < N; i++) _in[r][i] = (float)(rng.NextDouble() * 2 - 1);
        }
        for (int r = 0; r < 3; r++) _out[r] = new float[N];
    }

    [Benchmark(Baseline = true)]
    public void Eigenvalues3Scalar() =>
        SymmetricEigen.Eigenvalues3(_in[0], _in[1], _in[2], _in[3], _in[4], _in[5], _out[0], _out[1], _out[2], EigenWidth.ScalarOnly);

    [Benchmark]
    public void Eigenvalues3Vector256() =>
        SymmetricEigen.Eigenvalues3(_in[0], _in[1], _in[2], _in[3], _in[4], _in[5], _out[0], _out[1], _out[2], EigenWidth.Vector256Only);

    [Benchmark]
    public void Eigenvalues3() =>
        SymmetricEigen.Eigenvalues3(_in[0], _in[1], _in[2], _in[3], _in[4], _in[5], _out[0], _out[1], _out[2]);

    [Benchmark]
    public void Eigenvalues2Scalar() =>
        SymmetricEigen.Eigenvalues2(_in[0], _in[1], _in[2], _out[0], _out[1], EigenWidth.ScalarOnly);

    [Benchmark]
    public void Eigenvalues2() =>
        SymmetricEigen.Eigenvalues2(_in[0], _in[1], _in[2], _out[0], _out[1]);
}
