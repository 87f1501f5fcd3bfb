using ChunkSeg.Kernels.Filters;
using ChunkSeg.OpenCl;
using XPass = ChunkSeg.OpenCl.OpenClConvolution.XPass;

namespace ChunkSeg.OpenCl.Tests;

/// <summary>
/// The OpenCL pass against the CPU pass (<see cref="SeparableConvolution"/>, itself tested against the plain
/// specification and ilastik), bit for bit. Kernels are built as the feature engine builds them: window 2.0 for
/// the feature filters, 3.5 for the pre-smoothing (FeatureEngine.FilterWindow / PresmoothWindow).
/// </summary>
public class ConvolutionTests(ITestOutputHelper output)
{
    private const double FilterWindow = 2.0, PresmoothWindow = 3.5;
    private static readonly double[] Sigmas = [0.3, 0.7, 1.0, 1.6, 2.3, 3.5, 5.0];

    private static readonly Lazy<OpenClConvolution> Shared = new(() => new OpenClConvolution(TestDevice.Context));

    private static OpenClConvolution Convolution
    {
        get
        {
            TestDevice.Require();
            return Shared.Value;
        }
    }

    private static float[] RandomVolume(Random rng, long count)
    {
        var v = new float[count];
        for (long i = 0; i < count; i++)
            v[i] = rng.Next(10) switch
            {
                0 => 0f,
                1 => -0f,                                        // signed zeros reach the order-1 c0 = ±0 product
                _ => (float)(rng.NextDouble() * 2000 - 500),
            };
        return v;
    }

    private static float[] Cpu(float[] src, int sz, int sy, int sx, int axis, FirKernel kernel)
    {
        var dst = new float[src.Length];
        SeparableConvolution.Apply(src, dst, sz, sy, sx, axis, kernel);
        return dst;
    }

    private static void AssertBitIdentical(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: element {i} is {actual[i]:R} (0x{BitConverter.SingleToInt32Bits(actual[i]):x8}), CPU {expected[i]:R} (0x{BitConverter.SingleToInt32Bits(expected[i]):x8})");
    }

    /// <summary>Runs the pass on the device with every x strategy that applies and compares each with the CPU.</summary>
    private static void AssertMatchesCpu(OpenClQueue queue, float[] src, int sz, int sy, int sx, int axis, FirKernel kernel, string what)
    {
        var expected = Cpu(src, sz, sy, sx, axis, kernel);
        foreach (var xPass in axis == 2 ? new[] { XPass.Lines, XPass.Tiled } : [XPass.Auto])
        {
            var actual = new float[src.Length];
            actual.AsSpan().Fill(float.NaN);                      // every element must be written
            Convolution.Apply(queue, src, actual, sz, sy, sx, axis, kernel, xPass);
            AssertBitIdentical(expected, actual, $"{what} ({xPass})");
        }
    }

    [Fact]
    public void Every_axis_order_and_sigma_matches_the_cpu_pass_bit_for_bit_on_odd_shapes()
    {
        const int seed = 90210;
        output.WriteLine($"seed {seed}, device {Convolution.Context.Device.Describe()}, program {Convolution.Program.Origin} in {Convolution.Program.BuildTime.TotalMilliseconds:F0} ms");
        var rng = new Random(seed);
        using var queue = Convolution.Context.CreateQueue();
        (int, int, int)[] shapes = [(1, 7, 13), (5, 1, 9), (17, 19, 23), (2, 3, 1), (1, 1, 1), (9, 11, 37)];
        int cases = 0, skipped = 0;
        foreach (var (sz, sy, sx) in shapes)
        {
            var src = RandomVolume(rng, (long)sz * sy * sx);
            foreach (double sigma in Sigmas)
                foreach (double window in new[] { FilterWindow, PresmoothWindow })
                    for (int order = 0; order <= 2; order++)
                        for (int axis = 0; axis <= 2; axis++)
                        {
                            var kernel = FirKernel.Gaussian(order, sigma, window);
                            int n = axis switch { 0 => sz, 1 => sy, _ => sx };
                            if (n > 1 && kernel.Radius > n - 1) { skipped++; continue; }
                            AssertMatchesCpu(queue, src, sz, sy, sx, axis, kernel, $"shape ({sz}, {sy}, {sx}) axis {axis} {kernel} window {window}");
                            cases++;
                        }
        }
        output.WriteLine($"{cases} cases bit-identical ({skipped} skipped: radius > length - 1)");
        Assert.True(cases > 500);
    }

    [Fact]
    public void A_radius_of_exactly_length_minus_one_mirrors_like_the_cpu()
    {
        var rng = new Random(4242);
        using var queue = Convolution.Context.CreateQueue();
        int cases = 0;
        foreach (double sigma in Sigmas)
            for (int order = 0; order <= 2; order++)
                for (int axis = 0; axis <= 2; axis++)
                {
                    var kernel = FirKernel.Gaussian(order, sigma, rng.Next(2) == 0 ? FilterWindow : PresmoothWindow);
                    int[] dims = [3, 4, 5];
                    dims[axis] = kernel.Radius + 1;                    // every output's taps reach both ends
                    var src = RandomVolume(rng, dims[0] * dims[1] * dims[2]);
                    AssertMatchesCpu(queue, src, dims[0], dims[1], dims[2], axis, kernel, $"shape ({dims[0]}, {dims[1]}, {dims[2]}) axis {axis} {kernel}");
                    cases++;
                }
        output.WriteLine($"{cases} cases with R = n - 1");
    }

