using System.Globalization;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.Kernels.Tests;

public class ConvolutionTests(ITestOutputHelper output)
{
    private static readonly SimdWidth[] AllWidths = [SimdWidth.Scalar, SimdWidth.V128, SimdWidth.V256, SimdWidth.V512];

    /// <summary>
    /// The specification written plainly: a triple loop, an explicit reflect-101 index, and the fastfilters
    /// sequence acc = c0·v, then acc = fma(v[+k] ± v[−k], c_k, acc) for k = 1..R.
    /// </summary>
    private static float[] Reference(float[] src, int sz, int sy, int sx, int axis, FirKernel kernel)
    {
        int[] dims = [sz, sy, sx];
        int n = dims[axis];
        var c = kernel.Taps;
        var dst = new float[src.Length];
        static int Mirror(int j, int n) => n == 1 ? 0 : j < 0 ? -j : j > n - 1 ? 2 * (n - 1) - j : j;
        for (int z = 0; z < sz; z++)
            for (int y = 0; y < sy; y++)
                for (int x = 0; x < sx; x++)
                {
                    int[] at = [z, y, x];
                    int pos = at[axis];
                    float Get(int j)
                    {
                        int[] q = [z, y, x];
                        q[axis] = Mirror(j, n);
                        return src[q[2] + sx * (q[1] + sy * q[0])];
                    }
                    float acc = c[0] * Get(pos);
                    for (int k = 1; k < c.Length; k++)
                    {
                        float d = kernel.IsAntisymmetric ? Get(pos + k) - Get(pos - k) : Get(pos + k) + Get(pos - k);
                        acc = MathF.FusedMultiplyAdd(d, c[k], acc);
                    }
                    dst[x + sx * (y + sy * z)] = acc;
                }
        return dst;
    }

    private static float[] RandomVolume(Random rng, int count)
    {
        var v = new float[count];
        for (int i = 0; i < count; i++)
            v[i] = rng.Next(10) switch
            {
                0 => 0f,
                1 => -0f,                                    // signed zeros reach the order-1 c0 = −0 product
                _ => (float)(rng.NextDouble() * 2000 - 500),
            };
        return v;
    }

    private static void AssertBitIdentical(float[] expected, float[] actual, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: element {i} is {actual[i]:R} (0x{BitConverter.SingleToInt32Bits(actual[i]):x8}), reference {expected[i]:R} (0x{BitConverter.SingleToInt32Bits(expected[i]):x8})");
    }

    [Fact]
    public void Every_width_and_thread_count_matches_the_scalar_reference_bit_for_bit()
    {
        const int seed = 20240611;
        output.WriteLine($"seed {seed}, best width here {SeparableConvolution.BestWidth}");
        var rng = new Random(seed);
        double[] sigmas = [0.3, 0.7, 1.0, 1.6, 2.3, 3.5, 5.0, 9.95];
        int cases = 0;
        foreach (double sigma in sigmas)
            for (int order = 0; order <= 2; order++)
                for (int axis = 0; axis <= 2; axis++)
                    for (int rep = 0; rep < 3; rep++)
                    {
                        double window = rng.Next(2) == 0 ? 2.0 : 3.5;
                        var kernel = FirKernel.Gaussian(order, sigma, window);
                        int r = kernel.Radius;
                        // Small sizes on the other axes; along the pass either 1 or at least R + 1.
                        int[] dims = [rng.Next(1, 5), rng.Next(1, 6), rng.Next(1, 41)];
                        dims[axis] = rng.Next(4) == 0 ? 1 : r + 1 + rng.Next(axis == 2 ? 40 : 6);
                        // The x pass also needs every x remainder at large radii, from 1 to 40.
                        if (axis != 2 && rep == 2) dims[2] = 1 + (cases % 40);
                        var src = RandomVolume(rng, dims[0] * dims[1] * dims[2]);
                        var expected = Reference(src, dims[0], dims[1], dims[2], axis, kernel);
                        foreach (var width in AllWidths)
                            foreach (int threads in new[] { 1, 3 })
                            {
                                var dst = new float[src.Length];
                                dst.AsSpan().Fill(float.NaN);         // every element must be written
                                SeparableConvolution.Apply(src, dst, dims[0], dims[1], dims[2], axis, kernel, threads, width);
                                AssertBitIdentical(expected, dst,
                                    $"shape ({dims[0]}, {dims[1]}, {dims[2]}) axis {axis} {kernel} window {window} width {width} threads {threads}");
                            }
                        cases++;
                    }
        output.WriteLine($"{cases} cases × {AllWidths.Length} widths × 2 thread counts");
    }

