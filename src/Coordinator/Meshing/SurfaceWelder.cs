using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Meshing;
using ChunkSeg.Kernels.Meshing;

namespace ChunkSeg.Coordinator.Meshing;

/// <summary>What the welder wrote.</summary>
public sealed record WeldSummary(long Vertices, long Triangles, long Objects, long PeakPendingVertices);

/// <summary>
/// Welds the chunks' <see cref="SurfacePiece"/>s into one mesh, one slab of chunks (a row along z) at a time, and
/// writes it in a canonical order that does not depend on the chunk shape: vertices by id (z, y, x of their
/// edge), triangles by cell (z, y, x), a cell's in table order. So any chunking writes the same file.
/// <code>
///   slab k covers voxel planes [a, b):  its cells reference vertices of planes a … b
///   after slab k:  vertices of planes &lt; b are final → numbered in id order and written
///                  triangles of cell layers &lt; b − 1 name only final vertices → written in cell order
///                  layer b − 1's triangles (touching plane b) wait for slab k + 1
/// </code>
/// Label surfaces (and any mesh that is post-processed) are written object by object instead: an object is
/// complete once the slab holding its last cell layer is read (known up front from the pieces' headers), then
/// its vertices are sorted by id, the mesh is smoothed or decimated if asked, and it is written as one group,
/// objects in the order of (last layer, label). Memory: one slab of pieces plus the surfaces still open across
/// the slab border (for label surfaces, the objects that cross it; a post-processed single surface is held whole).
/// </summary>
public sealed class SurfaceWelder
{
    private readonly ChunkGrid _grid;
    private readonly Func<long, SurfacePiece> _pieceOf;
    private readonly MeshCoordinates _coordinates;
    private readonly bool _normals;
    private readonly Func<TriangleMesh, TriangleMesh>? _finish;

    /// <param name="pieceOf">Reads chunk i's piece; called once per chunk of the time point, in slab order.</param>
    /// <param name="finish">Post-processing of each complete object (smoothing, decimation), or null.</param>
    public SurfaceWelder(ChunkGrid grid, Func<long, SurfacePiece> pieceOf, MeshCoordinates coordinates, bool normals, Func<TriangleMesh, TriangleMesh>? finish)
    {
        _grid = grid;
        _pieceOf = pieceOf;
        _coordinates = coordinates;
        _normals = normals;
        _finish = finish;
    }

    /// <summary>Welds a single surface (isosurface or foreground) of time point <paramref name="t"/>.</summary>
    public WeldSummary WeldSurface(long t, IMeshSink sink, string name = "surface")
    {
        if (_finish is not null)
            return WeldObjects(t, sink, lastLayers: new Dictionary<ulong, long> { [0] = long.MaxValue }, _ => name);
        var stream = new StreamingSurface(_coordinates, _normals, sink);
        sink.BeginObject(name);
        foreach (var slab in Slabs(t))
            stream.Add(slab.Triangles, slab.End, slab.IsLast);
        sink.Complete();
        return new WeldSummary(stream.Vertices, stream.TrianglesWritten, 1, stream.PeakPending);
    }

    /// <summary>Welds one closed surface per label of time point <paramref name="t"/>; <paramref name="lastLayers"/> from the pieces' headers.</summary>
    public WeldSummary WeldLabels(long t, IMeshSink sink, IReadOnlyDictionary<ulong, long> lastLayers) =>
        WeldObjects(t, sink, lastLayers, label => $"label_{label}");

