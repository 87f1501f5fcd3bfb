using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Meshing;

namespace ChunkSeg.Storage.Meshing;

/// <summary>Mesh file formats: Wavefront OBJ (text) and binary little-endian PLY.</summary>
public enum MeshFormat { Obj, Ply }

/// <summary>
/// Streams a welded mesh to <c>PATH.partial</c> and renames it to PATH in <see cref="IMeshSink.Complete"/>, so a
/// file under the final name is always whole. Disposing without completing deletes the partial file.
/// </summary>
public abstract class MeshFileWriter : IMeshSink, IDisposable
{
    protected MeshFileWriter(string path)
    {
        Path = path;
        PartialPath = path + ".partial";
    }

    public string Path { get; }
    protected string PartialPath { get; }
    public long VertexCount { get; protected set; }
    public long TriangleCount { get; protected set; }

    /// <summary>The format a file name asks for (.obj or .ply).</summary>
    public static MeshFormat FormatOf(string path) => System.IO.Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".obj" => MeshFormat.Obj,
        ".ply" => MeshFormat.Ply,
        _ => throw new UsageException($"{path}: the mesh file must end in .obj or .ply"),
    };

    /// <param name="header">Comment lines (units, axis order, source) written at the top.</param>
    /// <param name="labelled">PLY only: give every face the numeric id of its object (a "label" property).</param>
    public static MeshFileWriter Create(string path, IReadOnlyList<string> header, bool labelled) => FormatOf(path) switch
    {
        MeshFormat.Obj => new ObjWriter(path, header),
        _ => new PlyWriter(path, header, labelled),
    };

    public abstract void BeginObject(string name);
    public abstract void AddVertices(ReadOnlySpan<float> positions, ReadOnlySpan<float> normals);
    public abstract void AddTriangles(ReadOnlySpan<int> corners, long first);
    public abstract void Complete();
    protected abstract void Close();

    protected void Commit()
    {
        Close();
        File.Move(PartialPath, Path, overwrite: true);
    }

    public void Dispose()
    {
        Close();
        if (File.Exists(PartialPath)) File.Delete(PartialPath);
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// Wavefront OBJ: per object <c>o</c> and <c>g</c> lines naming it, its <c>v x y z</c> lines (shortest round-trip
/// floats), optional <c>vn</c> lines, then its <c>f a b c</c> (or <c>f a//a b//b c//c</c>) lines, 1-based. Normals
/// and faces wait in scratch files until the object ends, so an object streamed in slabs is laid out exactly
/// like one written at once.
/// </summary>
internal sealed class ObjWriter : MeshFileWriter
{
    private readonly FileStream _stream, _normalLines, _faceLines;
    private bool _normals;
    private bool _closed;

    public ObjWriter(string path, IReadOnlyList<string> header) : base(path)
    {
        _stream = new FileStream(PartialPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        _normalLines = new FileStream(PartialPath + ".normals", FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20, FileOptions.DeleteOnClose);
        _faceLines = new FileStream(PartialPath + ".faces", FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20, FileOptions.DeleteOnClose);
        foreach (var line in header) Write(_stream, $"# {line}\n");
    }

    public override void BeginObject(string name)
    {
        EndObject();
        Write(_stream, $"o {name}\ng {name}\n");
    }

    private void EndObject()
    {
        foreach (var part in new[] { _normalLines, _faceLines })
        {
            part.Flush();
            part.Position = 0;
            part.CopyTo(_stream);
            part.SetLength(0);
        }
    }

    public override void AddVertices(ReadOnlySpan<float> positions, ReadOnlySpan<float> normals)
    {
        if (positions.IsEmpty) return;
        _normals = !normals.IsEmpty;
        WriteLines(_stream, positions.ToArray(), 3, MaxTripleLine, (values, i, line) => FormatTriple("v "u8, values.AsSpan(3 * i, 3), line));
        WriteLines(_normalLines, normals.ToArray(), 3, MaxTripleLine, (values, i, line) => FormatTriple("vn "u8, values.AsSpan(3 * i, 3), line));
        VertexCount += positions.Length / 3;
    }

    public override void AddTriangles(ReadOnlySpan<int> corners, long first)
    {
        bool normals = _normals;
        WriteLines(_faceLines, corners.ToArray(), 3, 2 + 3 * (3 * 21), (values, i, line) =>
        {
            int n = 0;
            line[n++] = (byte)'f';
            for (int j = 0; j < 3; j++)
            {
                line[n++] = (byte)' ';
                long index = first + values[3 * i + j] + 1;
                index.TryFormat(line[n..], out int w, default, CultureInfo.InvariantCulture);
                n += w;
                if (!normals) continue;
                line[n++] = (byte)'/'; line[n++] = (byte)'/';
                index.TryFormat(line[n..], out w, default, CultureInfo.InvariantCulture);
                n += w;
            }
            line[n++] = (byte)'\n';
            return n;
        });
        TriangleCount += corners.Length / 3;
    }

    private delegate int LineFormatter<T>(T[] values, int item, Span<byte> line);

    private const int MaxTripleLine = 4 + 3 * 16;
    private const int LinesPerBlock = 1 << 14;

    /// <summary>
    /// Formats one line per <paramref name="stride"/> values, blocks of lines on all cores (text formatting is
    /// the slow part of an OBJ), and writes the blocks in order: the same bytes as a line-by-line loop.
    /// </summary>
    private static void WriteLines<T>(Stream stream, T[] values, int stride, int maxLine, LineFormatter<T> format)
    {
        int lines = values.Length / stride;
        if (lines == 0) return;
        int blocks = (lines + LinesPerBlock - 1) / LinesPerBlock;
        var texts = new byte[blocks][];
        var lengths = new int[blocks];
        Parallel.For(0, blocks, b =>
        {
            int first = b * LinesPerBlock, last = Math.Min(lines, first + LinesPerBlock);
            var text = ArrayPool<byte>.Shared.Rent((last - first) * maxLine);
            int n = 0;
            for (int i = first; i < last; i++) n += format(values, i, text.AsSpan(n));
            (texts[b], lengths[b]) = (text, n);
        });
        for (int b = 0; b < blocks; b++)
        {
            stream.Write(texts[b], 0, lengths[b]);
            ArrayPool<byte>.Shared.Return(texts[b]);
        }
    }

    private static int FormatTriple(ReadOnlySpan<byte> prefix, ReadOnlySpan<float> xyz, Span<byte> line)
    {
        prefix.CopyTo(line);
        int n = prefix.Length;
        for (int j = 0; j < 3; j++)
        {
            if (j > 0) line[n++] = (byte)' ';
            xyz[j].TryFormat(line[n..], out int w, default, CultureInfo.InvariantCulture);
            n += w;
        }
        line[n++] = (byte)'\n';
        return n;
    }

    public override void Complete()
    {
        EndObject();
        Commit();
    }

    protected override void Close()
    {
        if (_closed) return;
        _closed = true;
        _stream.Flush();
        _stream.Dispose();
        _normalLines.Dispose();
        _faceLines.Dispose();
    }

    private static void Write(Stream stream, string text) => stream.Write(Encoding.UTF8.GetBytes(text));
}

/// <summary>
/// Binary little-endian PLY: float x y z (and nx ny nz), faces as a uchar-counted int list (and a uint "label"
/// per face for label surfaces). PLY wants both counts in the header, so vertices and faces are streamed to two
/// scratch files and joined behind the header at the end.
/// </summary>
internal sealed class PlyWriter : MeshFileWriter
{
    private readonly IReadOnlyList<string> _header;
    private readonly bool _labelled;
    private readonly string _verticesPath, _facesPath;
    private readonly FileStream _vertices, _faces;
    // Records are encoded a batch at a time: a FileStream call per 12-byte vertex cost more than the encoding.
    private readonly byte[] _buffer = new byte[1 << 16];
    private bool _normals;
    private uint _label;
    private bool _closed;

    public PlyWriter(string path, IReadOnlyList<string> header, bool labelled) : base(path)
    {
        _header = header;
        _labelled = labelled;
        _verticesPath = PartialPath + ".vertices";
        _facesPath = PartialPath + ".faces";
        _vertices = new FileStream(_verticesPath, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20, FileOptions.DeleteOnClose);
        _faces = new FileStream(_facesPath, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20, FileOptions.DeleteOnClose);
    }

    public override void BeginObject(string name)
    {
        // Label surfaces are named label_<id>; the id is what a PLY face can carry.
        _label = name.StartsWith("label_", StringComparison.Ordinal) && uint.TryParse(name.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out uint id) ? id : 0;
    }

    public override void AddVertices(ReadOnlySpan<float> positions, ReadOnlySpan<float> normals)
    {
        if (positions.IsEmpty) return;
        _normals = !normals.IsEmpty;
        int record = _normals ? 24 : 12, n = 0;
        for (int v = 0; v < positions.Length; v += 3)
        {
            if (n + record > _buffer.Length) { _vertices.Write(_buffer, 0, n); n = 0; }
            for (int j = 0; j < 3; j++, n += 4) BinaryPrimitives.WriteSingleLittleEndian(_buffer.AsSpan(n), positions[v + j]);
            if (_normals)
                for (int j = 0; j < 3; j++, n += 4) BinaryPrimitives.WriteSingleLittleEndian(_buffer.AsSpan(n), normals[v + j]);
        }
        _vertices.Write(_buffer, 0, n);
        VertexCount += positions.Length / 3;
        if (VertexCount > int.MaxValue) throw new VolumeException(Path, "more than 2^31 vertices do not fit a PLY file's int indices; write .obj instead");
    }

    public override void AddTriangles(ReadOnlySpan<int> corners, long first)
    {
        int record = _labelled ? 17 : 13, n = 0;
        for (int i = 0; i < corners.Length; i += 3)
        {
            if (n + record > _buffer.Length) { _faces.Write(_buffer, 0, n); n = 0; }
            var face = _buffer.AsSpan(n, record);
            face[0] = 3;
            for (int j = 0; j < 3; j++) BinaryPrimitives.WriteInt32LittleEndian(face[(1 + 4 * j)..], (int)(first + corners[i + j]));
            if (_labelled) BinaryPrimitives.WriteUInt32LittleEndian(face[13..], _label);
            n += record;
        }
        _faces.Write(_buffer, 0, n);
        TriangleCount += corners.Length / 3;
    }

    public override void Complete()
    {
        using (var file = new FileStream(PartialPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            var header = new StringBuilder("ply\nformat binary_little_endian 1.0\n");
            foreach (var line in _header) header.Append("comment ").Append(line).Append('\n');
            header.Append(CultureInfo.InvariantCulture, $"element vertex {VertexCount}\nproperty float x\nproperty float y\nproperty float z\n");
            if (_normals) header.Append("property float nx\nproperty float ny\nproperty float nz\n");
            header.Append(CultureInfo.InvariantCulture, $"element face {TriangleCount}\nproperty list uchar int vertex_indices\n");
            if (_labelled) header.Append("property uint label\n");
            header.Append("end_header\n");
            file.Write(Encoding.ASCII.GetBytes(header.ToString()));
            foreach (var part in new[] { _vertices, _faces })
            {
                part.Flush();
                part.Position = 0;
                part.CopyTo(file);
            }
        }
        Commit();
    }

    protected override void Close()
    {
        if (_closed) return;
        _closed = true;
        _vertices.Dispose();
        _faces.Dispose();
    }
}
