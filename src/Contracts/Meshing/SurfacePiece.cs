using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Contracts.Meshing;

/// <summary>
/// One chunk's share of a surface before welding: the triangles of the marching-cubes cells the chunk owns
/// (cells whose lowest corner lies in its core) and their vertices, named by global ids so that the
/// coordinator welds the pieces of all chunks by id alone.
/// <code>
///   edge vertex    id = voxel · 16 + 2 · axis + side   voxel = x + X·(y + Y·z), the lower end of the cell edge the
///                                                      vertex lies on; axis 0 = x, 1 = y, 2 = z; side 1 when it
///                                                      belongs to the surface of the edge's upper end's label
///                                                      (label surfaces), else 0
///                  position = voxel + Offset along axis   (in voxels; 0 &lt; Offset &lt; 1 up to rounding)
///   centre vertex  id = voxel · 16 + 8 + corner        a mask cell's tunnel vertex: voxel = the cell's lowest
///                                                      corner, corner (0-7) = the surface's lowest corner in the
///                                                      cell (one label's surface each)
///                  position = voxel + Offset along every axis
///   cell           = x + X·(y + Y·z) of the cell's lowest corner; triangles are in cell order, a cell's in table order
/// </code>
/// Ids sort by voxel first, so a plane's vertices precede the next plane's; a piece holds its vertices in id order.
/// Both chunks around a border compute a border vertex's id and offset from the same voxel values, so they
/// agree bit for bit. Stored as raw little-endian arrays behind a versioned header: a piece is read back once,
/// soon, and compressing it cost more than meshing it.
/// </summary>
public sealed class SurfacePiece
{
    private const uint Magic = 0x534D5343;   // "CSMS"
    private const int Version = 3;

    /// <summary>The id of the vertex on the edge from <paramref name="voxel"/> along <paramref name="axis"/> (see the class comment).</summary>
    public static ulong EdgeVertexId(long voxel, int axis, int side) => (ulong)voxel * 16 + (ulong)(2 * axis + side);

    /// <summary>The id of the centre vertex of the cell at <paramref name="voxel"/> for the surface whose lowest corner there is <paramref name="corner"/>.</summary>
    public static ulong CentreVertexId(long voxel, int corner) => (ulong)voxel * 16 + 8 + (ulong)corner;

    /// <summary>The voxel an id counts from, and the axis of its edge (−1 for a centre vertex).</summary>
    public static (long Voxel, int Axis) DecodeVertexId(ulong id)
    {
        int slot = (int)(id & 15);
        return ((long)(id >> 4), slot >= 8 ? -1 : slot >> 1);
    }

    private ulong[] _ids = new ulong[256];
    private float[] _offsets = new float[256];
    private ulong[] _labels = [];
    private long[] _cells = new long[256];
    private int[] _corners = new int[768];

    public SurfacePiece(long chunk, Long3 volumeShape, bool labelled)
    {
        Chunk = chunk;
        VolumeShape = volumeShape;
        Labelled = labelled;
        if (labelled) _labels = new ulong[256];
    }

    public long Chunk { get; }
    public Long3 VolumeShape { get; }

    /// <summary>True for per-label surfaces: every vertex carries the label whose surface it belongs to.</summary>
    public bool Labelled { get; }

    public int VertexCount { get; private set; }
    public int TriangleCount { get; private set; }

    public ReadOnlySpan<ulong> VertexIds => _ids.AsSpan(0, VertexCount);
    public ReadOnlySpan<float> VertexOffsets => _offsets.AsSpan(0, VertexCount);
    public ReadOnlySpan<ulong> VertexLabels => Labelled ? _labels.AsSpan(0, VertexCount) : default;
    public ReadOnlySpan<long> TriangleCells => _cells.AsSpan(0, TriangleCount);
    /// <summary>Three indices into this piece's vertices per triangle.</summary>
    public ReadOnlySpan<int> TriangleCorners => _corners.AsSpan(0, 3 * TriangleCount);

    public int AddVertex(ulong id, float offset, ulong label)
    {
        if (VertexCount == _ids.Length)
        {
            Array.Resize(ref _ids, 2 * _ids.Length);
            Array.Resize(ref _offsets, _ids.Length);
            if (Labelled) Array.Resize(ref _labels, _ids.Length);
        }
        _ids[VertexCount] = id;
        _offsets[VertexCount] = offset;
        if (Labelled) _labels[VertexCount] = label;
        return VertexCount++;
    }

    public void AddTriangle(long cell, int a, int b, int c)
    {
        if (TriangleCount == _cells.Length)
        {
            Array.Resize(ref _cells, 2 * _cells.Length);
            Array.Resize(ref _corners, 3 * _cells.Length);
        }
        _cells[TriangleCount] = cell;
        _corners[3 * TriangleCount] = a;
        _corners[3 * TriangleCount + 1] = b;
        _corners[3 * TriangleCount + 2] = c;
        TriangleCount++;
    }

