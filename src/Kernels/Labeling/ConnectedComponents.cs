// Connected components of a block, run by run.
//
// A voxel is foreground when its value is not zero; two neighbouring voxels belong to the same component
// when they hold the same value (a binary mask is the special case of one value; a label image keeps
// touching objects of different labels apart, as scikit-image's label and cc3d do).
//
// The block is cut into runs: maximal stretches of one value along x. Runs are found with the vectorised
// span searches (IndexOfAnyExcept), so long runs of smooth data cost a few instructions per 64 voxels.
// Each run is then compared only with the runs of the rows that precede it in raster order and touch it:
//
//      6-connected (4 in 2D)                       26-connected (8 in 2D)
//      z-1 plane       z plane                      z-1 plane       z plane
//      . . . . .       . . . . .                    . # # # .       . # # # .     (y-1)
//      . # # # .       . # # # .   (y-1)            . # # # .       . ═ ═ ═ .     (y)
//      . . . . .       . ═ ═ ═ .   (y)              . # # # .       . . . . .     (y+1)
//                                                   rows (z-1, y-1..y+1) and (z, y-1), with the run
//      rows (z-1, y) and (z, y-1), same x           widened by one voxel on each side (diagonals)
//
// A two-pointer sweep over the sorted runs of a previous row finds the overlapping ones; equal values are
// joined in a union-find over run indices whose root is always the smallest index. Runs are numbered in
// raster order, so the root of a component is its first run and the component's first voxel is that run's
// first voxel: giving labels 1, 2, 3, ... to roots in run order numbers components by their first voxel in
// raster order, exactly as scipy.ndimage.label does. A 2D image is a block with sz = 1.
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ChunkSeg.Kernels.Labeling;

/// <summary>Which neighbours touch: faces only (6 in 3D, 4 in 2D) or faces, edges and corners (26 in 3D, 8 in 2D).</summary>
public enum Connectivity
{
    Faces = 6,
    All = 26,
}

/// <summary>One stretch of equal voxels along x: row <c>y + sy·z</c>, columns [Start, End), component <see cref="Label"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct Run
{
    public int Row;
    public int Start;
    public int End;
    public int Label;

    public readonly int Length => End - Start;
}

/// <summary>
/// The components of one block as runs in raster order. Holds pooled buffers: dispose it when done.
/// </summary>
public sealed class ComponentRuns : IDisposable
{
    private Run[] _runs;
    private readonly int _count;

    internal ComponentRuns(Run[] runs, int count, int components, int sz, int sy, int sx)
    {
        _runs = runs;
        _count = count;
        Components = components;
        (Sz, Sy, Sx) = (sz, sy, sx);
    }

    /// <summary>Number of components; their labels are 1 … Components, numbered by first voxel in raster order.</summary>
    public int Components { get; }

    public int Sz { get; }
    public int Sy { get; }
    public int Sx { get; }

    /// <summary>Every foreground run in raster order (row, then x).</summary>
    public ReadOnlySpan<Run> Runs => _runs.AsSpan(0, _count);

    /// <summary>Writes the label image (0 = background) of the whole block, index <c>x + sx·(y + sy·z)</c>.</summary>
    public void WriteLabels(Span<uint> labels)
    {
        long n = (long)Sz * Sy * Sx;
        if (labels.Length < n) throw new ArgumentException($"the label buffer holds {labels.Length} values; the block has {n} voxels");
        labels[..(int)n].Clear();
        foreach (ref readonly var run in Runs)
            labels.Slice(run.Row * Sx + run.Start, run.Length).Fill((uint)run.Label);
    }

    public void Dispose()
    {
        if (_runs.Length > 0) ArrayPool<Run>.Shared.Return(_runs);
        _runs = [];
    }
}

/// <summary>Connected-component labelling of one block (see the file's header for the method).</summary>
public static class ConnectedComponents
{
    /// <summary>
    /// Labels the block <paramref name="values"/> of shape (<paramref name="sz"/>, <paramref name="sy"/>, <paramref name="sx"/>),
    /// index <c>x + sx·(y + sy·z)</c>: non-zero voxels with equal values that touch under <paramref name="connectivity"/>
    /// form one component. Components are numbered 1 … n by their first voxel in raster order.
    /// </summary>
    public static ComponentRuns Label<T>(ReadOnlySpan<T> values, int sz, int sy, int sx, Connectivity connectivity)
        where T : unmanaged, IEquatable<T>
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sz);
        ArgumentOutOfRangeException.ThrowIfNegative(sy);
        ArgumentOutOfRangeException.ThrowIfNegative(sx);
        if (connectivity is not (Connectivity.Faces or Connectivity.All))
            throw new ArgumentException($"connectivity {(int)connectivity} is not supported; use 6 (faces) or 26 (faces, edges and corners)", nameof(connectivity));
        long n = (long)sz * sy * sx;
        if (values.Length < n) throw new ArgumentException($"the block holds {values.Length} values; its shape {sz}x{sy}x{sx} needs {n}");
        if (n > int.MaxValue) throw new ArgumentException($"a block of {n} voxels is too large; label it in chunks");
        return RunLabeler<T>.Label(values, sz, sy, sx, connectivity);
    }
}

