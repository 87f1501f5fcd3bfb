using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.OpenCl;

/// <summary>
/// One 1D pass of a <see cref="FirKernel"/> along one axis of a float32 volume on an OpenCL device, bit-identical
/// to <see cref="SeparableConvolution.Apply(ReadOnlySpan{float}, Span{float}, int, int, int, int, FirKernel, int)"/>
/// (same fastfilters sequence c0·v, then fma per tap pair; same reflect-101 border; same n = 1 rule). The kernels
/// are in <c>Kernels/separable_convolution.cl</c>.
/// </summary>
/// <remarks>
/// Holds the built program and its kernels for one context. <see cref="Enqueue"/> may be called from several
/// threads (argument setting and launch are serialised inside).
/// </remarks>
public sealed class OpenClConvolution : IDisposable
{
    /// <summary>The embedded source file.</summary>
    public const string SourceFile = "separable_convolution.cl";

    private readonly OpenClKernel _linesEven, _linesOdd, _tiledEven, _tiledOdd;
    private readonly long _tiledMaxWidth, _tiledMultiple;
    private readonly Lock _launch = new();

    /// <summary>Builds (or loads from <paramref name="cache"/>) the convolution program for <paramref name="context"/>'s device.</summary>
    public OpenClConvolution(OpenClContext context, ProgramCache? cache = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        Context = context;
        Program = context.BuildProgram(KernelSources.Load(SourceFile), KernelSources.StrictOptions, cache, SourceFile);
        _linesEven = Program.CreateKernel("convolve_lines_even");
        _linesOdd = Program.CreateKernel("convolve_lines_odd");
        _tiledEven = Program.CreateKernel("convolve_x_tiled_even");
        _tiledOdd = Program.CreateKernel("convolve_x_tiled_odd");
        _tiledMaxWidth = Math.Min(256, Math.Min(_tiledEven.MaxWorkGroupSize, _tiledOdd.MaxWorkGroupSize));
        _tiledMultiple = Math.Max(1, _tiledEven.PreferredWorkGroupSizeMultiple);
    }

    /// <summary>The context the program is built for.</summary>
    public OpenClContext Context { get; }

    /// <summary>The built program (its <see cref="OpenClProgram.Origin"/> and <see cref="OpenClProgram.BuildTime"/> say how).</summary>
    public OpenClProgram Program { get; }

    /// <summary>
    /// Enqueues the pass along <paramref name="axis"/> (0 = z, 1 = y, 2 = x) from <paramref name="source"/> to
    /// <paramref name="destination"/>, both device buffers holding at least sz·sy·sx floats in C order. Same contract
    /// as the CPU pass: radius ≤ n − 1 along the axis unless n = 1; not in place; an empty volume enqueues only a marker.
    /// </summary>
    public OpenClEvent Enqueue(OpenClQueue queue, OpenClBuffer source, OpenClBuffer destination, int sz, int sy, int sx, int axis, FirKernel kernel,
        params ReadOnlySpan<OpenClEvent> waitFor) =>
        Enqueue(queue, source, destination, sz, sy, sx, axis, kernel, XPass.Auto, waitFor);

    /// <summary>
    /// The pass on host memory: uploads <paramref name="source"/>, runs <see cref="Enqueue"/>, downloads into
    /// <paramref name="destination"/> (exactly sz·sy·sx floats each). Returns when the result is there.
    /// </summary>
    public void Apply(OpenClQueue queue, ReadOnlySpan<float> source, Span<float> destination, int sz, int sy, int sx, int axis, FirKernel kernel) =>
        Apply(queue, source, destination, sz, sy, sx, axis, kernel, XPass.Auto);

    /// <inheritdoc/>
    public void Dispose()
    {
        _linesEven.Dispose();
        _linesOdd.Dispose();
        _tiledEven.Dispose();
        _tiledOdd.Dispose();
        Program.Dispose();
    }

    /// <summary>Which kernel runs the x pass (tests run both).</summary>
    internal enum XPass
    {
        Auto,
        Lines,
        Tiled,
    }

    internal void Apply(OpenClQueue queue, ReadOnlySpan<float> source, Span<float> destination, int sz, int sy, int sx, int axis, FirKernel kernel, XPass xPass)
    {
        ArgumentNullException.ThrowIfNull(queue);
        long count = Validate(sz, sy, sx, axis, kernel);
        if (source.Length != count || destination.Length != count)
            throw new ArgumentException(
                $"shape (sz, sy, sx) = ({sz}, {sy}, {sx}) needs {count} floats; got source {source.Length} and destination {destination.Length}. Slice pooled buffers to the volume.");
        if (count == 0) return;
        using var input = Context.CreateBuffer(source, OpenClAccess.ReadOnly);
        using var output = Context.CreateBuffer(count * sizeof(float), OpenClAccess.WriteOnly);
        using var done = Enqueue(queue, input, output, sz, sy, sx, axis, kernel, xPass, []);
        queue.Read(output, destination, 0, done);
    }

