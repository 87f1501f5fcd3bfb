using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Meshing;
using ChunkSeg.Kernels.Meshing;

namespace ChunkSeg.Coordinator.Meshing;

/// <summary>What a welder wrote; <paramref name="PeakVertices"/>: the most vertices held at once (one slab, or one object).</summary>
public sealed record WeldSummary(long Vertices, long Triangles, long Objects, long PeakVertices);

/// <summary>
/// Welds the chunks' <see cref="SurfacePiece"/>s into one mesh, one slab of chunks (a row along z) at a time, and
/// writes it in a canonical order that does not depend on the chunk shape: vertices by id (z, y, x of their
/// edge), triangles by cell (z, y, x), a cell's in table order. So any chunking writes the same file.
/// <code>
///   slab k covers voxel planes [a, b):  it numbers the vertices it owns (planes a … b − 1) in id order
///                                       (<see cref="WeldSlab"/>) and writes them
///   its triangles of cell layers &lt; b − 1 name only those (or earlier ones) → written in cell order
///   layer b − 1's triangles (touching plane b, the next slab's) wait for slab k + 1
/// </code>
/// A surface that is post-processed (smoothed, decimated) is gathered whole the same way, then written. Memory: one
/// slab of pieces (a post-processed surface is held whole). Label surfaces are welded object by object instead
/// (<see cref="LabelWelder"/>).
/// </summary>
public sealed class SurfaceWelder
{
    private readonly ChunkGrid _grid;
    private readonly Func<long, SurfacePiece> _pieceOf;
    private readonly MeshCoordinates _coordinates;
    private readonly bool _normals;
    private readonly Func<TriangleMesh, TriangleMesh>? _finish;

