using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Kernels.Features;

/// <summary>
/// Computes a feature set's images over the core of one float32 block, as <see cref="FeatureEngine"/> defines them
/// (ILASTIK_RECIPE §3): the CPU engine, or an accelerator's, which must give the same images. Implementations are
/// safe to call from several threads at once.
/// </summary>
public interface IFeatureEngine
{
    FeatureSet Set { get; }

    /// <summary>
    /// Every feature image of <see cref="Set"/> over <paramref name="core"/> (block coordinates) of the C-ordered block of
    /// shape (sz, sy, sx), handed to <paramref name="sink"/> one at a time (core.VoxelCount values in C order).
    /// </summary>
    void Compute(ReadOnlySpan<float> block, int sz, int sy, int sx, Box3 core, FeatureImageSink sink);

    /// <summary>
    /// As <see cref="Compute(ReadOnlySpan{float}, int, int, int, Box3, FeatureImageSink)"/>, each image written into the memory
    /// <paramref name="destination"/> gives for it (core.VoxelCount floats): a consumer assembling a feature matrix gets it
    /// without a copy where the engine writes in place (the CPU engine does), with one copy otherwise.
    /// </summary>
    void Compute(ReadOnlySpan<float> block, int sz, int sy, int sx, Box3 core, FeatureImageDestination destination) =>
        Compute(block, sz, sy, sx, core, (entry, component, image) => image.CopyTo(destination(entry, component).Span));
}
