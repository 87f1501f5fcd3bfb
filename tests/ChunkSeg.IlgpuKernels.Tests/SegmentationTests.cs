using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.IlgpuKernels.Labeling;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.IlgpuKernels.Tests;

/// <summary>
/// Labelling's segmentation on the device (<see cref="GpuSegmenter"/>) against the CPU's (<see cref="BlockSmoothing"/>,
/// then the CPU backend's segmenter: LabelStage's threshold and argmax), bit for bit: the smoothed read box, and the core
/// masks of every chunk of seeded random volumes (2D and 3D, odd shapes, chunks at the volume's edges, with and without
/// smoothing, anisotropic sigmas). Volumes are small: ILGPU's CPU accelerator is slow.
/// </summary>
public class SegmentationTests(ITestOutputHelper output)
{
    private static readonly Lazy<GpuSegmenter> Shared = new(() => new GpuSegmenter(TestDevice.Device));

    private static GpuSegmenter Segmenter => Shared.Value;

    /// <summary>(z, y, x) sigmas in voxels: none, isotropic, anisotropic, some axes unsmoothed, a wide one.</summary>
    private static readonly Sigma3[] Sigmas =
    [
        default, Sigma3.Uniform(1.0), new(0.5, 1.5, 2.3), new(2.0, 0, 0.7), new(0, 1.2, 0), new(1.3, 0.4, 3.0),
    ];

    /// <summary>Probabilities with ties: multiples of 1/16 mostly (argmax's first-maximum rule), some exact 0, −0 and 1.</summary>
    private static float[] RandomImage(Random rng, long count)
    {
        var v = new float[count];
        for (long i = 0; i < count; i++)
            v[i] = rng.Next(12) switch
            {
                0 => 0f,
                1 => -0f,
                2 => 1f,
                3 => (float)rng.NextDouble(),
                _ => rng.Next(17) / 16f,
            };
        return v;
    }

    /// <summary>The GPU backend on the test device (never disposed: disposing it would close the shared device).</summary>
    private static readonly Lazy<GpuBackend> Backend = new(() => new GpuBackend(TestDevice.Device));

    [Fact]
    public void Smoothing_on_the_device_equals_BlockSmoothing_bit_for_bit()
    {
        const int seed = 4711;
        output.WriteLine($"seed {seed}, device {Segmenter.Device.Describe()}");
        var rng = new Random(seed);
        (int, int, int)[] shapes = [(11, 17, 19), (1, 13, 29), (5, 23, 7), (9, 8, 31), (19, 10, 10)];
        int cases = 0, misfits = 0;
        foreach (var (sz, sy, sx) in shapes)
        foreach (var sigma in Sigmas)
        {
            bool is2D = sz == 1;
            var kernels = BlockSmoothing.Kernels(sigma, is2D);
            if (BlockSmoothing.Misfit(kernels, new Long3(sz, sy, sx)) is not null) { misfits++; continue; }
            var image = RandomImage(rng, (long)sz * sy * sx);
            var expected = (float[])image.Clone();
            BlockSmoothing.Apply(kernels, new Long3(sz, sy, sx), expected, new float[image.Length]);
            var actual = new float[image.Length];
            actual.AsSpan().Fill(float.NaN);
            Segmenter.Smooth(image, sz, sy, sx, kernels, actual);
            for (int i = 0; i < image.Length; i++)
                if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                    Assert.Fail($"({sz}, {sy}, {sx}), sigma {sigma}: voxel {i} is {actual[i]:R}, CPU {expected[i]:R}");
            cases++;
        }
        output.WriteLine($"{cases} shape/sigma cases bit-identical; {misfits} skipped (a kernel wider than the shape, refused by the CLI)");
        Assert.True(cases >= 25, $"only {cases} cases ran");
    }

