using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Memory;

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
/// soon, and compressing it cost more than meshing it. A label-surface piece is built, held and stored label by
/// label (each label's vertices in id order, its triangles in cell order, corners numbered within the label)
/// behind a table of <see cref="LabelSection"/>s, so the welder reads one object's share of a chunk without the
/// rest (<see cref="ReadSection"/>) and nothing is ever sorted by label.
/// </summary>
public sealed class SurfacePiece : IDisposable
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

    // A single surface is one part; a label-surface piece has one per label, found by a dictionary and, along the
    // sweep's runs, by the last one used.
    private Part _single = new(0);
    private readonly Dictionary<ulong, Part> _parts = new();
    private Part? _lastPart;
    private Part[]? _ordered;

    public SurfacePiece(long chunk, Long3 volumeShape, bool labelled)
    {
        Chunk = chunk;
        VolumeShape = volumeShape;
        Labelled = labelled;
    }

    public long Chunk { get; }
    public Long3 VolumeShape { get; }

    /// <summary>True for per-label surfaces: vertices and triangles are kept label by label.</summary>
    public bool Labelled { get; }

    /// <summary>
    /// Gives the piece's large arrays back to the chunk buffer pool, once it is stored or welded: the piece, its sections
    /// and any span read from it must not be used afterwards. (Not disposing only leaves them to the GC.)
    /// </summary>
    public void Dispose()
    {
        _single.Dispose();
        foreach (var part in _parts.Values) part.Dispose();
        _parts.Clear();
        _lastPart = null;
        _ordered = null;
        VertexCount = TriangleCount = 0;
    }

    public int VertexCount { get; private set; }
    public int TriangleCount { get; private set; }

    /// <summary>Label by label where each one's vertices and triangles lie (empty for a single surface).</summary>
    public IReadOnlyList<LabelSection> Sections => Labelled ? SectionsOf(Parts) : [];

    /// <summary>A single surface's vertex ids, in id order (a label-surface piece is read by <see cref="Section"/>).</summary>
    public ReadOnlySpan<ulong> VertexIds => Single.Ids.AsSpan(0, VertexCount);
    public ReadOnlySpan<float> VertexOffsets => Single.Offsets.AsSpan(0, VertexCount);
    public ReadOnlySpan<long> TriangleCells => Single.Cells.AsSpan(0, TriangleCount);
    /// <summary>Three indices into this piece's vertices per triangle.</summary>
    public ReadOnlySpan<int> TriangleCorners => Single.Corners.AsSpan(0, 3 * TriangleCount);

    private Part Single => Labelled ? throw new InvalidOperationException("a label-surface piece is read label by label (Sections, Section)") : _single;

    /// <summary>
    /// Adds a vertex (in id order: per label for a label-surface piece) and returns its index: in the piece, or for a
    /// label-surface piece within its label's share, which is what that label's triangles name.
    /// </summary>
    public int AddVertex(ulong id, float offset, ulong label)
    {
        VertexCount++;
        return (Labelled ? PartOf(label) : _single).AddVertex(id, offset);
    }

    /// <summary>Adds a triangle (in cell order) whose corners <see cref="AddVertex"/> returned; <paramref name="label"/> for a label-surface piece.</summary>
    public void AddTriangle(long cell, int a, int b, int c, ulong label = 0)
    {
        TriangleCount++;
        (Labelled ? PartOf(label) : _single).AddTriangle(cell, a, b, c);
    }

    private Part PartOf(ulong label)
    {
        if (_lastPart?.Label == label) return _lastPart;
        if (!_parts.TryGetValue(label, out var part))
        {
            _parts.Add(label, part = new Part(label));
            _ordered = null;
        }
        return _lastPart = part;
    }

    /// <summary>The label parts in label order.</summary>
    private Part[] Parts => _ordered ??= _parts.Values.OrderBy(p => p.Label).ToArray();

    /// <summary>Where each label's share lies in the piece laid out label by label (as stored); a label needs a triangle to have a section.</summary>
    private LabelSection[] SectionsOf(Part[] parts)
    {
        var sections = new List<LabelSection>(parts.Length);
        int firstVertex = 0, firstTriangle = 0;
        foreach (var part in parts)
        {
            // Cells ascend within a label, so its last triangle lies in its last layer.
            if (part.Triangles > 0)
                sections.Add(new LabelSection(part.Label, part.Cells[part.Triangles - 1] / (VolumeShape.Y * VolumeShape.X), firstVertex, part.Vertices, firstTriangle, part.Triangles));
            firstVertex += part.Vertices;
            firstTriangle += part.Triangles;
        }
        return sections.ToArray();
    }

    /// <summary>
    /// One surface's vertices (in id order) and triangles (in cell order), corners numbered within it. The kernel grows
    /// the arrays by doubling; from <see cref="ChunkBufferPool.LargeFrom"/> elements on they come from the chunk buffer pool and go
    /// back to it on <see cref="Dispose"/>: a chunk's surface reaches millions of triangles, and fresh arrays at every
    /// doubling of every chunk cost more in page faults than the meshing itself.
    /// </summary>
    private sealed class Part(ulong label)
    {
        public readonly ulong Label = label;
        public ulong[] Ids = new ulong[64];
        public float[] Offsets = new float[64];
        public long[] Cells = new long[64];
        public int[] Corners = new int[192];
        public int Vertices, Triangles;
        private readonly bool _grown = true;   // false: arrays read from storage, not the pool's

        /// <summary>A part holding arrays read from storage (<paramref name="vertices"/> and <paramref name="triangles"/> of them in use).</summary>
        public Part(ulong label, ulong[] ids, float[] offsets, long[] cells, int[] corners, int vertices, int triangles) : this(label) =>
            (Ids, Offsets, Cells, Corners, Vertices, Triangles, _grown) = (ids, offsets, cells, corners, vertices, triangles, false);

        public int AddVertex(ulong id, float offset)
        {
            if (Vertices == Ids.Length || Vertices == Offsets.Length)
            {
                Ids = Grown(Ids, Math.Max(64, 2 * Vertices), Vertices);
                Offsets = Grown(Offsets, Math.Max(64, 2 * Vertices), Vertices);
            }
            Ids[Vertices] = id;
            Offsets[Vertices] = offset;
            return Vertices++;
        }

        public void AddTriangle(long cell, int a, int b, int c)
        {
            if (Triangles == Cells.Length || 3 * Triangles + 3 > Corners.Length)
            {
                Cells = Grown(Cells, Math.Max(64, 2 * Triangles), Triangles);
                Corners = Grown(Corners, Math.Max(192, 6 * Triangles), 3 * Triangles);
            }
            Cells[Triangles] = cell;
            Corners[3 * Triangles] = a;
            Corners[3 * Triangles + 1] = b;
            Corners[3 * Triangles + 2] = c;
            Triangles++;
        }

        /// <summary>Gives the pooled arrays back; the part is empty afterwards.</summary>
        public void Dispose()
        {
            if (!_grown) return;
            Return(ref Ids); Return(ref Offsets); Return(ref Cells); Return(ref Corners);
            Vertices = Triangles = 0;
        }

        private T[] Grown<T>(T[] array, int length, int used)
        {
            if (!_grown) throw new InvalidOperationException("a surface piece read from storage is not added to");
            var grown = ChunkBufferPool<T>.Shared.RentLarge(length);
            array.AsSpan(0, used).CopyTo(grown);
            ChunkBufferPool<T>.Shared.ReturnLarge(array);
            return grown;
        }

        private static void Return<T>(ref T[] array)
        {
            ChunkBufferPool<T>.Shared.ReturnLarge(array);
            array = [];
        }
    }

    /// <summary>
    /// Stores the piece; a single surface's vertices must be in id order (the kernels add them so), which lets the
    /// welders merge without sorting. A label-surface piece is stored label by label, behind its section table.
    /// </summary>
    public void Write(Stream destination)
    {
        if (!Labelled)
        {
            var ids = VertexIds;
            for (int i = 1; i < ids.Length; i++)
                if (ids[i - 1] >= ids[i]) throw new InvalidOperationException($"chunk {Chunk}'s surface piece: vertex {i} is out of id order");
        }
        var parts = Labelled ? Parts : [_single];
        var sections = Labelled ? SectionsOf(parts) : [];
        var buffered = new BufferedStream(destination, 1 << 16);
        using var writer = new BinaryWriter(buffered, System.Text.Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(Version);
        writer.Write(Chunk);
        writer.Write(VolumeShape.Z); writer.Write(VolumeShape.Y); writer.Write(VolumeShape.X);
        writer.Write(Labelled);
        writer.Write(VertexCount);
        writer.Write(TriangleCount);
        writer.Write(sections.Length);
        foreach (var section in sections)
        {
            writer.Write(section.Label); writer.Write(section.LastLayer);
            writer.Write(section.FirstVertex); writer.Write(section.VertexCount);
            writer.Write(section.FirstTriangle); writer.Write(section.TriangleCount);
        }
        writer.Flush();
        // Each array part by part (label by label); corners numbered in the piece, as a reader of the whole piece expects.
        foreach (var part in parts) buffered.Write(MemoryMarshal.AsBytes(part.Ids.AsSpan(0, part.Vertices)));
        foreach (var part in parts) buffered.Write(MemoryMarshal.AsBytes(part.Offsets.AsSpan(0, part.Vertices)));
        if (Labelled)
        {
            var labels = new ulong[4096];
            foreach (var part in parts)
            {
                labels.AsSpan().Fill(part.Label);
                for (int left = part.Vertices; left > 0; left -= labels.Length)
                    buffered.Write(MemoryMarshal.AsBytes(labels.AsSpan(0, Math.Min(left, labels.Length))));
            }
        }
        foreach (var part in parts) buffered.Write(MemoryMarshal.AsBytes(part.Cells.AsSpan(0, part.Triangles)));
        int first = 0;
        var corners = new int[3 * 4096];
        foreach (var part in parts)
        {
            for (int from = 0; from < 3 * part.Triangles; from += corners.Length)
            {
                int count = Math.Min(corners.Length, 3 * part.Triangles - from);
                for (int k = 0; k < count; k++) corners[k] = first + part.Corners[from + k];
                buffered.Write(MemoryMarshal.AsBytes(corners.AsSpan(0, count)));
            }
            first += part.Vertices;
        }
        buffered.Flush();
    }

    /// <summary>The header this piece is stored with.</summary>
    public PieceIndex Index
    {
        get
        {
            var sections = Labelled ? SectionsOf(Parts) : [];
            return new(Chunk, VolumeShape, Labelled, VertexCount, TriangleCount, HeaderBytes + (long)sections.Length * SectionBytes, sections);
        }
    }

    /// <summary>One label's share of a label-surface piece (a section of <see cref="Sections"/>), its corners numbered within the section; no copy.</summary>
    public PieceSection Section(LabelSection section)
    {
        var part = _parts[section.Label];
        return new PieceSection(Chunk, part.Ids.AsMemory(0, part.Vertices), part.Offsets.AsMemory(0, part.Vertices),
            part.Cells.AsMemory(0, part.Triangles), part.Corners.AsMemory(0, 3 * part.Triangles));
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
            CheckSection(section, ids, corners);
            return new PieceSection(index.Chunk, ids, offsets, cells, corners);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new Errors.VolumeException(source, $"unreadable surface piece: {e.Message}", e);
        }
    }

    /// <summary>
    /// Renumbers a stored section's corners (numbered in the piece) within the section and checks that they name its
    /// vertices and that its ids ascend.
    /// </summary>
    private static void CheckSection(LabelSection section, ReadOnlySpan<ulong> ids, Span<int> corners)
    {
        for (int k = 0; k < corners.Length; k++)
        {
            corners[k] -= section.FirstVertex;
            if ((uint)corners[k] >= (uint)section.VertexCount)
                throw new InvalidDataException($"a triangle of label {section.Label} names a vertex outside its section");
        }
        for (int i = 1; i < ids.Length; i++)
            if (ids[i - 1] >= ids[i]) throw new InvalidDataException($"label {section.Label}'s vertex ids out of order at vertex {i}");
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
            var (vertices, triangles) = (index.Vertices, index.Triangles);
            var flat = new SurfacePiece(index.Chunk, index.VolumeShape, labelled: false)
            {
                _single = new Part(0, new ulong[Math.Max(vertices, 1)], new float[Math.Max(vertices, 1)], new long[Math.Max(triangles, 1)],
                    new int[3 * Math.Max(triangles, 1)], vertices, triangles),
                VertexCount = vertices, TriangleCount = triangles,
            };
            var stored = flat._single;
            var labels = new ulong[index.Labelled ? vertices : 0];
            zip.ReadExactly(MemoryMarshal.AsBytes(stored.Ids.AsSpan(0, vertices)));
            zip.ReadExactly(MemoryMarshal.AsBytes(stored.Offsets.AsSpan(0, vertices)));
            zip.ReadExactly(MemoryMarshal.AsBytes(labels.AsSpan()));
            zip.ReadExactly(MemoryMarshal.AsBytes(stored.Cells.AsSpan(0, triangles)));
            zip.ReadExactly(MemoryMarshal.AsBytes(stored.Corners.AsSpan(0, 3 * triangles)));
            foreach (int corner in flat.TriangleCorners)
                if ((uint)corner >= (uint)vertices) throw new InvalidDataException($"a triangle names vertex {corner} of {vertices}");
            if (!index.Labelled)
            {
                var ids = flat.VertexIds;
                for (int i = 1; i < ids.Length; i++)
                    if (ids[i - 1] >= ids[i]) throw new InvalidDataException($"vertex ids out of order at vertex {i}");
                return flat;
            }
            // Back into parts, label by label, from the sections' ranges.
            var piece = new SurfacePiece(index.Chunk, index.VolumeShape, labelled: true);
            foreach (var section in index.Sections)
            {
                for (int v = section.FirstVertex; v < section.FirstVertex + section.VertexCount; v++)
                    if (labels[v] != section.Label) throw new InvalidDataException($"vertex {v} is not label {section.Label}'s");
                var ids = stored.Ids.AsSpan(section.FirstVertex, section.VertexCount).ToArray();
                var corners = stored.Corners.AsSpan(3 * section.FirstTriangle, 3 * section.TriangleCount).ToArray();
                CheckSection(section, ids, corners);
                piece._parts.Add(section.Label, new Part(section.Label, ids, stored.Offsets.AsSpan(section.FirstVertex, section.VertexCount).ToArray(),
                    stored.Cells.AsSpan(section.FirstTriangle, section.TriangleCount).ToArray(), corners, section.VertexCount, section.TriangleCount));
                piece.VertexCount += section.VertexCount;
                piece.TriangleCount += section.TriangleCount;
            }
            if (piece.VertexCount != vertices || piece.TriangleCount != triangles)
                throw new InvalidDataException("the label sections do not cover every vertex and triangle");
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

/// <summary>
/// One label's share of one piece: vertex ids in order with their offsets, triangles in cell order with corners
/// numbered within the section (views of a piece in memory, or arrays read from storage).
/// </summary>
public sealed record PieceSection(long Chunk, ReadOnlyMemory<ulong> Ids, ReadOnlyMemory<float> Offsets, ReadOnlyMemory<long> Cells, ReadOnlyMemory<int> Corners);
