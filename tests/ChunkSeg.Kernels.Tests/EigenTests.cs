using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ChunkSeg.Kernels.Eigen;

namespace ChunkSeg.Kernels.Tests;

/// <summary>
/// SymmetricEigen against (1) an independent numpy float32 transcription of ILASTIK_RECIPE §3.6, bit for
/// bit; (2) numpy.linalg.eigvalsh in float64, within 1e-4 of the largest eigenvalue; (3) itself with the
/// vector bodies switched off, bit for bit, at every length 0..67. Seeds are fixed and printed on failure.
/// </summary>
public sealed class EigenTests
{
    private const int Seed = 20240611;

    // ------------------------------------------------------------------ tensor generators

    /// <summary>
    /// Symmetric 3x3 tensors as (a00,a01,a02,a11,a12,a22) rows, drawn from many regimes. "Well scaled" means
    /// independent uniform entries times a random power of ten: constructed spectra are left out there
    /// because they often have (near-)repeated or evenly spaced eigenvalues, where the float32 closed form
    /// is inaccurate by design (see <see cref="EvenlySpacedSpectrum_ReproducesFastfiltersAtan2Quirk"/>).
    /// </summary>
    private static float[][] Tensors3(int n, int seed, bool wellScaledOnly = false)
    {
        var rng = new Random(seed);
        var rows = new float[6][];
        for (int r = 0; r < 6; r++) rows[r] = new float[n];
        Span<double> a = stackalloc double[6];
        for (int i = 0; i < n; i++)
        {
            int kind = wellScaledOnly ? 0 : rng.Next(14);
            double scale = wellScaledOnly ? Math.Pow(10, rng.NextDouble() * 6 - 3) : 1;
            switch (kind)
            {
                case 0: for (int k = 0; k < 6; k++) a[k] = rng.NextDouble() * 2 - 1; break;       // general
                case 1: FromSpectrum(rng, a, U(rng), U(rng), U(rng)); break;                        // random spectrum
                case 2: FromSpectrum(rng, a, -Math.Abs(U(rng)), -Math.Abs(U(rng)), -Math.Abs(U(rng))); break; // negative definite
                case 3: FromSpectrum(rng, a, 1, 1e-4 * U(rng), 1e-7 * U(rng)); break;              // ill-conditioned
                case 4: { double e = U(rng); FromSpectrum(rng, a, e, e, U(rng)); break; }           // double eigenvalue
                case 5: { double e = U(rng); FromSpectrum(rng, a, e, e, e); break; }                // triple (rotated)
                case 6: { double e = Math.Round(U(rng) * 8); a.Clear(); a[0] = a[3] = a[5] = e; break; } // multiple of I
                case 7: a.Clear(); if (rng.Next(2) == 0) a[1] = -0.0; break;                        // zero, ±0
                case 8: a.Clear(); a[0] = U(rng); a[3] = U(rng); a[5] = U(rng); break;              // diagonal
                case 9: for (int k = 0; k < 6; k++) a[k] = rng.Next(-3, 4); break;                  // small integers
                case 10: for (int k = 0; k < 6; k++) a[k] = U(rng) * 1e30; break;                   // huge
                case 11: for (int k = 0; k < 6; k++) a[k] = U(rng) * 1e-30; break;                  // tiny
                case 12: for (int k = 0; k < 6; k++) a[k] = U(rng) * 1e-41; break;                  // subnormal
                default: FromSpectrum(rng, a, 1, -1, 0); break;                                     // trace 0, det 0: mb2 ≈ 0
            }
            for (int r = 0; r < 6; r++) rows[r][i] = (float)(a[r] * scale);
        }
        return rows;
    }

    /// <summary>Symmetric 2x2 tensors as (xx, xy, yy) rows.</summary>
    private static float[][] Tensors2(int n, int seed, bool wellScaledOnly = false)
    {
        var rng = new Random(seed);
        var rows = new[] { new float[n], new float[n], new float[n] };
        for (int i = 0; i < n; i++)
        {
            int kind = wellScaledOnly ? 0 : rng.Next(8);
            double scale = wellScaledOnly ? Math.Pow(10, rng.NextDouble() * 6 - 3) : 1;
            double xx = U(rng), xy = U(rng), yy = U(rng);
            switch (kind)
            {
                case 1: xy = 0; break;                                          // diagonal
                case 2: xx = yy; xy = 0; break;                                 // repeated
                case 3: xx = xy = yy = rng.Next(2) == 0 ? 0.0 : -0.0; break;    // ±0 ties
                case 4: xx *= 1e30; xy *= 1e30; yy *= 1e30; break;
                case 5: xx *= 1e-41; xy *= 1e-41; yy *= 1e-41; break;
                case 6: xx = -Math.Abs(xx); yy = -Math.Abs(yy); xy = 0.1 * xy; break;
                case 7: xx = rng.Next(-3, 4); xy = rng.Next(-3, 4); yy = rng.Next(-3, 4); break;
            }
            rows[0][i] = (float)(xx * scale); rows[1][i] = (float)(xy * scale); rows[2][i] = (float)(yy * scale);
        }
        return rows;
    }

