using System.Buffers;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.OpenCl.Labeling;

/// <summary>
/// The foreground of a chunk's core from its probabilities, on an OpenCL device: the step labelling runs before
/// connected components (LabelStage on the CPU), bit for bit the same mask.
/// <code>
///   channel image (read box) ──upload──▶ A ──x, y, z passes (A ⇄ B)──▶ smoothed read box ──threshold / argmax──▶ core mask
///                                        └──────────────── device buffers ────────────────┘            download ◀┘
/// </code>
/// The smoothing is <see cref="OpenClConvolution"/>'s pass over the whole read box per axis (x, then y, then z; an
/// axis whose kernel is null is skipped), the sequence of the CPU's BlockSmoothing, so the smoothed values equal the
/// CPU's; the threshold and argmax kernels (<c>Kernels/segmentation.cl</c>) then only compare. For argmax the
/// running maximum stays on the device; only the mask comes back.
/// <para>
/// Thread-safe: each call has its own queue, kernel objects and buffers (the convolution serialises only its launches).
/// A call holds two read-box images, the core's running maximum and the mask on the device, with no tiling: chunks
/// are planned to fit the host, and a device that cannot hold one is refused with the allocation it could not make.
/// </para>
/// </summary>
public sealed class OpenClSegmenter : IDisposable
{
    /// <summary>The embedded source of the threshold and argmax kernels.</summary>
    public const string SourceFile = "segmentation.cl";

    private readonly OpenClConvolution _convolution;

    /// <summary>Builds (or loads from <paramref name="cache"/>) the convolution and segmentation programs for <paramref name="context"/>'s device.</summary>
    public OpenClSegmenter(OpenClContext context, ProgramCache? cache = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        Context = context;
        _convolution = new OpenClConvolution(context, cache);
        try
        {
            Program = context.BuildProgram(KernelSources.Load(SourceFile), KernelSources.StrictOptions, cache, SourceFile);
            // Fail here, not in a worker, when a kernel is missing.
            using (Program.CreateKernel("threshold")) { }
            using (Program.CreateKernel("argmax_update")) { }
        }
        catch
        {
            Program?.Dispose();
            _convolution.Dispose();
            throw;
        }
    }

    /// <summary>The context the programs are built for.</summary>
    public OpenClContext Context { get; }

    /// <summary>The threshold/argmax program (<see cref="OpenClProgram.Origin"/> says whether it came from the cache).</summary>
    public OpenClProgram Program { get; }

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
        using var queue = Context.CreateQueue();
        using var images = new ImagePair(Context, n, smoothing);
        using var maskBuffer = Context.CreateBuffer(mask.Length, OpenClAccess.WriteOnly);
        using var kernel = Program.CreateKernel("threshold");
        queue.Write(images.Input, image);
        var smoothed = Smooth(queue, images, sz, sy, sx, smoothing);
        kernel.SetArg(0, smoothed).SetArg(1, maskBuffer).SetArg(2, threshold);
        SetBox(kernel, 3, sy, sx, core);
        using (queue.EnqueueKernel(kernel, CoreRange(core))) { }
        queue.Read(maskBuffer, mask);
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
        using var queue = Context.CreateQueue();
        using var images = new ImagePair(Context, n, smoothing);
        using var best = Context.CreateBuffer(mask.Length * sizeof(float));
        using var maskBuffer = Context.CreateBuffer(mask.Length);
        using var kernel = Program.CreateKernel("argmax_update");
        kernel.SetArg(1, best).SetArg(2, maskBuffer).SetArg(4, foreground);
        SetBox(kernel, 5, sy, sx, core);
        float[] host = ArrayPool<float>.Shared.Rent(checked((int)n));
        try
        {
            for (int c = 0; c < channels; c++)
            {
                var image = host.AsSpan(0, (int)n);
                readChannel(c, image);
                // The queue is in order: this write waits for the previous channel's passes to be done with the input.
                queue.Write(images.Input, (ReadOnlySpan<float>)image);
                kernel.SetArg(0, Smooth(queue, images, sz, sy, sx, smoothing)).SetArg(3, c);
                using (queue.EnqueueKernel(kernel, CoreRange(core))) { }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(host);
        }
        queue.Read(maskBuffer, mask);
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
        using var queue = Context.CreateQueue();
        using var images = new ImagePair(Context, n, smoothing);
        queue.Write(images.Input, image);
        queue.Read(Smooth(queue, images, sz, sy, sx, smoothing), smoothed);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Program.Dispose();
        _convolution.Dispose();
    }

    /// <summary>Enqueues the x, y, z passes that have a kernel, ping-ponging between the pair; returns the buffer holding the result.</summary>
    private OpenClBuffer Smooth(OpenClQueue queue, ImagePair images, int sz, int sy, int sx, ReadOnlySpan<FirKernel?> smoothing)
    {
        OpenClBuffer current = images.Input;
        for (int axis = 2; axis >= 0; axis--)
        {
            if (smoothing[axis] is not { } kernel) continue;
            var target = images.Other(current);
            using (_convolution.Enqueue(queue, current, target, sz, sy, sx, axis, kernel)) { }
            current = target;
        }
        return current;
    }

    /// <summary>Arguments first … first + 4 of both kernels: the read box's sy, sx and the core's offset in it.</summary>
    private static void SetBox(OpenClKernel kernel, int first, int sy, int sx, Box3 core) =>
        kernel.SetArg(first, sx).SetArg(first + 1, sy)
            .SetArg(first + 2, (int)core.Start.X).SetArg(first + 3, (int)core.Start.Y).SetArg(first + 4, (int)core.Start.Z);

    private static NDRange CoreRange(Box3 core) => new(core.Size.X, core.Size.Y, core.Size.Z);

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

    /// <summary>The input image and, when anything smooths, a second buffer for the passes to alternate with.</summary>
    private sealed class ImagePair : IDisposable
    {
        private readonly OpenClBuffer? _second;

        public ImagePair(OpenClContext context, long voxels, ReadOnlySpan<FirKernel?> smoothing)
        {
            Input = context.CreateBuffer(voxels * sizeof(float));
            bool smooths = false;
            foreach (var k in smoothing) smooths |= k is not null;
            if (!smooths) return;
            try
            {
                _second = context.CreateBuffer(voxels * sizeof(float));
            }
            catch
            {
                Input.Dispose();
                throw;
            }
        }

        public OpenClBuffer Input { get; }

        public OpenClBuffer Other(OpenClBuffer current) => ReferenceEquals(current, Input) ? _second! : Input;

        public void Dispose()
        {
            Input.Dispose();
            _second?.Dispose();
        }
    }
}
