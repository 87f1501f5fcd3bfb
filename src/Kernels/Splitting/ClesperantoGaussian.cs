// clEsperanto's gaussian_blur (pyclesperanto_prototype, gaussian_blur_separable_{2,3}d_x.cl), bit for bit.
//
// Not VIGRA's or fastfilters' Gaussian (ilastik's features use those: FirKernel): a wider kernel, weights built
// and summed per voxel in float32, and clamp-to-edge borders:
//
//      N = int(8σ), made odd        taps v = −c … c, c = (N − 1) / 2        h(v) = exp(float(v²) / (−2σ·σ))
//      out(p) = ( Σ_v h(v) · in(clamp(p + v)) ) / Σ_v h(v)      summed in tap order, float32, no fused multiply-add
//
//      x pass ──▶ float32 ──▶ y pass ──▶ float32 ──▶ z pass          (σ ≤ 0 on an axis: that pass is a copy)
//
// A chunk reads its core grown by Radius per axis: a core voxel's sum then never touches the read box's edge,
// and at the volume's own faces the clamp is clEsperanto's. docs/voronoi-otsu.md §1 cites the source. The GPU backend
// runs the same passes with these weights and sums (IlgpuKernels/Kernels/SplitKernels.cs).
using System.Buffers;
using System.Numerics;
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Kernels.Splitting;

/// <summary>clEsperanto's separable Gaussian blur with sigma per axis (z, y, x), in voxels.</summary>
public sealed class ClesperantoGaussian
{
    private readonly float[]?[] _taps;                      // per axis z, y, x; null: no blur on that axis
    private readonly float[] _sums;

    public ClesperantoGaussian(double sigmaZ, double sigmaY, double sigmaX)
    {
        double[] sigmas = [sigmaZ, sigmaY, sigmaX];
        foreach (double s in sigmas)
            if (!double.IsFinite(s)) throw new ArgumentOutOfRangeException(nameof(sigmaX), s, "sigma must be finite");
        _taps = sigmas.Select(s => s > 0 ? Taps(s) : null).ToArray();
        _sums = _taps.Select(t => t is null ? 1f : Sum(t)).ToArray();
        Sigma = (sigmaZ, sigmaY, sigmaX);
    }

    public (double Z, double Y, double X) Sigma { get; }

    /// <summary>Voxels each side a chunk must read for its core to be exact.</summary>
    public Halo Radius => new(RadiusOf(_taps[0]), RadiusOf(_taps[1]), RadiusOf(_taps[2]));

    /// <summary>The weights along <paramref name="axis"/> (0 z, 1 y, 2 x) in tap order; empty where that axis is not blurred.</summary>
    public ReadOnlySpan<float> Weights(int axis) => _taps[axis];

    /// <summary>Their float32 sum in tap order: what each blurred value along <paramref name="axis"/> is divided by.</summary>
    public float WeightSum(int axis) => _sums[axis];

    /// <summary>clEsperanto's sigma_to_kernel_size: int(8σ), plus one when even.</summary>
    public static int KernelSize(double sigma)
    {
        int n = (int)(sigma * 8.0);
        return n % 2 == 0 ? n + 1 : n;
    }

    /// <summary>
    /// Blurs a block of <paramref name="shape"/> (z, y, x) from <paramref name="source"/> into <paramref name="destination"/>
    /// (may be the same span), clamping at the block's faces.
    /// </summary>
    public void Apply(ReadOnlySpan<float> source, Span<float> destination, Long3 shape)
    {
        int sz = checked((int)shape.Z), sy = checked((int)shape.Y), sx = checked((int)shape.X);
        int n = checked(sz * sy * sx);
        if (source.Length < n || destination.Length < n)
            throw new ArgumentException($"a {shape} block needs {n} values; got {source.Length} in, {destination.Length} out");
        if (!source.Overlaps(destination)) source[..n].CopyTo(destination);          // the same span: blurred in place
        int longest = Math.Max(sz, Math.Max(sy, sx));
        int widest = _taps.Max(t => t?.Length ?? 1);
        float[] line = ArrayPool<float>.Shared.Rent(longest + widest);
        float[] result = ArrayPool<float>.Shared.Rent(longest);
        try
        {
            // x (contiguous lines), then y, then z: the order clEsperanto runs its passes in.
            if (_taps[2] is { } tx)
                for (int row = 0; row < sz * sy; row++)
                    BlurLine(destination.Slice(row * sx, sx), 1, sx, tx, _sums[2], line, result);
            if (_taps[1] is { } ty)
                for (int z = 0; z < sz; z++)
                    for (int x = 0; x < sx; x++)
                        BlurLine(destination[(z * sy * sx + x)..], sx, sy, ty, _sums[1], line, result);
            if (_taps[0] is { } tz)
                for (int yx = 0; yx < sy * sx; yx++)
                    BlurLine(destination[yx..], sy * sx, sz, tz, _sums[0], line, result);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(line);
            ArrayPool<float>.Shared.Return(result);
        }
    }

    /// <summary>One line of <paramref name="length"/> values <paramref name="stride"/> apart, blurred in place.</summary>
    private static void BlurLine(Span<float> data, int stride, int length, float[] taps, float sum, float[] line, float[] result)
    {
        int c = taps.Length / 2;
        // The line with c clamped copies of its end values on each side.
        for (int i = 0; i < length + 2 * c; i++) line[i] = data[Math.Clamp(i - c, 0, length - 1) * stride];
        var acc = result.AsSpan(0, length);
        acc.Clear();
        for (int k = 0; k < taps.Length; k++)
        {
            // acc[i] += h · line[i + k], over the whole line at once: the per-voxel sum in tap order.
            float h = taps[k];
            var src = line.AsSpan(k, length);
            int i = 0;
            if (Vector.IsHardwareAccelerated)
            {
                var hv = new Vector<float>(h);
                for (; i <= length - Vector<float>.Count; i += Vector<float>.Count)
                {
                    var a = new Vector<float>(acc[i..]);
                    (a + hv * new Vector<float>(src[i..])).CopyTo(acc[i..]);
                }
            }
            for (; i < length; i++) acc[i] += h * src[i];
        }
        for (int i = 0; i < length; i++) data[i * stride] = acc[i] / sum;
    }

    private static float[] Taps(double sigma)
    {
        int size = KernelSize(sigma), c = (size - 1) / 2;
        float s = (float)sigma;
        float n = -2f * s * s;
        var taps = new float[size];
        for (int v = -c; v <= c; v++) taps[v + c] = (float)Math.Exp((float)(v * v) / n);
        return taps;
    }

    private static float Sum(float[] taps)
    {
        float sum = 0;
        foreach (float h in taps) sum += h;
        return sum;
    }

    private static int RadiusOf(float[]? taps) => taps is null ? 0 : taps.Length / 2;
}
