using ChunkSeg.Contracts.Geometry;
using ChunkSeg.IlgpuKernels.Labeling;
using ChunkSeg.IlgpuKernels.Runtime;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.IlgpuKernels.Tests;

/// <summary>
/// The device's convolution pass (<see cref="DeviceCall.Pass"/>, the ConvolveBox kernel every feature and every
/// smoothing runs on) against the CPU pass (<see cref="SeparableConvolution"/>, itself tested against the plain
/// specification and ilastik), bit for bit: every axis, order and sigma on odd shapes with lines of length 1, a radius
/// of exactly length − 1, every short row length, signed zeros, denormals and infinities, output boxes inside the input,
/// and three passes chained on the device. Kernels are built as the feature engine builds them: window 2.0 for the
/// feature filters, 3.5 for the pre-smoothing. The volumes are small: ILGPU's CPU accelerator is slow.
/// </summary>
public class ConvolutionTests(ITestOutputHelper output)
{
    private const double FilterWindow = 2.0, PresmoothWindow = 3.5;
    private static readonly double[] Sigmas = [0.3, 0.7, 1.0, 1.6, 2.3, 3.5, 5.0];

    private static GpuDevice Device => TestDevice.Device;

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

    private static float[] Cpu(float[] src, int sz, int sy, int sx, int axis, FirKernel kernel, Box3? box = null)
    {
        var output = box ?? new Box3(Long3.Zero, new Long3(sz, sy, sx));
        var dst = new float[output.VoxelCount];
        SeparableConvolution.Apply(src, sz, sy, sx, dst, output, axis, kernel, 1, SeparableConvolution.BestWidth);
        return dst;
    }

    /// <summary>One pass on the device over <paramref name="box"/> (default: the whole volume), into a NaN-filled buffer so an unwritten sample shows.</summary>
    private static float[] OnDevice(float[] src, int sz, int sy, int sx, int axis, FirKernel kernel, Box3? box = null)
    {
        var output = box ?? new Box3(Long3.Zero, new Long3(sz, sy, sx));
        var result = new float[output.VoxelCount];
        Array.Fill(result, float.NaN);
        using var call = new DeviceCall(Device);
        var input = call.Upload(src);
        var destination = call.Upload(result);
        call.Pass(input.View, new Long3(sz, sy, sx), destination.View, output, axis, kernel);
        call.Download(destination, result);
        return result;
    }

    private static void AssertBitIdentical(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: element {i} is {actual[i]:R} (0x{BitConverter.SingleToInt32Bits(actual[i]):x8}), CPU {expected[i]:R} (0x{BitConverter.SingleToInt32Bits(expected[i]):x8})");
    }

    private static void AssertMatchesCpu(float[] src, int sz, int sy, int sx, int axis, FirKernel kernel, string what, Box3? box = null) =>
        AssertBitIdentical(Cpu(src, sz, sy, sx, axis, kernel, box), OnDevice(src, sz, sy, sx, axis, kernel, box), what);