    [Fact]
    public void Rows_wider_than_one_work_group_and_every_short_row_length_match()
    {
        var rng = new Random(77);
        using var queue = Convolution.Context.CreateQueue();
        foreach (var kernel in new[] { FirKernel.Gaussian(0, 1.0, FilterWindow), FirKernel.Gaussian(1, 3.5, FilterWindow), FirKernel.Gaussian(2, 5.0, PresmoothWindow) })
        {
            for (int sx = 1; sx <= 40; sx++)
            {
                if (sx > 1 && kernel.Radius > sx - 1) continue;
                AssertMatchesCpu(queue, RandomVolume(rng, 2 * sx), 1, 2, sx, 2, kernel, $"sx {sx} {kernel}");
            }
            foreach (int sx in new[] { 255, 256, 257, 600, 1031 })
                AssertMatchesCpu(queue, RandomVolume(rng, 3L * 2 * sx), 3, 2, sx, 2, kernel, $"sx {sx} {kernel}");
        }
    }

    [Fact]
    public void Special_values_propagate_like_the_cpu()
    {
        // Subnormals (a device that flushes them would differ), infinities, huge values whose sums overflow.
        var rng = new Random(5);
        float[] specials = [1e-40f, -3e-42f, float.Epsilon, float.MaxValue, -float.MaxValue, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 1e-38f];
        const int sz = 6, sy = 7, sx = 8;
        var src = new float[sz * sy * sx];
        for (int i = 0; i < src.Length; i++) src[i] = rng.Next(3) == 0 ? specials[rng.Next(specials.Length)] : (float)(rng.NextDouble() * 1e-37);
        using var queue = Convolution.Context.CreateQueue();
        output.WriteLine($"device keeps denormals: {Convolution.Context.Device.HasDenormals}");
        for (int order = 0; order <= 2; order++)
            for (int axis = 0; axis <= 2; axis++)
                AssertMatchesCpu(queue, src, sz, sy, sx, axis, FirKernel.Gaussian(order, 1.6, FilterWindow), $"specials axis {axis} order {order}");
    }

    [Fact]
    public void Three_passes_chained_on_the_device_equal_the_cpu_passes()
    {
        // x, then y, then z, device buffer to device buffer (ping-pong), one download at the end: how the feature
        // stack will use it. Non-blocking upload and download through events on a profiling queue.
        const int sz = 21, sy = 26, sx = 31;
        var rng = new Random(31337);
        var src = RandomVolume(rng, sz * sy * sx);
        var context = Convolution.Context;
        using var queue = context.CreateQueue(profiling: true);
        FirKernel kx = FirKernel.Gaussian(1, 1.6, FilterWindow), ky = FirKernel.Gaussian(0, 1.6, FilterWindow), kz = FirKernel.Gaussian(2, 3.5, FilterWindow);

        var expected = Cpu(Cpu(Cpu(src, sz, sy, sx, 2, kx), sz, sy, sx, 1, ky), sz, sy, sx, 0, kz);

        using var a = context.CreateBuffer((long)src.Length * sizeof(float));
        using var b = context.CreateBuffer((long)src.Length * sizeof(float));
        var actual = new float[src.Length];
        using var up = queue.EnqueueWrite<float>(a, src);
        using var px = Convolution.Enqueue(queue, a, b, sz, sy, sx, 2, kx, up);
        using var py = Convolution.Enqueue(queue, b, a, sz, sy, sx, 1, ky, px);
        using var pz = Convolution.Enqueue(queue, a, b, sz, sy, sx, 0, kz, py);
        using (var down = queue.EnqueueRead<float>(b, actual, 0, pz)) down.Wait();
        AssertBitIdentical(expected, actual, "x → y → z chain");
        output.WriteLine($"passes on {context.Device.Name}: x {px.DurationNs / 1e3:F0} µs, y {py.DurationNs / 1e3:F0} µs, z {pz.DurationNs / 1e3:F0} µs for {src.Length} voxels");
    }

    [Fact]
    public void Inputs_are_validated_like_the_cpu_pass()
    {
        using var queue = Convolution.Context.CreateQueue();
        var kernel = FirKernel.Gaussian(0, 3.5, FilterWindow);       // R = 7
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Convolution.Apply(queue, new float[5 * 2 * 2], new float[20], 5, 2, 2, 0, kernel));
        Assert.Contains("exceeds 4 = length - 1 along axis 0", e.Message);
        Assert.Throws<ArgumentException>(() => Convolution.Apply(queue, new float[8], new float[7], 2, 2, 2, 2, FirKernel.Gaussian(0, 0.3, 2.0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Convolution.Apply(queue, new float[8], new float[8], 2, 2, 2, 3, FirKernel.Gaussian(0, 0.3, 2.0)));
        Convolution.Apply(queue, [], [], 0, 4, 4, 1, kernel);        // empty: a no-op
        using var buffer = Convolution.Context.CreateBuffer(64 * sizeof(float));
        Assert.Throws<ArgumentException>(() => Convolution.Enqueue(queue, buffer, buffer, 4, 4, 4, 2, FirKernel.Gaussian(0, 0.7, 2.0)));
        using var small = Convolution.Context.CreateBuffer(63 * sizeof(float));
        Assert.Throws<ArgumentException>(() => Convolution.Enqueue(queue, buffer, small, 4, 4, 4, 2, FirKernel.Gaussian(0, 0.7, 2.0)));
    }
}