    [Fact]
    public void Every_x_length_from_1_to_70_matches_the_reference()
    {
        // Vector remainders for every width, with and without the four-vector body, at R = 2 and R = 7.
        var rng = new Random(7);
        foreach (var kernel in new[] { FirKernel.Gaussian(0, 1.0, 2.0), FirKernel.Gaussian(1, 3.5, 2.0) })
            for (int sx = 1; sx <= 70; sx++)
            {
                if (sx > 1 && sx <= kernel.Radius) continue;
                var src = RandomVolume(rng, 2 * sx);
                var expected = Reference(src, 1, 2, sx, 2, kernel);
                foreach (var width in AllWidths)
                {
                    var dst = new float[src.Length];
                    SeparableConvolution.Apply(src, dst, 1, 2, sx, 2, kernel, 1, width);
                    AssertBitIdentical(expected, dst, $"sx {sx} {kernel} width {width}");
                }
            }
    }

    [Fact]
    public void Large_volume_blocks_and_threads_do_not_change_bits()
    {
        // Big enough that the y/z passes split their rows into several blocks and threads get many items.
        const int sz = 40, sy = 37, sx = 300;
        var rng = new Random(11);
        var src = RandomVolume(rng, sz * sy * sx);
        var kernel = FirKernel.Gaussian(2, 5.0, 3.5);     // R = 18
        for (int axis = 0; axis <= 2; axis++)
        {
            var expected = Reference(src, sz, sy, sx, axis, kernel);
            foreach (int threads in new[] { 1, 2, 5 })
            {
                var dst = new float[src.Length];
                SeparableConvolution.Apply(src, dst, sz, sy, sx, axis, kernel, threads);
                AssertBitIdentical(expected, dst, $"axis {axis} threads {threads}");
            }
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void A_line_of_one_mirrors_every_index_to_itself(int order)
    {
        // 2D data stored with sz = 1: along z, out = c0·v + Σ fma(v ± v, c_k).
        var kernel = FirKernel.Gaussian(order, 1.6, 3.5);    // R = 6 > n − 1 = 0: allowed for n = 1
        float[] src = [1.5f, -2f, 3.25f, 0f, 7f, -1f];
        var dst = new float[src.Length];
        SeparableConvolution.Apply(src, dst, 1, 2, 3, 0, kernel);
        AssertBitIdentical(Reference(src, 1, 2, 3, 0, kernel), dst, $"order {order}");
        if (order == 0)
            for (int i = 0; i < src.Length; i++) Assert.Equal(src[i], dst[i], 1e-6f * Math.Abs(src[i]));
        if (order == 1)
            Assert.All(dst, v => Assert.Equal(0f, v));
    }

    /// <summary>
    /// A pass computed over a sub-box (the x pass cropping every axis, the y pass z and y, the z pass z) equals the
    /// whole pass cropped to it, at every width and thread count; crops it cannot compute are refused.
    /// </summary>
    [Fact]
    public void A_cropped_output_box_equals_the_whole_pass_there_bit_for_bit()
    {
        var rng = new Random(4411);
        for (int trial = 0; trial < 60; trial++)
        {
            int sz = rng.Next(1, 14), sy = rng.Next(1, 15), sx = rng.Next(1, 40), axis = trial % 3;
            int n = axis switch { 0 => sz, 1 => sy, _ => sx };
            var kernel = FirKernel.Gaussian(rng.Next(3), rng.Next(2) == 0 ? 0.7 : 1.6, 2.0);
            if (n > 1 && kernel.Radius > n - 1) continue;
            var src = RandomVolume(rng, sz * sy * sx);
            var whole = Reference(src, sz, sy, sx, axis, kernel);
            (long Start, long Size) Range(int extent, bool crop)
            {
                if (!crop) return (0, extent);
                int first = rng.Next(extent);
                return (first, rng.Next(1, extent - first + 1));
            }
            var z = Range(sz, axis != 1 || rng.Next(2) == 0);
            var y = Range(sy, axis != 0);
            var x = Range(sx, axis == 2);
            var box = new Box3(new Long3(z.Start, y.Start, x.Start), new Long3(z.Size, y.Size, x.Size));
            foreach (var width in AllWidths)
            foreach (int threads in new[] { 1, 3 })
            {
                var dst = new float[box.VoxelCount];
                SeparableConvolution.Apply(src, sz, sy, sx, dst, box, axis, kernel, threads, width);
                var expected = new float[dst.Length];
                int i = 0;
                for (long zz = box.Start.Z; zz < box.End.Z; zz++)
                for (long yy = box.Start.Y; yy < box.End.Y; yy++)
                for (long xx = box.Start.X; xx < box.End.X; xx++)
                    expected[i++] = whole[(zz * sy + yy) * sx + xx];
                AssertBitIdentical(expected, dst, $"axis {axis}, box {box} of {sz}x{sy}x{sx}, {kernel}, {width}, {threads} threads");
            }
        }
        var volume = new float[4 * 5 * 6];
        var k = FirKernel.Gaussian(0, 0.7, 2.0);
        Assert.Throws<ArgumentException>(() => SeparableConvolution.Apply(volume, 4, 5, 6, new float[4 * 5 * 3], new Box3(Long3.Zero, new Long3(4, 5, 3)), 0, k, 1, SimdWidth.Scalar));
        Assert.Throws<ArgumentException>(() => SeparableConvolution.Apply(volume, 4, 5, 6, new float[4 * 5 * 3], new Box3(Long3.Zero, new Long3(4, 5, 3)), 1, k, 1, SimdWidth.Scalar));
        Assert.Throws<ArgumentOutOfRangeException>(() => SeparableConvolution.Apply(volume, 4, 5, 6, new float[4 * 5 * 6], new Box3(new Long3(1, 0, 0), new Long3(4, 5, 6)), 2, k, 1, SimdWidth.Scalar));
    }

    [Fact]
    public void Invalid_calls_are_refused_with_the_values_in_the_message()
    {
        var kernel = FirKernel.Gaussian(0, 1.6, 3.5);   // R = 6
        var src = new float[4 * 5 * 6];
        var dst = new float[src.Length];
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SeparableConvolution.Apply(src, dst, 4, 5, 6, 2, kernel));
        Assert.Contains("radius 6", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SeparableConvolution.Apply(src, dst, 4, 5, 6, 3, FirKernel.Gaussian(0, 1, 2)));
        Assert.Throws<ArgumentException>(() => SeparableConvolution.Apply(src, dst.AsSpan(1), 4, 5, 6, 2, FirKernel.Gaussian(0, 1, 2)));
        Assert.Throws<ArgumentException>(() => SeparableConvolution.Apply(src, src, 4, 5, 6, 2, FirKernel.Gaussian(0, 1, 2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => SeparableConvolution.Apply(src, dst, 4, 5, 6, 2, FirKernel.Gaussian(0, 1, 2), 0));
        SeparableConvolution.Apply([], [], 0, 5, 6, 1, kernel);   // empty volume: nothing to do
    }

    [Theory]
    [InlineData(1.0, 0, 0, 0)]
    [InlineData(2.3, 0, 0, 0)]
    [InlineData(1.6, 1, 0, 0)]
    [InlineData(1.6, 0, 1, 0)]
    [InlineData(1.6, 0, 0, 1)]
    [InlineData(1.0, 2, 0, 0)]
    [InlineData(1.0, 0, 0, 2)]
    [InlineData(0.7, 1, 1, 0)]
    public void Three_passes_agree_with_vigra_in_double(double sigma, int orderZ, int orderY, int orderX)
    {
        const int sz = 13, sy = 17, sx = 19;
        var rng = new Random(3);
        var src = new float[sz * sy * sx];
        for (int i = 0; i < src.Length; i++) src[i] = (float)(rng.NextDouble() * 1000);

        // ilastik's order: x, then y, then z.
        var a = new float[src.Length];
        var b = new float[src.Length];
        SeparableConvolution.Apply(src, a, sz, sy, sx, 2, FirKernel.Gaussian(orderX, sigma, 2.0));
        SeparableConvolution.Apply(a, b, sz, sy, sx, 1, FirKernel.Gaussian(orderY, sigma, 2.0));
        SeparableConvolution.Apply(b, a, sz, sy, sx, 0, FirKernel.Gaussian(orderZ, sigma, 2.0));

        using var dir = new TempDir();
        WriteRaw(dir["in.raw"], src);
        PythonReference.Run("vigra_convolve.py", dir["in.raw"], $"{sz}", $"{sy}", $"{sx}",
            sigma.ToString("R", CultureInfo.InvariantCulture), "2.0", $"{orderZ}", $"{orderY}", $"{orderX}", dir["out.raw"]);
        float[] vigra = ReadRaw(dir["out.raw"], src.Length);

        double tolerance = 1e-5 * 1000;
        double worst = 0;
        for (int i = 0; i < src.Length; i++) worst = Math.Max(worst, Math.Abs(a[i] - vigra[i]));
        output.WriteLine($"max |ours − vigra| = {worst:G4} (tolerance {tolerance})");
        Assert.True(worst <= tolerance, $"max |ours − vigra| = {worst:R} > {tolerance}");
    }

    private static void WriteRaw(string path, float[] data)
    {
        var bytes = new byte[data.Length * sizeof(float)];
        Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
        File.WriteAllBytes(path, bytes);
    }

    private static float[] ReadRaw(string path, int count)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(count * sizeof(float), bytes.Length);
        var data = new float[count];
        Buffer.BlockCopy(bytes, 0, data, 0, bytes.Length);
        return data;
    }
}
