// Separable Gaussian-derivative convolution, bit-identical to fastfilters (ilastik's feature library).
//
// ilastik's features are separable: a 3D Gaussian (derivative) is three 1D passes, x then y then z, each
// writing a float32 volume. One pass convolves every line along one axis with a symmetric (orders 0, 2)
// or antisymmetric (order 1) kernel of half-width R. Because the kernel is (anti)symmetric the two taps
// at ±k share one multiply, and fastfilters evaluates, per output sample and in exactly this order:
//
//     acc = c[0] * in[i]                                  float32 multiply (order 1: c[0] = +0, acc = ±0)
//     for k = 1..R:  d   = in[i+k] ± in[i-k]              float32 add (orders 0, 2) or subtract (order 1)
//                    acc = fma(d, c[k], acc)              fused: one rounding
//     out[i] = acc
//
// Floating point is not associative, so every path here (each SIMD width, the scalar tail, the border)
// performs this same sequence per sample; that is what makes the result independent of SIMD width, of
// thread count, and equal to ilastik's bit for bit. (fastfilters starts the antisymmetric case from
// c[0]·in[i] too: its scalar and AVX loops share that line for both symmetries.)
//
// Border: reflect-101 at the buffer's own ends, "dcb|abcd|cba": in[-j] = in[j], in[n-1+j] = in[n-1-j].
// Requires R <= n-1. A line of n = 1 (2D data stored with sz = 1) mirrors every index to 0, so
// out = c[0]·v + Σ fma(v ± v, c[k]): order 0 and 2 give the kernel sum times v, order 1 gives ±0.
// That is what reflect-101 means for a 1-long line; fastfilters never sees it (callers skip the z pass).
//
// Two loop shapes, both "one output row = Σ over 2R+1 input rows", vectorised along contiguous memory:
//
//   x pass (along the contiguous axis)         y / z pass (across lines, contiguous inner block of L)
//   one line is copied into a padded scratch   the input rows at mirrored positions p±k are looked up
//   row, so no load ever needs a border if:    in a reflect-101 index map, then every output row is
//                                              a vector loop over its L contiguous floats:
//      R mirrored   n samples    R mirrored
//     [c b | a b c d ... w x y z | y x w]         row p-k ─┐
//            ^ i-k   ^ i   ^ i+k                   row p   ─┼─ fma over j = 0..L-1 ──► out row p
//     out[i..i+W) from unaligned loads            row p+k ─┘   (y: L = sx per z-slab; z: L = sx·sy)
//
// Both shapes reduce to one routine, Rows: dst[j] = c0·row0[j] + Σ_k fma(rowₖ⁺[j] ± rowₖ⁻[j], c_k), where
// the x pass's "rows" are the padded line shifted by ±k. It runs W = 16/8/4 lanes at once, four vectors
// per step for independent FMA chains, then single vectors, then one final vector that overlaps the
// previous one (recomputing a few samples with identical bits); lines shorter than W go scalar.
// The y/z passes split L into blocks whose n rows take at most 128 KiB, so the 2R+1 input rows of a block
// stay in L2; a block narrower than its row (z pass) is gathered into a contiguous scratch first, since
// planes a power of two apart alias in the caches. Blocks (and groups of x lines) go to Parallel.For.
using System.Buffers;
using ChunkSeg.Contracts.Geometry;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace ChunkSeg.Kernels.Filters;