internal static class RunLabeler<T> where T : unmanaged, IEquatable<T>
{
    public static ComponentRuns Label(ReadOnlySpan<T> values, int sz, int sy, int sx, Connectivity connectivity)
    {
        int rows = sz * sy;
        var rowStart = ArrayPool<int>.Shared.Rent(rows + 1);   // runs of row r: [rowStart[r], rowStart[r+1])
        var runs = ArrayPool<Run>.Shared.Rent(Math.Max(16, rows * 2));
        int count = 0;
        try
        {
            for (int r = 0; r < rows; r++)
            {
                rowStart[r] = count;
                FindRuns(values.Slice(r * sx, sx), r, ref runs, ref count);
            }
            rowStart[rows] = count;

            var parent = ArrayPool<int>.Shared.Rent(Math.Max(1, count));
            try
            {
                for (int i = 0; i < count; i++) parent[i] = i;
                int widen = connectivity == Connectivity.All ? 1 : 0;
                for (int z = 0; z < sz; z++)
                for (int y = 0; y < sy; y++)
                {
                    int r = y + sy * z;
                    if (rowStart[r] == rowStart[r + 1]) continue;
                    if (y > 0) Join(values, runs, parent, rowStart, r, r - 1, sx, widen);
                    if (z == 0) continue;
                    int below = r - sy;
                    Join(values, runs, parent, rowStart, r, below, sx, 0 + widen);
                    if (widen == 0) continue;
                    if (y > 0) Join(values, runs, parent, rowStart, r, below - 1, sx, 1);
                    if (y + 1 < sy) Join(values, runs, parent, rowStart, r, below + 1, sx, 1);
                }

                // Roots are the smallest index of their set and runs are in raster order: number roots as met.
                int components = 0;
                for (int i = 0; i < count; i++)
                {
                    int root = Find(parent, i);
                    runs[i].Label = root == i ? ++components : runs[root].Label;
                }
                return new ComponentRuns(runs, count, components, sz, sy, sx);
            }
            finally
            {
                ArrayPool<int>.Shared.Return(parent);
            }
        }
        catch
        {
            ArrayPool<Run>.Shared.Return(runs);
            throw;
        }
        finally
        {
            ArrayPool<int>.Shared.Return(rowStart);
        }
    }

    /// <summary>Appends the runs of one row: maximal stretches of one non-zero value.</summary>
    private static void FindRuns(ReadOnlySpan<T> row, int rowIndex, ref Run[] runs, ref int count)
    {
        int x = 0;
        while (x < row.Length)
        {
            int skip = row[x..].IndexOfAnyExcept(default(T));
            if (skip < 0) return;
            x += skip;
            T value = row[x];
            int length = row[(x + 1)..].IndexOfAnyExcept(value);
            int end = length < 0 ? row.Length : x + 1 + length;
            if (count == runs.Length) Grow(ref runs);
            runs[count++] = new Run { Row = rowIndex, Start = x, End = end };
            x = end;
        }
    }

    private static void Grow(ref Run[] runs)
    {
        var larger = ArrayPool<Run>.Shared.Rent(runs.Length * 2);
        runs.AsSpan().CopyTo(larger);
        ArrayPool<Run>.Shared.Return(runs);
        runs = larger;
    }

    /// <summary>
    /// Unites every run of row <paramref name="row"/> with the runs of the earlier row <paramref name="other"/> that
    /// overlap it (widened by <paramref name="widen"/> for diagonal neighbours) and hold the same value.
    /// </summary>
    private static void Join(ReadOnlySpan<T> values, Run[] runs, int[] parent, int[] rowStart, int row, int other, int sx, int widen)
    {
        int b = rowStart[other], bEnd = rowStart[other + 1];
        if (b == bEnd) return;
        int rowBase = row * sx, otherBase = other * sx;
        for (int a = rowStart[row], aEnd = rowStart[row + 1]; a < aEnd; a++)
        {
            int start = runs[a].Start - widen, end = runs[a].End + widen;
            while (b < bEnd && runs[b].End <= start) b++;
            T value = values[rowBase + runs[a].Start];
            for (int c = b; c < bEnd && runs[c].Start < end; c++)
                if (values[otherBase + runs[c].Start].Equals(value)) Union(parent, a, c);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Find(int[] parent, int i)
    {
        while (parent[i] != i)
        {
            parent[i] = parent[parent[i]];                    // path halving
            i = parent[i];
        }
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Union(int[] parent, int a, int b)
    {
        int ra = Find(parent, a), rb = Find(parent, b);
        if (ra < rb) parent[rb] = ra;
        else if (rb < ra) parent[ra] = rb;
    }
}