    private WeldSummary WeldObjects(long t, IMeshSink sink, IReadOnlyDictionary<ulong, long> lastLayers, Func<ulong, string> nameOf)
    {
        var open = new Dictionary<ulong, ObjectSurface>();
        long vertices = 0, triangles = 0, objects = 0, peak = 0, pending = 0;
        foreach (var slab in Slabs(t))
        {
            // A piece's vertex belongs to one object (its label's): where it went, by piece-local index.
            var placed = new Dictionary<SurfacePiece, int[]>(ReferenceEqualityComparer.Instance);
            ObjectSurface? surface = null;
            ulong current = 0;
            foreach (var (piece, first, count) in slab.Triangles)
            {
                if (!placed.TryGetValue(piece, out var where))
                {
                    placed[piece] = where = new int[piece.VertexCount];
                    Array.Fill(where, -1);
                }
                var corners = piece.TriangleCorners;
                for (int i = 3 * first; i < 3 * (first + count); i += 3)
                {
                    ulong label = piece.Labelled ? piece.VertexLabels[corners[i]] : 0;
                    if (surface is null || label != current)
                    {
                        if (!open.TryGetValue(label, out surface)) open[label] = surface = new ObjectSurface();
                        current = label;
                    }
                    for (int j = i; j < i + 3; j++)
                    {
                        int v = corners[j];
                        if (where[v] < 0)
                        {
                            where[v] = surface.AddVertex(piece.VertexIds[v], piece.VertexOffsets[v]);
                            pending++;
                        }
                        surface.AddCorner(where[v]);
                    }
                }
            }
            peak = Math.Max(peak, pending);
            var complete = open.Where(o => slab.IsLast || LastLayerOf(lastLayers, o.Key) < slab.End)
                .OrderBy(o => LastLayerOf(lastLayers, o.Key)).ThenBy(o => o.Key).ToList();
            foreach (var (label, done) in complete)
            {
                open.Remove(label);
                pending -= done.RawVertexCount;
                var mesh = done.ToMesh(_coordinates);
                if (_finish is not null) mesh = _finish(mesh);
                sink.BeginObject(nameOf(label));
                sink.AddVertices(mesh.Positions, _normals ? MeshNormals.AreaWeighted(mesh) : default);
                var shifted = new long[mesh.Triangles.Length];
                for (int i = 0; i < shifted.Length; i++) shifted[i] = vertices + mesh.Triangles[i];
                sink.AddTriangles(shifted);
                vertices += mesh.VertexCount;
                triangles += mesh.TriangleCount;
                objects++;
            }
        }
        sink.Complete();
        return new WeldSummary(vertices, triangles, objects, peak);
    }

    private static long LastLayerOf(IReadOnlyDictionary<ulong, long> lastLayers, ulong label) =>
        lastLayers.TryGetValue(label, out long layer) ? layer : throw new InvalidOperationException($"label {label} has triangles but no entry in the pieces' headers");

    /// <summary>A slab: its pieces' triangles as runs (piece, first, count) in global cell order, and its end plane.</summary>
    private sealed record Slab(List<(SurfacePiece Piece, int First, int Count)> Triangles, long End, bool IsLast);

    private IEnumerable<Slab> Slabs(long t)
    {
        long perSlab = _grid.Blocks.Y * _grid.Blocks.X;
        for (long bz = 0; bz < _grid.Blocks.Z; bz++)
        {
            long first = _grid.IndexOfBlock(t, new Long3(bz, 0, 0));
            var pieces = new SurfacePiece[perSlab];
            Parallel.For(0, perSlab, k => pieces[k] = _pieceOf(first + k));
            long end = Math.Min((bz + 1) * _grid.ChunkShape.Z, _grid.VolumeShape.Z);
            yield return new Slab(CellOrder(pieces), end, bz == _grid.Blocks.Z - 1);
        }
    }

    /// <summary>
    /// The slab's triangles in global cell order. Within a piece they are in cell order already, and a cell row
    /// (z, y) of one chunk is contiguous, so the merge walks rows: for each (z, y), the chunks along x in turn.
    /// </summary>
    private static List<(SurfacePiece, int, int)> CellOrder(SurfacePiece[] pieces)
    {
        var runs = new List<(SurfacePiece, int, int)>();
        var heads = new int[pieces.Length];
        var queue = new PriorityQueue<int, (long Cell, int Piece)>();
        for (int p = 0; p < pieces.Length; p++)
            if (pieces[p].TriangleCount > 0) queue.Enqueue(p, (pieces[p].TriangleCells[0], p));
        while (queue.TryDequeue(out int p, out _))
        {
            var piece = pieces[p];
            var cells = piece.TriangleCells;
            int start = heads[p];
            long rowEnd = (cells[start] / piece.VolumeShape.X + 1) * piece.VolumeShape.X;
            int end = start;
            while (end < cells.Length && cells[end] < rowEnd) end++;
            runs.Add((piece, start, end - start));
            heads[p] = end;
            if (end < cells.Length) queue.Enqueue(p, (cells[end], p));
        }
        return runs;
    }

    /// <summary>z y x coordinates mirror x y z: the winding flips too, so normals still point outwards in the file's frame.</summary>
    private static void ReverseWinding(int[] triangles)
    {
        for (int i = 0; i < triangles.Length; i += 3) (triangles[i + 1], triangles[i + 2]) = (triangles[i + 2], triangles[i + 1]);
    }

    /// <summary>
    /// One object's surface as it grows: its vertices as met (each once per piece, so a vertex on a chunk border
    /// appears once per chunk), triangles in arrival (cell) order naming those entries. Settled when complete.
    /// </summary>
    private sealed class ObjectSurface
    {
        private ulong[] _ids = new ulong[64];
        private float[] _offsets = new float[64];
        private int[] _corners = new int[192];
        private int _cornerCount;

        public int RawVertexCount { get; private set; }

