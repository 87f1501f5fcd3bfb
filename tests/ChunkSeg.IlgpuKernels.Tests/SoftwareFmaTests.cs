using ChunkSeg.IlgpuKernels.Arithmetic;

namespace ChunkSeg.IlgpuKernels.Tests;

/// <summary>
/// <see cref="SoftwareFma"/> (the fused multiply-add of the CPU accelerator and OpenCL, built from doubles) against the
/// hardware's <see cref="MathF.FusedMultiplyAdd"/>, bit for bit: random operands of every magnitude, and the cases a
/// plain <c>(float)((double)a * b + c)</c> gets wrong, where the double sum lands on a float rounding midpoint.
/// </summary>
public sealed class SoftwareFmaTests
{
    private static void AssertSame(float a, float b, float c)
    {
        float want = MathF.FusedMultiplyAdd(a, b, c), got = SoftwareFma.MultiplyAdd(a, b, c);
        Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got) || (float.IsNaN(want) && float.IsNaN(got)),
            $"fma({a:R}, {b:R}, {c:R}): hardware {want:R}, software {got:R}");
    }

    [Fact]
    public void Random_operands_of_every_magnitude_fuse_as_the_hardware_does()
    {
        var rng = new Random(4242);
        for (int i = 0; i < 2_000_000; i++)
        {
            float a = BitConverter.Int32BitsToSingle(rng.Next() ^ (rng.Next(2) << 31));
            float b = BitConverter.Int32BitsToSingle(rng.Next() ^ (rng.Next(2) << 31));
            float c = BitConverter.Int32BitsToSingle(rng.Next() ^ (rng.Next(2) << 31));
            AssertSame(a, b, c);
            // Operands near each other in magnitude, where cancellation and ties are common.
            float x = (float)(rng.NextDouble() * 4 - 2), y = (float)(rng.NextDouble() * 4 - 2);
            AssertSame(x, y, -(x * y));
            AssertSame(x, y, (float)(rng.NextDouble() - 0.5) * 1e-7f);
        }
    }

    [Fact]
    public void Sums_that_a_double_rounds_onto_a_float_midpoint_round_as_one_operation()
    {
        // a·b = 2⁻²⁴·(1 + r·2⁻⁴⁷) with 0 < r < 2¹⁸: the mantissa product m_a·m_b sits just above 2⁴⁷. Added to c = ±1, the
        // exact sum is 1 + 2⁻²⁴ (half an ulp of 1) plus a sliver below a double's precision: the double sum drops the sliver
        // and lands on the midpoint, which then rounds to even (1), while the exact sum is above it (1 + 2⁻²³).
        // (float)((double)a·b + c) gets these wrong; the round-to-odd step must not.
        int cases = 0;
        for (int ma = 1 << 23; ma < (1 << 23) + 400_000 && cases < 200; ma++)
        {
            long mb = ((1L << 47) + ma - 1) / ma, r = ma * mb - (1L << 47);
            if (mb >= 1 << 24 || r <= 0 || r >= 1 << 18) continue;
            cases++;
            float a = MathF.ScaleB(ma, -23), b = MathF.ScaleB(mb, -48);
            foreach (int scale in new[] { 0, -60, 40 })
            foreach (float sign in new[] { 1f, -1f })
            {
                float sa = MathF.ScaleB(sign * a, scale), c = MathF.ScaleB(sign, scale);
                AssertSame(sa, b, c);                                   // just above the midpoint
                AssertSame(sa, b, MathF.BitIncrement(c));               // c with an odd last bit: the midpoint rounds up
                AssertSame(-sa, b, c);                                  // just below
            }
        }
        Assert.True(cases >= 100, $"only {cases} products just above 2^47 found");
        Assert.NotEqual(MathF.FusedMultiplyAdd(MathF.ScaleB(8390624, -23), MathF.ScaleB(16773185, -48), 1f),
            (float)((double)MathF.ScaleB(8390624, -23) * MathF.ScaleB(16773185, -48) + 1.0));     // the case is a real one
    }

    [Theory]
    [InlineData(float.PositiveInfinity, 2f, 1f)]
    [InlineData(float.PositiveInfinity, 0f, 1f)]
    [InlineData(float.MaxValue, 2f, float.NegativeInfinity)]
    [InlineData(float.MaxValue, 2f, -float.MaxValue)]
    [InlineData(1e-30f, 1e-30f, 0f)]
    [InlineData(-0f, 1f, 0f)]
    [InlineData(3f, -0f, -0f)]
    [InlineData(1.401298464e-45f, 0.5f, 0f)]
    [InlineData(float.NaN, 1f, 1f)]
    public void Infinities_overflow_underflow_signed_zeros_and_nan_fuse_as_the_hardware_does(float a, float b, float c) => AssertSame(a, b, c);
}
