// The feature stack's device kernels: the ILGPU twins of FeatureEngine's CPU steps, bit-identical to them. Every kernel
// is generic over IFloatOps (pinned rounding on CUDA, see Arithmetic/FloatOps.cs) and writes each float operation in
// the CPU code's order:
//
//   ConvolveBox   one 1D Gaussian-derivative pass along one axis, computed over a box of the input (what
//                 SeparableConvolution.Apply does with an output box); per output sample, in exactly this order:
//
//                     acc = c[0] · in[i]                      multiply
//                     for k = 1..R:  d = in[i+k] ± in[i−k]    add (even kernels, orders 0 and 2) or subtract (odd, order 1)
//                                    acc = fma(d, c[k], acc)  fused, one rounding
//
//                 Taps mirror (reflect-101, "dcb|abcd|cba") at the INPUT's ends along the axis, never at the box's:
//
//                     input (ssz, ssy, ssx) ┌───────────────────────┐
//                                           │   ┌───────────┐       │  output box: origin (oz, oy, ox) in the input,
//                                           │   │  output   │       │  shape = the launch extent (x fastest)
//                                           │   └───────────┘       │
//                                           └───────────────────────┘
//
//                 A whole-volume pass is the box that is the whole input (origin 0). The host guarantees R ≤ n − 1
//                 (one reflection suffices); a line of n = 1 maps every index to 0.
//   Crop          an image held over a box, cut to a sub-box (FeatureEngine's DerivativeCache.Crop)
//   Add, Subtract, Multiply     a + b, a − b, a · b (Elementwise)
//   Log3          (xx + yy) + zz: the Laplacian's float sum order x, y, z
//   Magnitude2/3  sqrt(x·x + y·y) and sqrt((x·x + y·y) + z·z), never fused (Elementwise.Magnitude)
//   Eigen2/3      EigenEngine.Eigen2 / Eigen3 themselves, run on one DeviceLane: the CPU's formulas, not a copy
using System.Runtime.CompilerServices;
using ChunkSeg.IlgpuKernels.Arithmetic;
using ChunkSeg.Kernels.Eigen;
using ILGPU;

namespace ChunkSeg.IlgpuKernels.Kernels;

/// <summary>Where a <see cref="FeatureKernels{TOps}.ConvolveBox"/> launch reads and writes (see the essay above).</summary>
/// <param name="Radius">Taps c[0..Radius].</param>
/// <param name="Odd">1: antisymmetric kernel (first derivative), d = in[i+k] − in[i−k]; 0: symmetric.</param>
/// <param name="Axis">0 = z, 1 = y, 2 = x.</param>
/// <param name="OutputY">Rows of the output box (its x extent is <paramref name="OutputX"/>; the launch extent is the box).</param>
public readonly record struct BoxPass(int Radius, int Odd, int Axis, int SourceZ, int SourceY, int SourceX, int OriginZ, int OriginY, int OriginX,
    int OutputY, int OutputX);

/// <summary>A sub-box cut: the source's row shape and the sub-box's origin in it.</summary>
public readonly record struct CropShape(int SourceY, int SourceX, int OriginZ, int OriginY, int OriginX, int OutputY, int OutputX);