    /// <param name="pieceOf">Reads chunk i's piece (a single surface's); called once per chunk of the time point, in slab order.</param>
    /// <param name="finish">Post-processing of the complete surface (smoothing, decimation), or null.</param>
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
        if (_finish is not null) return WeldWhole(t, sink, name);
        var stream = new StreamingSurface(_coordinates, _normals, sink);
        sink.BeginObject(name);
        long peak = 0;
        foreach (var slab in Slabs(t))
        {
            using var release = slab;   // its pooled arrays serve the next slab
            stream.Add(slab);
            peak = Math.Max(peak, slab.VertexCount);
        }
        sink.Complete();
        return new WeldSummary(stream.Vertices, stream.Triangles, 1, peak);
    }

    /// <summary>A post-processed single surface: gathered whole (smoothing and decimation need all of it), then written.</summary>
    private WeldSummary WeldWhole(long t, IMeshSink sink, string name)
    {
        var surface = new WholeSurface();
        long peak = 0;
        Held held = Held.None;
        foreach (var slab in Slabs(t))
        {
            using var release = slab;
            peak = Math.Max(peak, slab.VertexCount);
            var positions = slab.Positions(_coordinates);
            var local = new int[slab.VertexCount];
            for (int i = 0; i < local.Length; i++) local[i] = surface.AddVertex(positions, i);
            // The previous slab's top layer, then this slab's triangles in cell order; its own top layer waits.
            for (int h = 0; h < held.Count; h++)
            {
                int Corner(int k) => held.Corners[k] >= 0 ? (int)held.Corners[k] : local[slab.Find(held.Ids[k])];
                surface.AddTriangle(Corner(3 * h), Corner(3 * h + 1), Corner(3 * h + 2));
            }
            var corners = slab.Corners;
            for (int k = 0; k < 3 * slab.HeldStart; k += 3) surface.AddTriangle(local[corners[k]], local[corners[k + 1]], local[corners[k + 2]]);
            held = Held.From(slab, c => local[c]);
        }
        var triangles = surface.Triangles.ToArray();
        if (_coordinates.ArrayOrder) ObjectOutput.ReverseWinding(triangles);
        var done = ObjectOutput.Finish(name, surface.Positions.ToArray(), triangles, _normals, _finish);
        long vertexCount = 0, triangleCount = 0;
        ObjectOutput.Write(sink, done, ref vertexCount, ref triangleCount);
        sink.Complete();
        return new WeldSummary(vertexCount, triangleCount, 1, peak);
    }

    private IEnumerable<WeldSlab> Slabs(long t)
    {
        long perSlab = _grid.Blocks.Y * _grid.Blocks.X;
        for (long bz = 0; bz < _grid.Blocks.Z; bz++)
        {
            long first = _grid.IndexOfBlock(t, new Long3(bz, 0, 0));
            var pieces = new SurfacePiece[perSlab];
            Parallel.For(0, perSlab, k => pieces[k] = _pieceOf(first + k));
            long start = bz * _grid.ChunkShape.Z, end = Math.Min(start + _grid.ChunkShape.Z, _grid.VolumeShape.Z);
            yield return new WeldSlab(pieces, _grid, start, end, bz == _grid.Blocks.Z - 1);
        }
    }

    /// <summary>
    /// The top-layer triangles a slab hands on: per corner the number it already has (written, or object-local)
    /// or −1 with its id, to be found in the next slab.
    /// </summary>
    private sealed record Held(long[] Corners, ulong[] Ids)
    {
        public static readonly Held None = new([], []);

        public int Count => Corners.Length / 3;

        public static Held From(WeldSlab slab, Func<int, long> numberOf)
        {
            int count = slab.TriangleCount - slab.HeldStart;
            var corners = new long[3 * count];
            for (int k = 0; k < corners.Length; k++)
            {
                int c = slab.Corners[3 * slab.HeldStart + k];
                corners[k] = c == WeldSlab.Pending ? -1 : numberOf(c);
            }
            return new Held(corners, slab.HeldIds);
        }
    }

    /// <summary>A surface as it grows: vertices in id order, triangles in cell order.</summary>
    private sealed class WholeSurface
    {
        private float[] _positions = new float[192];
        private int[] _corners = new int[192];
        private int _cornerCount;

        public int VertexCount { get; private set; }

        /// <summary>Adds vertex <paramref name="i"/> of <paramref name="positions"/> (three floats each); returns its number here.</summary>
        public int AddVertex(ReadOnlySpan<float> positions, int i)
        {
            if (3 * VertexCount == _positions.Length) Array.Resize(ref _positions, 2 * _positions.Length);
            int at = 3 * VertexCount;
            (_positions[at], _positions[at + 1], _positions[at + 2]) = (positions[3 * i], positions[3 * i + 1], positions[3 * i + 2]);
            return VertexCount++;
        }

        public void AddTriangle(int a, int b, int c)
        {
            if (_cornerCount + 3 > _corners.Length) Array.Resize(ref _corners, 2 * _corners.Length);
            (_corners[_cornerCount], _corners[_cornerCount + 1], _corners[_cornerCount + 2]) = (a, b, c);
            _cornerCount += 3;
        }

        public ReadOnlySpan<float> Positions => _positions.AsSpan(0, 3 * VertexCount);
        public ReadOnlySpan<int> Triangles => _corners.AsSpan(0, _cornerCount);
    }

    /// <summary>A single surface written as the slabs arrive (see the class comment).</summary>
    private sealed class StreamingSurface(MeshCoordinates coordinates, bool normals, IMeshSink sink)
    {
        private Held _held = Held.None;
        // With normals: each held triangle's face normal, and each held corner's normal sum when it is written already.
        private double[] _heldFaces = [];

        public long Vertices { get; private set; }
        public long Triangles { get; private set; }

        public void Add(WeldSlab slab)
        {
            int n = slab.VertexCount;
            long first = Vertices;
            var positions = slab.Positions(coordinates);

            // The held triangles first (cell order), then the slab's below its top layer, numbered from `first`
            // (the held ones' earlier vertices below it).
            var held = new int[3 * _held.Count];
            for (int k = 0; k < held.Length; k++)
                held[k] = _held.Corners[k] >= 0 ? checked((int)(_held.Corners[k] - first)) : slab.Find(_held.Ids[k]);
            var own = slab.Corners[..(3 * slab.HeldStart)];
            if (coordinates.ArrayOrder)
            {
                ObjectOutput.ReverseWinding(held);
                ObjectOutput.ReverseWinding(own);
            }

            float[] normalsOut = [];
            if (normals) normalsOut = Normals(slab, positions, held, own);
            sink.AddVertices(positions, normalsOut);
            sink.AddTriangles(held, first);
            sink.AddTriangles(own, first);
            Vertices += n;
            Triangles += (held.Length + own.Length) / 3;
            _held = Held.From(slab, c => first + c);
        }

        /// <summary>
        /// Area-weighted vertex normals of the slab's vertices, summed in cell order: the held triangles' faces
        /// (computed when they were held) to the corners they did not reach yet, the slab's written triangles, then
        /// its top layer's faces to the corners written now (their other corners get them with the next slab).
        /// </summary>
        private float[] Normals(WeldSlab slab, ReadOnlySpan<float> positions, int[] held, ReadOnlySpan<int> own)
        {
            int n = slab.VertexCount;
            var sums = new double[3 * n];
            // A held corner numbered 0 or more is this slab's: the face did not reach it yet.
            for (int h = 0; h < held.Length / 3; h++)
                for (int j = 0; j < 3; j++)
                {
                    int v = held[3 * h + j];
                    if (v >= 0) for (int d = 0; d < 3; d++) sums[3 * v + d] += _heldFaces[3 * h + d];
                }
            for (int k = 0; k < own.Length; k += 3)
            {
                int a = own[k], b = own[k + 1], c = own[k + 2];
                var (nx, ny, nz) = MeshNormals.Face(positions.Slice(3 * a, 3), positions.Slice(3 * b, 3), positions.Slice(3 * c, 3));
                foreach (int v in (ReadOnlySpan<int>)[a, b, c]) { sums[3 * v] += nx; sums[3 * v + 1] += ny; sums[3 * v + 2] += nz; }
            }
            int count = slab.TriangleCount - slab.HeldStart;
            _heldFaces = new double[3 * count];
            Span<float> corner = stackalloc float[9];
            var top = slab.Corners[(3 * slab.HeldStart)..];
            for (int h = 0; h < count; h++)
            {
                for (int j = 0; j < 3; j++)
                {
                    int c = top[3 * h + j];
                    if (c == WeldSlab.Pending) coordinates.PositionOf(slab.HeldIds[3 * h + j], slab.HeldOffsets[3 * h + j], corner.Slice(3 * j, 3));
                    else positions.Slice(3 * c, 3).CopyTo(corner.Slice(3 * j, 3));
                }
                int second = coordinates.ArrayOrder ? 2 : 1, third = coordinates.ArrayOrder ? 1 : 2;
                var (nx, ny, nz) = MeshNormals.Face(corner[..3], corner.Slice(3 * second, 3), corner.Slice(3 * third, 3));
                (_heldFaces[3 * h], _heldFaces[3 * h + 1], _heldFaces[3 * h + 2]) = (nx, ny, nz);
                foreach (int v in top.Slice(3 * h, 3))
                    if (v >= 0) { sums[3 * v] += nx; sums[3 * v + 1] += ny; sums[3 * v + 2] += nz; }
            }
            var normalsOut = new float[3 * n];
            for (int r = 0; r < n; r++) MeshNormals.Normalize(sums[3 * r], sums[3 * r + 1], sums[3 * r + 2], normalsOut.AsSpan(3 * r, 3));
            return normalsOut;
        }
    }
}
