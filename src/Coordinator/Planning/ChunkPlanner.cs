using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Coordinator.Planning;

/// <summary>
/// Chooses the compute chunk shape for a job and builds its <see cref="ChunkGrid"/>.
/// <para>
/// Compute chunks are whole multiples of the output's storage chunks, so no two chunks ever share a
/// storage chunk of the output (parallel and distributed writers never read-modify-write each other's
/// data), and they are capped so that one chunk's read box fits in the per-chunk memory budget.
/// </para>
/// </summary>
public static class ChunkPlanner
{
    /// <summary>Default core edge when the user does not ask for one: 128³ voxels, ilastik's own tile scale.</summary>
    public const long DefaultEdge = 128;

    /// <param name="volumeShape">Spatial shape (z, y, x); z = 1 for 2D.</param>
    /// <param name="timePoints">Number of time points (1 when the volume has no t axis).</param>
    /// <param name="alignTo">Storage chunk shape (z, y, x) to align to, usually the output's.</param>
    /// <param name="requested">Core shape asked for, or null for the default.</param>
    /// <param name="halo">Sum of the halos the job's stages declare.</param>
    /// <param name="bytesPerVoxel">Bytes one spatial voxel costs in a chunk (all channels, input and output buffers).</param>
    /// <param name="maxChunkBytes">Per-chunk memory budget.</param>
    public static ChunkGrid Plan(Long3 volumeShape, long timePoints, Long3 alignTo, Long3? requested, Halo halo,
        long bytesPerVoxel, long maxChunkBytes = 256L << 20)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerVoxel);
        var want = requested ?? new Long3(
            volumeShape.Z == 1 ? 1 : DefaultEdge,
            volumeShape.Y < DefaultEdge ? volumeShape.Y : (volumeShape.Z == 1 ? 4 * DefaultEdge : DefaultEdge),
            volumeShape.X < DefaultEdge ? volumeShape.X : (volumeShape.Z == 1 ? 4 * DefaultEdge : DefaultEdge));
        var shape = Long3.Min(new Long3(Align(want.Z, alignTo.Z), Align(want.Y, alignTo.Y), Align(want.X, alignTo.X)), volumeShape);

        // Shrink the largest axis (by whole storage chunks) until the padded chunk fits the budget.
        while (ReadBytes(shape, halo, volumeShape, bytesPerVoxel) > maxChunkBytes)
        {
            var next = ShrinkLargest(shape, alignTo);
            if (next == shape) break;              // one storage chunk per axis: cannot go smaller and stay aligned
            shape = next;
        }
        return new ChunkGrid(volumeShape, timePoints, shape, halo);
    }

    private static long Align(long want, long unit) => Math.Max(1, (want + unit / 2) / unit) * unit;

    private static long ReadBytes(Long3 shape, Halo halo, Long3 volume, long bytesPerVoxel) =>
        Long3.Min(shape + halo.AsLong3 + halo.AsLong3, volume).Volume * bytesPerVoxel;

    private static Long3 ShrinkLargest(Long3 s, Long3 unit)
    {
        if (s.X >= s.Y && s.X >= s.Z && s.X > unit.X) return s with { X = Math.Max(unit.X, (s.X / 2 + unit.X - 1) / unit.X * unit.X) };
        if (s.Y >= s.Z && s.Y > unit.Y) return s with { Y = Math.Max(unit.Y, (s.Y / 2 + unit.Y - 1) / unit.Y * unit.Y) };
        if (s.Z > unit.Z) return s with { Z = Math.Max(unit.Z, (s.Z / 2 + unit.Z - 1) / unit.Z * unit.Z) };
        if (s.X > unit.X) return s with { X = Math.Max(unit.X, (s.X / 2 + unit.X - 1) / unit.X * unit.X) };
        if (s.Y > unit.Y) return s with { Y = Math.Max(unit.Y, (s.Y / 2 + unit.Y - 1) / unit.Y * unit.Y) };
        return s;
    }
}
