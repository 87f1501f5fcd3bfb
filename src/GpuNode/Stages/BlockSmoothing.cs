using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// Gaussian smoothing of a chunk's read box before segmentation or meshing: one FIR kernel per axis (z, y, x)
/// with a window of 3 sigma, null where that axis is not smoothed.
/// </summary>
public static class BlockSmoothing
{
    public const double Window = 3.0;

    /// <summary>The kernels for <paramref name="sigma"/> (voxels, z, y, x); a 2D volume is not smoothed along z.</summary>
    public static FirKernel?[] Kernels(Sigma3 sigma, bool is2D = false) => [is2D ? null : Gaussian(sigma.Z), Gaussian(sigma.Y), Gaussian(sigma.X)];

    private static FirKernel? Gaussian(double sigma) =>
        sigma > 0 && FirKernel.Gaussian(0, sigma, Window) is { Radius: > 0 } kernel ? kernel : null;

    /// <summary>Why the kernels do not fit a volume of <paramref name="shape"/> (a kernel needs radius + 1 voxels), or null when they do.</summary>
    public static string? Misfit(FirKernel?[] kernels, Long3 shape)
    {
        for (int axis = 0; axis < 3; axis++)
            if (kernels[axis] is { } k && k.Radius > shape[axis] - 1)
                return $"a Gaussian of radius {k.Radius} needs at least {k.Radius + 1} voxels along {"zyx"[axis]}; the volume has {shape[axis]}";
        return null;
    }

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