/// <summary>One 1D pass of a <see cref="FirKernel"/> along one axis of a float32 volume (ILASTIK_RECIPE §3.4).</summary>
public static class SeparableConvolution
{
    /// <summary>
    /// Convolves every line along <paramref name="axis"/> (0 = z, 1 = y, 2 = x) of the C-ordered volume
    /// <paramref name="src"/> of shape (sz, sy, sx), index <c>x + sx·(y + sy·z)</c>, into <paramref name="dst"/>.
    /// </summary>
    /// <remarks>
    /// Border: reflect-101 at the buffer's ends along that axis ("dcb|abcd|cba"). Requires
    /// <c>kernel.Radius &lt;= n − 1</c> for the axis length n, except n = 1, where every mirrored index is 0
    /// (out = Σ taps·v for orders 0/2, ±0 for order 1). Results are bit-identical for any
    /// <paramref name="maxThreads"/> and SIMD width. An empty volume is a no-op.
    /// </remarks>
    /// <param name="src">Input, exactly sz·sy·sx floats; must not overlap <paramref name="dst"/>.</param>
    /// <param name="dst">Output, exactly sz·sy·sx floats.</param>
    /// <param name="maxThreads">Upper bound on parallelism; 1 runs on the calling thread.</param>
    public static void Apply(ReadOnlySpan<float> src, Span<float> dst, int sz, int sy, int sx, int axis, FirKernel kernel, int maxThreads = 1)
        => Apply(src, dst, sz, sy, sx, axis, kernel, maxThreads, BestWidth);

    /// <summary>The widest SIMD width with hardware FMA on this machine (Scalar under DOTNET_EnableHWIntrinsic=0).</summary>
    internal static SimdWidth BestWidth { get; } =
        Vector512.IsHardwareAccelerated ? SimdWidth.V512
        : Vector256.IsHardwareAccelerated && Fma.IsSupported ? SimdWidth.V256
        : Vector128.IsHardwareAccelerated && (Fma.IsSupported || AdvSimd.IsSupported) ? SimdWidth.V128
        : SimdWidth.Scalar;

    /// <summary>As the public overload with an explicit SIMD width (tests run every width on any CPU).</summary>
    internal static void Apply(ReadOnlySpan<float> src, Span<float> dst, int sz, int sy, int sx, int axis, FirKernel kernel,
        int maxThreads, SimdWidth width)
    {
        if (sz < 0 || sy < 0 || sx < 0)
            throw new ArgumentOutOfRangeException(nameof(sz), $"shape must be non-negative; got (sz, sy, sx) = ({sz}, {sy}, {sx}).");
        Apply(src, sz, sy, sx, dst, new Box3(Long3.Zero, new Long3(sz, sy, sx)), axis, kernel, maxThreads, width);
    }

    /// <summary>
    /// The pass computed only over <paramref name="output"/>, a box of the input volume (shape sz, sy, sx), into
    /// <paramref name="dst"/> holding exactly that box in C order. Taps still mirror at the input's own ends along
    /// <paramref name="axis"/>, so every computed sample equals the whole pass's. The x pass may crop every axis,
    /// the y pass z and y, the z pass z only (what a chain of passes shrinking towards a core needs).
    /// </summary>
    internal static unsafe void Apply(ReadOnlySpan<float> src, int sz, int sy, int sx, Span<float> dst, Box3 output, int axis, FirKernel kernel,
        int maxThreads, SimdWidth width)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        if (sz < 0 || sy < 0 || sx < 0)
            throw new ArgumentOutOfRangeException(nameof(sz), $"shape must be non-negative; got (sz, sy, sx) = ({sz}, {sy}, {sx}).");
        if (axis is < 0 or > 2)
            throw new ArgumentOutOfRangeException(nameof(axis), axis, $"axis must be 0 (z), 1 (y) or 2 (x); got {axis}.");
        ArgumentOutOfRangeException.ThrowIfLessThan(maxThreads, 1);
        var whole = new Box3(Long3.Zero, new Long3(sz, sy, sx));
        if (output.Intersect(whole) != output)
            throw new ArgumentOutOfRangeException(nameof(output), $"output box {output} is not inside the input {whole}.");
        bool cropsY = output.Start.Y != 0 || output.Size.Y != sy, cropsX = output.Start.X != 0 || output.Size.X != sx;
        if ((axis == 0 && (cropsY || cropsX)) || (axis == 1 && cropsX))
            throw new ArgumentException($"a pass along axis {axis} computes whole {(axis == 0 ? "planes" : "rows")}; output box {output} crops them.", nameof(output));
        long count = (long)sz * sy * sx;
        if (src.Length != count || dst.Length != output.VoxelCount)
            throw new ArgumentException(
                $"shape (sz, sy, sx) = ({sz}, {sy}, {sx}) needs {count} floats and output box {output} {output.VoxelCount}; got src {src.Length} and dst {dst.Length}. Slice pooled buffers to the volume.");
        if (count == 0 || output.IsEmpty) return;
        if (src.Overlaps(dst))
            throw new ArgumentException("src and dst overlap; a pass cannot run in place (each output reads 2R+1 inputs). Use a second buffer.", nameof(dst));
        int n = axis switch { 0 => sz, 1 => sy, _ => sx };
        if (n > 1 && kernel.Radius > n - 1)
            throw new ArgumentOutOfRangeException(nameof(kernel),
                $"kernel radius {kernel.Radius} (sigma {kernel.Sigma}) exceeds {n - 1} = length - 1 along axis {axis}; reflect-101 needs radius <= length - 1. Add halo or use a smaller sigma.");

