using System.Runtime.CompilerServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.IlgpuKernels.Features;
using ChunkSeg.IlgpuKernels.Forest;
using ChunkSeg.IlgpuKernels.Labeling;
using ChunkSeg.IlgpuKernels.Runtime;
using ChunkSeg.IlgpuKernels.Splitting;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Filters;
using ChunkSeg.Kernels.Splitting;

namespace ChunkSeg.GpuNode.Backends;

/// <summary>
/// The feature stack, the forests, labelling's segmentation and the split's blurs on an ILGPU accelerator (CUDA on
/// NVIDIA GPUs, OpenCL on others, or ILGPU's CPU accelerator for tests): one device, its kernels compiled once and
/// shared by all worker threads; engines are cheap per chunk (the device pools their buffers), predictors are built per
/// classifier.
/// <para>
/// A long-running worker binds every job anew (new classifier objects): a classifier's device copy lives as long as the
/// classifier object (a weak table), so the trees of finished jobs do not pile up on the device.
/// </para>
/// </summary>
public sealed class GpuBackend(GpuDevice device) : ComputeBackend
{
    private readonly ConditionalWeakTable<IPixelClassifier, IPixelClassifier> _classifiers = new();
    private readonly GpuSegmenter _segmenter = new(device);
    private readonly GpuClesperantoBlur _blur = new(device);

    public override string Name => "gpu";

    public override string Device { get; } = device.Describe();

    public override IFeatureEngine FeatureEngine(FeatureSet set, long volumeZ) => new GpuFeatureEngine(device, set, volumeZ);

    public override IPixelClassifier Classifier(IPixelClassifier classifier) =>
        _classifiers.GetValue(classifier, c => c switch
        {
            ForestClassifier f => new DeviceClassifier(new GpuForestPredictor(device, f.Forest), f.FeatureCount, f.OutputChannels),
            IlastikForestClassifier i => new DeviceClassifier(new GpuForestPredictor(device, i.Classifier), i.FeatureCount, i.OutputChannels),
            _ => c,
        });

    public override IFusedClassifier? Fused(FeatureSet set, long volumeZ, FeatureMatrixLayout layout, IPixelClassifier classifier) =>
        Classifier(classifier) is DeviceClassifier onDevice
            ? new FusedClassifier(new GpuFeatureEngine(device, set, volumeZ), layout, onDevice.Predictor)
            : null;

    public override IChunkSegmenter Segmenter(Segmentation segmentation, bool is2D) => new DeviceSegmenter(_segmenter, segmentation, is2D);

    public override void Smooth(FirKernel?[] kernels, Long3 size, float[] image, float[] scratch)
    {
        if (kernels.All(k => k is null)) return;
        int n = checked((int)size.Volume);
        _segmenter.Smooth(image.AsSpan(0, n), (int)size.Z, (int)size.Y, (int)size.X, kernels, scratch.AsSpan(0, n));
        scratch.AsSpan(0, n).CopyTo(image);
    }

    public override void ClesperantoBlur(ClesperantoGaussian blur, ReadOnlySpan<float> source, Span<float> destination, Long3 shape) =>
        _blur.Apply(blur, source, destination, shape);

    public override void Dispose()
    {
        foreach (var (_, onDevice) in _classifiers) (onDevice as IDisposable)?.Dispose();
        device.Dispose();
    }

    private sealed class DeviceClassifier(GpuForestPredictor predictor, int featureCount, int outputChannels) : IPixelClassifier, IDisposable
    {
        public GpuForestPredictor Predictor => predictor;

        public int FeatureCount => featureCount;
        public int OutputChannels => outputChannels;

        public void Predict(ReadOnlySpan<float> planarFeatures, int voxelCount, Span<float> probabilities) =>
            predictor.PredictProbabilities(planarFeatures, voxelCount, probabilities);

        public void Dispose() => predictor.Dispose();
    }

    private sealed class FusedClassifier(GpuFeatureEngine engine, FeatureMatrixLayout layout, GpuForestPredictor predictor) : IFusedClassifier
    {
        public void Classify(ReadOnlySpan<float> blocks, Long3 blockShape, Box3 core, Span<float> probabilities) =>
            engine.Classify(blocks, layout, (int)blockShape.Z, (int)blockShape.Y, (int)blockShape.X, core, predictor, probabilities);
    }
}
