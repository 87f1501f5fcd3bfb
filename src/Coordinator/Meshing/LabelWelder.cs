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
    /// ids and cells ascend, so both come out of a k-way merge in runs: a section is drained for as long as its next
    /// key stays below every other section's (a chunk's share of a row of the volume). The merges only plan the runs;
    /// copying them (positions, renumbered corners) is spread over the workers, as one object can be most of a mesh.
    /// <code>
    ///   sections   s0: ids 3 4 9 …   s1: ids 5 7 9 …      (9: a border vertex, in both)
    ///   runs       (s0, 0, 2) → vertex 0   (s1, 0, 2) → vertex 2   (s0, 2, 1) → vertex 4, and s1's 9 is vertex 4 too
    /// </code>
    /// </summary>
    private (float[] Positions, int[] Corners) WeldOne(List<(PieceIndex Piece, LabelSection Section)> shares, Func<PieceIndex, LabelSection, PieceSection> read)
    {
        var sections = shares.Select(s => read(s.Piece, s.Section)).ToArray();
        var numbers = new int[sections.Length][];   // a section's vertex → the object's vertex
        for (int s = 0; s < sections.Length; s++) numbers[s] = new int[sections[s].Ids.Length];
        var vertexRuns = MergeRuns(sections.Select(s => s.Ids).ToArray(), (twin, at, vertex) => numbers[twin][at] = vertex, out int n);
        var positions = new float[3 * n];
        InParallel(vertexRuns, run =>
        {
            var share = sections[run.Section];
            var (ids, offsets) = (share.Ids.Slice(run.Start, run.Count), share.Offsets.Slice(run.Start, run.Count));
            _coordinates.PositionsOf(ids.Span, offsets.Span, positions.AsSpan(3 * run.Destination, 3 * run.Count));
            var number = numbers[run.Section].AsSpan(run.Start, run.Count);
            for (int i = 0; i < number.Length; i++) number[i] = run.Destination + i;
        });

        // A cell's triangles all lie in the one chunk that owns the cell, so no cell is in two sections.
        var cells = sections.Select(s => s.Cells).ToArray();
        var triangleRuns = MergeRuns(cells, (_, _, _) => throw new InvalidOperationException("a cell in two chunks' label sections"), out int triangles);
        var corners = new int[3 * triangles];
        InParallel(triangleRuns, run =>
        {
            var local = sections[run.Section].Corners.Span.Slice(3 * run.Start, 3 * run.Count);
            var number = numbers[run.Section];
            var destination = corners.AsSpan(3 * run.Destination, 3 * run.Count);
            for (int c = 0; c < local.Length; c++) destination[c] = number[local[c]];
        });
        // z y x coordinates mirror x y z, so the winding flips too and normals still point outwards in the file's frame.
        if (_coordinates.ArrayOrder) ObjectOutput.ReverseWinding(corners);
        return (positions, corners);
    }

    /// <summary>Items [<see cref="Start"/>, + <see cref="Count"/>) of a section go to the merged order from <see cref="Destination"/> on.</summary>
    private readonly record struct Run(int Section, int Start, int Count, int Destination);

    /// <summary>
    /// The runs that merge ascending key lists into one ascending list with each key once; a key equal to the one
    /// just taken (a twin in another list) is handed to <paramref name="twin"/> (list, index, merged index) instead.
    /// </summary>
    private static List<Run> MergeRuns<T>(ReadOnlyMemory<T>[] lists, Action<int, int, int> twin, out int merged) where T : unmanaged, IComparable<T>
    {
        var runs = new List<Run>();
        var heads = new int[lists.Length];
        var queue = new PriorityQueue<int, T>(lists.Length);
        for (int s = 0; s < lists.Length; s++)
            if (lists[s].Length > 0) queue.Enqueue(s, lists[s].Span[0]);
        merged = 0;
        while (queue.TryDequeue(out int s, out T key))
        {
            while (queue.TryPeek(out int other, out T otherKey) && otherKey.CompareTo(key) == 0)
            {
                queue.Dequeue();
                twin(other, heads[other]++, merged);
                if (heads[other] < lists[other].Length) queue.Enqueue(other, lists[other].Span[heads[other]]);
            }
            var list = lists[s].Span;
            int start = heads[s], head = start + 1;
            if (queue.TryPeek(out _, out T bound))
                while (head < list.Length && list[head].CompareTo(bound) < 0) head++;
            else head = list.Length;
            runs.Add(new Run(s, start, head - start, merged));
            merged += head - start;
            heads[s] = head;
            if (head < list.Length) queue.Enqueue(s, list[head]);
        }
        return runs;
    }

    /// <summary>Runs <paramref name="body"/> on every run, in contiguous groups of about equal items on the workers.</summary>
    private void InParallel(List<Run> runs, Action<Run> body)
    {
        const int GroupItems = 1 << 15;
        var groups = new List<(int From, int To)>();
        for (int from = 0, items = 0, r = 0; r < runs.Count; r++)
        {
            items += runs[r].Count;
            if (items >= GroupItems || r == runs.Count - 1) { groups.Add((from, r + 1)); from = r + 1; items = 0; }
        }
        Parallel.ForEach(groups, new ParallelOptions { MaxDegreeOfParallelism = _workers }, g =>
        {
            for (int r = g.From; r < g.To; r++) body(runs[r]);
        });
    }
}
