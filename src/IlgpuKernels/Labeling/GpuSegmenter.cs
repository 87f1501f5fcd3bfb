using System.Buffers;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.IlgpuKernels.Kernels;
using ChunkSeg.IlgpuKernels.Runtime;
using ChunkSeg.Kernels.Filters;
using ILGPU;
using ILGPU.Runtime;

namespace ChunkSeg.IlgpuKernels.Labeling;

/// <summary>
/// The foreground of a chunk's core from its probabilities, on an ILGPU accelerator: the step labelling runs before
/// connected components (LabelStage on the CPU), bit for bit the same mask.
/// <code>
///   channel image (read box) ──upload──▶ A ──x, y, z passes (A ⇄ B)──▶ smoothed read box ──threshold / argmax──▶ core mask
///                                        └──────────────── device buffers ────────────────┘            download ◀┘
/// </code>
/// The smoothing is the convolution pass over the whole read box per axis (x, then y, then z; an axis whose kernel is
/// null is skipped), the sequence of the CPU's BlockSmoothing, so the smoothed values equal the CPU's; the threshold and
/// argmax kernels (<c>Kernels/SegmentationKernels.cs</c>) then only compare. For argmax the running maximum stays on
/// the device; only the mask comes back. Thread-safe: each call runs on its own stream with its own (pooled) buffers.
/// </summary>
public sealed class GpuSegmenter(GpuDevice device)
{
    public GpuDevice Device { get; } = device ?? throw new ArgumentNullException(nameof(device));

    /// <summary>
    /// <paramref name="mask"/>[i] = 1 where the smoothed <paramref name="image"/> is ≥ <paramref name="threshold"/> at
    /// core voxel i, else 0 (NaN is background).
    /// </summary>
    /// <param name="image">One channel over the read box, shape (sz, sy, sx), x fastest.</param>
    /// <param name="core">The core within the read box (read-box coordinates).</param>
    /// <param name="smoothing">Gaussian kernels for z, y, x (null: that axis is not smoothed); each radius ≤ length − 1 along its axis, unless the length is 1.</param>
    /// <param name="mask">The core's voxels in raster order, exactly <paramref name="core"/>'s voxel count.</param>
    public void Threshold(ReadOnlySpan<float> image, int sz, int sy, int sx, Box3 core, ReadOnlySpan<FirKernel?> smoothing, float threshold, Span<byte> mask)
    {
        long n = Validate(sz, sy, sx, core, smoothing, mask.Length);
        if (image.Length != n)
            throw new ArgumentException($"the read box (sz, sy, sx) = ({sz}, {sy}, {sx}) holds {n} voxels; the image has {image.Length}.", nameof(image));
        if (mask.IsEmpty) return;
        using var call = new DeviceCall(Device);
        var smoothed = Smooth(call, call.Upload(image), sz, sy, sx, smoothing);
        var maskView = MaskView(call, mask.Length);
        call.Kernels.Threshold(call.Stream, Extent(core), smoothed.View, maskView, Box(sy, sx, core), threshold);
        maskView.CopyToCPU(call.Stream, mask);
    }

