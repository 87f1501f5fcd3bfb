using System.Collections.Concurrent;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Features;
using ChunkSeg.OpenCl;
using ChunkSeg.OpenCl.Features;
using ChunkSeg.OpenCl.Forest;

namespace ChunkSeg.GpuNode.Backends;

/// <summary>
/// The feature stack and the forests on an OpenCL device (a GPU through its vendor's driver, or PoCL on the CPU): one
/// context; an engine per feature set and a predictor per classifier, built (programs compiled, trees uploaded) on first
/// use and shared by all worker threads.
/// </summary>
public sealed class OpenClBackend : ComputeBackend
{
    private readonly OpenClContext _context;
    private readonly ConcurrentDictionary<(FeatureSet Set, long VolumeZ), Lazy<OpenClFeatureEngine>> _engines = new();
    private readonly ConcurrentDictionary<IPixelClassifier, Lazy<IPixelClassifier>> _classifiers = new(ReferenceEqualityComparer.Instance);

    public OpenClBackend(OpenClDevice device)
    {
        _context = new OpenClContext(device);
        Device = device.Describe();
    }

    public override string Name => "opencl";

    public override string Device { get; }

    public override IFeatureEngine FeatureEngine(FeatureSet set, long volumeZ) =>
        _engines.GetOrAdd((set, volumeZ), key => new Lazy<OpenClFeatureEngine>(() => new OpenClFeatureEngine(_context, key.Set, key.VolumeZ))).Value;

    public override IPixelClassifier Classifier(IPixelClassifier classifier) =>
        _classifiers.GetOrAdd(classifier, c => new Lazy<IPixelClassifier>(() => c switch
        {
            ForestClassifier f => new DeviceClassifier(new OpenClForestPredictor(_context, f.Forest), f.FeatureCount, f.OutputChannels),
            IlastikForestClassifier i => new DeviceClassifier(new OpenClForestPredictor(_context, i.Classifier), i.FeatureCount, i.OutputChannels),
            _ => c,
        })).Value;

    public override void Dispose()
    {
        foreach (var engine in _engines.Values.Where(e => e.IsValueCreated)) engine.Value.Dispose();
        foreach (var classifier in _classifiers.Values.Where(c => c.IsValueCreated)) (classifier.Value as IDisposable)?.Dispose();
        _context.Dispose();
    }

    private sealed class DeviceClassifier(OpenClForestPredictor predictor, int featureCount, int outputChannels) : IPixelClassifier, IDisposable
    {
        public int FeatureCount => featureCount;
        public int OutputChannels => outputChannels;

        public void Predict(ReadOnlySpan<float> planarFeatures, int voxelCount, Span<float> probabilities) =>
            predictor.PredictProbabilities(planarFeatures, voxelCount, probabilities);

        public void Dispose() => predictor.Dispose();
    }
}
