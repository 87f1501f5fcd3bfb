using ChunkSeg.Contracts.Meshing;
using ChunkSeg.Kernels.Meshing;

namespace ChunkSeg.Coordinator.Meshing;

/// <summary>
/// Welds label surfaces object by object from the pieces' label sections (<see cref="SurfacePiece.ByLabel"/>): an
/// object's shares of the chunks it touches are read, their vertices merged by id (shared border vertices once), its
/// triangles put in cell order, and the closed surface written as one group. Objects go out in the order of (last
/// layer, label), each with its vertices in id order and triangles in cell order (a cell's in table order), so any
/// chunking writes the same file. Memory: the pieces' section tables (a few dozen bytes per object and chunk it
/// touches) and the objects being welded, a batch of them at a time; nothing that grows with the volume's area.
/// </summary>
public sealed class LabelWelder
{
    private readonly MeshCoordinates _coordinates;
    private readonly bool _normals;
    private readonly Func<TriangleMesh, TriangleMesh>? _finish;
    private readonly int _workers;

    /// <param name="finish">Post-processing of each complete object (smoothing, decimation), or null.</param>
    /// <param name="workers">Objects welded at once.</param>
    public LabelWelder(MeshCoordinates coordinates, bool normals, Func<TriangleMesh, TriangleMesh>? finish, int workers = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(workers);
        _coordinates = coordinates;
        _normals = normals;
        _finish = finish;
        _workers = workers;
    }

    /// <summary>Welds one closed surface per label of the pieces indexed by <paramref name="pieces"/>; <paramref name="read"/> reads one section.</summary>
    public WeldSummary Weld(IEnumerable<PieceIndex> pieces, Func<PieceIndex, LabelSection, PieceSection> read, IMeshSink sink)
    {
        var shares = new Dictionary<ulong, List<(PieceIndex Piece, LabelSection Section)>>();
        foreach (var piece in pieces)
            foreach (var section in piece.Sections)
            {
                if (!shares.TryGetValue(section.Label, out var list)) shares[section.Label] = list = [];
                list.Add((piece, section));
            }
        var order = shares.Select(s => (Label: s.Key, Last: s.Value.Max(x => x.Section.LastLayer)))
            .OrderBy(o => o.Last).ThenBy(o => o.Label).Select(o => o.Label).ToArray();

        long vertices = 0, triangles = 0, peak = 0;
        var batch = new ObjectOutput.Finished[Math.Min(order.Length, 8 * _workers)];
        for (int first = 0; first < order.Length; first += batch.Length)
        {
            int count = Math.Min(batch.Length, order.Length - first);
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = _workers }, i =>
            {
                ulong label = order[first + i];
                var (positions, corners) = WeldOne(shares[label], read);
                batch[i] = ObjectOutput.Finish($"label_{label}", positions, corners, _normals, _finish);
            });
            for (int i = 0; i < count; i++)
            {
                peak = Math.Max(peak, batch[i].Positions.Length / 3);
                ObjectOutput.Write(sink, batch[i], ref vertices, ref triangles);
                batch[i] = null!;
                shares.Remove(order[first + i]);
            }
        }
        sink.Complete();
        return new WeldSummary(vertices, triangles, order.Length, peak);
    }

    /// <summary>One object's positions (vertices in id order) and triangles (in cell order), from its sections.</summary>
    private (float[] Positions, int[] Corners) WeldOne(List<(PieceIndex Piece, LabelSection Section)> shares, Func<PieceIndex, LabelSection, PieceSection> read)
    {
        var sections = shares.Select(s => read(s.Piece, s.Section)).ToArray();
        var ids = new ulong[sections.Sum(s => s.Ids.Length)];
        var offsets = new float[ids.Length];
        int at = 0;
        foreach (var s in sections)
        {
            s.Ids.CopyTo(ids, at);
            s.Offsets.CopyTo(offsets, at);
            at += s.Ids.Length;
        }
        // A border vertex comes from every chunk around it, with the same offset bit for bit: keep it once.
        Array.Sort(ids, offsets);
        int n = 0;
        for (int i = 0; i < ids.Length; i++)
            if (n == 0 || ids[i] != ids[n - 1]) (ids[n], offsets[n++]) = (ids[i], offsets[i]);
        var positions = new float[3 * n];
        for (int i = 0; i < n; i++) _coordinates.PositionOf(ids[i], offsets[i], positions.AsSpan(3 * i, 3));

        // A cell's triangles all lie in the one chunk that owns the cell: order the runs of equal cells by cell.
        var runs = new List<(long Cell, int Section, int Start, int Count)>();
        for (int s = 0; s < sections.Length; s++)
        {
            var cells = sections[s].Cells;
            for (int t = 0; t < cells.Length;)
            {
                int start = t;
                while (t < cells.Length && cells[t] == cells[start]) t++;
                runs.Add((cells[start], s, start, t - start));
            }
        }
        runs.Sort();
        var corners = new int[sections.Sum(s => s.Corners.Length)];
        int k = 0;
        var unique = ids.AsSpan(0, n);
        foreach (var (_, s, start, count) in runs)
        {
            var section = sections[s];
            for (int c = 3 * start; c < 3 * (start + count); c++) corners[k++] = unique.BinarySearch(section.Ids[section.Corners[c]]);
        }
        // z y x coordinates mirror x y z, so the winding flips too and normals still point outwards in the file's frame.
        if (_coordinates.ArrayOrder) ObjectOutput.ReverseWinding(corners);
        return (positions, corners);
    }
}