    [Theory]
    [InlineData(11, 17, 19, 3, 5, 6, 7)]      // odd shapes, chunks ending at every edge
    [InlineData(1, 23, 29, 2, 1, 8, 9)]       // 2D: z neither smooths nor has a halo
    [InlineData(20, 9, 13, 4, 7, 9, 13)]      // one chunk across y and x
    [InlineData(8, 16, 16, 2, 8, 16, 16)]     // one chunk: the read box is the volume
    public void Threshold_and_argmax_masks_equal_the_cpu_on_every_chunk(int sz, int sy, int sx, int channels, int cz, int cy, int cx)
    {
        int seed = 1000 * sz + sy + sx + channels;
        output.WriteLine($"seed {seed}, device {Segmenter.Device.Describe()}");
        var rng = new Random(seed);
        var shape = new Long3(sz, sy, sx);
        bool is2D = sz == 1;
        var volume = Enumerable.Range(0, channels).Select(_ => RandomImage(rng, shape.Volume)).ToArray();
        int chunks = 0;
        long foreground = 0, voxels = 0;
        foreach (var sigma in Sigmas)
        {
            if (BlockSmoothing.Misfit(BlockSmoothing.Kernels(sigma, is2D), shape) is not null) continue;
            // A threshold the smoothed data takes exactly (a tie a 1-ulp difference would flip), and 0.5 (many raw ties).
            var smoothed = (float[])volume[1].Clone();
            BlockSmoothing.Apply(BlockSmoothing.Kernels(sigma, is2D), shape, smoothed, new float[smoothed.Length]);
            float median = smoothed.Order().ElementAt(smoothed.Length / 2);
            Segmentation[] segmentations =
            [
                new(SegmentationMode.Threshold, 1, 0.5f, sigma),
                new(SegmentationMode.Threshold, 1, median, sigma),
                new(SegmentationMode.Threshold, 0, 0.3f, sigma),
                new(SegmentationMode.Argmax, 0, Smoothing: sigma),
                new(SegmentationMode.Argmax, channels - 1, Smoothing: sigma),
                new(SegmentationMode.Argmax, rng.Next(channels), Smoothing: sigma),
            ];
            foreach (var segmentation in segmentations)
            {
                var cpu = ComputeBackend.Cpu.Segmenter(segmentation, is2D);
                var device = Backend.Value.Segmenter(segmentation, is2D);     // what the stages get: DeviceSegmenter over GpuSegmenter
                var halo = BlockSmoothing.HaloOf(BlockSmoothing.Kernels(sigma, is2D));
                var grid = new ChunkGrid(shape, 1, new Long3(cz, cy, cx), halo);
                for (long c = 0; c < grid.Count; c++)
                {
                    var chunk = grid[c];
                    var (expected, expectedReads) = Segment(cpu, chunk, volume, shape);
                    var (actual, actualReads) = Segment(device, chunk, volume, shape);
                    Assert.Equal(expectedReads, actualReads);
                    int differ = expected.Zip(actual).Count(p => p.First != p.Second);
                    Assert.True(differ == 0, $"{segmentation}, {chunk}: {differ} of {expected.Length} voxels differ");
                    foreground += expected.Count(b => b == 1);
                    voxels += expected.Length;
                    chunks++;
                }
            }
        }
        output.WriteLine($"{chunks} chunk segmentations identical; {foreground} of {voxels} voxels foreground");
        Assert.InRange(foreground, voxels / 20, voxels - voxels / 20);     // neither all background nor all foreground
    }

    /// <summary>The mask of <paramref name="chunk"/>, and the channels read in order (the contract LabelStage's intensity relies on).</summary>
    private static (byte[] Mask, List<int> Reads) Segment(IChunkSegmenter segmenter, ChunkSpec chunk, float[][] volume, Long3 shape)
    {
        var mask = new byte[chunk.Core.VoxelCount];
        mask.AsSpan().Fill(7);                                                 // every voxel must be written
        var reads = new List<int>();
        segmenter.Segment(chunk, volume.Length, (c, destination) =>
        {
            reads.Add(c);
            var box = chunk.Read;
            int i = 0;
            for (long z = box.Start.Z; z < box.End.Z; z++)
            for (long y = box.Start.Y; y < box.End.Y; y++, i += (int)box.Size.X)
                volume[c].AsSpan((int)((z * shape.Y + y) * shape.X + box.Start.X), (int)box.Size.X).CopyTo(destination[i..]);
        }, mask);
        return (mask, reads);
    }

    [Fact]
    public void Bad_arguments_are_refused_before_any_work()
    {
        var kernels = BlockSmoothing.Kernels(Sigma3.Uniform(1.0));
        var core = new Box3(new Long3(1, 1, 1), new Long3(2, 2, 2));
        var image = new float[4 * 4 * 4];
        Assert.Throws<ArgumentException>(() => Segmenter.Threshold(image, 4, 4, 4, core, kernels, 0.5f, new byte[7]));
        Assert.Throws<ArgumentException>(() => Segmenter.Threshold(image.AsSpan(1), 4, 4, 4, core, kernels, 0.5f, new byte[8]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Segmenter.Threshold(image, 4, 4, 4, new Box3(new Long3(3, 0, 0), new Long3(2, 1, 1)), kernels, 0.5f, new byte[2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Segmenter.Argmax(2, 2, (_, _) => { }, 4, 4, 4, core, kernels, new byte[8]));
        Assert.Throws<ArgumentException>(() => Segmenter.Threshold(image, 4, 4, 4, core, kernels.AsSpan(1), 0.5f, new byte[8]));
        Assert.Throws<ArgumentException>(() => Segmenter.Smooth(image, 4, 4, 4, kernels, new float[63]));
        // A radius of 3 on a 3-voxel axis: the convolution's own check names the fix.
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Segmenter.Threshold(new float[27], 3, 3, 3, new Box3(Long3.Zero, new Long3(3, 3, 3)), kernels, 0.5f, new byte[27]));
        Assert.Contains("Add halo", e.Message);
    }
}