    /// <summary>
    /// <paramref name="mask"/>[i] = 1 where channel <paramref name="foreground"/> holds the largest smoothed value at core
    /// voxel i: strictly larger than every earlier channel's, at least as large as every later one's (numpy.argmax's
    /// first maximum), else 0. <paramref name="readChannel"/>(c, destination) fills channel c's read-box image; it is
    /// called for c = 0 … <paramref name="channels"/> − 1 in order, one image on the host at a time.
    /// </summary>
    public void Argmax(int channels, int foreground, Action<int, Span<float>> readChannel, int sz, int sy, int sx, Box3 core,
        ReadOnlySpan<FirKernel?> smoothing, Span<byte> mask)
    {
        ArgumentNullException.ThrowIfNull(readChannel);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        if (foreground < 0 || foreground >= channels)
            throw new ArgumentOutOfRangeException(nameof(foreground), foreground, $"the foreground channel must be 0 to {channels - 1}.");
        long n = Validate(sz, sy, sx, core, smoothing, mask.Length);
        if (mask.IsEmpty) return;
        using var call = new DeviceCall(Device);
        var best = call.Rent(mask.Length);
        var maskView = MaskView(call, mask.Length);
        var input = call.Rent(n);
        float[] host = ArrayPool<float>.Shared.Rent(checked((int)n));
        try
        {
            for (int c = 0; c < channels; c++)
            {
                var image = host.AsSpan(0, (int)n);
                readChannel(c, image);
                // The stream is in order: this copy waits for the previous channel's passes to be done with the input.
                input.View.CopyFromCPU(call.Stream, (ReadOnlySpan<float>)image);
                var smoothed = Smooth(call, input, sz, sy, sx, smoothing);
                call.Kernels.ArgmaxUpdate(call.Stream, Extent(core), smoothed.View, best.View, maskView, Box(sy, sx, core), c, foreground);
                if (smoothed.Buffer != input.Buffer) call.Return(smoothed);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(host);
        }
        maskView.CopyToCPU(call.Stream, mask);
    }

    /// <summary>
    /// The smoothed read box itself: BlockSmoothing's result bit for bit (meshing smooths its read box this way before
    /// marching cubes; the tests compare it with the CPU's).
    /// </summary>
    public void Smooth(ReadOnlySpan<float> image, int sz, int sy, int sx, ReadOnlySpan<FirKernel?> smoothing, Span<float> smoothed)
    {
        long n = Validate(sz, sy, sx, new Box3(Long3.Zero, new Long3(sz, sy, sx)), smoothing, (long)sz * sy * sx);
        if (image.Length != n || smoothed.Length != n)
            throw new ArgumentException($"the read box holds {n} voxels; got an image of {image.Length} and a destination of {smoothed.Length}.");
        if (n == 0) return;
        using var call = new DeviceCall(Device);
        call.Download(Smooth(call, call.Upload(image), sz, sy, sx, smoothing), smoothed);
    }

    /// <summary>Launches the x, y, z passes that have a kernel, each into a fresh image; returns the image holding the result.</summary>
    private static DeviceArray Smooth(DeviceCall call, DeviceArray input, int sz, int sy, int sx, ReadOnlySpan<FirKernel?> smoothing)
    {
        var shape = new Long3(sz, sy, sx);
        var whole = new Box3(Long3.Zero, shape);
        var current = input;
        for (int axis = 2; axis >= 0; axis--)
        {
            if (smoothing[axis] is not { } kernel) continue;
            var target = call.Rent(input.Length);
            call.Pass(current.View, shape, target.View, whole, axis, kernel);
            if (current.Buffer != input.Buffer) call.Return(current);
            current = target;
        }
        return current;
    }

    /// <summary>A byte view of <paramref name="length"/> on a pooled float buffer.</summary>
    private static ArrayView<byte> MaskView(DeviceCall call, int length) => call.Rent((length + 3) / 4).View.Cast<byte>().SubView(0, length);

    private static CoreInReadBox Box(int sy, int sx, Box3 core) =>
        new(sy, sx, (int)core.Start.Z, (int)core.Start.Y, (int)core.Start.X, (int)core.Size.Y, (int)core.Size.X);

    private static Index3D Extent(Box3 core) => new((int)core.Size.X, (int)core.Size.Y, (int)core.Size.Z);

    private static long Validate(int sz, int sy, int sx, Box3 core, ReadOnlySpan<FirKernel?> smoothing, long maskLength)
    {
        if (sz < 0 || sy < 0 || sx < 0)
            throw new ArgumentOutOfRangeException(nameof(sz), $"the read box must have a non-negative shape; got (sz, sy, sx) = ({sz}, {sy}, {sx}).");
        if (smoothing.Length != 3)
            throw new ArgumentException($"smoothing holds one kernel (or null) per axis z, y, x; got {smoothing.Length}.", nameof(smoothing));
        var box = new Box3(Long3.Zero, new Long3(sz, sy, sx));
        if (core.Size.Z < 0 || core.Size.Y < 0 || core.Size.X < 0 || !box.Contains(core))
            throw new ArgumentOutOfRangeException(nameof(core), $"the core {core} must lie within the read box {box}.");
        if (maskLength != core.VoxelCount)
            throw new ArgumentException($"the mask must hold the core's {core.VoxelCount} voxels; it holds {maskLength}.");
        return (long)sz * sy * sx;
    }
}