    [Fact]
    public void Every_axis_order_and_sigma_matches_the_cpu_pass_bit_for_bit_on_odd_shapes()
    {
        const int seed = 90210;
        output.WriteLine($"seed {seed}, device {Device.Describe()}");
        var rng = new Random(seed);
        // Lines of length 1 along each axis (every tap mirrors to the sample itself), a single voxel, and shapes whose
        // lines fit the widest kernels.
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
                AssertMatchesCpu(src, sz, sy, sx, axis, kernel, $"shape ({sz}, {sy}, {sx}) axis {axis} {kernel} window {window}");
                cases++;
            }
        }
        output.WriteLine($"{cases} cases bit-identical ({skipped} skipped: radius > length - 1)");
        Assert.True(cases > 500, $"only {cases} cases ran");
    }

    [Fact]
    public void A_radius_of_exactly_length_minus_one_mirrors_like_the_cpu()
    {
        var rng = new Random(4242);
        int cases = 0;
        foreach (double sigma in Sigmas)
        for (int order = 0; order <= 2; order++)
        for (int axis = 0; axis <= 2; axis++)
        {
            var kernel = FirKernel.Gaussian(order, sigma, rng.Next(2) == 0 ? FilterWindow : PresmoothWindow);
            int[] dims = [3, 4, 5];
            dims[axis] = kernel.Radius + 1;                    // every output's taps reach both ends
            var src = RandomVolume(rng, dims[0] * dims[1] * dims[2]);
            AssertMatchesCpu(src, dims[0], dims[1], dims[2], axis, kernel, $"shape ({dims[0]}, {dims[1]}, {dims[2]}) axis {axis} {kernel}");
            cases++;
        }
        output.WriteLine($"{cases} cases with R = n - 1");
    }

    [Fact]
    public void Every_short_row_length_and_long_rows_match()
    {
        // The kernel takes a branch-free path where all 2R+1 taps lie inside the line and mirrors elsewhere: rows from
        // 1 to a few radii long switch between the two at every position; long rows span many launch groups.
        var rng = new Random(77);
        foreach (var kernel in new[] { FirKernel.Gaussian(0, 1.0, FilterWindow), FirKernel.Gaussian(1, 3.5, FilterWindow), FirKernel.Gaussian(2, 5.0, PresmoothWindow) })
        {
            for (int sx = 1; sx <= 40; sx++)
            {
                if (sx > 1 && kernel.Radius > sx - 1) continue;
                AssertMatchesCpu(RandomVolume(rng, 2 * sx), 1, 2, sx, 2, kernel, $"sx {sx} {kernel}");
            }
            foreach (int sx in new[] { 255, 256, 257, 600, 1031 })
                AssertMatchesCpu(RandomVolume(rng, 3L * 2 * sx), 3, 2, sx, 2, kernel, $"sx {sx} {kernel}");
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
        for (int order = 0; order <= 2; order++)
        for (int axis = 0; axis <= 2; axis++)
        {
            var kernel = FirKernel.Gaussian(order, 1.6, FilterWindow);
            var expected = Cpu(src, sz, sy, sx, axis, kernel);
            // The case is only worth something if the CPU's result holds what a flushing or reassociating device would lose.
            Assert.Contains(expected, v => float.IsSubnormal(v));
            Assert.Contains(expected, v => float.IsInfinity(v) || float.IsNaN(v));
            AssertBitIdentical(expected, OnDevice(src, sz, sy, sx, axis, kernel), $"specials axis {axis} order {order}");
        }
    }

    [Fact]
    public void A_pass_over_a_box_inside_the_input_equals_the_cpu_box_pass()
    {
        // How the feature engine shrinks towards a core: the x pass may crop every axis, the y pass z and y, the z pass
        // z only; taps still mirror at the input's ends, never at the box's.
        const int sz = 9, sy = 10, sx = 11;
        var rng = new Random(606);
        var src = RandomVolume(rng, sz * sy * sx);
        Box3[] xBoxes = [Box3.FromBounds(new Long3(2, 1, 3), new Long3(7, 9, 8)), Box3.FromBounds(new Long3(0, 0, 0), new Long3(1, 10, 1)), Box3.FromBounds(new Long3(8, 3, 0), new Long3(9, 4, 11))];
        Box3[] yBoxes = [Box3.FromBounds(new Long3(1, 2, 0), new Long3(8, 7, 11)), Box3.FromBounds(new Long3(4, 9, 0), new Long3(5, 10, 11))];
        Box3[] zBoxes = [Box3.FromBounds(new Long3(3, 0, 0), new Long3(6, 10, 11)), Box3.FromBounds(new Long3(8, 0, 0), new Long3(9, 10, 11))];
        int cases = 0;
        foreach (var kernel in new[] { FirKernel.Gaussian(0, 1.6, FilterWindow), FirKernel.Gaussian(1, 1.0, PresmoothWindow), FirKernel.Gaussian(2, 2.3, FilterWindow) })
        foreach (var (axis, boxes) in new[] { (2, xBoxes), (1, yBoxes), (0, zBoxes) })
        foreach (var box in boxes)
        {
            AssertMatchesCpu(src, sz, sy, sx, axis, kernel, $"axis {axis} box {box} {kernel}", box);
            cases++;
        }
        output.WriteLine($"{cases} box passes bit-identical");
    }

    [Fact]
    public void Three_passes_chained_on_the_device_equal_the_cpu_passes()
    {
        // x, then y, then z, device buffer to device buffer, one download at the end (GpuSegmenter.Smooth), with a
        // different order per axis so a pass run along the wrong axis or out of sequence would show.
        const int sz = 12, sy = 13, sx = 14;
        var src = RandomVolume(new Random(31337), sz * sy * sx);
        FirKernel kx = FirKernel.Gaussian(1, 1.6, FilterWindow), ky = FirKernel.Gaussian(0, 1.6, FilterWindow), kz = FirKernel.Gaussian(2, 3.5, FilterWindow);
        var segmenter = new GpuSegmenter(Device);

        var expected = Cpu(Cpu(Cpu(src, sz, sy, sx, 2, kx), sz, sy, sx, 1, ky), sz, sy, sx, 0, kz);
        var actual = new float[src.Length];
        segmenter.Smooth(src, sz, sy, sx, [kz, ky, kx], actual);
        AssertBitIdentical(expected, actual, "x → y → z chain");

        // One axis alone: the same single pass as the CPU's.
        var onlyY = new float[src.Length];
        segmenter.Smooth(src, sz, sy, sx, [null, ky, null], onlyY);
        AssertBitIdentical(Cpu(src, sz, sy, sx, 1, ky), onlyY, "y alone");
    }

    [Fact]
    public void A_radius_longer_than_the_axis_is_refused_with_the_cpu_message()
    {
        var kernel = FirKernel.Gaussian(0, 3.5, FilterWindow);       // R = 7
        var src = new float[5 * 2 * 2];
        var cpu = Assert.Throws<ArgumentOutOfRangeException>(() => Cpu(src, 5, 2, 2, 0, kernel));
        var gpu = Assert.Throws<ArgumentOutOfRangeException>(() => OnDevice(src, 5, 2, 2, 0, kernel));
        Assert.Contains("exceeds 4 = length - 1 along axis 0", gpu.Message);
        Assert.Equal(cpu.Message, gpu.Message);
    }
}
