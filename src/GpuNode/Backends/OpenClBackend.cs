using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Filters;
using ChunkSeg.OpenCl;
using ChunkSeg.OpenCl.Features;
using ChunkSeg.OpenCl.Forest;
using ChunkSeg.OpenCl.Labeling;

namespace ChunkSeg.GpuNode.Backends;

/// <summary>
/// The feature stack and the forests on an OpenCL device (a GPU through its vendor's driver, or PoCL on the CPU): one
/// context; an engine per feature set and a predictor per classifier, built (programs compiled or loaded from the
/// binary cache, trees uploaded) on first use and shared by all worker threads.
/// <para>
/// A long-running worker binds every job anew (new feature-set and classifier objects): engines are kept per feature
/// set by value, so a job like the last one reuses its engine; a classifier's device copy lives as long as the
/// classifier object (a weak table), so the trees of finished jobs do not pile up on the device.
/// </para>
/// </summary>
public sealed class OpenClBackend : ComputeBackend
{
    private readonly OpenClContext _context;
    private readonly ProgramCache _cache = ProgramCache.Default;
    private readonly ConcurrentDictionary<(string Spec, Sigma3 AxisScales, bool VigraStructureTensor, long VolumeZ), Lazy<OpenClFeatureEngine>> _engines = new();
    private readonly ConditionalWeakTable<IPixelClassifier, IPixelClassifier> _classifiers = new();
    private readonly Lazy<OpenClSegmenter> _segmenter;     // labelling's smoothing, threshold and argmax: built on first use, shared

    public OpenClBackend(OpenClDevice device)
    {
        _context = new OpenClContext(device);
        Device = device.Describe();
        _segmenter = new(() => new OpenClSegmenter(_context, _cache));
    }

    public override string Name => "opencl";

    public override string Device { get; }

    public override IFeatureEngine FeatureEngine(FeatureSet set, long volumeZ) =>
        _engines.GetOrAdd((set.ToString(), set.AxisScales, set.VigraStructureTensor, volumeZ),
            _ => new Lazy<OpenClFeatureEngine>(() => new OpenClFeatureEngine(_context, set, volumeZ, cache: _cache))).Value;

    public override IPixelClassifier Classifier(IPixelClassifier classifier) =>
        _classifiers.GetValue(classifier, c => c switch
        {
            ForestClassifier f => new DeviceClassifier(new OpenClForestPredictor(_context, f.Forest, cache: _cache), f.FeatureCount, f.OutputChannels),
            IlastikForestClassifier i => new DeviceClassifier(new OpenClForestPredictor(_context, i.Classifier, cache: _cache), i.FeatureCount, i.OutputChannels),
            _ => c,
        });

    public override IFusedClassifier? Fused(FeatureSet set, long volumeZ, FeatureMatrixLayout layout, IPixelClassifier classifier) =>
        Classifier(classifier) is DeviceClassifier device
            ? new FusedClassifier((OpenClFeatureEngine)FeatureEngine(set, volumeZ), layout, device.Predictor)
            : null;

    public override IChunkSegmenter Segmenter(Segmentation segmentation, bool is2D) => new DeviceSegmenter(_segmenter, segmentation, is2D);

    public override void Smooth(FirKernel?[] kernels, Long3 size, float[] image, float[] scratch)
    {
        if (kernels.All(k => k is null)) return;
        int n = checked((int)size.Volume);
        _segmenter.Value.Smooth(image.AsSpan(0, n), (int)size.Z, (int)size.Y, (int)size.X, kernels, scratch.AsSpan(0, n));
        scratch.AsSpan(0, n).CopyTo(image);
    }

    public override void Dispose()
    {
        if (_segmenter.IsValueCreated) _segmenter.Value.Dispose();
        foreach (var engine in _engines.Values.Where(e => e.IsValueCreated)) engine.Value.Dispose();
        foreach (var (_, device) in _classifiers) (device as IDisposable)?.Dispose();
        _context.Dispose();
    }

    private sealed class DeviceClassifier(OpenClForestPredictor predictor, int featureCount, int outputChannels) : IPixelClassifier, IDisposable
    {
        public OpenClForestPredictor Predictor => predictor;

        public int FeatureCount => featureCount;
        public int OutputChannels => outputChannels;

        public void Predict(ReadOnlySpan<float> planarFeatures, int voxelCount, Span<float> probabilities) =>
            predictor.PredictProbabilities(planarFeatures, voxelCount, probabilities);

        public void Dispose() => predictor.Dispose();
    }

    private sealed class FusedClassifier(OpenClFeatureEngine engine, FeatureMatrixLayout layout, OpenClForestPredictor predictor) : IFusedClassifier
    {
        public void Classify(ReadOnlySpan<float> blocks, Long3 blockShape, Box3 core, Span<float> probabilities) =>
            engine.Classify(blocks, layout, (int)blockShape.Z, (int)blockShape.Y, (int)blockShape.X, core, predictor, probabilities);
    }
}
