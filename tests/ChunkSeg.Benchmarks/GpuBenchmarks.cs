using BenchmarkDotNet.Attributes;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Forest;
using ChunkSeg.IlgpuKernels.Features;
using ChunkSeg.IlgpuKernels.Forest;
using ChunkSeg.IlgpuKernels.Runtime;

namespace ChunkSeg.Benchmarks;

/// <summary>
/// The GPU backend on this machine's ILGPU accelerator (CUDA, else an OpenCL GPU; CHUNKSEG_GPU=cuda|opencl|cpu picks one) on a
/// 64³ float32 block with ilastik's whole feature table (61 channels) and a 100-tree forest: the feature stack with its
/// images brought back to the host, and features → forest fused on the device (only probabilities come back).
/// The CPU's figures for the same work are <see cref="FeatureBenchmarks"/> and <see cref="ForestBenchmarks"/>;
/// `chunkseg bench backend` puts both backends side by side. Mvoxels/s = 0.262 / mean seconds.
/// </summary>
[MemoryDiagnoser]
public class GpuBenchmarks
{
    private const int Edge = 64;
    private readonly float[] _volume = new float[Edge * Edge * Edge];
    private readonly float[] _probabilities = new float[2 * Edge * Edge * Edge];
    private GpuDevice _device = null!;
    private GpuFeatureEngine _engine = null!;
    private GpuForestPredictor _forest = null!;
    private FeatureMatrixLayout _layout = null!;
    private static readonly Box3 Whole = new(Long3.Zero, Long3.Uniform(Edge));

    [GlobalSetup]
    public void Setup()
    {
        if (!GpuDevice.TryOpen(Environment.GetEnvironmentVariable(GpuDevice.SelectionVariable), out var device, out string whyNot))
            throw new InvalidOperationException($"no GPU: {whyNot}");
        _device = device!;
        var rng = new Random(3);
        for (int i = 0; i < _volume.Length; i++) _volume[i] = (float)(100 + 50 * Math.Sin(i * 0.01) + rng.Next(0, 30));
        var set = FeatureSet.IlastikFull;
        _layout = new FeatureMatrixLayout(set, Edge, 1);
        _engine = new GpuFeatureEngine(_device, set, Edge);

        // A forest trained on the block's own CPU features (bright against dark), so its walks are realistic.
        int n = _volume.Length, f = _layout.Channels;
        var planar = new float[(long)n * f];
        new FeatureEngine(set, Edge).Compute(_volume, Edge, Edge, Edge, Whole,
            (entry, component, image) => image.CopyTo(planar.AsSpan(_layout.ChannelOf(entry, 0, component) * n)));
        const int samples = 5000;
        var x = new float[samples * f];
        var y = new int[samples];
        for (int s = 0; s < samples; s++)
        {
            int v = rng.Next(n);
            for (int k = 0; k < f; k++) x[s * f + k] = planar[(long)k * n + v];
            y[s] = _volume[v] > 100 ? 1 : 0;
        }
        _forest = new GpuForestPredictor(_device, ForestTrainer.Train(x, f, y, [1, 2], new ForestTrainingOptions(Trees: 100, Seed: 1)));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _forest.Dispose();
        _device.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void FeatureStackToHost() => _engine.Compute(_volume, Edge, Edge, Edge, Whole, static (_, _, _) => { });

    [Benchmark]
    public void FeaturesThenForestFused() => _engine.Classify(_volume, _layout, Edge, Edge, Edge, Whole, _forest, _probabilities);
}
