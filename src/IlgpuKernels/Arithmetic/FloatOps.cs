using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace ChunkSeg.IlgpuKernels.Arithmetic;

/// <summary>
/// Float32 arithmetic whose rounding is pinned, the one way every kernel multiplies, adds and subtracts where the result
/// must equal the CPU backend's bit for bit.
/// <code>
///   C# kernel ──ILGPU──▶ PTX  mul.f32 / add.f32 ──driver JIT (ptxas)──▶ may fuse a·b + c into one FFMA: one rounding, not two
///                              mul.rn.f32 / add.rn.f32                ──▶ never fused: ".rn" forbids contraction
/// </code>
/// ILGPU writes <c>a * b</c> as <c>mul.f32</c>, which the driver's compiler is free to contract with a following add
/// (and no load option stops it), so a kernel written with plain operators may round differently on every driver.
/// The kernels are therefore generic over an <see cref="IFloatOps{TSelf}"/> and instantiated once per target:
/// <list type="bullet">
/// <item><see cref="CudaFloatOps"/> writes each operation as inline PTX with <c>.rn</c> (round to nearest even, never
/// contracted, no <c>.ftz</c>), and the fused multiply-add the CPU's convolution uses as <c>fma.rn.f32</c>.</item>
/// <item><see cref="PortableFloatOps"/> (ILGPU's CPU accelerator and OpenCL devices): plain operators, which ILGPU's
/// OpenCL code generator writes one statement each (C contracts only within one expression), and a correctly rounded
/// fused multiply-add built from double arithmetic (<see cref="SoftwareFma"/>), since ILGPU has no FMA intrinsic.</item>
/// </list>
/// Division and square root need no helper: ILGPU writes them <c>div.rn.f32</c> and <c>sqrt.rn.f32</c>. The PTX test
/// (tests/ChunkSeg.IlgpuKernels.Tests/PtxTests) compiles every kernel for sm_90 and fails on any float add, sub or mul
/// without <c>.rn</c>, any <c>.approx</c> and any <c>.ftz</c>.
/// </summary>
public interface IFloatOps<TSelf> where TSelf : struct, IFloatOps<TSelf>
{
    static abstract float Add(float a, float b);
    static abstract float Subtract(float a, float b);
    static abstract float Multiply(float a, float b);

    /// <summary>a · b + c with one rounding (IEEE fusedMultiplyAdd), what <see cref="MathF.FusedMultiplyAdd"/> gives on the CPU.</summary>
    static abstract float MultiplyAdd(float a, float b, float c);

    /// <summary>Double a + b (the forest's vote totals).</summary>
    static abstract double Add(double a, double b);
}

/// <summary>Inline PTX with <c>.rn</c>: what CUDA devices run (see <see cref="IFloatOps{TSelf}"/>).</summary>
public readonly struct CudaFloatOps : IFloatOps<CudaFloatOps>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Add(float a, float b)
    {
        CudaAsm.Emit("add.rn.f32 %0, %1, %2;", out float r, a, b);
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Subtract(float a, float b)
    {
        CudaAsm.Emit("sub.rn.f32 %0, %1, %2;", out float r, a, b);
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Multiply(float a, float b)
    {
        CudaAsm.Emit("mul.rn.f32 %0, %1, %2;", out float r, a, b);
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MultiplyAdd(float a, float b, float c)
    {
        CudaAsm.Emit("fma.rn.f32 %0, %1, %2, %3;", out float r, a, b, c);
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Add(double a, double b)
    {
        CudaAsm.Emit("add.rn.f64 %0, %1, %2;", out double r, a, b);
        return r;
    }
}

/// <summary>Plain operators and <see cref="SoftwareFma"/>: ILGPU's CPU accelerator and OpenCL devices.</summary>
public readonly struct PortableFloatOps : IFloatOps<PortableFloatOps>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Add(float a, float b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Subtract(float a, float b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Multiply(float a, float b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MultiplyAdd(float a, float b, float c) => SoftwareFma.MultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Add(double a, double b) => a + b;
}

/// <summary>
/// A correctly rounded float32 a · b + c from double arithmetic, for devices where ILGPU offers no FMA.
/// <code>
///   p = a·b            exact in double (24 + 24 ≤ 53 bits)
///   s = p + c          rounded to double; e = (p + c) − s exactly (Knuth's TwoSum)
///   s' = s, or s nudged one double ulp toward e when e ≠ 0 and s's last bit is even   ("round to odd")
///   result = (float)s'
/// </code>
/// Rounding to odd at 53 bits and then to nearest at 24 is the same as rounding the exact sum once (Boldo and
/// Melquiond: it holds whenever the first precision exceeds the second by two bits), which a plain <c>(float)s</c>
/// is not (a double rounding can land on a float midpoint). Infinite and NaN inputs give e = NaN: no nudge, and the
/// double result converts as the CPU's fused operation would.
/// </summary>
internal static class SoftwareFma
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MultiplyAdd(float a, float b, float c)
    {
        double p = (double)a * b;
        double s = p + c;
        double bv = s - p;
        double e = (p - (s - bv)) + (c - bv);
        ulong bits = Interop.FloatAsInt(s);
        if (e != 0.0 && !double.IsNaN(e) && (bits & 1UL) == 0UL)
            bits = (e > 0.0) == (s > 0.0) ? bits + 1UL : bits - 1UL;
        return (float)Interop.IntAsFloat(bits);
    }
}
