using ChunkSeg.Contracts.Geometry;
using ChunkSeg.IlgpuKernels.Kernels;
using ChunkSeg.Kernels.Filters;
using ILGPU;
using ILGPU.Runtime;

namespace ChunkSeg.IlgpuKernels.Runtime;

/// <summary>A float array on the device: a pooled buffer and the length in use.</summary>
internal readonly record struct DeviceArray(MemoryBuffer1D<float, Stride1D.Dense> Buffer, long Length)
{
    public ArrayView<float> View => Buffer.View.SubView(0, Length);
}

/// <summary>
/// One call's device state: its own stream (kernels and copies run in order on it, so calls on other threads run beside
/// it with no lock), the buffers it holds and the tap arrays of the kernels it convolves with. A buffer returned during
/// the call goes to the call's own free list, where a later image of the same size class takes it: the stream orders
/// every use. Disposing waits for the stream and gives every buffer back to the device's pool.
/// </summary>
internal sealed class DeviceCall : IDisposable
{
    private readonly GpuDevice _device;
    private readonly ScopedAcceleratorBinding _binding;
    private readonly Dictionary<long, Stack<MemoryBuffer1D<float, Stride1D.Dense>>> _free = new();
    private readonly List<MemoryBuffer1D<float, Stride1D.Dense>> _all = [];
    private readonly Dictionary<(int Order, double Sigma, int Radius), DeviceArray> _taps = new();

    public DeviceCall(GpuDevice device)
    {
        _device = device;
        _binding = device.Bind();
        Stream = device.Accelerator.CreateStream();
    }

    public AcceleratorStream Stream { get; }

    public DeviceKernels Kernels => _device.Kernels;

    public DeviceArray Rent(long length)
    {
        long size = DeviceBufferPool.SizeClass(length);
        if (_free.TryGetValue(size, out var stack) && stack.TryPop(out var buffer)) return new DeviceArray(buffer, length);
        buffer = _device.Buffers.Rent(length);
        _all.Add(buffer);
        return new DeviceArray(buffer, length);
    }

    public void Return(DeviceArray array)
    {
        long size = array.Buffer.Length;
        if (!_free.TryGetValue(size, out var stack)) _free[size] = stack = new();
        stack.Push(array.Buffer);
    }

    public DeviceArray Upload(ReadOnlySpan<float> values)
    {
        var array = Rent(values.Length);
        array.View.CopyFromCPU(Stream, values);
        return array;
    }

    public void Download(DeviceArray array, Span<float> destination) => array.View.CopyToCPU(Stream, destination[..checked((int)array.Length)]);

    /// <summary>
    /// One pass along <paramref name="axis"/> of <paramref name="source"/> (C-ordered, <paramref name="sourceShape"/>),
    /// computed over <paramref name="box"/> (in the source's coordinates) into <paramref name="destination"/>; taps mirror
    /// at the source's ends.
    /// </summary>
    public void Pass(ArrayView<float> source, Long3 sourceShape, ArrayView<float> destination, Box3 box, int axis, FirKernel kernel)
    {
        int n = (int)(axis switch { 0 => sourceShape.Z, 1 => sourceShape.Y, _ => sourceShape.X });
        if (n > 1 && kernel.Radius > n - 1)
            throw new ArgumentOutOfRangeException(nameof(kernel),
                $"kernel radius {kernel.Radius} (sigma {kernel.Sigma}) exceeds {n - 1} = length - 1 along axis {axis}; reflect-101 needs radius <= length - 1. Add halo or use a smaller sigma.");
        var pass = new BoxPass(kernel.Radius, kernel.IsAntisymmetric ? 1 : 0, axis, (int)sourceShape.Z, (int)sourceShape.Y, (int)sourceShape.X,
            (int)box.Start.Z, (int)box.Start.Y, (int)box.Start.X, (int)box.Size.Y, (int)box.Size.X);
        Kernels.ConvolveBox(Stream, new Index3D((int)box.Size.X, (int)box.Size.Y, (int)box.Size.Z), source, destination, Taps(kernel), pass);
    }

    private ArrayView<float> Taps(FirKernel kernel)
    {
        var key = (kernel.Order, kernel.Sigma, kernel.Radius);
        if (!_taps.TryGetValue(key, out var taps)) _taps[key] = taps = Upload(kernel.Taps);
        return taps.View;
    }

    public void Dispose()
    {
        try
        {
            Stream.Synchronize();
        }
        finally
        {
            foreach (var buffer in _all) _device.Buffers.Return(buffer);
            Stream.Dispose();
            _binding.Dispose();
        }
    }
}
