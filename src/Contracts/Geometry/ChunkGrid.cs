namespace ChunkSeg.Contracts.Geometry;

/// <summary>Index of a chunk in its job's grid (time outermost, then z, y, x blocks in raster order).</summary>
public readonly record struct ChunkId(long Value)
{
    public override string ToString() => $"chunk {Value}";
}

/// <summary>
/// One unit of work: the core box it is responsible for writing and the larger read box (core plus halo,
/// clipped at the volume border) its stages need as context. Channels are never split; time is never haloed.
/// </summary>
public readonly record struct ChunkSpec(ChunkId Id, long TimePoint, Box3 Core, Box3 Read)
{
    /// <summary>Where the core sits inside the read box.</summary>
    public Long3 CoreOffsetInRead => Core.Start - Read.Start;
}

/// <summary>
/// A regular grid of chunks over a (time x z x y x x) volume. Nothing is materialised: the grid is four
/// numbers and any chunk is computed from its index, so planning a 5e12-voxel volume costs the same as
/// planning a tiny one.
///
/// <code>
///   volume x ──────────────────────────────▶
///   ┌─────────┬─────────┬─────┐   core boxes tile the volume exactly once;
///   │  core 0 │  core 1 │ c 2 │   the last block on an axis may be smaller.
///   │ ┌ ─ ─ ─ ┼ ─ ┐     │     │
///   ├─┼───────┼───┼─────┼─────┤   read box of chunk 4 = core 4 grown by the halo,
///   │ │ core 3│c 4│     │ c 5 │   clipped at the volume border (so filters see the
///   │ └ ─ ─ ─ ┼ ─ ┘     │     │   same border treatment as on the whole volume).
///   └─────────┴─────────┴─────┘
/// </code>
/// </summary>
public sealed class ChunkGrid
{
    public ChunkGrid(Long3 volumeShape, long timePoints, Long3 chunkShape, Halo halo)
    {
        if (volumeShape.Z <= 0 || volumeShape.Y <= 0 || volumeShape.X <= 0)
            throw new ArgumentException($"volume shape {volumeShape} must be positive on every axis");
        if (chunkShape.Z <= 0 || chunkShape.Y <= 0 || chunkShape.X <= 0)
            throw new ArgumentException($"chunk shape {chunkShape} must be positive on every axis");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(timePoints);
        if (halo.Z < 0 || halo.Y < 0 || halo.X < 0)
            throw new ArgumentException($"halo {halo} must not be negative");

        VolumeShape = volumeShape;
        TimePoints = timePoints;
        ChunkShape = Long3.Min(chunkShape, volumeShape);
        Halo = halo;
        Blocks = new Long3(CeilDiv(volumeShape.Z, ChunkShape.Z), CeilDiv(volumeShape.Y, ChunkShape.Y), CeilDiv(volumeShape.X, ChunkShape.X));
        Count = checked(timePoints * Blocks.Z * Blocks.Y * Blocks.X);
    }

    public Long3 VolumeShape { get; }
    public long TimePoints { get; }
    public Long3 ChunkShape { get; }
    public Halo Halo { get; }

    /// <summary>Number of chunks along z, y and x.</summary>
    public Long3 Blocks { get; }

    public long Count { get; }

    public Box3 Bounds => new(Long3.Zero, VolumeShape);

    public ChunkSpec this[long index] => Get(new ChunkId(index));

    public ChunkSpec Get(ChunkId id)
    {
        long i = id.Value;
        if ((ulong)i >= (ulong)Count)
            throw new ArgumentOutOfRangeException(nameof(id), i, $"the grid has {Count} chunks");
        long bx = i % Blocks.X; i /= Blocks.X;
        long by = i % Blocks.Y; i /= Blocks.Y;
        long bz = i % Blocks.Z; i /= Blocks.Z;
        long t = i;
        var start = new Long3(bz * ChunkShape.Z, by * ChunkShape.Y, bx * ChunkShape.X);
        var core = Box3.FromBounds(start, Long3.Min(start + ChunkShape, VolumeShape));
        return new ChunkSpec(id, t, core, core.Grow(Halo, Bounds));
    }

    /// <summary>Index of the chunk whose core holds voxel <paramref name="voxel"/> of time point <paramref name="t"/>.</summary>
    public long IndexOf(long t, Long3 voxel) => IndexOfBlock(t, new Long3(voxel.Z / ChunkShape.Z, voxel.Y / ChunkShape.Y, voxel.X / ChunkShape.X));

    /// <summary>Index of the chunk at block coordinates <paramref name="block"/> (chunks along z, y, x) of time point <paramref name="t"/>.</summary>
    public long IndexOfBlock(long t, Long3 block) => ((t * Blocks.Z + block.Z) * Blocks.Y + block.Y) * Blocks.X + block.X;

    /// <summary>Block coordinates (chunks along z, y, x) of chunk <paramref name="index"/>.</summary>
    public Long3 BlockOf(long index)
    {
        long bx = index % Blocks.X; index /= Blocks.X;
        long by = index % Blocks.Y; index /= Blocks.Y;
        return new Long3(index % Blocks.Z, by, bx);
    }

    /// <summary>All chunks in index order, computed one at a time.</summary>
    public IEnumerable<ChunkSpec> Enumerate()
    {
        for (long i = 0; i < Count; i++) yield return this[i];
    }

    /// <summary>The largest read box any chunk can have: what a worker's buffers must hold.</summary>
    public Long3 MaxReadShape => Long3.Min(ChunkShape + Halo.AsLong3 + Halo.AsLong3, VolumeShape);

    private static long CeilDiv(long a, long b) => (a + b - 1) / b;
}
