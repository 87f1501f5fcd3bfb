using ChunkSeg.Contracts.Geometry;
using ChunkSeg.IlgpuKernels.Kernels;
using ChunkSeg.IlgpuKernels.Runtime;
using ChunkSeg.Kernels.Splitting;
using ILGPU;

namespace ChunkSeg.IlgpuKernels.Splitting;

/// <summary>
/// The split's blurs (<see cref="ClesperantoGaussian.Apply"/>) on an ILGPU accelerator, bit for bit the CPU's:
/// <code>
///   block ──upload──▶ A ──x pass──▶ B ──y pass──▶ A ──z pass──▶ B ──download──▶ destination
/// </code>
/// (an axis not blurred has no pass; none blurred: a copy on the host), with the host's weights and sums
/// (<c>Kernels/SplitKernels.cs</c>). Thread-safe: each call runs on its own stream.
/// </summary>
public sealed class GpuClesperantoBlur(GpuDevice device)
{
    public GpuDevice Device { get; } = device ?? throw new ArgumentNullException(nameof(device));

    /// <summary>
    /// <paramref name="blur"/> over a block of <paramref name="shape"/> (z, y, x) from <paramref name="source"/> into
    /// <paramref name="destination"/> (may be the same span), clamping at the block's faces.
    /// </summary>
    public void Apply(ClesperantoGaussian blur, ReadOnlySpan<float> source, Span<float> destination, Long3 shape)
    {
        ArgumentNullException.ThrowIfNull(blur);
        int sz = checked((int)shape.Z), sy = checked((int)shape.Y), sx = checked((int)shape.X);
        int n = checked(sz * sy * sx);
        if (source.Length < n || destination.Length < n)
            throw new ArgumentException($"a {shape} block needs {n} values; got {source.Length} in, {destination.Length} out");
        if (n == 0) return;
        if (blur.Weights(0).IsEmpty && blur.Weights(1).IsEmpty && blur.Weights(2).IsEmpty)
        {
            source[..n].CopyTo(destination);
            return;
        }
        using var call = new DeviceCall(Device);
        var current = call.Upload(source[..n]);
        for (int axis = 2; axis >= 0; axis--)
        {
            var weights = blur.Weights(axis);
            if (weights.IsEmpty) continue;
            var taps = call.Upload(weights);
            var target = call.Rent(n);
            call.Kernels.ClesperantoPass(call.Stream, new Index3D(sx, sy, sz), current.View, target.View, taps.View,
                new ClampPass(axis, weights.Length / 2, sz, sy, sx, blur.WeightSum(axis)));
            // The stream runs in order: the next pass's rents may reuse these only after this pass.
            call.Return(taps);
            call.Return(current);
            current = target;
        }
        call.Download(current, destination);
    }
}
