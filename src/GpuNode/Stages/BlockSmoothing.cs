using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>Gaussian smoothing of a chunk's read box before segmentation or meshing: one FIR kernel per axis (z, y, x), null where that axis is not smoothed.</summary>
internal static class BlockSmoothing
{
    public static Halo HaloOf(FirKernel?[] kernels) => new(kernels[0]?.Radius ?? 0, kernels[1]?.Radius ?? 0, kernels[2]?.Radius ?? 0);

    /// <summary>The Gaussian-smoothed read box (x, then y, then z passes), or the input itself when nothing smooths.</summary>
    public static float[] Apply(FirKernel?[] kernels, Long3 size, float[] image, float[] scratch)
    {
        int sz = (int)size.Z, sy = (int)size.Y, sx = (int)size.X, n = sz * sy * sx;
        float[] current = image, other = scratch;
        for (int axis = 2; axis >= 0; axis--)
        {
            if (kernels[axis] is not { } kernel) continue;
            SeparableConvolution.Apply(current.AsSpan(0, n), other.AsSpan(0, n), sz, sy, sx, axis, kernel);
            (current, other) = (other, current);
        }
        if (!ReferenceEquals(current, image)) current.AsSpan(0, n).CopyTo(image);
        return image;
    }
}
