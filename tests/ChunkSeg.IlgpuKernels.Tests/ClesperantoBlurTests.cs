using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.IlgpuKernels.Splitting;
using ChunkSeg.Kernels.Splitting;

namespace ChunkSeg.IlgpuKernels.Tests;

/// <summary>
/// The split's blur on the device (<see cref="GpuClesperantoBlur"/>) against the CPU's <see cref="ClesperantoGaussian"/>,
/// bit for bit: 3D and 2D blocks, isotropic and anisotropic sigmas, sigma 0 on some axes, and blocks smaller than the
/// kernel (every tap clamped). Volumes are small: ILGPU's CPU accelerator is slow.
/// </summary>
public class ClesperantoBlurTests(ITestOutputHelper output)
{
    private static readonly Lazy<GpuClesperantoBlur> Shared = new(() => new GpuClesperantoBlur(TestDevice.Device));

    /// <summary>The GPU backend on the test device (never disposed: disposing it would close the shared device).</summary>
    private static readonly Lazy<GpuBackend> Backend = new(() => new GpuBackend(TestDevice.Device));

    /// <summary>Intensities of a uint16 image mostly, with signed values, exact ±0 and float32 denormals (no NaN: a GPU may change its payload).</summary>
    private static float[] RandomImage(Random rng, long count)
    {
        var v = new float[count];
        for (long i = 0; i < count; i++)
            v[i] = rng.Next(16) switch
            {
                0 => 0f,
                1 => -0f,
                2 => (float)(rng.NextDouble() - 0.5) * 1e3f,
                3 => BitConverter.Int32BitsToSingle(rng.Next(1, 1 << 23)) * (rng.Next(2) == 0 ? 1 : -1),
                _ => rng.Next(65536),
            };
        return v;
    }

    public static TheoryData<int, int, int, double, double, double> Cases() => new()
    {
        { 7, 13, 37, 1.0, 1.0, 1.0 },            // isotropic; x lines long enough for the CPU's vector path
        { 9, 11, 21, 0.5, 1.5, 2.3 },            // anisotropic
        { 6, 10, 17, 2.0, 0, 0.7 },              // y not blurred
        { 5, 8, 19, 0, 1.2, 0 },                 // only y
        { 1, 19, 23, 0, 2.0, 2.0 },              // 2D: z not blurred
        { 1, 17, 9, 0, 0.8, 3.0 },               // 2D, anisotropic, x kernel (25 taps) wider than the block
        { 1, 16, 16, 1.5, 1.5, 1.5 },            // one plane blurred along z too: every z tap clamps to it
        { 2, 3, 4, 3.0, 3.0, 3.0 },              // every axis shorter than its 25-tap kernel
        { 3, 1, 5, 1.0, 2.0, 0.4 },              // a single row; sigma 0.4: kernel size 3
        { 1, 1, 1, 2.0, 2.0, 2.0 },              // one voxel
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_device_blur_equals_ClesperantoGaussian_bit_for_bit(int sz, int sy, int sx, double sigmaZ, double sigmaY, double sigmaX)
    {
        var rng = new Random((sz * 100 + sy) * 100 + sx);
        var blur = new ClesperantoGaussian(sigmaZ, sigmaY, sigmaX);
        var shape = new Long3(sz, sy, sx);
        var image = RandomImage(rng, shape.Volume);
        var expected = new float[image.Length];
        blur.Apply(image, expected, shape);
        var actual = new float[image.Length];
        actual.AsSpan().Fill(float.NaN);
        Shared.Value.Apply(blur, image, actual, shape);
        for (int i = 0; i < image.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{shape}, sigma ({sigmaZ}, {sigmaY}, {sigmaX}): voxel {i} is {actual[i]:R}, CPU {expected[i]:R}");
        output.WriteLine($"{shape}, sigma ({sigmaZ}, {sigmaY}, {sigmaX}), radius {blur.Radius}: {image.Length} voxels identical on {Shared.Value.Device.Describe()}");
    }

    /// <summary>The GPU backend's hook blurs on the device, in place as the CPU's does; a sigma of 0 everywhere is a copy.</summary>
    [Fact]
    public void The_gpu_backend_blurs_in_place_as_the_cpu_backend_does()
    {
        var shape = new Long3(4, 9, 12);
        var rng = new Random(31);
        foreach (var blur in new[] { new ClesperantoGaussian(1.0, 2.0, 1.5), new ClesperantoGaussian(0, 0, 0) })
        {
            var image = RandomImage(rng, shape.Volume);
            var cpu = (float[])image.Clone();
            var gpu = (float[])image.Clone();
            ComputeBackend.Cpu.ClesperantoBlur(blur, cpu, cpu, shape);
            Backend.Value.ClesperantoBlur(blur, gpu, gpu, shape);
            Assert.Equal(cpu.Select(BitConverter.SingleToInt32Bits), gpu.Select(BitConverter.SingleToInt32Bits));
        }
    }
}
