using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Memory;
using ChunkSeg.Contracts.Meshing;

namespace ChunkSeg.Coordinator.Meshing;

/// <summary>
/// One slab of pieces (the chunks of one z row) with the vertices it owns numbered in id order and its triangles
/// in cell order, all without sorting or hashing.
/// <code>
///   owner of a vertex   the chunk whose core holds its voxel with every coordinate clamped to the last cell
///                       (S − 2): a cell of that chunk has the vertex's edge, so the owner's piece holds it
///   id order            rows (z, y) of voxels in turn, each row's owners along x in turn, each owner's run
///                       of that row in its own (sorted) order
///   cell order          the same walk over rows of cells
/// </code>
/// Vertices a piece shares with a neighbour along y or x are found in the owner's piece by binary search; those
/// on the slab's top plane belong to the next slab, so the triangles of the top cell layer (the tail in cell
/// order) are handed on with the ids of those vertices (<see cref="Pending"/>). Each step runs on all pieces at once.
/// The slab's arrays (a few bytes per vertex and triangle: hundreds of megabytes for a dense surface) come from the
/// chunk buffer pool and go back on <see cref="Dispose"/>, so the next slab reuses them instead of page-faulting
/// fresh memory, which cost as much as the weld itself.
/// </summary>
internal sealed class WeldSlab : IDisposable
{
    /// <summary>A triangle corner that names a vertex of the next slab.</summary>
    public const int Pending = -1;

    private const int Foreign = -2;

    private readonly SurfacePiece[] _pieces;
    private readonly Long3 _shape;
    private readonly Long3 _chunk;
    private readonly int _chunksX;
    private readonly int[][] _map;
    private readonly ulong[] _ids;
    private readonly float[] _offsets;
    private readonly int[] _corners;
    private float[]? _positions;

    /// <param name="pieces">The slab's pieces, chunks along y then x (grid order).</param>
    /// <param name="start">The slab's first voxel plane.</param>
    /// <param name="end">The plane after the slab's core.</param>
    /// <param name="isLast">The last slab: nothing is handed on.</param>
    public WeldSlab(SurfacePiece[] pieces, ChunkGrid grid, long start, long end, bool isLast)
    {
        _pieces = pieces;
        _shape = grid.VolumeShape;
        _chunk = grid.ChunkShape;
        _chunksX = checked((int)grid.Blocks.X);
        int chunksY = checked((int)grid.Blocks.Y);
        if (pieces.Length != chunksY * _chunksX) throw new ArgumentException($"a slab has {chunksY * _chunksX} pieces, not {pieces.Length}");
        if (pieces.Any(p => p.Labelled)) throw new ArgumentException("label surfaces are welded object by object (LabelWelder), not by slab", nameof(pieces));
        IsLast = isLast;
        _map = new int[pieces.Length][];

        // Vertices: own rows (z, y) of voxels, counted per piece, then numbered across the slab.
        var zOwned = Owned(start, end, _shape.Z);
        var vertexRows = new RowWalk(pieces.Length, chunksY, _chunksX, zOwned, cy => Owned(cy * _chunk.Y, (cy + 1) * _chunk.Y, _shape.Y));
        Parallel.For(0, pieces.Length, p => _map[p] = RankOwnVertices(p, vertexRows));
        VertexCount = vertexRows.Number();
        _ids = ChunkBufferPool<ulong>.Shared.RentLarge(VertexCount);
        _offsets = ChunkBufferPool<float>.Shared.RentLarge(VertexCount);
        Parallel.For(0, pieces.Length, p => PlaceOwnVertices(p, vertexRows));
        Parallel.For(0, pieces.Length, p => FindForeignVertices(p));

        // Triangles: rows (z, y) of cells; the top layer (unless this is the last slab) is the tail.
        long cellEnd = Math.Min(end, _shape.Z - 1);
        var triangleRows = new RowWalk(pieces.Length, chunksY, _chunksX, (start, Math.Max(start, cellEnd)),
            cy => (cy * _chunk.Y, Math.Max(cy * _chunk.Y, Math.Min((cy + 1) * _chunk.Y, _shape.Y - 1))));
        var rank = new int[pieces.Length][];
        Parallel.For(0, pieces.Length, p => rank[p] = RankTriangles(p, triangleRows));
        TriangleCount = triangleRows.Number();
        // Not the last slab: its top plane is below the volume's last, so its top layer end − 1 is a cell layer.
        HeldLayer = isLast ? long.MaxValue : end - 1;
        HeldStart = isLast ? TriangleCount : triangleRows.FirstOfLayer(end - 1 - start);
        _corners = ChunkBufferPool<int>.Shared.RentLarge(3 * TriangleCount);
        int held = TriangleCount - HeldStart;
        HeldIds = new ulong[3 * held];
        HeldOffsets = new float[3 * held];
        Parallel.For(0, pieces.Length, p => PlaceTriangles(p, rank[p], triangleRows));
        foreach (var ranks in rank) ChunkBufferPool<int>.Shared.ReturnLarge(ranks);
    }

