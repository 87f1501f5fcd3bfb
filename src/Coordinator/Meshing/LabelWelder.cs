using ChunkSeg.Contracts.Meshing;
using ChunkSeg.Kernels.Meshing;

namespace ChunkSeg.Coordinator.Meshing;

/// <summary>
/// Welds label surfaces object by object from the pieces' label sections (<see cref="SurfacePiece.Sections"/>): an
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

    /// <summary>
    /// One object's positions (vertices in id order) and triangles (in cell order), from its sections. Each section's
    /// ids and cells ascend, so both come out of a k-way merge; a section is drained for as long as its next key stays
    /// below every other section's (a chunk's share of a row of the volume), so the queue is touched once per such run.
    /// </summary>
    private (float[] Positions, int[] Corners) WeldOne(List<(PieceIndex Piece, LabelSection Section)> shares, Func<PieceIndex, LabelSection, PieceSection> read)
    {
        var sections = shares.Select(s => read(s.Piece, s.Section)).ToArray();
        var numbers = new int[sections.Length][];   // a section's vertex → the object's vertex
        var heads = new int[sections.Length];
        var queue = new PriorityQueue<int, ulong>(sections.Length);
        for (int s = 0; s < sections.Length; s++)
        {
            numbers[s] = new int[sections[s].Ids.Length];
            if (sections[s].Ids.Length > 0) queue.Enqueue(s, sections[s].Ids.Span[0]);
        }
        var mergedIds = new ulong[sections.Sum(s => s.Ids.Length)];
        var mergedOffsets = new float[mergedIds.Length];
        int n = 0;
        while (queue.TryDequeue(out int s, out ulong id))
        {
            // A border vertex comes from every chunk around it, with the same offset bit for bit: keep it once.
            while (queue.TryPeek(out int twin, out ulong other) && other == id)
            {
                queue.Dequeue();
                numbers[twin][heads[twin]++] = n;
                if (heads[twin] < sections[twin].Ids.Length) queue.Enqueue(twin, sections[twin].Ids.Span[heads[twin]]);
            }
            ulong bound = queue.TryPeek(out _, out ulong next) ? next : ulong.MaxValue;
            ReadOnlySpan<ulong> ids = sections[s].Ids.Span;
            ReadOnlySpan<float> offsets = sections[s].Offsets.Span;
            var number = numbers[s];
            int head = heads[s];
            do
            {
                (mergedIds[n], mergedOffsets[n]) = (ids[head], offsets[head]);
                number[head++] = n++;
            }
            while (head < ids.Length && ids[head] < bound);
            heads[s] = head;
            if (head < ids.Length) queue.Enqueue(s, ids[head]);
        }
        var positions = new float[3 * n];
        _coordinates.PositionsOf(mergedIds.AsSpan(0, n), mergedOffsets.AsSpan(0, n), positions);

        // A cell's triangles all lie in the one chunk that owns the cell: merge the sections' runs by cell.
        var corners = new int[sections.Sum(s => s.Corners.Length)];
        var cellQueue = new PriorityQueue<int, long>(sections.Length);
        Array.Clear(heads);
        for (int s = 0; s < sections.Length; s++)
            if (sections[s].Cells.Length > 0) cellQueue.Enqueue(s, sections[s].Cells.Span[0]);
        int k = 0;
        while (cellQueue.TryDequeue(out int s, out _))
        {
            ReadOnlySpan<long> cells = sections[s].Cells.Span;
            ReadOnlySpan<int> local = sections[s].Corners.Span;
            var number = numbers[s];
            long bound = cellQueue.TryPeek(out _, out long next) ? next : long.MaxValue;
            int head = heads[s];
            do
            {
                for (int c = 3 * head; c < 3 * head + 3; c++) corners[k++] = number[local[c]];
                head++;
            }
            while (head < cells.Length && cells[head] < bound);
            heads[s] = head;
            if (head < cells.Length) cellQueue.Enqueue(s, cells[head]);
        }
        // z y x coordinates mirror x y z, so the winding flips too and normals still point outwards in the file's frame.
        if (_coordinates.ArrayOrder) ObjectOutput.ReverseWinding(corners);
        return (positions, corners);
    }
}
