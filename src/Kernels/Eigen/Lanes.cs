using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ChunkSeg.Kernels.Eigen;

/// <summary>
/// The handful of float32 lane operations the eigenvalue formulas need, with the exact x86 AVX
/// semantics fastfilters relies on (min/max return the second operand on NaN and on ±0 ties, blendv
/// looks at the sign bit only, negation flips the sign bit). <see cref="EigenEngine"/> is written once,
/// generically over this interface, and instantiated for one lane (<see cref="Lane1"/>, the scalar
/// tail and the whole computation when hardware intrinsics are off), 8 lanes (<see cref="Lane8"/>) and
/// 16 lanes (<see cref="Lane16"/>): the vector body and the scalar tail therefore execute the same
/// operations in the same order by construction, and each implementation below is the lane-wise
/// equivalent of the others.
/// A "mask" is a value whose lanes are all-ones or all-zeros bit patterns (a NaN or +0 as a float).
/// </summary>
internal interface ILanes<TSelf> where TSelf : struct, ILanes<TSelf>
{
    /// <summary>Lanes per value.</summary>
    static abstract int Count { get; }
    static abstract TSelf Load(ref float source, nuint index);
    static abstract void Store(TSelf value, ref float destination, nuint index);
    static abstract TSelf Splat(float value);

    static abstract TSelf operator +(TSelf a, TSelf b);
    static abstract TSelf operator -(TSelf a, TSelf b);
    static abstract TSelf operator *(TSelf a, TSelf b);
    static abstract TSelf operator /(TSelf a, TSelf b);
    static abstract TSelf Sqrt(TSelf a);

    /// <summary>Clears the sign bit (x86 andnot with -0f).</summary>
    static abstract TSelf Abs(TSelf a);
    /// <summary>Flips the sign bit (what gcc emits for unary minus on __m256): -(+0) = -0.</summary>
    static abstract TSelf Negate(TSelf a);
    /// <summary>The sign bit alone: a &amp; -0f.</summary>
    static abstract TSelf SignBit(TSelf a);
    static abstract TSelf Xor(TSelf a, TSelf b);
    static abstract TSelf And(TSelf mask, TSelf a);
    /// <summary>~mask &amp; a (the operand order of x86 andnot, not of Vector256.AndNot).</summary>
    static abstract TSelf AndNot(TSelf mask, TSelf a);

    /// <summary>_mm256_min_ps: a &lt; b ? a : b (b when unordered or equal).</summary>
    static abstract TSelf MinX86(TSelf a, TSelf b);
    /// <summary>_mm256_max_ps: a &gt; b ? a : b (b when unordered or equal).</summary>
    static abstract TSelf MaxX86(TSelf a, TSelf b);

    /// <summary>Ordered a &gt; b as a mask (_CMP_GT_OS).</summary>
    static abstract TSelf GreaterThan(TSelf a, TSelf b);
    /// <summary>Ordered a == b as a mask (_CMP_EQ_OS / _CMP_EQ_OQ).</summary>
    static abstract TSelf EqualTo(TSelf a, TSelf b);
    /// <summary>Ordered a &lt;= b as a mask (_CMP_LE_OQ).</summary>
    static abstract TSelf LessThanOrEqual(TSelf a, TSelf b);
    /// <summary>Bitwise select: (mask &amp; ifSet) | (~mask &amp; ifClear).</summary>
    static abstract TSelf Select(TSelf mask, TSelf ifSet, TSelf ifClear);
    /// <summary>_mm256_blendv_ps(ifClear, ifSet, sign): chooses by the sign bit of <paramref name="sign"/> only.</summary>
    static abstract TSelf SelectBySign(TSelf sign, TSelf ifSet, TSelf ifClear);

    /// <summary>
    /// The integer part of cephes' range reduction on <paramref name="scaled"/> = |x|·4/π:
    /// j = (trunc(scaled) + 1) &amp; ~1 (saturating truncation, as .NET 9+ casts do everywhere);
    /// <paramref name="octant"/> = (float)j; <paramref name="polyMask"/> = mask of (j &amp; 2) == 0;
    /// <paramref name="sinSwap"/> = (j &amp; 4) &lt;&lt; 29; <paramref name="cosSign"/> = (~(j − 2) &amp; 4) &lt;&lt; 29.
    /// </summary>
    static abstract void CephesOctant(TSelf scaled, out TSelf octant, out TSelf polyMask, out TSelf sinSwap, out TSelf cosSign);
}