    public bool IsLast { get; }

    /// <summary>The vertices this slab owns, in id order.</summary>
    public int VertexCount { get; }

    /// <summary>The slab's triangles in cell order, three vertex numbers each (<see cref="Pending"/> for a vertex of the next slab).</summary>
    public int TriangleCount { get; }
    public Span<int> Corners => _corners.AsSpan(0, 3 * TriangleCount);

    /// <summary>The first triangle of the top cell layer, handed on to the next slab (<see cref="TriangleCount"/> when none is).</summary>
    public int HeldStart { get; }

    /// <summary>The cell layer whose triangles are handed on (long.MaxValue when none is).</summary>
    public long HeldLayer { get; }

    /// <summary>For the triangles from <see cref="HeldStart"/> on: each corner's id and offset.</summary>
    public ulong[] HeldIds { get; }
    public float[] HeldOffsets { get; }

    /// <summary>The vertices' positions, three per vertex, computed on all cores (once; the slab holds them).</summary>
    public ReadOnlySpan<float> Positions(MeshCoordinates coordinates)
    {
        if (_positions is null)
        {
            var positions = ChunkBufferPool<float>.Shared.RentLarge(3 * VertexCount);
            const int block = 1 << 14;
            Parallel.For(0, (VertexCount + block - 1) / block, b =>
            {
                int start = b * block, count = Math.Min(VertexCount - start, block);
                coordinates.PositionsOf(_ids.AsSpan(start, count), _offsets.AsSpan(start, count), positions.AsSpan(3 * start, 3 * count));
            });
            _positions = positions;
        }
        return _positions.AsSpan(0, 3 * VertexCount);
    }

    /// <summary>Gives the slab's arrays back to the pool; the slab is not used afterwards (<see cref="HeldIds"/> and <see cref="HeldOffsets"/> stay valid).</summary>
    public void Dispose()
    {
        foreach (var map in _map) if (map is not null) ChunkBufferPool<int>.Shared.ReturnLarge(map);
        Array.Clear(_map);
        ChunkBufferPool<ulong>.Shared.ReturnLarge(_ids);
        ChunkBufferPool<float>.Shared.ReturnLarge(_offsets);
        ChunkBufferPool<int>.Shared.ReturnLarge(_corners);
        if (_positions is not null) ChunkBufferPool<float>.Shared.ReturnLarge(_positions);
        _positions = null;
    }

    /// <summary>The number of a vertex this slab owns, by id (a vertex the previous slab handed on).</summary>
    public int Find(ulong id)
    {
        var (voxel, _) = SurfacePiece.DecodeVertexId(id);
        long y = voxel / _shape.X % _shape.Y, x = voxel % _shape.X;
        int p = checked((int)(OwnerBlock(y, _shape.Y, _chunk.Y) * _chunksX + OwnerBlock(x, _shape.X, _chunk.X)));
        int at = _pieces[p].VertexIds.BinarySearch(id);
        int number = at >= 0 ? _map[p][at] : -1;
        if (number < 0) throw new InvalidDataException($"vertex {id} is missing from chunk {_pieces[p].Chunk}'s surface piece, which owns it");
        return number;
    }