        fixed (float* s = src)
        fixed (float* d = dst)
        fixed (float* c = kernel.Taps)
        {
            var job = new Pass(s, d, c, kernel.Radius, kernel.IsAntisymmetric, sz, sy, sx, output, axis, maxThreads);
            switch (width)
            {
                case SimdWidth.V512: ConvolutionEngine.Run<Lanes512, Vector512<float>>(job); break;
                case SimdWidth.V256: ConvolutionEngine.Run<Lanes256, Vector256<float>>(job); break;
                case SimdWidth.V128: ConvolutionEngine.Run<Lanes128, Vector128<float>>(job); break;
                default: ConvolutionEngine.Run<Lanes1, float>(job); break;
            }
        }
    }
    /// <summary>
    /// The z pass at one output plane: <paramref name="dst"/> (<paramref name="planeLength"/> floats) = the kernel along z at
    /// plane <paramref name="position"/> of the <paramref name="planeCount"/> planes that start <paramref name="planeStride"/>
    /// floats apart at <paramref name="planes"/>, mirrored (reflect-101) at planes 0 and planeCount − 1. Each sample is the
    /// same sequence as <see cref="Apply(ReadOnlySpan{float}, Span{float}, int, int, int, int, FirKernel, int)"/>'s along z,
    /// so a pass fused plane by plane gives the whole pass's bits. A stride a little past the plane's length keeps the
    /// 2R + 1 rows read together out of one cache set (planes a power of two apart would alias).
    /// </summary>
    internal static unsafe void ApplyAtPlane(float* planes, int planeCount, nint planeStride, nint planeLength, int position, float* dst,
        FirKernel kernel, SimdWidth width)
    {
        int r = kernel.Radius;
        if (planeCount > 1 && r > planeCount - 1)
            throw new ArgumentOutOfRangeException(nameof(kernel),
                $"kernel radius {r} (sigma {kernel.Sigma}) exceeds {planeCount - 1} = length - 1 along z; reflect-101 needs radius <= length - 1. Add halo or use a smaller sigma.");
        if ((uint)position >= (uint)planeCount) throw new ArgumentOutOfRangeException(nameof(position), position, $"plane {position} is not one of the {planeCount}.");
        nint* rows = stackalloc nint[2 * r + 1];
        rows[0] = (nint)(planes + position * planeStride);
        for (int k = 1; k <= r; k++)
        {
            rows[2 * k - 1] = (nint)(planes + ConvolutionEngine.Reflect101(position + k, planeCount) * planeStride);
            rows[2 * k] = (nint)(planes + ConvolutionEngine.Reflect101(position - k, planeCount) * planeStride);
        }
        fixed (float* c = kernel.Taps)
        {
            switch (width)
            {
                case SimdWidth.V512: ConvolutionEngine.Rows<Lanes512, Vector512<float>>(kernel.IsAntisymmetric, rows, dst, planeLength, c, r); break;
                case SimdWidth.V256: ConvolutionEngine.Rows<Lanes256, Vector256<float>>(kernel.IsAntisymmetric, rows, dst, planeLength, c, r); break;
                case SimdWidth.V128: ConvolutionEngine.Rows<Lanes128, Vector128<float>>(kernel.IsAntisymmetric, rows, dst, planeLength, c, r); break;
                default: ConvolutionEngine.Rows<Lanes1, float>(kernel.IsAntisymmetric, rows, dst, planeLength, c, r); break;
            }
        }
    }
}