    internal OpenClEvent Enqueue(OpenClQueue queue, OpenClBuffer source, OpenClBuffer destination, int sz, int sy, int sx, int axis, FirKernel kernel,
        XPass xPass, ReadOnlySpan<OpenClEvent> waitFor)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        if (queue.Context != Context || source.Context != Context || destination.Context != Context)
            throw new ArgumentException("the queue and both buffers must belong to the context this convolution was built for.");
        long count = Validate(sz, sy, sx, axis, kernel);
        if (count == 0) return queue.EnqueueMarker(waitFor);
        if (source.Length<float>() < count || destination.Length<float>() < count)
            throw new ArgumentException(
                $"shape (sz, sy, sx) = ({sz}, {sy}, {sx}) needs {count} floats; source buffer holds {source.Length<float>()}, destination {destination.Length<float>()}.");
        if (ReferenceEquals(source, destination))
            throw new ArgumentException("source and destination are the same buffer; a pass cannot run in place (each output reads 2R+1 inputs). Use a second buffer.", nameof(destination));
        int r = kernel.Radius;
        if ((long)(r + 1) * sizeof(float) > Context.Device.MaxConstantBufferBytes)
            throw new ArgumentOutOfRangeException(nameof(kernel), $"kernel radius {r} needs {(r + 1) * 4} bytes of taps; {Context.Device.Name} allows {Context.Device.MaxConstantBufferBytes} bytes of __constant.");

        using var taps = Context.CreateBuffer(kernel.Taps, OpenClAccess.ReadOnly);   // released here; the launch keeps it until done
        bool odd = kernel.IsAntisymmetric;
        lock (_launch)
        {
            if (axis == 2 && xPass != XPass.Lines && TiledWidth(sx, r) is int lx and > 0)
            {
                var k = (odd ? _tiledOdd : _tiledEven)
                    .SetArg(0, source).SetArg(1, destination).SetArg(2, taps).SetArg(3, r).SetArg(4, sx)
                    .SetLocal(5, (long)(lx + 2 * r) * sizeof(float));
                long groups = (sx + lx - 1) / lx;
                return queue.EnqueueKernel(k, new NDRange(groups * lx, (long)sy * sz), new NDRange(lx, 1), waitFor);
            }
            if (xPass == XPass.Tiled && axis == 2)
                throw new InvalidOperationException($"the tiled x pass does not fit radius {r} in {Context.Device.Name}'s local memory.");
            var lines = (odd ? _linesOdd : _linesEven)
                .SetArg(0, source).SetArg(1, destination).SetArg(2, taps).SetArg(3, r)
                .SetArg(4, sz).SetArg(5, sy).SetArg(6, sx).SetArg(7, axis);
            return queue.EnqueueKernel(lines, new NDRange(sx, sy, sz), null, waitFor);
        }
    }

    /// <summary>The work-group width of the tiled x pass, or 0 when its tile does not fit in local memory.</summary>
    private int TiledWidth(int sx, int radius)
    {
        // Up to 256 items, but short rows get one multiple of the SIMD/warp width past sx, not idle work items.
        long lx = Math.Max(1, Math.Min(_tiledMaxWidth, (sx + _tiledMultiple - 1) / _tiledMultiple * _tiledMultiple));
        long bytes = (lx + 2L * radius) * sizeof(float);
        return bytes <= Context.Device.LocalMemoryBytes - 256 ? (int)lx : 0;    // a little left for the driver's own use
    }

    private static long Validate(int sz, int sy, int sx, int axis, FirKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        if (sz < 0 || sy < 0 || sx < 0)
            throw new ArgumentOutOfRangeException(nameof(sz), $"shape must be non-negative; got (sz, sy, sx) = ({sz}, {sy}, {sx}).");
        if (axis is < 0 or > 2)
            throw new ArgumentOutOfRangeException(nameof(axis), axis, $"axis must be 0 (z), 1 (y) or 2 (x); got {axis}.");
        long count = (long)sz * sy * sx;
        if (count == 0) return 0;
        int n = axis switch { 0 => sz, 1 => sy, _ => sx };
        if (n > 1 && kernel.Radius > n - 1)
            throw new ArgumentOutOfRangeException(nameof(kernel),
                $"kernel radius {kernel.Radius} (sigma {kernel.Sigma}) exceeds {n - 1} = length - 1 along axis {axis}; reflect-101 needs radius <= length - 1. Add halo or use a smaller sigma.");
        return count;
    }
}
