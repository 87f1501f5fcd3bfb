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
            foreach (var (piece, first, count) in slab.Triangles)
            {
                var corners = piece.TriangleCorners;
                for (int i = first; i < first + count; i++)
                {
                    int a = corners[3 * i];
                    ulong label = piece.Labelled ? piece.VertexLabels[a] : 0;
                    if (!open.TryGetValue(label, out var surface)) open[label] = surface = new ObjectSurface();
                    int before = surface.VertexCount;
                    surface.Add(piece, a, corners[3 * i + 1], corners[3 * i + 2]);
                    pending += surface.VertexCount - before;
                }
            }
            peak = Math.Max(peak, pending);
            var complete = open.Where(o => slab.IsLast || LastLayerOf(lastLayers, o.Key) < slab.End)
                .OrderBy(o => LastLayerOf(lastLayers, o.Key)).ThenBy(o => o.Key).ToList();
            foreach (var (label, surface) in complete)
            {
                open.Remove(label);
                pending -= surface.VertexCount;
                var mesh = surface.ToMesh(_coordinates);
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

    /// <summary>One object's surface as it grows: vertices by id, triangles in arrival (cell) order.</summary>
    private sealed class ObjectSurface
    {
        private readonly Dictionary<ulong, int> _index = new();
        private readonly List<ulong> _ids = new();
        private readonly List<float> _offsets = new();
        private readonly List<int> _corners = new();

        public int VertexCount => _ids.Count;

        public void Add(SurfacePiece piece, int a, int b, int c)
        {
            _corners.Add(IndexOf(piece, a));
            _corners.Add(IndexOf(piece, b));
            _corners.Add(IndexOf(piece, c));
        }

        private int IndexOf(SurfacePiece piece, int vertex)
        {
            ulong id = piece.VertexIds[vertex];
            if (_index.TryGetValue(id, out int known)) return known;
            _index[id] = _ids.Count;
            _ids.Add(id);
            _offsets.Add(piece.VertexOffsets[vertex]);
            return _ids.Count - 1;
        }

        /// <summary>The mesh with vertices in id order.</summary>
        public TriangleMesh ToMesh(MeshCoordinates coordinates)
        {
            int n = _ids.Count;
            var order = new int[n];
            for (int i = 0; i < n; i++) order[i] = i;
            var keys = _ids.ToArray();
            Array.Sort(keys, order);
            var rank = new int[n];
            var positions = new float[3 * n];
            for (int r = 0; r < n; r++)
            {
                rank[order[r]] = r;
                coordinates.PositionOf(keys[r], _offsets[order[r]], positions.AsSpan(3 * r, 3));
            }
            var triangles = new int[_corners.Count];
            for (int i = 0; i < triangles.Length; i++) triangles[i] = rank[_corners[i]];
            if (coordinates.ArrayOrder) ReverseWinding(triangles);
            return new TriangleMesh(positions, triangles);
        }
    }

    /// <summary>A single surface written as the slabs arrive (see the class comment).</summary>
    private sealed class StreamingSurface(MeshCoordinates coordinates, bool normals, IMeshSink sink)
    {
        private sealed class Vertex(ulong id, float offset)
        {
            public readonly ulong Id = id;
            public readonly float Offset = offset;
            public double Nx, Ny, Nz;
            public long Output = -1;
        }

        private readonly Dictionary<ulong, Vertex> _pending = new();
        private readonly List<(Vertex A, Vertex B, Vertex C, long Layer)> _held = new();
        private readonly float[] _a = new float[3], _b = new float[3], _c = new float[3];

        public long Vertices { get; private set; }
        public long TrianglesWritten { get; private set; }
        public long PeakPending { get; private set; }

        public void Add(List<(SurfacePiece Piece, int First, int Count)> runs, long end, bool isLast)
        {
            long plane = coordinates.VolumeShape.Y * coordinates.VolumeShape.X;
            foreach (var (piece, first, count) in runs)
            {
                var corners = piece.TriangleCorners;
                for (int i = first; i < first + count; i++)
                {
                    var a = VertexOf(piece, corners[3 * i]);
                    var b = VertexOf(piece, corners[3 * i + 1]);
                    var c = VertexOf(piece, corners[3 * i + 2]);
                    if (normals)
                    {
                        coordinates.PositionOf(a.Id, a.Offset, _a);
                        coordinates.PositionOf(b.Id, b.Offset, _b);
                        coordinates.PositionOf(c.Id, c.Offset, _c);
                        var (nx, ny, nz) = coordinates.ArrayOrder ? MeshNormals.Face(_a, _c, _b) : MeshNormals.Face(_a, _b, _c);
                        foreach (var v in (Span<Vertex>)[a, b, c]) { v.Nx += nx; v.Ny += ny; v.Nz += nz; }
                    }
                    _held.Add((a, b, c, piece.TriangleCells[i] / plane));
                }
            }
            PeakPending = Math.Max(PeakPending, _pending.Count);

            var final = _pending.Values.Where(v => isLast || coordinates.PlaneOf(v.Id) < end).OrderBy(v => v.Id).ToList();
            var positions = new float[3 * final.Count];
            var normalsOut = normals ? new float[3 * final.Count] : [];
            for (int i = 0; i < final.Count; i++)
            {
                var v = final[i];
                v.Output = Vertices + i;
                _pending.Remove(v.Id);
                coordinates.PositionOf(v.Id, v.Offset, positions.AsSpan(3 * i, 3));
                if (normals) MeshNormals.Normalize(v.Nx, v.Ny, v.Nz, normalsOut.AsSpan(3 * i, 3));
            }
            sink.AddVertices(positions, normalsOut);
            Vertices += final.Count;

            int ready = 0;
            while (ready < _held.Count && (isLast || _held[ready].Layer < end - 1)) ready++;
            var triangles = new long[3 * ready];
            for (int i = 0; i < ready; i++)
            {
                var (a, b, c, _) = _held[i];
                if (coordinates.ArrayOrder) (b, c) = (c, b);
                triangles[3 * i] = a.Output; triangles[3 * i + 1] = b.Output; triangles[3 * i + 2] = c.Output;
            }
            _held.RemoveRange(0, ready);
            sink.AddTriangles(triangles);
            TrianglesWritten += ready;
        }

        private Vertex VertexOf(SurfacePiece piece, int index)
        {
            ulong id = piece.VertexIds[index];
            if (!_pending.TryGetValue(id, out var v))
            {
                v = new Vertex(id, piece.VertexOffsets[index]);
                _pending[id] = v;
            }
            return v;
        }
    }
}