/// <summary>
/// One validated pass: raw pointers (pinned by the caller for the whole run), the input's shape, and the box of it
/// computed into dst (origin Oz, Oy, Ox; shape Osz, Osy, Osx).
/// </summary>
internal readonly unsafe struct Pass(float* src, float* dst, float* taps, int radius, bool antisymmetric, int sz, int sy, int sx, Box3 output, int axis, int maxThreads)
{
    public readonly nint Src = (nint)src, Dst = (nint)dst, Taps = (nint)taps;
    public readonly int Radius = radius, Sz = sz, Sy = sy, Sx = sx, Axis = axis, MaxThreads = maxThreads;
    public readonly int Oz = (int)output.Start.Z, Oy = (int)output.Start.Y, Ox = (int)output.Start.X;
    public readonly int Osz = (int)output.Size.Z, Osy = (int)output.Size.Y, Osx = (int)output.Size.X;
    public readonly bool Antisymmetric = antisymmetric;
}

/// <summary>Marks whether the pair of taps at ±k is added (orders 0, 2) or subtracted (order 1); a JIT-time constant.</summary>
internal interface ISymmetry { static abstract bool Odd { get; } }
internal struct EvenKernel : ISymmetry { public static bool Odd => false; }
internal struct OddKernel : ISymmetry { public static bool Odd => true; }

/// <summary>The loops; callers (<see cref="SeparableConvolution"/>) validated everything.</summary>
internal static unsafe class ConvolutionEngine
{
    /// <summary>Floats one y/z block holds over its n rows (128 KiB), so the 2R+1 rows it reads stay in L2.</summary>
    private const int BlockFloats = 32 * 1024;

    public static void Run<TL, TVec>(in Pass p) where TL : struct, ILanes<TVec> where TVec : struct
    {
        if (p.Antisymmetric) Run<TL, TVec, OddKernel>(p);
        else Run<TL, TVec, EvenKernel>(p);
    }

    /// <summary><see cref="Rows{TL, TVec, TSym}"/> over [0, <paramref name="length"/>), with the kernel's symmetry chosen at run time.</summary>
    public static void Rows<TL, TVec>(bool antisymmetric, nint* rows, float* dst, nint length, float* c, int r) where TL : struct, ILanes<TVec> where TVec : struct
    {
        if (antisymmetric) Rows<TL, TVec, OddKernel>(rows, dst, 0, length, c, r);
        else Rows<TL, TVec, EvenKernel>(rows, dst, 0, length, c, r);
    }

    private static void Run<TL, TVec, TSym>(Pass p) where TL : struct, ILanes<TVec> where TVec : struct where TSym : struct, ISymmetry
    {
        if (p.Axis == 2) RunX<TL, TVec, TSym>(p);
        else RunAcross<TL, TVec, TSym>(p);
    }

    /// <summary>reflect-101 of index j into [0, n): "dcb|abcd|cba"; a 1-long line maps everything to 0.</summary>
    internal static int Reflect101(int j, int n)
    {
        if (n == 1) return 0;
        if (j < 0) j = -j;
        if (j > n - 1) j = 2 * (n - 1) - j;
        return j;
    }

    // ---- x pass: each line through a padded scratch row --------------------------------------------------

    private static void RunX<TL, TVec, TSym>(Pass p) where TL : struct, ILanes<TVec> where TVec : struct where TSym : struct, ISymmetry
    {
        int lines = p.Osz * p.Osy;
        int groups = p.MaxThreads == 1 ? 1 : Math.Min(lines, p.MaxThreads * 4);
        if (groups <= 1) XLines<TL, TVec, TSym>(p, 0, lines);
        else
            Parallel.For(0, groups, new ParallelOptions { MaxDegreeOfParallelism = p.MaxThreads },
                g => XLines<TL, TVec, TSym>(p, (int)((long)lines * g / groups), (int)((long)lines * (g + 1) / groups)));
    }

