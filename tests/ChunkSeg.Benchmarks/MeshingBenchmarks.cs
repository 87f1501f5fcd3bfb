using BenchmarkDotNet.Attributes;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Meshing;
using ChunkSeg.Kernels.Filters;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Kernels.Meshing;

namespace ChunkSeg.Benchmarks;

/// <summary>
/// Marching cubes on one 128³ chunk (2,097,152 voxels, 2,048,383 cells) of a smooth random field (Gaussian-smoothed
/// noise, sigma 4): the isosurface at 0, the foreground of its blobs' labels, and one surface per blob.
/// Voxels/s = 2,097,152 / mean seconds. Extraction into a SurfacePiece, as a chunk does.
/// </summary>
[MemoryDiagnoser]
public class MeshingBenchmarks
{
    private const int N = 128;
    private static readonly Long3 Shape = Long3.Uniform(N);
    private static readonly Box3 Cells = new(Long3.Zero, Long3.Uniform(N - 1));
    private float[] _field = [];
    private uint[] _labels = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(3);
        var a = new float[N * N * N];
        var b = new float[a.Length];
        for (int i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble() - 0.5f;
        var kernel = FirKernel.Gaussian(0, 4, 3.0);
        SeparableConvolution.Apply(a, b, N, N, N, 2, kernel);
        SeparableConvolution.Apply(b, a, N, N, N, 1, kernel);
        SeparableConvolution.Apply(a, b, N, N, N, 0, kernel);
        _field = b;
        var mask = b.Select(v => v > 0 ? (byte)1 : (byte)0).ToArray();
        _labels = new uint[mask.Length];
        using var runs = ConnectedComponents.Label<byte>(mask, N, N, N, Connectivity.Faces);
        runs.WriteLabels(_labels);
    }

    [Benchmark(Baseline = true)]
    public int Isosurface()
    {
        using var piece = new SurfacePiece(0, Shape, labelled: false);
        MarchingCubes.Extract(_field, Shape, Long3.Zero, Cells, 0f, piece);
        return piece.TriangleCount;
    }

    [Benchmark]
    public int Foreground()
    {
        using var piece = new SurfacePiece(0, Shape, labelled: false);
        MarchingCubes.ExtractLabels<uint>(_labels, Shape, Long3.Zero, Cells, perLabel: false, piece);
        return piece.TriangleCount;
    }

    [Benchmark]
    public int PerLabel()
    {
        using var piece = new SurfacePiece(0, Shape, labelled: true);
        MarchingCubes.ExtractLabels<uint>(_labels, Shape, Long3.Zero, Cells, perLabel: true, piece);
        return piece.TriangleCount;
    }
}
