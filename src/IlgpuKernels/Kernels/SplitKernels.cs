// The split's Gaussian blur on the device: one pass of clEsperanto's separable blur (Kernels/Splitting/ClesperantoGaussian.cs
// on the CPU), one thread per voxel of the block, launch extent (sx, sy, sz), source and destination both the whole block:
//
//      acc = 0
//      for k = 0 … 2c:  acc = acc + h[k] · in[clamp(p − c + k, 0, n − 1)]      multiply, then add: two roundings, in tap order
//      out(p) = acc / Σh                                                        Σh: the host's float32 sum, uploaded with h
//
// exactly the CPU's per-voxel sum (it runs the taps over a whole line at once, but each voxel's accumulator sees the same
// products in the same order, from 0: 0 + (−0) is +0 on both). The weights are the host's (ClesperantoGaussian.Weights),
// never recomputed here: a device exp may differ from .NET's. Multiply and add go through IFloatOps, so a CUDA driver
// cannot fuse them; the division is div.rn.f32. The host runs the x, y, z passes that blur, each into a fresh buffer.
using ChunkSeg.IlgpuKernels.Arithmetic;
using ILGPU;

namespace ChunkSeg.IlgpuKernels.Kernels;

/// <summary>One clamped blur pass along <paramref name="Axis"/> (0 = z, 1 = y, 2 = x) over a block; <paramref name="Sum"/> divides each value.</summary>
public readonly record struct ClampPass(int Axis, int Radius, int SourceZ, int SourceY, int SourceX, float Sum);

public static class SplitKernels<TOps> where TOps : struct, IFloatOps<TOps>
{
    public static void ClesperantoPass(Index3D index, ArrayView<float> source, ArrayView<float> destination, ArrayView<float> weights, ClampPass pass)
    {
        long i = index.X + (long)pass.SourceX * (index.Y + (long)pass.SourceY * index.Z);
        int pos, n;
        long stride;
        if (pass.Axis == 2) { pos = index.X; n = pass.SourceX; stride = 1; }
        else if (pass.Axis == 1) { pos = index.Y; n = pass.SourceY; stride = pass.SourceX; }
        else { pos = index.Z; n = pass.SourceZ; stride = (long)pass.SourceX * pass.SourceY; }
        long line = i - pos * stride;

        float acc = 0f;
        for (int k = 0; k <= 2 * pass.Radius; k++)
        {
            int j = pos - pass.Radius + k;
            j = j < 0 ? 0 : j > n - 1 ? n - 1 : j;
            acc = TOps.Add(acc, TOps.Multiply(weights[k], source[line + j * stride]));
        }
        destination[i] = acc / pass.Sum;
    }
}