public static class FeatureKernels<TOps> where TOps : struct, IFloatOps<TOps>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Reflect101(int j, int n)
    {
        if (n == 1) return 0;
        if (j < 0) j = -j;
        if (j > n - 1) j = 2 * (n - 1) - j;
        return j;
    }

    public static void ConvolveBox(Index3D index, ArrayView<float> source, ArrayView<float> destination, ArrayView<float> taps, BoxPass pass)
    {
        int px = pass.OriginX + index.X, py = pass.OriginY + index.Y, pz = pass.OriginZ + index.Z;
        long i = px + (long)pass.SourceX * (py + (long)pass.SourceY * pz);
        int pos, n;
        long stride;
        if (pass.Axis == 2) { pos = px; n = pass.SourceX; stride = 1; }
        else if (pass.Axis == 1) { pos = py; n = pass.SourceY; stride = pass.SourceX; }
        else { pos = pz; n = pass.SourceZ; stride = (long)pass.SourceX * pass.SourceY; }
        long line = i - pos * stride;
        int radius = pass.Radius;

        float acc = TOps.Multiply(taps[0], source[i]);
        bool interior = pos >= radius && pos + radius <= n - 1;
        for (int k = 1; k <= radius; k++)
        {
            int plus = interior ? pos + k : Reflect101(pos + k, n);
            int minus = interior ? pos - k : Reflect101(pos - k, n);
            float p = source[line + plus * stride], m = source[line + minus * stride];
            float d = pass.Odd != 0 ? TOps.Subtract(p, m) : TOps.Add(p, m);
            acc = TOps.MultiplyAdd(d, taps[k], acc);
        }
        destination[Linear(index, pass.OutputY, pass.OutputX)] = acc;
    }

    public static void Crop(Index3D index, ArrayView<float> source, ArrayView<float> destination, CropShape shape) =>
        destination[Linear(index, shape.OutputY, shape.OutputX)] = source[(shape.OriginX + index.X) + (long)shape.SourceX * ((shape.OriginY + index.Y) + (long)shape.SourceY * (shape.OriginZ + index.Z))];

    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> destination) => destination[i] = TOps.Add(a[i], b[i]);

    public static void Subtract(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> destination) => destination[i] = TOps.Subtract(a[i], b[i]);

    public static void Multiply(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> destination) => destination[i] = TOps.Multiply(a[i], b[i]);

    public static void Log3(Index1D i, ArrayView<float> xx, ArrayView<float> yy, ArrayView<float> zz, ArrayView<float> destination) =>
        destination[i] = TOps.Add(TOps.Add(xx[i], yy[i]), zz[i]);

    public static void Magnitude2(Index1D i, ArrayView<float> gx, ArrayView<float> gy, ArrayView<float> destination)
    {
        float x = gx[i], y = gy[i];
        destination[i] = MathF.Sqrt(TOps.Add(TOps.Multiply(x, x), TOps.Multiply(y, y)));
    }

    public static void Magnitude3(Index1D i, ArrayView<float> gx, ArrayView<float> gy, ArrayView<float> gz, ArrayView<float> destination)
    {
        float x = gx[i], y = gy[i], z = gz[i];
        float sum = TOps.Add(TOps.Multiply(x, x), TOps.Multiply(y, y));
        destination[i] = MathF.Sqrt(TOps.Add(sum, TOps.Multiply(z, z)));
    }

    public static void Eigen2(Index1D i, ArrayView<float> xx, ArrayView<float> xy, ArrayView<float> yy, ArrayView<float> ev0, ArrayView<float> ev1)
    {
        EigenEngine.Eigen2(new DeviceLane<TOps>(xx[i]), new DeviceLane<TOps>(xy[i]), new DeviceLane<TOps>(yy[i]), out var big, out var small);
        ev0[i] = big.Value;
        ev1[i] = small.Value;
    }

    /// <summary>On (a00, a01, a02, a11, a12, a22) = (zz, yz, xz, yy, xy, xx); e0 ≥ e1 ≥ e2.</summary>
    public static void Eigen3(Index1D i, ArrayView<float> a00, ArrayView<float> a01, ArrayView<float> a02, ArrayView<float> a11,
        ArrayView<float> a12, ArrayView<float> a22, ArrayView<float> ev0, ArrayView<float> ev1, ArrayView<float> ev2)
    {
        EigenEngine.Eigen3(new DeviceLane<TOps>(a00[i]), new DeviceLane<TOps>(a01[i]), new DeviceLane<TOps>(a02[i]),
            new DeviceLane<TOps>(a11[i]), new DeviceLane<TOps>(a12[i]), new DeviceLane<TOps>(a22[i]), out var e0, out var e1, out var e2);
        ev0[i] = e0.Value;
        ev1[i] = e1.Value;
        ev2[i] = e2.Value;
    }

    /// <summary>The linear index of <paramref name="index"/> in a C-ordered box of <paramref name="rows"/> × <paramref name="columns"/> planes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static long Linear(Index3D index, int rows, int columns) => index.X + (long)columns * (index.Y + (long)rows * index.Z);
}