    private static void XLines<TL, TVec, TSym>(Pass p, int firstLine, int endLine) where TL : struct, ILanes<TVec> where TVec : struct where TSym : struct, ISymmetry
    {
        int n = p.Sx, r = p.Radius, taps = 2 * r + 1;
        float[] padArray = ArrayPool<float>.Shared.Rent(n + 2 * r);
        nint[] rowArray = ArrayPool<nint>.Shared.Rent(taps);
        try
        {
            fixed (float* pad = padArray)
            fixed (nint* rows = rowArray)
            {
                float* center = pad + r;                         // center[j] = line[j], center[-k], center[n-1+k] mirrored
                rows[0] = (nint)center;
                for (int k = 1; k <= r; k++)
                {
                    rows[2 * k - 1] = (nint)(center + k);
                    rows[2 * k] = (nint)(center - k);
                }
                float* src = (float*)p.Src, dst = (float*)p.Dst, c = (float*)p.Taps;
                for (int line = firstLine; line < endLine; line++)
                {
                    int z = p.Oz + line / p.Osy, y = p.Oy + line % p.Osy;
                    float* inLine = src + ((nint)z * p.Sy + y) * n;
                    new ReadOnlySpan<float>(inLine, n).CopyTo(new Span<float>(center, n));
                    for (int k = 1; k <= r; k++)
                    {
                        center[-k] = inLine[Reflect101(-k, n)];
                        center[n - 1 + k] = inLine[Reflect101(n - 1 + k, n)];
                    }
                    // dst's line is indexed by input x: samples [Ox, Ox + Osx) of this line.
                    Rows<TL, TVec, TSym>(rows, dst + (nint)line * p.Osx - p.Ox, p.Ox, p.Ox + p.Osx, c, r);
                }
            }
        }
        finally
        {
            ArrayPool<nint>.Shared.Return(rowArray);
            ArrayPool<float>.Shared.Return(padArray);
        }
    }

    // ---- y and z passes: whole rows at mirrored positions, vectorised along the contiguous block ----------

    private static void RunAcross<TL, TVec, TSym>(Pass p) where TL : struct, ILanes<TVec> where TVec : struct where TSym : struct, ISymmetry
    {
        // y: outer = the output's z-slabs, n = sy, inner L = sx.   z: outer = 1, n = sz, inner L = sx·sy (whole planes).
        // Output positions along the axis: [first, first + count) of the n.
        int outer = p.Axis == 1 ? p.Osz : 1;
        int n = p.Axis == 1 ? p.Sy : p.Sz;
        long innerL = p.Axis == 1 ? p.Sx : (long)p.Sx * p.Sy;
        long blockTarget = Math.Max(64, BlockFloats / n);
        int blocksPerOuter = (int)Math.Max(1, Math.Min((innerL + blockTarget - 1) / blockTarget, int.MaxValue / Math.Max(1, outer)));
        // More blocks than threads for balance, only when a block stays a whole number of 64-float runs.
        if (p.MaxThreads > 1 && (long)outer * blocksPerOuter < 4L * p.MaxThreads)
            blocksPerOuter = (int)Math.Max(1, Math.Min(innerL / 64, (4L * p.MaxThreads + outer - 1) / outer));
        long blockLen = (innerL + blocksPerOuter - 1) / blocksPerOuter;
        blockLen = Math.Min(innerL, (blockLen + 15) & ~15L);     // whole 512-bit vectors where possible
        blocksPerOuter = (int)((innerL + blockLen - 1) / blockLen);
        int items = outer * blocksPerOuter;

        int[] map = ArrayPool<int>.Shared.Rent(n + 2 * p.Radius);
        try
        {
            for (int j = -p.Radius; j < n + p.Radius; j++) map[j + p.Radius] = Reflect101(j, n);
            var geometry = p.Axis == 1
                ? new Across(n, p.Oy, p.Osy, p.Oz, innerL, blockLen, blocksPerOuter)
                : new Across(n, p.Oz, p.Osz, 0, innerL, blockLen, blocksPerOuter);
            if (p.MaxThreads == 1 || items == 1)
                AcrossItems<TL, TVec, TSym>(p, geometry, map, 0, items);
            else
                Parallel.For(0, items, new ParallelOptions { MaxDegreeOfParallelism = p.MaxThreads },
                    item => AcrossItems<TL, TVec, TSym>(p, geometry, map, item, item + 1));
        }
        finally
        {
            ArrayPool<int>.Shared.Return(map);
        }
    }