    /// <summary>Stores the piece; its vertices must be in id order (the kernels add them so), which lets the welder merge without sorting.</summary>
    public void Write(Stream destination)
    {
        var ids = VertexIds;
        for (int i = 1; i < ids.Length; i++)
            if (ids[i - 1] >= ids[i]) throw new InvalidOperationException($"chunk {Chunk}'s surface piece: vertex {i} is out of id order");
        var buffered = new BufferedStream(destination, 1 << 16);
        using var writer = new BinaryWriter(buffered, System.Text.Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(Version);
        writer.Write(Chunk);
        writer.Write(VolumeShape.Z); writer.Write(VolumeShape.Y); writer.Write(VolumeShape.X);
        writer.Write(Labelled);
        writer.Write(VertexCount);
        writer.Write(TriangleCount);
        var layers = LastLayers();
        writer.Write(layers.Length);
        foreach (var (label, layer) in layers) { writer.Write(label); writer.Write(layer); }
        writer.Flush();
        buffered.Write(MemoryMarshal.AsBytes(VertexIds));
        buffered.Write(MemoryMarshal.AsBytes(VertexOffsets));
        if (Labelled) buffered.Write(MemoryMarshal.AsBytes(VertexLabels));
        buffered.Write(MemoryMarshal.AsBytes(TriangleCells));
        buffered.Write(MemoryMarshal.AsBytes(TriangleCorners));
        buffered.Flush();
    }

    /// <summary>
    /// For label surfaces: each label with triangles here and the last cell layer (z) that holds one of them,
    /// by label. The coordinator learns from these alone when an object's surface is complete.
    /// </summary>
    public (ulong Label, long LastLayer)[] LastLayers()
    {
        if (!Labelled) return [];
        var last = new Dictionary<ulong, long>();
        long plane = VolumeShape.Y * VolumeShape.X;
        for (int t = 0; t < TriangleCount; t++)
        {
            ulong label = _labels[_corners[3 * t]];
            long layer = _cells[t] / plane;
            if (!last.TryGetValue(label, out long known) || layer > known) last[label] = layer;
        }
        return last.OrderBy(p => p.Key).Select(p => (p.Key, p.Value)).ToArray();
    }

    /// <summary>Reads only the <see cref="LastLayers"/> table from the start of a stored piece.</summary>
    public static (ulong Label, long LastLayer)[] ReadLastLayers(Stream stream, string source)
    {
        try
        {
            using var reader = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            var header = ReadHeader(reader);
            return header.Layers;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new Errors.VolumeException(source, $"unreadable surface piece: {e.Message}", e);
        }
    }

    private static (long Chunk, Long3 Shape, bool Labelled, int Vertices, int Triangles, (ulong, long)[] Layers) ReadHeader(BinaryReader reader)
    {
        if (reader.ReadUInt32() != Magic) throw new InvalidDataException("not a ChunkSeg surface piece");
        int version = reader.ReadInt32();
        if (version != Version) throw new InvalidDataException($"surface piece version {version}; this build reads version {Version}");
        long chunk = reader.ReadInt64();
        var shape = new Long3(reader.ReadInt64(), reader.ReadInt64(), reader.ReadInt64());
        bool labelled = reader.ReadBoolean();
        int vertices = reader.ReadInt32(), triangles = reader.ReadInt32();
        if (vertices < 0 || triangles < 0 || triangles > Array.MaxLength / 3)
            throw new InvalidDataException($"{vertices} vertices and {triangles} triangles");
        int count = reader.ReadInt32();
        if (count < 0 || count > triangles) throw new InvalidDataException($"{count} labels for {triangles} triangles");
        var layers = new (ulong, long)[count];
        for (int i = 0; i < count; i++) layers[i] = (reader.ReadUInt64(), reader.ReadInt64());
        return (chunk, shape, labelled, vertices, triangles, layers);
    }

    /// <summary>Reads a piece written by <see cref="Write"/>; <paramref name="source"/> names the file in errors.</summary>
    public static SurfacePiece Read(Stream stream, string source)
    {
        try
        {
            var zip = new BufferedStream(stream, 1 << 16);
            using var reader = new BinaryReader(zip, System.Text.Encoding.UTF8, leaveOpen: true);
            var (chunk, shape, labelled, vertices, triangles, _) = ReadHeader(reader);
            var piece = new SurfacePiece(chunk, shape, labelled);
            piece._ids = new ulong[Math.Max(vertices, 1)];
            piece._offsets = new float[piece._ids.Length];
            piece._labels = labelled ? new ulong[piece._ids.Length] : [];
            piece._cells = new long[Math.Max(triangles, 1)];
            piece._corners = new int[3 * piece._cells.Length];
            zip.ReadExactly(MemoryMarshal.AsBytes(piece._ids.AsSpan(0, vertices)));
            zip.ReadExactly(MemoryMarshal.AsBytes(piece._offsets.AsSpan(0, vertices)));
            if (labelled) zip.ReadExactly(MemoryMarshal.AsBytes(piece._labels.AsSpan(0, vertices)));
            zip.ReadExactly(MemoryMarshal.AsBytes(piece._cells.AsSpan(0, triangles)));
            zip.ReadExactly(MemoryMarshal.AsBytes(piece._corners.AsSpan(0, 3 * triangles)));
            piece.VertexCount = vertices;
            piece.TriangleCount = triangles;
            foreach (int corner in piece.TriangleCorners)
                if ((uint)corner >= (uint)vertices) throw new InvalidDataException($"a triangle names vertex {corner} of {vertices}");
            var ids = piece.VertexIds;
            for (int i = 1; i < ids.Length; i++)
                if (ids[i - 1] >= ids[i]) throw new InvalidDataException($"vertex ids out of order at vertex {i}");
            return piece;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new Errors.VolumeException(source, $"unreadable surface piece: {e.Message}", e);
        }
    }
}
