using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Filters;
using ChunkSeg.Kernels.Splitting;

namespace ChunkSeg.GpuNode.Backends;

/// <summary>
/// Where a chunk's heavy kernels run: the feature stack, the forest, labelling's smoothing and the split's blurs. Every
/// backend gives the CPU's results (the parity tests hold each to that); they differ only in speed. Thread-safe: one
/// instance serves all worker threads.
/// </summary>
public abstract class ComputeBackend : IDisposable
{
    /// <summary>The CPU backend: SIMD kernels on this machine's cores.</summary>
    public static ComputeBackend Cpu { get; } = new CpuBackend();

    /// <summary>"cpu" or "gpu", as <c>--backend</c> names it.</summary>
    public abstract string Name { get; }

    /// <summary>The device in words (status and summaries): "CPU, 16 cores", "NVIDIA H100 80GB HBM3 (CUDA, 79.1 GiB)".</summary>
    public abstract string Device { get; }

    /// <summary>An engine for <paramref name="set"/> on volumes <paramref name="volumeZ"/> deep; cheap to ask for per chunk.</summary>
    public abstract IFeatureEngine FeatureEngine(FeatureSet set, long volumeZ);

    /// <summary><paramref name="classifier"/> as this backend runs it (the same classifier where it has no forest kernel).</summary>
    public abstract IPixelClassifier Classifier(IPixelClassifier classifier);

    /// <summary>
    /// The feature stack of <paramref name="set"/> and <paramref name="classifier"/> as one step on this backend's device
    /// (the features never leave it), or null where the backend runs them as two (the CPU; a classifier with no kernel).
    /// </summary>
    public virtual IFusedClassifier? Fused(FeatureSet set, long volumeZ, FeatureMatrixLayout layout, IPixelClassifier classifier) => null;

    /// Labelling's segmentation step (smoothing, then threshold or argmax) for <paramref name="segmentation"/>, not
    /// <see cref="SegmentationMode.Labels"/>; <paramref name="is2D"/>: z is not smoothed. The CPU's unless overridden.
    /// </summary>
    public virtual IChunkSegmenter Segmenter(Segmentation segmentation, bool is2D)
    {
        ArgumentNullException.ThrowIfNull(segmentation);
        if (segmentation.Mode == SegmentationMode.Labels)
            throw new ArgumentException("a label image is labelled as it is; only threshold and argmax segment", nameof(segmentation));
        return new BlockSegmenter(segmentation, is2D);
    }

    /// <summary>
    /// <see cref="BlockSmoothing.Apply"/> on this backend: <paramref name="image"/> (a read box of <paramref name="size"/>)
    /// smoothed in place by <paramref name="kernels"/> (z, y, x; null: that axis is not), <paramref name="scratch"/> as room.
    /// </summary>
    public virtual void Smooth(FirKernel?[] kernels, Long3 size, float[] image, float[] scratch) => BlockSmoothing.Apply(kernels, size, image, scratch);

    /// <summary>
    /// <see cref="ClesperantoGaussian.Apply"/> on this backend: the split's outline and spot blurs of a block of
    /// <paramref name="shape"/> (<paramref name="destination"/> may be <paramref name="source"/>).
    /// </summary>
    public virtual void ClesperantoBlur(ClesperantoGaussian blur, ReadOnlySpan<float> source, Span<float> destination, Long3 shape)
    {
        ArgumentNullException.ThrowIfNull(blur);
        blur.Apply(source, destination, shape);
    }

    public virtual void Dispose() => GC.SuppressFinalize(this);

    private sealed class CpuBackend : ComputeBackend
    {
        public override string Name => "cpu";
        public override string Device => $"CPU, {Environment.ProcessorCount} cores";
        public override IFeatureEngine FeatureEngine(FeatureSet set, long volumeZ) => new FeatureEngine(set, volumeZ);
        public override IPixelClassifier Classifier(IPixelClassifier classifier) => classifier;
        public override void Dispose() { }   // shared: never disposed
    }
}

/// <summary>Features then classifier in one device step: what <see cref="ComputeBackend.Fused"/> gives.</summary>
public interface IFusedClassifier
{
    /// <summary>
    /// The probabilities of <paramref name="core"/>'s voxels (block coordinates), [v · OutputChannels + c] in the core's C
    /// order, from every input channel's C-ordered block of <paramref name="blockShape"/>, channel after channel.
    /// </summary>
    void Classify(ReadOnlySpan<float> blocks, Long3 blockShape, Box3 core, Span<float> probabilities);
}
