namespace ChunkSeg.Contracts.Geometry;

/// <summary>
/// A half-open box in a volume's own axis order (any rank), e.g. (c, z, y, x) for an OME-Zarr image.
/// This is the unit of every block read and write.
/// </summary>
public sealed class NdBox
{
    public NdBox(long[] start, long[] shape)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(shape);
        if (start.Length != shape.Length)
            throw new ArgumentException($"box start has {start.Length} dimensions but shape has {shape.Length}");
        foreach (long s in shape)
            if (s < 0) throw new ArgumentException($"box shape [{string.Join(", ", shape)}] has a negative extent");
        Start = start;
        Shape = shape;
    }

    public long[] Start { get; }
    public long[] Shape { get; }
    public int Rank => Start.Length;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public static NdBox Whole(long[] shape) => new(new long[shape.Length], (long[])shape.Clone());

    /// <summary>True when the box lies entirely inside a volume of <paramref name="volumeShape"/>.</summary>
    public bool IsInside(long[] volumeShape)
    {
        if (volumeShape.Length != Rank) return false;
        for (int d = 0; d < Rank; d++)
            if (Start[d] < 0 || Start[d] + Shape[d] > volumeShape[d]) return false;
        return true;
    }

    public override string ToString() =>
        "[" + string.Join(", ", Start.Zip(Shape, (s, n) => $"{s}:{s + n}")) + "]";
}
