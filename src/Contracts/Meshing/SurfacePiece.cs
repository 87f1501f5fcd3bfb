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
/// soon, and compressing it cost more than meshing it. A label-surface piece is stored label by label (each
/// label's vertices in id order, its triangles in cell order) behind a table of <see cref="LabelSection"/>s, so
/// the welder reads one object's share of a chunk without the rest (<see cref="ReadSection"/>).
/// </summary>
public sealed class SurfacePiece
{
    private const uint Magic = 0x534D5343;   // "CSMS"
    private const int Version = 4;

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

    private LabelSection[] _sections = [];

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

    /// <summary>Label by label where each one's vertices and triangles lie: set on a piece <see cref="ByLabel"/> or read from storage, else empty.</summary>
    public IReadOnlyList<LabelSection> Sections => _sections;

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

    /// <summary>
    /// Stores the piece; its vertices must be in id order (the kernels add them so), which lets the welders merge
    /// without sorting. A label-surface piece is stored <see cref="ByLabel"/>.
    /// </summary>
    public void Write(Stream destination)
    {
        if (_sections.Length == 0)
        {
            var ids = VertexIds;
            for (int i = 1; i < ids.Length; i++)
                if (ids[i - 1] >= ids[i]) throw new InvalidOperationException($"chunk {Chunk}'s surface piece: vertex {i} is out of id order");
        }
        var stored = Labelled && _sections.Length == 0 && TriangleCount > 0 ? ByLabel() : this;
        var buffered = new BufferedStream(destination, 1 << 16);
        using var writer = new BinaryWriter(buffered, System.Text.Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(Version);
        writer.Write(Chunk);
        writer.Write(VolumeShape.Z); writer.Write(VolumeShape.Y); writer.Write(VolumeShape.X);
        writer.Write(Labelled);
        writer.Write(VertexCount);
        writer.Write(TriangleCount);
        writer.Write(stored._sections.Length);
        foreach (var section in stored._sections)
        {
            writer.Write(section.Label); writer.Write(section.LastLayer);
            writer.Write(section.FirstVertex); writer.Write(section.VertexCount);
            writer.Write(section.FirstTriangle); writer.Write(section.TriangleCount);
        }
        writer.Flush();
        buffered.Write(MemoryMarshal.AsBytes(stored.VertexIds));
        buffered.Write(MemoryMarshal.AsBytes(stored.VertexOffsets));
        if (Labelled) buffered.Write(MemoryMarshal.AsBytes(stored.VertexLabels));
        buffered.Write(MemoryMarshal.AsBytes(stored.TriangleCells));
        buffered.Write(MemoryMarshal.AsBytes(stored.TriangleCorners));
        buffered.Flush();
    }

    /// <summary>
    /// This label-surface piece laid out label by label (a copy): each label's vertices in id order, then its
    /// triangles in cell order, with the <see cref="Sections"/> table. A triangle's label is its corners'.
    /// </summary>
    public SurfacePiece ByLabel()
    {
        if (!Labelled) throw new InvalidOperationException("only label-surface pieces are split by label");
        // A counting sort by label (stable, so ids stay in order within a label and cells within its triangles):
        // a chunk holds few labels, each vertex's found once per run of equal labels along the sweep.
        var labels = VertexLabels;
        var rankOf = new Dictionary<ulong, int>();
        var vertexRank = new int[VertexCount];
        ulong runLabel = 0;
        int runRank = -1;
        for (int i = 0; i < labels.Length; i++)
        {
            if (runRank < 0 || labels[i] != runLabel)
            {
                runLabel = labels[i];
                if (!rankOf.TryGetValue(runLabel, out runRank)) rankOf.Add(runLabel, runRank = rankOf.Count);
            }
            vertexRank[i] = runRank;
        }
        var distinct = rankOf.Keys.ToArray();
        var firstSeen = rankOf.Values.ToArray();
        Array.Sort(distinct, firstSeen);
        var rank = new int[distinct.Length];   // first-seen number → rank in label order
        for (int r = 0; r < distinct.Length; r++) rank[firstSeen[r]] = r;
        for (int i = 0; i < vertexRank.Length; i++) vertexRank[i] = rank[vertexRank[i]];

        var triangleRank = new int[TriangleCount];
        for (int t = 0; t < triangleRank.Length; t++) triangleRank[t] = vertexRank[_corners[3 * t]];
        var vertexOrder = CountingOrder(vertexRank, distinct.Length, out var vertexStarts);
        var triangleOrder = CountingOrder(triangleRank, distinct.Length, out var triangleStarts);
        var newNumber = new int[VertexCount];
        for (int i = 0; i < vertexOrder.Length; i++) newNumber[vertexOrder[i]] = i;

        var byLabel = new SurfacePiece(Chunk, VolumeShape, labelled: true)
        {
            _ids = new ulong[Math.Max(VertexCount, 1)],
            _offsets = new float[Math.Max(VertexCount, 1)],
            _labels = new ulong[Math.Max(VertexCount, 1)],
            _cells = new long[Math.Max(TriangleCount, 1)],
            _corners = new int[3 * Math.Max(TriangleCount, 1)],
            VertexCount = VertexCount,
            TriangleCount = TriangleCount,
        };
        for (int i = 0; i < vertexOrder.Length; i++)
        {
            int from = vertexOrder[i];
            (byLabel._ids[i], byLabel._offsets[i], byLabel._labels[i]) = (_ids[from], _offsets[from], _labels[from]);
        }
        for (int t = 0; t < triangleOrder.Length; t++)
        {
            int from = triangleOrder[t];
            byLabel._cells[t] = _cells[from];
            for (int k = 0; k < 3; k++) byLabel._corners[3 * t + k] = newNumber[_corners[3 * from + k]];
        }

        var sections = new List<LabelSection>();
        long plane = VolumeShape.Y * VolumeShape.X;
        for (int r = 0; r < distinct.Length; r++)
        {
            int firstTriangle = triangleStarts[r], triangles = triangleStarts[r + 1] - firstTriangle;
            if (triangles == 0) continue;   // a label with vertices but no triangle of its own holds nothing to weld
            // Cells ascend within a label, so its last triangle lies in its last layer.
            sections.Add(new LabelSection(distinct[r], byLabel._cells[firstTriangle + triangles - 1] / plane,
                vertexStarts[r], vertexStarts[r + 1] - vertexStarts[r], firstTriangle, triangles));
        }
        byLabel._sections = sections.ToArray();
        return byLabel;
    }

    /// <summary>The header this piece is stored with (its sections are those of a piece <see cref="ByLabel"/> or read from storage).</summary>
    public PieceIndex Index => new(Chunk, VolumeShape, Labelled, VertexCount, TriangleCount, HeaderBytes + (long)_sections.Length * SectionBytes, _sections);

    /// <summary>One label's share of a piece <see cref="ByLabel"/> (or read from storage), its corners numbered within the section.</summary>
    public PieceSection Section(LabelSection section)
    {
        var corners = _corners.AsSpan(3 * section.FirstTriangle, 3 * section.TriangleCount).ToArray();
        for (int k = 0; k < corners.Length; k++) corners[k] -= section.FirstVertex;
        return new PieceSection(Chunk, _ids.AsSpan(section.FirstVertex, section.VertexCount).ToArray(),
            _offsets.AsSpan(section.FirstVertex, section.VertexCount).ToArray(), _cells.AsSpan(section.FirstTriangle, section.TriangleCount).ToArray(), corners);
    }

    /// <summary>The stable order of items by key (keys in [0, <paramref name="keys"/>)), and where each key's items start (one more entry at the end).</summary>
    private static int[] CountingOrder(int[] keyOf, int keys, out int[] starts)
    {
        starts = new int[keys + 1];
        foreach (int key in keyOf) starts[key + 1]++;
        for (int k = 0; k < keys; k++) starts[k + 1] += starts[k];
        var next = starts[..keys];
        var order = new int[keyOf.Length];
        for (int i = 0; i < keyOf.Length; i++) order[next[keyOf[i]]++] = i;
        return order;
    }

    /// <summary>
    /// Reads only the header of a stored piece: its counts and <see cref="LabelSection"/> table, which tell the
    /// welder where each object's share lies and when an object is complete (its last layer).
    /// </summary>
    public static PieceIndex ReadIndex(Stream stream, string source)
    {
        try
        {
            using var reader = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            return ReadHeader(reader);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new Errors.VolumeException(source, $"unreadable surface piece: {e.Message}", e);
        }
    }

    /// <summary>Reads one label's share of a stored piece (seeking past the rest), its corners numbered within the section.</summary>
    public static PieceSection ReadSection(Stream stream, PieceIndex index, LabelSection section, string source)
    {
        try
        {
            long v = index.Vertices, t = index.Triangles, at = index.DataStart;
            var ids = new ulong[section.VertexCount];
            var offsets = new float[section.VertexCount];
            var cells = new long[section.TriangleCount];
            var corners = new int[3 * section.TriangleCount];
            ReadAt(stream, at + 8L * section.FirstVertex, MemoryMarshal.AsBytes(ids.AsSpan()));
            at += 8 * v;
            ReadAt(stream, at + 4L * section.FirstVertex, MemoryMarshal.AsBytes(offsets.AsSpan()));
            at += 4 * v + (index.Labelled ? 8 * v : 0);
            ReadAt(stream, at + 8L * section.FirstTriangle, MemoryMarshal.AsBytes(cells.AsSpan()));
            at += 8 * t;
            ReadAt(stream, at + 12L * section.FirstTriangle, MemoryMarshal.AsBytes(corners.AsSpan()));
            for (int k = 0; k < corners.Length; k++)
            {
                corners[k] -= section.FirstVertex;
                if ((uint)corners[k] >= (uint)section.VertexCount)
                    throw new InvalidDataException($"a triangle of label {section.Label} names a vertex outside its section");
            }
            for (int i = 1; i < ids.Length; i++)
                if (ids[i - 1] >= ids[i]) throw new InvalidDataException($"label {section.Label}'s vertex ids out of order at vertex {i}");
            return new PieceSection(index.Chunk, ids, offsets, cells, corners);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new Errors.VolumeException(source, $"unreadable surface piece: {e.Message}", e);
        }
    }

    private static void ReadAt(Stream stream, long position, Span<byte> destination)
    {
        stream.Position = position;
        stream.ReadExactly(destination);
    }

    private const int HeaderBytes = 4 + 4 + 8 + 3 * 8 + 1 + 4 + 4 + 4, SectionBytes = 8 + 8 + 4 * 4;

    private static PieceIndex ReadHeader(BinaryReader reader)
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
        if (count < 0 || count > triangles || (count > 0 && !labelled)) throw new InvalidDataException($"{count} label sections for {triangles} triangles");
        var sections = new LabelSection[count];
        for (int i = 0; i < count; i++)
        {
            var s = new LabelSection(reader.ReadUInt64(), reader.ReadInt64(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32());
            if (s.FirstVertex < 0 || s.VertexCount < 0 || (long)s.FirstVertex + s.VertexCount > vertices ||
                s.FirstTriangle < 0 || s.TriangleCount <= 0 || (long)s.FirstTriangle + s.TriangleCount > triangles || (i > 0 && sections[i - 1].Label >= s.Label))
                throw new InvalidDataException($"label section {i} (label {s.Label}) lies outside the piece or out of label order");
            sections[i] = s;
        }
        return new PieceIndex(chunk, shape, labelled, vertices, triangles, HeaderBytes + (long)count * SectionBytes, sections);
    }

    /// <summary>Reads a piece written by <see cref="Write"/>; <paramref name="source"/> names the file in errors.</summary>
    public static SurfacePiece Read(Stream stream, string source)
    {
        try
        {
            var zip = new BufferedStream(stream, 1 << 16);
            using var reader = new BinaryReader(zip, System.Text.Encoding.UTF8, leaveOpen: true);
            var index = ReadHeader(reader);
            var (chunk, shape, labelled, vertices, triangles) = (index.Chunk, index.VolumeShape, index.Labelled, index.Vertices, index.Triangles);
            var piece = new SurfacePiece(chunk, shape, labelled) { _sections = index.Sections };
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
            if (!labelled)
            {
                var ids = piece.VertexIds;
                for (int i = 1; i < ids.Length; i++)
                    if (ids[i - 1] >= ids[i]) throw new InvalidDataException($"vertex ids out of order at vertex {i}");
            }
            return piece;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new Errors.VolumeException(source, $"unreadable surface piece: {e.Message}", e);
        }
    }
}

/// <summary>
/// Where one label's share of a label-surface piece lies: vertices [<paramref name="FirstVertex"/>, + <paramref name="VertexCount"/>)
/// and triangles [<paramref name="FirstTriangle"/>, + <paramref name="TriangleCount"/>); <paramref name="LastLayer"/> is
/// the last cell layer (z) holding one of its triangles.
/// </summary>
public readonly record struct LabelSection(ulong Label, long LastLayer, int FirstVertex, int VertexCount, int FirstTriangle, int TriangleCount);

/// <summary>A stored piece's header: counts, where its arrays start, and its label sections (empty for a single surface).</summary>
public sealed record PieceIndex(long Chunk, Long3 VolumeShape, bool Labelled, int Vertices, int Triangles, long DataStart, LabelSection[] Sections);

/// <summary>One label's share of one piece: vertex ids in order with their offsets, triangles in cell order with corners numbered within the section.</summary>
public sealed record PieceSection(long Chunk, ulong[] Ids, float[] Offsets, long[] Cells, int[] Corners);