    /// <summary>n input positions along the axis, of which [First, First + Count) are computed; outer slab o reads input slab FirstOuter + o.</summary>
    private readonly record struct Across(int N, int First, int Count, int FirstOuter, long InnerL, long BlockLen, int BlocksPerOuter);

    private static void AcrossItems<TL, TVec, TSym>(Pass p, Across g, int[] map, int firstItem, int endItem)
        where TL : struct, ILanes<TVec> where TVec : struct where TSym : struct, ISymmetry
    {
        int r = p.Radius;
        // A block narrower than its rows (the z pass over big planes) is first gathered into a contiguous
        // scratch: rows a power-of-two plane apart alias in the caches, gathered rows do not. The stride gets
        // one spare cache line for the same reason. Same values, so same bits.
        bool gather = g.BlockLen < g.InnerL;
        nint stride = gather ? (nint)g.BlockLen + 16 : (nint)g.InnerL;
        nint[] rowArray = ArrayPool<nint>.Shared.Rent(2 * r + 1);
        float[] scratchArray = ArrayPool<float>.Shared.Rent(gather ? (int)(g.N * stride) : 1);
        try
        {
            fixed (nint* rows = rowArray)
            fixed (int* mirror = map)
            fixed (float* scratch = scratchArray)
            {
                int* m = mirror + r;                                 // m[j] for j in -R..n-1+R
                float* c = (float*)p.Taps;
                for (int item = firstItem; item < endItem; item++)
                {
                    int o = item / g.BlocksPerOuter;
                    long start = (item % g.BlocksPerOuter) * g.BlockLen;
                    nint len = (nint)Math.Min(g.BlockLen, g.InnerL - start);
                    float* inBase = (float*)p.Src + (nint)(g.FirstOuter + o) * g.N * (nint)g.InnerL + (nint)start;
                    float* outBase = (float*)p.Dst + (nint)o * g.Count * (nint)g.InnerL + (nint)start;
                    if (gather)
                    {
                        for (int pos = 0; pos < g.N; pos++)
                            new ReadOnlySpan<float>(inBase + (nint)pos * (nint)g.InnerL, (int)len)
                                .CopyTo(new Span<float>(scratch + pos * stride, (int)len));
                        inBase = scratch;
                    }
                    for (int pos = g.First; pos < g.First + g.Count; pos++)
                    {
                        rows[0] = (nint)(inBase + pos * stride);
                        for (int k = 1; k <= r; k++)
                        {
                            rows[2 * k - 1] = (nint)(inBase + m[pos + k] * stride);
                            rows[2 * k] = (nint)(inBase + m[pos - k] * stride);
                        }
                        Rows<TL, TVec, TSym>(rows, outBase + (nint)(pos - g.First) * (nint)g.InnerL, 0, len, c, r);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratchArray);
            ArrayPool<nint>.Shared.Return(rowArray);
        }
    }

    // ---- the one inner routine --------------------------------------------------------------------------

    /// <summary>
    /// dst[j] = c0·row0[j] + Σ_{k=1..R} fma(row(2k−1)[j] ± row(2k)[j], c_k) for j in [start, end), the
    /// fastfilters sequence per lane. Lanes of a vector are independent output samples.
    /// </summary>
    internal static void Rows<TL, TVec, TSym>(nint* rows, float* dst, nint start, nint end, float* c, int r)
        where TL : struct, ILanes<TVec> where TVec : struct where TSym : struct, ISymmetry
    {
        nint w = TL.Count, j = start;
        if (w == 1 || end - start < w)
        {
            // Scalar: the reference sequence, also the whole line when it is shorter than one vector.
            for (; j < end; j++) One<Lanes1, float, TSym>(rows, dst, j, c, r);
            return;
        }
        for (; j <= end - 4 * w; j += 4 * w) Four<TL, TVec, TSym>(rows, dst, j, c, r);
        for (; j <= end - w; j += w) One<TL, TVec, TSym>(rows, dst, j, c, r);
        // Remainder: one more vector ending at `end`; it rewrites a few samples with identical values.
        if (j < end) One<TL, TVec, TSym>(rows, dst, end - w, c, r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void One<TL, TVec, TSym>(nint* rows, float* dst, nint j, float* c, int r)
        where TL : struct, ILanes<TVec> where TVec : struct where TSym : struct, ISymmetry
    {
        TVec acc = TL.Multiply(TL.Splat(c[0]), TL.Load((float*)rows[0] + j));
        for (int k = 1; k <= r; k++)
        {
            TVec plus = TL.Load((float*)rows[2 * k - 1] + j), minus = TL.Load((float*)rows[2 * k] + j);
            TVec d = TSym.Odd ? TL.Subtract(plus, minus) : TL.Add(plus, minus);
            acc = TL.FusedMultiplyAdd(d, TL.Splat(c[k]), acc);
        }
        TL.Store(dst + j, acc);
    }

    /// <summary>Four adjacent vectors: four independent FMA chains hide the FMA latency.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Four<TL, TVec, TSym>(nint* rows, float* dst, nint j, float* c, int r)
        where TL : struct, ILanes<TVec> where TVec : struct where TSym : struct, ISymmetry
    {
        nint w = TL.Count;
        float* row0 = (float*)rows[0] + j;
        TVec c0 = TL.Splat(c[0]);
        TVec a0 = TL.Multiply(c0, TL.Load(row0));
        TVec a1 = TL.Multiply(c0, TL.Load(row0 + w));
        TVec a2 = TL.Multiply(c0, TL.Load(row0 + 2 * w));
        TVec a3 = TL.Multiply(c0, TL.Load(row0 + 3 * w));
        for (int k = 1; k <= r; k++)
        {
            float* plus = (float*)rows[2 * k - 1] + j, minus = (float*)rows[2 * k] + j;
            TVec ck = TL.Splat(c[k]);
            if (TSym.Odd)
            {
                a0 = TL.FusedMultiplyAdd(TL.Subtract(TL.Load(plus), TL.Load(minus)), ck, a0);
                a1 = TL.FusedMultiplyAdd(TL.Subtract(TL.Load(plus + w), TL.Load(minus + w)), ck, a1);
                a2 = TL.FusedMultiplyAdd(TL.Subtract(TL.Load(plus + 2 * w), TL.Load(minus + 2 * w)), ck, a2);
                a3 = TL.FusedMultiplyAdd(TL.Subtract(TL.Load(plus + 3 * w), TL.Load(minus + 3 * w)), ck, a3);
            }
            else
            {
                a0 = TL.FusedMultiplyAdd(TL.Add(TL.Load(plus), TL.Load(minus)), ck, a0);
                a1 = TL.FusedMultiplyAdd(TL.Add(TL.Load(plus + w), TL.Load(minus + w)), ck, a1);
                a2 = TL.FusedMultiplyAdd(TL.Add(TL.Load(plus + 2 * w), TL.Load(minus + 2 * w)), ck, a2);
                a3 = TL.FusedMultiplyAdd(TL.Add(TL.Load(plus + 3 * w), TL.Load(minus + 3 * w)), ck, a3);
            }
        }
        TL.Store(dst + j, a0);
        TL.Store(dst + j + w, a1);
        TL.Store(dst + j + 2 * w, a2);
        TL.Store(dst + j + 3 * w, a3);
    }
}