        public int AddVertex(ulong id, float offset)
        {
            if (RawVertexCount == _ids.Length)
            {
                Array.Resize(ref _ids, 2 * _ids.Length);
                Array.Resize(ref _offsets, _ids.Length);
            }
            _ids[RawVertexCount] = id;
            _offsets[RawVertexCount] = offset;
            return RawVertexCount++;
        }

        public void AddCorner(int vertex)
        {
            if (_cornerCount == _corners.Length) Array.Resize(ref _corners, 2 * _corners.Length);
            _corners[_cornerCount++] = vertex;
        }

        /// <summary>The mesh with its distinct vertices in id order.</summary>
        public TriangleMesh ToMesh(MeshCoordinates coordinates)
        {
            var (unique, offsets, rank) = SortedUnique(_ids.AsSpan(0, RawVertexCount), _offsets.AsSpan(0, RawVertexCount));
            var positions = new float[3 * unique.Length];
            for (int r = 0; r < unique.Length; r++) coordinates.PositionOf(unique[r], offsets[r], positions.AsSpan(3 * r, 3));
            var triangles = new int[_cornerCount];
            for (int i = 0; i < triangles.Length; i++) triangles[i] = rank[_corners[i]];
            if (coordinates.ArrayOrder) ReverseWinding(triangles);
            return new TriangleMesh(positions, triangles);
        }
    }

    /// <summary>
    /// As <see cref="SortedUnique"/> for ids made of ascending runs starting at <paramref name="runStarts"/> (the
    /// pending vertices and each piece's): the runs are merged pairwise, log₂(runs) linear passes.
    /// </summary>
    private static (ulong[] Unique, float[] Offsets, int[] Rank) MergedUnique(ulong[] ids, float[] offsets, List<int> runStarts)
    {
        int n = ids.Length;
        var keys = (ulong[])ids.Clone();
        var from = new int[n];
        for (int i = 0; i < n; i++) from[i] = i;
        var keys2 = new ulong[n];
        var from2 = new int[n];
        var starts = runStarts.Where(s => s < n).Distinct().Order().ToList();
        while (starts.Count > 1)
        {
            var next = new List<int>();
            for (int r = 0; r < starts.Count; r += 2)
            {
                int a = starts[r], mid = r + 1 < starts.Count ? starts[r + 1] : n, end = r + 2 < starts.Count ? starts[r + 2] : n;
                int i = a, j = mid, o = a;
                while (i < mid && j < end)
                {
                    if (keys[j] < keys[i]) { keys2[o] = keys[j]; from2[o++] = from[j++]; }
                    else { keys2[o] = keys[i]; from2[o++] = from[i++]; }
                }
                for (; i < mid; i++, o++) { keys2[o] = keys[i]; from2[o] = from[i]; }
                for (; j < end; j++, o++) { keys2[o] = keys[j]; from2[o] = from[j]; }
                next.Add(a);
            }
            (keys, keys2) = (keys2, keys);
            (from, from2) = (from2, from);
            starts = next;
        }
        return Distinct(keys, from, offsets);
    }

    /// <summary>
    /// The distinct ids in ascending order with their offsets (equal ids carry equal offsets: both come from the
    /// same two voxels), and for each input entry the rank of its id.
    /// </summary>
    private static (ulong[] Unique, float[] Offsets, int[] Rank) SortedUnique(ReadOnlySpan<ulong> ids, ReadOnlySpan<float> offsets)
    {
        int n = ids.Length;
        var keys = ids.ToArray();
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Array.Sort(keys, order);
        return Distinct(keys, order, offsets);
    }

    /// <summary>From ids sorted ascending (<paramref name="from"/>: each one's input entry), the distinct ids, their offsets and each entry's rank.</summary>
    private static (ulong[] Unique, float[] Offsets, int[] Rank) Distinct(ulong[] sorted, int[] from, ReadOnlySpan<float> offsets)
    {
        int n = sorted.Length;
        var rank = new int[n];
        int distinct = 0;
        for (int k = 0; k < n; k++)
        {
            if (k == 0 || sorted[k] != sorted[k - 1]) sorted[distinct++] = sorted[k];
            rank[from[k]] = distinct - 1;
        }
        var uniqueOffsets = new float[distinct];
        for (int i = 0; i < n; i++) uniqueOffsets[rank[i]] = offsets[i];
        return (sorted.AsSpan(0, distinct).ToArray(), uniqueOffsets, rank);
    }

    /// <summary>A single surface written as the slabs arrive (see the class comment).</summary>
    private sealed class StreamingSurface(MeshCoordinates coordinates, bool normals, IMeshSink sink)
    {
        // Vertices not yet written (on the last slab's upper plane), with the normal sums gathered so far, and the
        // triangles of the last slab's top cell layer: a corner ≥ 0 is a written vertex, ~k the k-th pending one.
        private ulong[] _pendingIds = [];
        private float[] _pendingOffsets = [];
        private double[] _pendingNormals = [];
        private long[] _held = [];

