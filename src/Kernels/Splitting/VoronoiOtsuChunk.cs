// Voronoi-Otsu labelling chunk by chunk, the same voxel for voxel as on the whole image (VoronoiOtsu.Label).
//
//      pass                  reads (core + halo)         keeps                              the coordinator
//      1 outline             image, outline radius       the outline blur; its min, max     min, max over chunks
//      2 maxima              image, spot radius + 1      maxima keys; counts per (row y,    adds rows, Otsu → cut
//                                                        bin) of the outline blur
//      3… flood rounds       keys, settled, mask, K      K iterations of VoronoiFlood (the  the first iteration no chunk
//                                                        first: Foreground of outline, cut) changed in; active chunks
//      last                  keys                        keys → labels (any order-keeping numbering)
//
// Every step before the flood is local (blurs read their radius, maxima one more voxel) or an exact sum (integer
// counts per row; the float32 row sum runs once, over the whole table, in clEsperanto's order). Seeds carry their
// global Fortran-order key, so the flood's largest-key rule needs no numbering until the end. VoronoiFlood's
// header argues the rounds exact. The blurs run where the caller's BlurRunner runs them (a compute backend's device,
// or ClesperantoGaussian here): every backend gives the same float32 values, so the split is the same.
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Kernels.Splitting;

/// <summary>Runs <paramref name="blur"/> over a block: <see cref="ClesperantoGaussian.Apply"/>, or a device's equal of it.</summary>
public delegate void BlurRunner(ClesperantoGaussian blur, ReadOnlySpan<float> source, Span<float> destination, Long3 shape);

/// <summary>The per-chunk steps of a Voronoi-Otsu labelling (see the header); thread-safe.</summary>
public sealed class VoronoiOtsuChunk
{
    private readonly ClesperantoGaussian _spot, _outline;
    private readonly bool _threeD;
    private readonly BlurRunner _blur;

    /// <param name="blur">Where the blurs run (a compute backend's); null: <see cref="ClesperantoGaussian.Apply"/> here.</param>
    public VoronoiOtsuChunk(VoronoiOtsuSigmas sigmas, bool threeD, BlurRunner? blur = null)
    {
        ArgumentNullException.ThrowIfNull(sigmas);
        _spot = sigmas.SpotBlur();
        _outline = sigmas.OutlineBlur();
        _threeD = threeD;
        _blur = blur ?? ((b, source, destination, shape) => b.Apply(source, destination, shape));
        var maxima = threeD ? Halo.Uniform(1) : new Halo(0, 1, 1);
        SpotHalo = _spot.Radius + maxima;
        OutlineHalo = _outline.Radius;
    }

    /// <summary>What the outline blur reads around a core.</summary>
    public Halo OutlineHalo { get; }

    /// <summary>What the maxima read around a core: the spot blur's radius and one voxel.</summary>
    public Halo SpotHalo { get; }

    /// <summary>The outline blur of the core, from the image over the read box.</summary>
    public void Outline(ReadOnlySpan<float> read, Long3 readShape, Box3 coreInRead, Span<float> core)
    {
        var blurred = new float[readShape.Volume];
        _blur(_outline, read, blurred, readShape);
        Crop(blurred, readShape, coreInRead, core);
    }

    /// <summary>
    /// The foreground (<c>outline &gt; cut</c>) of a blurred outline into <paramref name="mask"/>, and the keys of the
    /// maxima outside it cleared, so <paramref name="keys"/> holds the seeds; returns their number.
    /// </summary>
    public static int Foreground(ReadOnlySpan<float> outline, float cut, Span<byte> mask, Span<ulong> keys)
    {
        int seeds = 0;
        for (int i = 0; i < outline.Length; i++)
        {
            mask[i] = outline[i] > cut ? (byte)1 : (byte)0;
            if (mask[i] == 0) keys[i] = 0;
            else if (keys[i] != 0) seeds++;
        }
        return seeds;
    }

    /// <summary>
    /// The global key of every maximum of the spot blur in the core (0 elsewhere) into <paramref name="keys"/>; returns
    /// how many. <paramref name="readOrigin"/> places the read box in an image of <paramref name="volume"/> voxels.
    /// </summary>
    public int Maxima(ReadOnlySpan<float> read, Long3 readShape, Box3 coreInRead, Long3 readOrigin, Long3 volume, Span<ulong> keys)
    {
        keys[..(int)coreInRead.VoxelCount].Clear();
        var spot = new float[readShape.Volume];
        _blur(_spot, read, spot, readShape);
        int sy = (int)readShape.Y, sx = (int)readShape.X, cy = (int)coreInRead.Size.Y, cx = (int)coreInRead.Size.X;
        var region = ((int)coreInRead.Start.Z, (int)coreInRead.Start.Y, (int)coreInRead.Start.X,
            (int)coreInRead.End.Z, (int)coreInRead.End.Y, (int)coreInRead.End.X);
        var found = new List<int>();
        BoxMaxima.Find(spot, (int)readShape.Z, sy, sx, _threeD, region, found.Add);
        foreach (int v in found)
        {
            int z = v / (sy * sx), y = v / sx % sy, x = v % sx;
            int c = ((z - region.Item1) * cy + (y - region.Item2)) * cx + (x - region.Item3);
            keys[c] = VoronoiOtsu.FortranKey(readOrigin.Z + z, readOrigin.Y + y, readOrigin.X + x, volume.Y, volume.Z);
        }
        return found.Count;
    }

    /// <summary>The voxels of <paramref name="box"/> of a block of <paramref name="shape"/>, x fastest, into <paramref name="destination"/>.</summary>
    public static void Crop<T>(ReadOnlySpan<T> block, Long3 shape, Box3 box, Span<T> destination)
    {
        int i = 0, sx = (int)box.Size.X;
        for (long z = box.Start.Z; z < box.End.Z; z++)
            for (long y = box.Start.Y; y < box.End.Y; y++, i += sx)
                block.Slice((int)((z * shape.Y + y) * shape.X + box.Start.X), sx).CopyTo(destination[i..]);
    }
}
