using System.Runtime.CompilerServices;
using ChunkSeg.Kernels.Eigen;
using ILGPU;

namespace ChunkSeg.IlgpuKernels.Arithmetic;

/// <summary>
/// One float32 lane inside a kernel: the <see cref="ILanes{TSelf}"/> the CPU's eigenvalue formulas
/// (<see cref="EigenEngine"/>) are written over, so the device runs those same C# methods, not a copy. Arithmetic goes
/// through <typeparamref name="TOps"/> (pinned rounding on CUDA), bit operations through ILGPU's
/// <see cref="Interop"/>; min, max and the comparisons keep <see cref="Lane1"/>'s x86 meaning (the second operand on
/// NaN and ties). Load and Store are the CPU's; kernels never call them.
/// </summary>
internal readonly struct DeviceLane<TOps> : ILanes<DeviceLane<TOps>> where TOps : struct, IFloatOps<TOps>
{
    public readonly float Value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public DeviceLane(float value) => Value = value;

    public static int Count => 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static DeviceLane<TOps> Bits(int bits) => new(Interop.IntAsFloat((uint)bits));

    private int AsBits
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (int)Interop.FloatAsInt(Value);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static DeviceLane<TOps> Mask(bool condition) => Bits(condition ? -1 : 0);

    public static DeviceLane<TOps> Load(ref float source, nuint index) => new(Unsafe.Add(ref source, index));
    public static void Store(DeviceLane<TOps> value, ref float destination, nuint index) => Unsafe.Add(ref destination, index) = value.Value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> Splat(float value) => new(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> operator +(DeviceLane<TOps> a, DeviceLane<TOps> b) => new(TOps.Add(a.Value, b.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> operator -(DeviceLane<TOps> a, DeviceLane<TOps> b) => new(TOps.Subtract(a.Value, b.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> operator *(DeviceLane<TOps> a, DeviceLane<TOps> b) => new(TOps.Multiply(a.Value, b.Value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> operator /(DeviceLane<TOps> a, DeviceLane<TOps> b) => new(a.Value / b.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> Sqrt(DeviceLane<TOps> a) => new(MathF.Sqrt(a.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> Abs(DeviceLane<TOps> a) => Bits(a.AsBits & int.MaxValue);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> Negate(DeviceLane<TOps> a) => Bits(a.AsBits ^ int.MinValue);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> SignBit(DeviceLane<TOps> a) => Bits(a.AsBits & int.MinValue);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> Xor(DeviceLane<TOps> a, DeviceLane<TOps> b) => Bits(a.AsBits ^ b.AsBits);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> And(DeviceLane<TOps> mask, DeviceLane<TOps> a) => Bits(mask.AsBits & a.AsBits);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> AndNot(DeviceLane<TOps> mask, DeviceLane<TOps> a) => Bits(~mask.AsBits & a.AsBits);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> MinX86(DeviceLane<TOps> a, DeviceLane<TOps> b) => a.Value < b.Value ? a : b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> MaxX86(DeviceLane<TOps> a, DeviceLane<TOps> b) => a.Value > b.Value ? a : b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> GreaterThan(DeviceLane<TOps> a, DeviceLane<TOps> b) => Mask(a.Value > b.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> EqualTo(DeviceLane<TOps> a, DeviceLane<TOps> b) => Mask(a.Value == b.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> LessThanOrEqual(DeviceLane<TOps> a, DeviceLane<TOps> b) => Mask(a.Value <= b.Value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> Select(DeviceLane<TOps> mask, DeviceLane<TOps> ifSet, DeviceLane<TOps> ifClear) =>
        Bits((mask.AsBits & ifSet.AsBits) | (~mask.AsBits & ifClear.AsBits));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static DeviceLane<TOps> SelectBySign(DeviceLane<TOps> sign, DeviceLane<TOps> ifSet, DeviceLane<TOps> ifClear) => sign.AsBits < 0 ? ifSet : ifClear;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CephesOctant(DeviceLane<TOps> scaled, out DeviceLane<TOps> octant, out DeviceLane<TOps> polyMask,
        out DeviceLane<TOps> sinSwap, out DeviceLane<TOps> cosSign)
    {
        // Saturating truncation as on the CPU: .NET's conversion saturates, and so does PTX's cvt.rzi.s32.f32.
        int j = (int)scaled.Value;
        j = (j + 1) & ~1;
        octant = new DeviceLane<TOps>(j);
        polyMask = Mask((j & 2) == 0);
        sinSwap = Bits((j & 4) << 29);
        cosSign = Bits((~(j - 2) & 4) << 29);
    }
}