/// <summary>One lane: plain float32 scalar arithmetic (SSE scalar instructions, no contraction).</summary>
internal readonly struct Lane1 : ILanes<Lane1>
{
    private readonly float _v;
    private Lane1(float v) => _v = v;
    public static int Count => 1;
    private static Lane1 Bits(int bits) => new(BitConverter.Int32BitsToSingle(bits));
    private int AsBits => BitConverter.SingleToInt32Bits(_v);
    private static Lane1 Mask(bool condition) => Bits(condition ? -1 : 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 Load(ref float source, nuint index) => new(Unsafe.Add(ref source, index));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Lane1 value, ref float destination, nuint index) => Unsafe.Add(ref destination, index) = value._v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 Splat(float value) => new(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 operator +(Lane1 a, Lane1 b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 operator -(Lane1 a, Lane1 b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 operator *(Lane1 a, Lane1 b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 operator /(Lane1 a, Lane1 b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 Sqrt(Lane1 a) => new(MathF.Sqrt(a._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 Abs(Lane1 a) => Bits(a.AsBits & int.MaxValue);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 Negate(Lane1 a) => Bits(a.AsBits ^ int.MinValue);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 SignBit(Lane1 a) => Bits(a.AsBits & int.MinValue);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 Xor(Lane1 a, Lane1 b) => Bits(a.AsBits ^ b.AsBits);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 And(Lane1 mask, Lane1 a) => Bits(mask.AsBits & a.AsBits);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 AndNot(Lane1 mask, Lane1 a) => Bits(~mask.AsBits & a.AsBits);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 MinX86(Lane1 a, Lane1 b) => a._v < b._v ? a : b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 MaxX86(Lane1 a, Lane1 b) => a._v > b._v ? a : b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 GreaterThan(Lane1 a, Lane1 b) => Mask(a._v > b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 EqualTo(Lane1 a, Lane1 b) => Mask(a._v == b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 LessThanOrEqual(Lane1 a, Lane1 b) => Mask(a._v <= b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 Select(Lane1 mask, Lane1 ifSet, Lane1 ifClear) =>
        Bits((mask.AsBits & ifSet.AsBits) | (~mask.AsBits & ifClear.AsBits));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane1 SelectBySign(Lane1 sign, Lane1 ifSet, Lane1 ifClear) => sign.AsBits < 0 ? ifSet : ifClear;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CephesOctant(Lane1 scaled, out Lane1 octant, out Lane1 polyMask, out Lane1 sinSwap, out Lane1 cosSign)
    {
        int j = (int)scaled._v;                                 // saturating truncation, like Vector256.ConvertToInt32
        j = (j + 1) & ~1;                                       // unchecked wrap matches vpaddd
        octant = new Lane1(j);
        polyMask = Mask((j & 2) == 0);
        sinSwap = Bits((j & 4) << 29);
        cosSign = Bits((~(j - 2) & 4) << 29);
    }
}

/// <summary>8 lanes (AVX). Min/max use the x86 instructions where present, else the same ternary lane-wise.</summary>
internal readonly struct Lane8 : ILanes<Lane8>
{
    private readonly Vector256<float> _v;
    private Lane8(Vector256<float> v) => _v = v;
    public static int Count => Vector256<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 Load(ref float source, nuint index) => new(Vector256.LoadUnsafe(ref source, index));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Lane8 value, ref float destination, nuint index) => value._v.StoreUnsafe(ref destination, index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 Splat(float value) => new(Vector256.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 operator +(Lane8 a, Lane8 b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 operator -(Lane8 a, Lane8 b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 operator *(Lane8 a, Lane8 b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 operator /(Lane8 a, Lane8 b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 Sqrt(Lane8 a) => new(Vector256.Sqrt(a._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 Abs(Lane8 a) => new(a._v & Vector256.Create(int.MaxValue).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 Negate(Lane8 a) => new(a._v ^ Vector256.Create(int.MinValue).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 SignBit(Lane8 a) => new(a._v & Vector256.Create(int.MinValue).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 Xor(Lane8 a, Lane8 b) => new(a._v ^ b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 And(Lane8 mask, Lane8 a) => new(mask._v & a._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 AndNot(Lane8 mask, Lane8 a) => new(Vector256.AndNot(a._v, mask._v));   // a & ~mask

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 MinX86(Lane8 a, Lane8 b) =>
        new(Avx.IsSupported ? Avx.Min(a._v, b._v) : Vector256.ConditionalSelect(Vector256.LessThan(a._v, b._v), a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 MaxX86(Lane8 a, Lane8 b) =>
        new(Avx.IsSupported ? Avx.Max(a._v, b._v) : Vector256.ConditionalSelect(Vector256.GreaterThan(a._v, b._v), a._v, b._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 GreaterThan(Lane8 a, Lane8 b) => new(Vector256.GreaterThan(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 EqualTo(Lane8 a, Lane8 b) => new(Vector256.Equals(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 LessThanOrEqual(Lane8 a, Lane8 b) => new(Vector256.LessThanOrEqual(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 Select(Lane8 mask, Lane8 ifSet, Lane8 ifClear) => new(Vector256.ConditionalSelect(mask._v, ifSet._v, ifClear._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane8 SelectBySign(Lane8 sign, Lane8 ifSet, Lane8 ifClear) =>
        new(Vector256.ConditionalSelect(Vector256.ShiftRightArithmetic(sign._v.AsInt32(), 31).AsSingle(), ifSet._v, ifClear._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CephesOctant(Lane8 scaled, out Lane8 octant, out Lane8 polyMask, out Lane8 sinSwap, out Lane8 cosSign)
    {
        Vector256<int> j = Vector256.ConvertToInt32(scaled._v);   // saturating, as the scalar (int) cast
        j = (j + Vector256.Create(1)) & Vector256.Create(~1);
        octant = new Lane8(Vector256.ConvertToSingle(j));
        polyMask = new Lane8(Vector256.Equals(j & Vector256.Create(2), Vector256<int>.Zero).AsSingle());
        sinSwap = new Lane8(Vector256.ShiftLeft(j & Vector256.Create(4), 29).AsSingle());
        cosSign = new Lane8(Vector256.ShiftLeft(~(j - Vector256.Create(2)) & Vector256.Create(4), 29).AsSingle());
    }
}

/// <summary>16 lanes (AVX-512F); the same operations as <see cref="Lane8"/> on twice the width.</summary>
internal readonly struct Lane16 : ILanes<Lane16>
{
    private readonly Vector512<float> _v;
    private Lane16(Vector512<float> v) => _v = v;
    public static int Count => Vector512<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 Load(ref float source, nuint index) => new(Vector512.LoadUnsafe(ref source, index));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Lane16 value, ref float destination, nuint index) => value._v.StoreUnsafe(ref destination, index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 Splat(float value) => new(Vector512.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 operator +(Lane16 a, Lane16 b) => new(a._v + b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 operator -(Lane16 a, Lane16 b) => new(a._v - b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 operator *(Lane16 a, Lane16 b) => new(a._v * b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 operator /(Lane16 a, Lane16 b) => new(a._v / b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 Sqrt(Lane16 a) => new(Vector512.Sqrt(a._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 Abs(Lane16 a) => new(a._v & Vector512.Create(int.MaxValue).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 Negate(Lane16 a) => new(a._v ^ Vector512.Create(int.MinValue).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 SignBit(Lane16 a) => new(a._v & Vector512.Create(int.MinValue).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 Xor(Lane16 a, Lane16 b) => new(a._v ^ b._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 And(Lane16 mask, Lane16 a) => new(mask._v & a._v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 AndNot(Lane16 mask, Lane16 a) => new(Vector512.AndNot(a._v, mask._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 MinX86(Lane16 a, Lane16 b) =>
        new(Avx512F.IsSupported ? Avx512F.Min(a._v, b._v) : Vector512.ConditionalSelect(Vector512.LessThan(a._v, b._v), a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 MaxX86(Lane16 a, Lane16 b) =>
        new(Avx512F.IsSupported ? Avx512F.Max(a._v, b._v) : Vector512.ConditionalSelect(Vector512.GreaterThan(a._v, b._v), a._v, b._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 GreaterThan(Lane16 a, Lane16 b) => new(Vector512.GreaterThan(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 EqualTo(Lane16 a, Lane16 b) => new(Vector512.Equals(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 LessThanOrEqual(Lane16 a, Lane16 b) => new(Vector512.LessThanOrEqual(a._v, b._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 Select(Lane16 mask, Lane16 ifSet, Lane16 ifClear) => new(Vector512.ConditionalSelect(mask._v, ifSet._v, ifClear._v));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Lane16 SelectBySign(Lane16 sign, Lane16 ifSet, Lane16 ifClear) =>
        new(Vector512.ConditionalSelect(Vector512.ShiftRightArithmetic(sign._v.AsInt32(), 31).AsSingle(), ifSet._v, ifClear._v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CephesOctant(Lane16 scaled, out Lane16 octant, out Lane16 polyMask, out Lane16 sinSwap, out Lane16 cosSign)
    {
        Vector512<int> j = Vector512.ConvertToInt32(scaled._v);
        j = (j + Vector512.Create(1)) & Vector512.Create(~1);
        octant = new Lane16(Vector512.ConvertToSingle(j));
        polyMask = new Lane16(Vector512.Equals(j & Vector512.Create(2), Vector512<int>.Zero).AsSingle());
        sinSwap = new Lane16(Vector512.ShiftLeft(j & Vector512.Create(4), 29).AsSingle());
        cosSign = new Lane16(Vector512.ShiftLeft(~(j - Vector512.Create(2)) & Vector512.Create(4), 29).AsSingle());
    }
}