    private static double U(Random rng) => rng.NextDouble() * 2 - 1;

    /// <summary>R·diag(l0,l1,l2)·Rᵀ for a random rotation R, in double.</summary>
    private static void FromSpectrum(Random rng, Span<double> a, double l0, double l1, double l2)
    {
        // Random unit quaternion → rotation matrix.
        double qw = U(rng), qx = U(rng), qy = U(rng), qz = U(rng);
        double norm = Math.Sqrt(qw * qw + qx * qx + qy * qy + qz * qz);
        qw /= norm; qx /= norm; qy /= norm; qz /= norm;
        double[,] r =
        {
            { 1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw) },
            { 2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw) },
            { 2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy) },
        };
        double[] l = [l0, l1, l2];
        double M(int i, int j) => r[i, 0] * l[0] * r[j, 0] + r[i, 1] * l[1] * r[j, 1] + r[i, 2] * l[2] * r[j, 2];
        a[0] = M(0, 0); a[1] = M(0, 1); a[2] = M(0, 2); a[3] = M(1, 1); a[4] = M(1, 2); a[5] = M(2, 2);
    }

    private static float[][] Specials(float[][] rows, int seed)
    {
        // Sprinkle ±0, ±Inf, NaN, subnormals and float extremes into a copy.
        var rng = new Random(seed);
        float[] pool = [0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.Epsilon, -float.Epsilon,
                        float.MaxValue, -float.MaxValue, 1e-38f, 1f, -1f];
        var copy = rows.Select(r => (float[])r.Clone()).ToArray();
        for (int i = 0; i < copy[0].Length; i++)
            if (rng.Next(8) == 0) copy[rng.Next(copy.Length)][i] = pool[rng.Next(pool.Length)];
        return copy;
    }

    // ------------------------------------------------------------------ runners

    private static float[][] Run3(float[][] a, EigenWidth width)
    {
        int n = a[0].Length;
        var ev = new[] { new float[n], new float[n], new float[n] };
        SymmetricEigen.Eigenvalues3(a[0], a[1], a[2], a[3], a[4], a[5], ev[0], ev[1], ev[2], width);
        return ev;
    }

    private static float[][] Run2(float[][] a, EigenWidth width)
    {
        int n = a[0].Length;
        var ev = new[] { new float[n], new float[n] };
        SymmetricEigen.Eigenvalues2(a[0], a[1], a[2], ev[0], ev[1], width);
        return ev;
    }

    private static void WriteRows<T>(string path, T[][] rows) where T : unmanaged
    {
        using var f = File.Create(path);
        foreach (T[] row in rows) f.Write(MemoryMarshal.AsBytes(row.AsSpan()));
    }

    private static T[][] ReadRows<T>(string path, int count, int n) where T : unmanaged
    {
        byte[] bytes = File.ReadAllBytes(path);
        T[] all = MemoryMarshal.Cast<byte, T>(bytes).ToArray();
        Assert.Equal(count * n, all.Length);
        return Enumerable.Range(0, count).Select(r => all.AsSpan(r * n, n).ToArray()).ToArray();
    }

    private static T[][] Python<T>(string mode, float[][] input, int outRows) where T : unmanaged
    {
        using var dir = new TempDir();
        WriteRows(dir["in.bin"], input);
        PythonReference.Run("eigen_reference.py", mode, dir["in.bin"], dir["out.bin"]);
        return ReadRows<T>(dir["out.bin"], outRows, input[0].Length);
    }

    /// <summary>Equal bit patterns; two NaNs count as equal (NaN payloads depend on operand order).</summary>
    private static bool Same(float a, float b) =>
        BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b) || (float.IsNaN(a) && float.IsNaN(b));

    private static void AssertBitIdentical(float[][] expected, float[][] actual, float[][] input, string what)
    {
        var failures = new List<string>();
        int count = 0;
        for (int r = 0; r < expected.Length; r++)
            for (int i = 0; i < expected[r].Length; i++)
                if (!Same(expected[r][i], actual[r][i]))
                {
                    if (count++ < 8)
                        failures.Add($"ev{r}[{i}]: expected {expected[r][i]:R} (0x{BitConverter.SingleToInt32Bits(expected[r][i]):X8}), " +
                                     $"got {actual[r][i]:R} (0x{BitConverter.SingleToInt32Bits(actual[r][i]):X8}); " +
                                     $"input ({string.Join(", ", input.Select(row => row[i].ToString("R")))})");
                }
        Assert.True(count == 0, $"{what}: {count} mismatching values (seed {Seed})\n{string.Join("\n", failures)}");
    }

    // ------------------------------------------------------------------ (1) numpy float32 transcription, bit for bit

    [Fact]
    public void Eigenvalues3_MatchesFloat32Reference_BitForBit()
    {
        float[][] a = Tensors3(40_000, Seed);
        AssertBitIdentical(Python<float>("ev3", a, 3), Run3(a, EigenWidth.Auto), a, "3x3 vs numpy float32");
    }

    [Fact]
    public void Eigenvalues3_MatchesFloat32Reference_WithSpecialValues()
    {
        float[][] a = Specials(Tensors3(4_000, Seed + 1), Seed + 2);
        AssertBitIdentical(Python<float>("ev3", a, 3), Run3(a, EigenWidth.Auto), a, "3x3 specials vs numpy float32");
    }

    [Fact]
    public void Eigenvalues2_MatchesFloat32Reference_BitForBit()
    {
        float[][] a = Tensors2(40_000, Seed + 3);
        float[][] b = Specials(Tensors2(4_000, Seed + 4), Seed + 5);
        AssertBitIdentical(Python<float>("ev2", a, 2), Run2(a, EigenWidth.Auto), a, "2x2 vs numpy float32");
        AssertBitIdentical(Python<float>("ev2", b, 2), Run2(b, EigenWidth.Auto), b, "2x2 specials vs numpy float32");
    }

    [Fact]
    public void ZeroTensor_GivesZeroEigenvalues()
    {
        float[] z = new float[19];
        float[] e0 = new float[19], e1 = new float[19], e2 = new float[19];
        e0.AsSpan().Fill(9); e1.AsSpan().Fill(9); e2.AsSpan().Fill(9);
        SymmetricEigen.Eigenvalues3(z, z, z, z, z, z, e0, e1, e2);
        Assert.All(e0.Concat(e1).Concat(e2), v => Assert.Equal(0f, v));
        SymmetricEigen.Eigenvalues2(z, z, z, e0, e1);
        Assert.All(e0.Concat(e1), v => Assert.Equal(0f, v));
    }

    // ------------------------------------------------------------------ (2) accuracy against float64 eigvalsh

    [Fact]
    public void Eigenvalues3_CloseToFloat64Eigvalsh_AndDescending()
    {
        float[][] a = Tensors3(20_000, Seed + 6, wellScaledOnly: true);
        AssertAccurate(Python<double>("true3", a, 3), Run3(a, EigenWidth.Auto));
    }

    [Fact]
    public void Eigenvalues2_CloseToFloat64Eigvalsh_AndDescending()
    {
        float[][] a = Tensors2(20_000, Seed + 7, wellScaledOnly: true);
        AssertAccurate(Python<double>("true2", a, 2), Run2(a, EigenWidth.Auto));
    }

    private static void AssertAccurate(double[][] truth, float[][] ev)
    {
        int n = ev[0].Length, k = ev.Length;
        double worst = 0;
        for (int i = 0; i < n; i++)
        {
            double largest = 0;
            for (int r = 0; r < k; r++) largest = Math.Max(largest, Math.Abs(truth[r][i]));
            for (int r = 0; r < k; r++)
            {
                double error = Math.Abs(ev[r][i] - truth[r][i]) / largest;
                worst = Math.Max(worst, error);
                Assert.True(error <= 1e-4, $"ev{r}[{i}] = {ev[r][i]:R}, eigvalsh {truth[r][i]:R}, relative error {error:E2} (seed {Seed})");
                if (r > 0) Assert.True(ev[r - 1][i] >= ev[r][i], $"not descending at {i}: ev{r - 1} {ev[r - 1][i]:R} < ev{r} {ev[r][i]:R}");
            }
        }
        TestContext.Current.SendDiagnosticMessage($"worst relative error {worst:E2}");
    }

    /// <summary>
    /// diag(4, 2, 0) has evenly spaced eigenvalues, so the depressed cubic's mb2 is exactly 0 and
    /// atan2_ff(√−q &gt; 0, 0) returns 0 instead of π/2 (the octant swap leaves y = −0, which the final
    /// "y == 0" test catches). fastfilters therefore reports a double eigenvalue 0.845 instead of (2, 0),
    /// and so does ilastik; we reproduce it on purpose. Values from the numpy float32 transcription.
    /// </summary>
    [Fact]
    public void EvenlySpacedSpectrum_ReproducesFastfiltersAtan2Quirk()
    {
        float[] z = [0f], e0 = new float[1], e1 = new float[1], e2 = new float[1];
        SymmetricEigen.Eigenvalues3([4f], z, z, [2f], z, z, e0, e1, e2);
        Assert.Equal(4.309401f, e0[0]);
        Assert.Equal(0.8452995f, e1[0]);
        Assert.Equal(0.8452995f, e2[0]);

        // Unevenly spaced diagonals are fine to a few ulps.
        SymmetricEigen.Eigenvalues3([5f], z, z, [1f], z, [3f], e0, e1, e2);
        Assert.Equal(5f, e0[0], 1e-5f);
        Assert.Equal(3f, e1[0], 1e-5f);
        Assert.Equal(1f, e2[0], 1e-5f);
    }

    // ------------------------------------------------------------------ (3) vector bodies == one-lane path

    [Fact]
    public void VectorAndScalarPaths_AreBitIdentical_AtEveryLength()
    {
        // 67 = 4·16 + 3: every Vector512 count, every Vector256 remainder, every scalar remainder.
        float[][] pool3 = Specials(Tensors3(67 + 3, Seed + 8), Seed + 9);
        float[][] pool2 = Specials(Tensors2(67 + 3, Seed + 10), Seed + 11);
        for (int offset = 0; offset <= 3; offset += 3)                       // also a start that is not 32-byte aligned
            for (int n = 0; n <= 67; n++)
            {
                float[][] a3 = pool3.Select(r => r.AsSpan(offset, n).ToArray()).ToArray();
                float[][] scalar3 = Run3(a3, EigenWidth.ScalarOnly);
                AssertBitIdentical(scalar3, Run3(a3, EigenWidth.Auto), a3, $"3x3 auto vs scalar, n={n}");
                AssertBitIdentical(scalar3, Run3(a3, EigenWidth.Vector256Only), a3, $"3x3 Vector256 vs scalar, n={n}");

                float[][] a2 = pool2.Select(r => r.AsSpan(offset, n).ToArray()).ToArray();
                float[][] scalar2 = Run2(a2, EigenWidth.ScalarOnly);
                AssertBitIdentical(scalar2, Run2(a2, EigenWidth.Auto), a2, $"2x2 auto vs scalar, n={n}");
                AssertBitIdentical(scalar2, Run2(a2, EigenWidth.Vector256Only), a2, $"2x2 Vector256 vs scalar, n={n}");
            }
        TestContext.Current.SendDiagnosticMessage(
            $"Vector512 {Vector512.IsHardwareAccelerated}, Vector256 {Vector256.IsHardwareAccelerated}");
    }

    [Fact]
    public void OutputsLongerThanInputs_OnlyFirstNWritten()
    {
        float[][] a = Tensors3(13, Seed + 12);
        float[] e0 = Enumerable.Repeat(7f, 20).ToArray(), e1 = (float[])e0.Clone(), e2 = (float[])e0.Clone();
        SymmetricEigen.Eigenvalues3(a[0], a[1], a[2], a[3], a[4], a[5], e0, e1, e2);
        float[][] expected = Run3(a, EigenWidth.ScalarOnly);
        AssertBitIdentical(expected, [e0[..13], e1[..13], e2[..13]], a, "prefix");
        Assert.All(e0[13..].Concat(e1[13..]).Concat(e2[13..]), v => Assert.Equal(7f, v));
    }

    // ------------------------------------------------------------------ argument validation

    [Fact]
    public void MismatchedLengths_Throw()
    {
        float[] a = new float[8], b = new float[7], e0 = new float[8], e1 = new float[8], e2 = new float[8];
        var ex = Assert.Throws<ArgumentException>(() => SymmetricEigen.Eigenvalues3(a, a, a, a, b, a, e0, e1, e2));
        Assert.Contains("xy 7", ex.Message);
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Eigenvalues2(a, b, a, e0, e1));
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Eigenvalues2(a, a, a, e0, new float[7]));
    }

    [Fact]
    public void OverlappingOutputs_Throw()
    {
        float[] a = new float[8], b = new float[8], e = new float[24];
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Eigenvalues3(a, a, a, a, a, a, a, e.AsSpan(8, 8), e.AsSpan(16, 8)));
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Eigenvalues3(a, a, a, a, a, a, e.AsSpan(0, 8), e.AsSpan(4, 8), e.AsSpan(16, 8)));
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Eigenvalues2(a, b, a, b, e.AsSpan(0, 8)));
    }
}
