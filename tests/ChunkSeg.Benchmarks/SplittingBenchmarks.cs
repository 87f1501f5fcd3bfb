using BenchmarkDotNet.Attributes;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Splitting;

namespace ChunkSeg.Benchmarks;

/// <summary>
/// The split kernels on one 64³ chunk of touching balls (radius 7 on a 12-voxel lattice, jittered brightness):
/// clEsperanto's Voronoi-Otsu labelling whole (two blurs, maxima, Otsu, the flood), the exact squared distance map
/// alone, and the distance split whole (map, seeds, the downhill and filling floods). Voxels/s = 262,144 / mean seconds;
/// `chunkseg bench split` measures the same kernels beside skimage on 256³.
/// </summary>
[MemoryDiagnoser]
public class SplittingBenchmarks
{
    private const int N = 64;
    private static readonly Long3 Shape = Long3.Uniform(N);
    private static readonly VoronoiOtsuSigmas Sigmas = new((2, 2, 2), (1, 1, 1));
    private readonly float[] _image = new float[N * N * N];
    private readonly byte[] _mask = new byte[N * N * N];
    private readonly uint[] _labels = new uint[N * N * N];
    private readonly double[] _squared = new double[N * N * N];
    private readonly ulong[] _keys = new ulong[N * N * N];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(25);
        for (int z = 0, i = 0; z < N; z++)
            for (int y = 0; y < N; y++)
                for (int x = 0; x < N; x++, i++)
                {
                    int dz = z % 12 - 6, dy = y % 12 - 6, dx = x % 12 - 6;
                    bool inside = dz * dz + dy * dy + dx * dx <= 49;     // radius 7 on a 12 lattice: neighbours touch
                    _image[i] = (inside ? 200f : 20f) + rng.Next(40);
                    _mask[i] = inside ? (byte)1 : (byte)0;
                }
    }

    [Benchmark]
    public VoronoiOtsuResult VoronoiOtsuLabel() => VoronoiOtsu.Label(_image, Shape, threeD: true, Sigmas, _labels);

    [Benchmark]
    public void SquaredDistance() => ExactDistance.Squared(_mask, N, N, N, (1, 1, 1), _squared);

    [Benchmark]
    public void DistanceSplit() => DistanceWatershed.Split(_mask, N, N, N, (1, 1, 1), new Halo(2, 2, 2), threeD: true, _keys);
}
