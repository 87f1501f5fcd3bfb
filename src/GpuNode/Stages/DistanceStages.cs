using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Splitting;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// The distance split's pass 2: the exact squared distance map (float64, µm²) of each chunk's core from the foreground
/// (float32 1 and 0, pass 1's). A chunk reads its first halo, and reads again wider until ExactDistance proves every
/// core voxel (its header has the argument): the halo grows with the objects' inscribed radius, not with the volume.
/// </summary>
public sealed class DistanceStage(Halo firstHalo, (double Z, double Y, double X) spacing, bool threeD) : IChunkStage
{
    /// <summary>The first halo for <paramref name="spacing"/>: 16 of the finest voxels' reach on each axis (z 0 in 2D).</summary>
    public static Halo FirstHalo((double Z, double Y, double X) spacing, bool threeD)
    {
        double reach = 16 * Math.Min(spacing.Y, Math.Min(spacing.X, threeD ? spacing.Z : double.PositiveInfinity));
        int Of(double s) => (int)Math.Ceiling(reach / s);
        return new Halo(threeD ? Of(spacing.Z) : 0, Of(spacing.Y), Of(spacing.X));
    }

    public Halo RequiredHalo => SplitReads.InPlane(firstHalo, threeD);

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var volume = input.Info.SpatialShape;
        var halo = RequiredHalo;
        var box = chunk.Read;
        while (true)
        {
            var foreground = SplitReads.ReadFloats(input, chunk.TimePoint, box);
            var mask = new byte[foreground.Length];
            for (int i = 0; i < mask.Length; i++) mask[i] = foreground[i] > VoronoiOtsuSigmas.MaskCut ? (byte)1 : (byte)0;
            int sz = (int)box.Size.Z, sy = (int)box.Size.Y, sx = (int)box.Size.X;
            var squared = new double[mask.Length];
            ExactDistance.Squared(mask, sz, sy, sx, spacing, squared);
            var start = chunk.Core.Start - box.Start;
            var end = start + chunk.Core.Size;
            var coreInBox = ((int)start.Z, (int)start.Y, (int)start.X, (int)end.Z, (int)end.Y, (int)end.X);
            double? widest = ExactDistance.Unproven(squared, sz, sy, sx, coreInBox, spacing,
                (box.Start.Z > 0, box.Start.Y > 0, box.Start.X > 0), (box.End.Z < volume.Z, box.End.Y < volume.Y, box.End.X < volume.X));
            if (widest is null)
            {
                VoronoiOtsuChunk.Crop<double>(squared, box.Size, new Box3(start, chunk.Core.Size), MemoryMarshal.Cast<byte, double>(coreOutput.Span));
                return;
            }
            // Read again, wide enough for the farthest distance the core saw (twice as wide where it saw no background).
            int Wider(int h, double s) => Math.Max(2 * h, double.IsFinite(widest.Value) ? (int)Math.Ceiling(widest.Value / s) + 1 : 0);
            halo = SplitReads.InPlane(new Halo(Wider(Math.Max(halo.Z, 1), spacing.Z), Wider(Math.Max(halo.Y, 1), spacing.Y), Wider(Math.Max(halo.X, 1), spacing.X)), threeD);
            var grown = chunk.Core.Grow(halo, new Box3(default, volume));
            if (grown == box) throw new InvalidOperationException($"chunk {chunk.Id.Value}: the distance map is unproven over the whole image");
            box = grown;
        }
    }
}

/// <summary>
/// The distance split's pass 3: the global key of every seed (DistanceWatershed's header) in each chunk's core
/// (uint64, 0 elsewhere), from the squared distance map read one window wide.
/// </summary>
public sealed class DistanceSeedsStage(Halo window, bool threeD) : IChunkStage
{
    public Halo RequiredHalo => SplitReads.InPlane(window, threeD);

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        ArgumentNullException.ThrowIfNull(input);
        var squared = SplitReads.Read<double>(input, chunk.TimePoint, chunk.Read);
        var size = chunk.Read.Size;
        var start = chunk.CoreOffsetInRead;
        var end = start + chunk.Core.Size;
        DistanceWatershed.Seeds(squared, (int)size.Z, (int)size.Y, (int)size.X, RequiredHalo, threeD,
            ((int)start.Z, (int)start.Y, (int)start.X, (int)end.Z, (int)end.Y, (int)end.X), chunk.Read.Start, input.Info.SpatialShape,
            MemoryMarshal.Cast<byte, ulong>(coreOutput.Span));
    }
}