        public long Vertices { get; private set; }
        public long TrianglesWritten { get; private set; }
        public long PeakPending { get; private set; }

        public void Add(List<(SurfacePiece Piece, int First, int Count)> runs, long end, bool isLast)
        {
            // Every vertex the slab knows, pending ones first, then each piece's once; sorted, duplicates merged.
            var pieces = new Dictionary<SurfacePiece, int>(ReferenceEqualityComparer.Instance);
            int total = _pendingIds.Length;
            foreach (var (piece, _, _) in runs)
                if (pieces.TryAdd(piece, total)) total += piece.VertexCount;
            var ids = new ulong[total];
            var offsets = new float[total];
            _pendingIds.CopyTo(ids, 0);
            _pendingOffsets.CopyTo(offsets, 0);
            var runStarts = new List<int> { 0 };
            foreach (var (piece, at) in pieces)
            {
                piece.SortVertices();
                piece.VertexIds.CopyTo(ids.AsSpan(at));
                piece.VertexOffsets.CopyTo(offsets.AsSpan(at));
                runStarts.Add(at);
            }
            var (unique, uniqueOffsets, rank) = MergedUnique(ids, offsets, runStarts);
            int n = unique.Length;
            PeakPending = Math.Max(PeakPending, n);

            // Ids sort by plane: the vertices below the slab's top plane (all, in the last slab) are a prefix.
            int final = isLast ? n : LowerBound(unique, end);
            var positions = new float[3 * (normals ? n : final)];
            for (int r = 0; r < positions.Length / 3; r++) coordinates.PositionOf(unique[r], uniqueOffsets[r], positions.AsSpan(3 * r, 3));
            double[] sums = normals ? new double[3 * n] : [];
            for (int k = 0; k < _pendingIds.Length && normals; k++)
                for (int d = 0; d < 3; d++) sums[3 * rank[k] + d] += _pendingNormals[3 * k + d];

            // Triangles: the held ones first (cell order), then the slab's; the top layer's wait for the next slab.
            var written = new List<long>(_held.Length + 3 * runs.Sum(r => r.Count));
            foreach (long corner in _held) written.Add(corner >= 0 ? corner : Vertices + rank[~corner]);
            long plane = coordinates.VolumeShape.Y * coordinates.VolumeShape.X;
            var held = new List<long>();
            Span<int> abc = stackalloc int[3];
            foreach (var (piece, first, count) in runs)
            {
                int at = pieces[piece];
                var corners = piece.TriangleCorners;
                var cells = piece.TriangleCells;
                for (int i = first; i < first + count; i++)
                {
                    for (int j = 0; j < 3; j++) abc[j] = rank[at + corners[3 * i + j]];
                    if (coordinates.ArrayOrder) (abc[1], abc[2]) = (abc[2], abc[1]);
                    if (normals)
                    {
                        var (nx, ny, nz) = MeshNormals.Face(positions.AsSpan(3 * abc[0], 3), positions.AsSpan(3 * abc[1], 3), positions.AsSpan(3 * abc[2], 3));
                        foreach (int v in abc) { sums[3 * v] += nx; sums[3 * v + 1] += ny; sums[3 * v + 2] += nz; }
                    }
                    bool ready = isLast || cells[i] / plane < end - 1;
                    foreach (int v in abc)
                    {
                        if (ready) written.Add(Vertices + v);
                        else held.Add(v < final ? Vertices + v : ~(long)(v - final));
                    }
                }
            }

            var normalsOut = normals ? new float[3 * final] : [];
            for (int r = 0; r < final && normals; r++) MeshNormals.Normalize(sums[3 * r], sums[3 * r + 1], sums[3 * r + 2], normalsOut.AsSpan(3 * r, 3));
            sink.AddVertices(positions.AsSpan(0, 3 * final), normalsOut);
            sink.AddTriangles(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(written));
            Vertices += final;
            TrianglesWritten += written.Count / 3;

            _pendingIds = unique[final..];
            _pendingOffsets = uniqueOffsets[final..];
            _pendingNormals = normals ? sums[(3 * final)..] : [];
            _held = held.ToArray();
        }

        /// <summary>The first index whose id lies on plane <paramref name="plane"/> or above.</summary>
        private int LowerBound(ulong[] sorted, long plane)
        {
            int lo = 0, hi = sorted.Length;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (coordinates.PlaneOf(sorted[mid]) < plane) lo = mid + 1;
                else hi = mid;
            }
            return lo;
        }
    }
}
