using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Pyramids;

namespace ChunkSeg.Benchmarks;

/// <summary>
/// One pyramid level from a 128³ chunk (2,097,152 input voxels): the uint16 block mean with the Vector256 row sums
/// against the same engine with a scalar row sum (the baseline), at the plan's two factors (2,2,2 and the anisotropic
/// 1,2,2); and the uint32 block mode on blob labels (most blocks one value: the all-equal fast path) and on noise
/// (every block sorted). Voxels/s = 2,097,152 / mean seconds.
/// </summary>
[MemoryDiagnoser]
public class PyramidBenchmarks
{
    private const int N = 128;
    private static readonly Long3 Shape = Long3.Uniform(N);
    private readonly ushort[] _image = new ushort[N * N * N];
    private readonly ushort[] _meanOut = new ushort[N * N * N];
    private readonly uint[] _blobs = new uint[N * N * N];
    private readonly uint[] _noise = new uint[N * N * N];
    private readonly uint[] _modeOut = new uint[N * N * N];

    [Params("2,2,2", "1,2,2")]
    public string Factor { get; set; } = "2,2,2";

    private Long3 F => Long3.Parse(Factor, "factor");

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        for (int i = 0; i < _image.Length; i++) _image[i] = (ushort)rng.Next(65536);
        for (int i = 0; i < _noise.Length; i++) _noise[i] = (uint)rng.Next(4);
        for (int z = 0, i = 0; z < N; z++)                 // 16³ cubes of one id: a label image's interior
            for (int y = 0; y < N; y++)
                for (int x = 0; x < N; x++)
                    _blobs[i++] = (uint)((z / 16 * 8 + y / 16) * 8 + x / 16);
    }

    [Benchmark(Baseline = true)]
    public void MeanScalar() =>
        MeanEngine.Run<ScalarUInt16MeanOp, ushort, uint>(_image, Shape, F, Downsample.OutputShape(Shape, F), _meanOut);

    [Benchmark]
    public void Mean() => Downsample.Mean(_image, Shape, F, _meanOut);

    [Benchmark]
    public void ModeBlobs() => Downsample.Mode<uint>(_blobs, Shape, F, _modeOut);

    [Benchmark]
    public void ModeNoise() => Downsample.Mode<uint>(_noise, Shape, F, _modeOut);

    /// <summary>The uint16 mean's operator with the vector loop left out: what DOTNET_EnableHWIntrinsic=0 runs.</summary>
    private struct ScalarUInt16MeanOp : IMeanOp<ushort, uint>
    {
        public static void Accumulate(ReadOnlySpan<ushort> row, Span<uint> acc)
        {
            for (int i = 0; i < row.Length; i++) acc[i] += row[i];
        }

        public static ushort Finish(uint sum, int count) => UInt16MeanOp.Finish(sum, count);
    }
}
