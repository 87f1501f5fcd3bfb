namespace ChunkSeg.Contracts.Volumes;

/// <summary>What an axis measures, as OME-NGFF names it ("time", "channel", "space").</summary>
public enum AxisKind { Time, Channel, Space }

/// <summary>
/// The named axes of a volume, slowest-varying first (C order), e.g. "zyx", "tczyx" or ilastik's "zyxc".
/// Any order of a subset of t, c, z, y, x is accepted; y and x are required.
/// </summary>
public sealed class AxisOrder : IEquatable<AxisOrder>
{
    private const string Allowed = "tczyx";

    private AxisOrder(string names) => Names = names;

    /// <summary>The axis letters, slowest first.</summary>
    public string Names { get; }

    public int Rank => Names.Length;
    public char this[int index] => Names[index];
    public bool HasTime => Names.Contains('t');
    public bool HasChannel => Names.Contains('c');
    public bool HasZ => Names.Contains('z');

    /// <summary>Index of <paramref name="axis"/> in this order, or -1 when absent.</summary>
    public int IndexOf(char axis) => Names.IndexOf(axis);

    public static AxisKind KindOf(char axis) => axis switch
    {
        't' => AxisKind.Time,
        'c' => AxisKind.Channel,
        _ => AxisKind.Space,
    };

    /// <summary>The same axes in OME-NGFF 0.4 order: time, then channel, then z, y, x.</summary>
    public AxisOrder ToOmeOrder() => new(string.Concat(Allowed.Where(Names.Contains)));

    public bool IsOmeOrder => Names == ToOmeOrder().Names;

    /// <summary>Parses "zyx", "ZYXC", "t,z,y,x"; throws <see cref="ArgumentException"/> naming the problem.</summary>
    public static AxisOrder Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var names = new string(text.Where(ch => ch != ',' && !char.IsWhiteSpace(ch)).Select(char.ToLowerInvariant).ToArray());
        if (names.Length == 0)
            throw new ArgumentException("axis order is empty; expected letters from 't', 'c', 'z', 'y', 'x' such as \"zyx\"");
        foreach (char ch in names)
        {
            if (!Allowed.Contains(ch))
                throw new ArgumentException($"axis order \"{text}\" has '{ch}'; allowed axes are t, c, z, y, x");
            if (names.IndexOf(ch) != names.LastIndexOf(ch))
                throw new ArgumentException($"axis order \"{text}\" names '{ch}' twice");
        }
        if (!names.Contains('y') || !names.Contains('x'))
            throw new ArgumentException($"axis order \"{text}\" must contain both y and x");
        return new AxisOrder(names);
    }

    /// <summary>The usual default for a dataset of <paramref name="rank"/> dimensions with no axis metadata.</summary>
    public static AxisOrder DefaultForRank(int rank) => rank switch
    {
        2 => new("yx"),
        3 => new("zyx"),
        4 => new("czyx"),
        5 => new("tczyx"),
        _ => throw new ArgumentException($"cannot guess axes for a {rank}-dimensional dataset; pass --axes"),
    };

    /// <summary>
    /// For each axis of <paramref name="target"/>, its index in this order. Both must hold the same axes.
    /// </summary>
    public int[] PermutationTo(AxisOrder target)
    {
        if (target.Rank != Rank || target.Names.Any(ch => !Names.Contains(ch)))
            throw new ArgumentException($"axes \"{Names}\" and \"{target.Names}\" are not the same set");
        return target.Names.Select(IndexOf).ToArray();
    }

    public bool Equals(AxisOrder? other) => other is not null && other.Names == Names;
    public override bool Equals(object? obj) => Equals(obj as AxisOrder);
    public override int GetHashCode() => Names.GetHashCode(StringComparison.Ordinal);
    public override string ToString() => Names;
}
