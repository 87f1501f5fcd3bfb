namespace ChunkSeg.Contracts.Geometry;

/// <summary>
/// A z, y, x triple of voxel counts or coordinates. Axis convention for the whole project: x varies
/// fastest, loops run z then y then x, and the linear index is <c>x + sx * (y + sy * z)</c>.
/// </summary>
public readonly record struct Long3(long Z, long Y, long X)
{
    public static Long3 Zero => default;
    public static Long3 Uniform(long v) => new(v, v, v);
    public long Volume => Z * Y * X;

    public long this[int axis] => axis switch { 0 => Z, 1 => Y, 2 => X, _ => throw new ArgumentOutOfRangeException(nameof(axis)) };

    public static Long3 operator +(Long3 a, Long3 b) => new(a.Z + b.Z, a.Y + b.Y, a.X + b.X);
    public static Long3 operator -(Long3 a, Long3 b) => new(a.Z - b.Z, a.Y - b.Y, a.X - b.X);
    public static Long3 Min(Long3 a, Long3 b) => new(Math.Min(a.Z, b.Z), Math.Min(a.Y, b.Y), Math.Min(a.X, b.X));
    public static Long3 Max(Long3 a, Long3 b) => new(Math.Max(a.Z, b.Z), Math.Max(a.Y, b.Y), Math.Max(a.X, b.X));

    /// <summary>Parses "z,y,x" or a single value for all three axes.</summary>
    public static Long3 Parse(string text, string what)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var v = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], out v[i]) || v[i] <= 0)
                throw new ArgumentException($"{what} \"{text}\": \"{parts[i]}\" is not a positive integer; expected z,y,x such as 64,256,256");
        return v.Length switch
        {
            1 => Uniform(v[0]),
            3 => new Long3(v[0], v[1], v[2]),
            2 => new Long3(1, v[0], v[1]),
            _ => throw new ArgumentException($"{what} \"{text}\" has {v.Length} values; expected z,y,x"),
        };
    }

    public override string ToString() => $"{Z}x{Y}x{X}";
}

/// <summary>Voxels of context added on each side of a chunk's core, per axis (z, y, x).</summary>
public readonly record struct Halo(int Z, int Y, int X)
{
    public static Halo None => default;
    public static Halo Uniform(int v) => new(v, v, v);

    /// <summary>Stages run one after another, so their halos add up.</summary>
    public static Halo operator +(Halo a, Halo b) => new(a.Z + b.Z, a.Y + b.Y, a.X + b.X);

    public Long3 AsLong3 => new(Z, Y, X);
    public override string ToString() => $"{Z},{Y},{X}";
}

/// <summary>A half-open box [Start, Start + Size) in z, y, x voxel coordinates.</summary>
public readonly record struct Box3(Long3 Start, Long3 Size)
{
    public Long3 End => Start + Size;
    public long VoxelCount => Size.Volume;
    public bool IsEmpty => Size.Z <= 0 || Size.Y <= 0 || Size.X <= 0;

    public static Box3 FromBounds(Long3 start, Long3 end) => new(start, end - start);

    public bool Contains(Box3 other) =>
        other.Start.Z >= Start.Z && other.Start.Y >= Start.Y && other.Start.X >= Start.X &&
        other.End.Z <= End.Z && other.End.Y <= End.Y && other.End.X <= End.X;

    public Box3 Intersect(Box3 other)
    {
        var s = Long3.Max(Start, other.Start);
        var e = Long3.Min(End, other.End);
        return FromBounds(s, Long3.Max(s, e));
    }

    /// <summary>This box grown by <paramref name="halo"/> on every side, then clipped to <paramref name="bounds"/>.</summary>
    public Box3 Grow(Halo halo, Box3 bounds) => FromBounds(Start - halo.AsLong3, End + halo.AsLong3).Intersect(bounds);

    public override string ToString() => $"[{Start.Z}:{End.Z}, {Start.Y}:{End.Y}, {Start.X}:{End.X}]";
}