    /// <summary>The chunk index along an axis that owns coordinate <paramref name="v"/> (clamped to the last cell).</summary>
    private static long OwnerBlock(long v, long size, long chunk) => Math.Max(0, Math.Min(v, size - 2)) / chunk;

    /// <summary>The coordinates a chunk core [c0, c1) owns: its own, plus the last voxel when it holds the last cell.</summary>
    private static (long Start, long End) Owned(long c0, long c1, long size)
    {
        c1 = Math.Min(c1, size);
        if (c0 > size - 2) return (c0, c0);
        return (c0, c1 == size - 1 ? size : c1);
    }

    private (long Start, long End) OwnedX(int cx) => Owned(cx * _chunk.X, (cx + 1) * _chunk.X, _shape.X);

    /// <summary>Marks each vertex own (its rank within its row), foreign or pending, and counts the own ones per row.</summary>
    private int[] RankOwnVertices(int p, RowWalk rows)
    {
        var ids = _pieces[p].VertexIds;
        var map = ChunkBufferPool<int>.Shared.RentLarge(ids.Length);
        var counts = rows.Counts[p];
        var (z0, z1) = rows.Z;
        var (y0, y1) = rows.YOf(p);
        long x1 = OwnedX(p % _chunksX).End;
        var at = new RowOf(_shape);
        int row = -1, inRow = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            long x = at.Move((long)(ids[i] >> 4)), y = at.Y, z = at.Z;
            if (z >= z1) { map[i] = Pending; continue; }
            if (y >= y1 || x >= x1 || z < z0 || y < y0) { map[i] = Foreign; continue; }
            int r = rows.RowOf(p, z, y);
            if (r != row) { row = r; inRow = 0; }
            counts[r]++;
            map[i] = inRow++;
        }
        return map;
    }

    private void PlaceOwnVertices(int p, RowWalk rows)
    {
        var piece = _pieces[p];
        var ids = piece.VertexIds;
        var offsets = piece.VertexOffsets;
        var map = _map[p];
        var starts = rows.Starts[p];
        var at = new RowOf(_shape);
        for (int i = 0; i < ids.Length; i++)
        {
            if (map[i] < 0) continue;
            at.Move((long)(ids[i] >> 4));
            int n = map[i] += starts[rows.RowOf(p, at.Z, at.Y)];
            _ids[n] = ids[i];
            _offsets[n] = offsets[i];
        }
    }

    /// <summary>A vertex on the border to a neighbour along y or x takes the number it has in its owner's piece.</summary>
    private void FindForeignVertices(int p)
    {
        var map = _map[p];
        var ids = _pieces[p].VertexIds;
        for (int i = 0; i < ids.Length; i++)
            if (map[i] == Foreign) map[i] = Find(ids[i]);
    }

    /// <summary>Counts each row's triangles and returns each triangle's rank within its row.</summary>
    private int[] RankTriangles(int p, RowWalk rows)
    {
        var cells = _pieces[p].TriangleCells;
        var rank = ChunkBufferPool<int>.Shared.RentLarge(cells.Length);
        var counts = rows.Counts[p];
        var at = new RowOf(_shape);
        int row = -1, inRow = 0;
        for (int t = 0; t < cells.Length; t++)
        {
            at.Move(cells[t]);
            int r = rows.RowOf(p, at.Z, at.Y);
            if (r != row) { row = r; inRow = 0; }
            counts[r]++;
            rank[t] = inRow++;
        }
        return rank;
    }

    private void PlaceTriangles(int p, int[] rank, RowWalk rows)
    {
        var piece = _pieces[p];
        var cells = piece.TriangleCells;
        var corners = piece.TriangleCorners;
        var map = _map[p];
        var starts = rows.Starts[p];
        var at = new RowOf(_shape);
        for (int t = 0; t < cells.Length; t++)
        {
            at.Move(cells[t]);
            int n = starts[rows.RowOf(p, at.Z, at.Y)] + rank[t];
            for (int j = 0; j < 3; j++)
            {
                int number = map[corners[3 * t + j]];
                if (number == Pending && n < HeldStart)
                    throw new InvalidDataException($"chunk {piece.Chunk}'s surface piece has a triangle below the slab's top layer that names a vertex above it");
                _corners[3 * n + j] = number;
            }
            if (n < HeldStart) continue;
            int h = n - HeldStart;
            for (int j = 0; j < 3; j++)
            {
                HeldIds[3 * h + j] = piece.VertexIds[corners[3 * t + j]];
                HeldOffsets[3 * h + j] = piece.VertexOffsets[corners[3 * t + j]];
            }
        }
    }

    /// <summary>The row (z, y) of ascending voxel (or cell) indices, divided out only when the row changes.</summary>
    private struct RowOf(Long3 shape)
    {
        private long _first = long.MaxValue, _end = long.MinValue;

        public long Z { get; private set; }
        public long Y { get; private set; }

        /// <summary>Moves to <paramref name="voxel"/>'s row; returns its x.</summary>
        public long Move(long voxel)
        {
            if (voxel < _first || voxel >= _end)
            {
                long row = voxel / shape.X;
                (Z, Y) = (row / shape.Y, row % shape.Y);
                _first = row * shape.X;
                _end = _first + shape.X;
            }
            return voxel - _first;
        }
    }

    /// <summary>
    /// Rows (z, y) of a slab, each held by the pieces of one chunk row along x: per piece a count and a start per
    /// row, the starts numbered by walking z, then the chunk rows, their y, and the pieces along x.
    /// </summary>
    private sealed class RowWalk
    {
        private readonly int _chunksY, _chunksX;
        private readonly (long Start, long End)[] _y;
        private int[] _layerStarts = [];

        public RowWalk(int pieces, int chunksY, int chunksX, (long, long) z, Func<long, (long, long)> yOf)
        {
            _chunksY = chunksY;
            _chunksX = chunksX;
            Z = z;
            _y = Enumerable.Range(0, chunksY).Select(cy => yOf(cy)).ToArray();
            long layers = z.Item2 - z.Item1;
            Counts = new int[pieces][];
            Starts = new int[pieces][];
            for (int p = 0; p < pieces; p++)
            {
                var (y0, y1) = _y[p / chunksX];
                Counts[p] = new int[checked((int)(layers * (y1 - y0)))];
                Starts[p] = new int[Counts[p].Length];
            }
        }

        public (long Start, long End) Z { get; }
        public int[][] Counts { get; }
        public int[][] Starts { get; }

        public (long Start, long End) YOf(int piece) => _y[piece / _chunksX];

        /// <summary>Piece <paramref name="piece"/>'s own index of row (z, y).</summary>
        public int RowOf(int piece, long z, long y)
        {
            var (y0, y1) = YOf(piece);
            return checked((int)((z - Z.Start) * (y1 - y0) + (y - y0)));
        }

        /// <summary>Numbers the rows from the counts; returns the total.</summary>
        public int Number()
        {
            long layers = Z.End - Z.Start;
            _layerStarts = new int[layers + 1];
            long running = 0;
            for (long z = 0; z < layers; z++)
            {
                _layerStarts[z] = checked((int)running);
                for (int cy = 0; cy < _chunksY; cy++)
                {
                    long h = _y[cy].End - _y[cy].Start;
                    for (long y = 0; y < h; y++)
                    {
                        int r = (int)(z * h + y);
                        for (int p = cy * _chunksX; p < (cy + 1) * _chunksX; p++)
                        {
                            Starts[p][r] = checked((int)running);
                            running += Counts[p][r];
                        }
                    }
                }
            }
            _layerStarts[layers] = checked((int)running);
            return (int)running;
        }

        /// <summary>The number of the first element of layer <paramref name="z"/> (counted from the walk's first layer).</summary>
        public int FirstOfLayer(long z) => _layerStarts[z];
    }
}
