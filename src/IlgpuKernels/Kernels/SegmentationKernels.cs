// Segmentation of a chunk's probabilities: the core's foreground mask, the device twin of the loop in
// src/GpuNode/Stages/ChunkSegmenter.cs (BlockSegmenter). The smoothing before it is FeatureKernels.ConvolveBox's passes
// (x, then y, then z over the whole read box), so these kernels only read a smoothed read-box image and write the core,
// one thread per core voxel, launch extent (cx, cy, cz):
//
//     read box (sx, sy, sz)                     image index  r = (ox + x) + sx·((oy + y) + sy·(oz + z))
//     ┌───────────────────────┐                 core index   i = x + cx·(y + cy·z)
//     │  halo   ┌─────────┐   │
//     │         │  core   │   │  offset (ox, oy, oz) = core start in the read box
//     │         └─────────┘   │
//     └───────────────────────┘
//
// Threshold:     mask[i] = image[r] >= t                        (NaN >= t is false: background, as on the CPU)
// ArgmaxUpdate:  channel c of C, in order c = 0 .. C−1; best[] holds the largest value so far. Channel 0 takes every
//                voxel; a later channel takes it only when strictly larger (numpy's first-maximum rule):
//                    c == 0:            best = v, mask = (foreground == 0)
//                    v > best (c > 0):  best = v, mask = (c == foreground)
// Only comparisons and copies: nothing to round, so the mask equals the CPU's whenever the images do.
using ILGPU;

namespace ChunkSeg.IlgpuKernels.Kernels;

/// <summary>The read box's row shape, the core's origin in it and the core's row shape.</summary>
public readonly record struct CoreInReadBox(int ReadY, int ReadX, int OriginZ, int OriginY, int OriginX, int CoreY, int CoreX)
{
    public long ReadIndex(Index3D i) => (OriginX + i.X) + (long)ReadX * ((OriginY + i.Y) + (long)ReadY * (OriginZ + i.Z));
    public long CoreIndex(Index3D i) => i.X + (long)CoreX * (i.Y + (long)CoreY * i.Z);
}

public static class SegmentationKernels
{
    public static void Threshold(Index3D index, ArrayView<float> image, ArrayView<byte> mask, CoreInReadBox box, float threshold) =>
        mask[box.CoreIndex(index)] = image[box.ReadIndex(index)] >= threshold ? (byte)1 : (byte)0;

    public static void ArgmaxUpdate(Index3D index, ArrayView<float> image, ArrayView<float> best, ArrayView<byte> mask, CoreInReadBox box,
        int channel, int foreground)
    {
        long i = box.CoreIndex(index);
        float v = image[box.ReadIndex(index)];
        if (channel == 0)
        {
            best[i] = v;
            mask[i] = foreground == 0 ? (byte)1 : (byte)0;
        }
        else if (v > best[i])
        {
            best[i] = v;
            mask[i] = channel == foreground ? (byte)1 : (byte)0;
        }
    }
}
