using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Meshing;

namespace ChunkSeg.Storage.Meshing;

/// <summary>
/// The scratch directory of a meshing job, removed once the mesh file is committed:
/// <code>
///   OUT.obj.work/
///     job.txt          the job's parameters: a rerun resumes only the same job
///     pieces/N.bin     chunk N's <see cref="SurfacePiece"/> (written atomically, flushed)
///     pieces.jsonl     the pass's chunk manifest: a chunk listed there is done
/// </code>
/// </summary>
public sealed class MeshWorkspace(string root) : JobWorkspace(root, "meshing")
{
    private string Pieces => Path.Combine(Root, "pieces");

    /// <summary>The workspace for the mesh file at <paramref name="outputPath"/>.</summary>
    public static MeshWorkspace For(string outputPath) => new(outputPath + ".work");

    protected override IEnumerable<string> Folders => [Pieces];

    /// <summary>Where the extraction pass records its finished chunks.</summary>
    public string ManifestPath => Path.Combine(Root, "pieces.jsonl");

    public bool HasPiece(long chunk) => File.Exists(PiecePath(chunk));

    public void WritePiece(SurfacePiece piece) => WriteAtomically(PiecePath(piece.Chunk), piece.Write);

    /// <summary>Chunk <paramref name="chunk"/>'s piece file as stored (for its checksum).</summary>
    public byte[] ReadPieceBytes(long chunk) => Open(chunk, (stream, _) =>
    {
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    });

    public SurfacePiece ReadPiece(long chunk) => Open(chunk, (stream, path) =>
    {
        var piece = SurfacePiece.Read(stream, path);
        return piece.Chunk == chunk ? piece : throw new VolumeException(path, $"holds chunk {piece.Chunk}, not chunk {chunk}");
    });

    /// <summary>Chunk <paramref name="chunk"/>'s piece header: counts and label sections.</summary>
    public PieceIndex ReadIndex(long chunk) => Open(chunk, (stream, path) =>
    {
        var index = SurfacePiece.ReadIndex(stream, path);
        return index.Chunk == chunk ? index : throw new VolumeException(path, $"holds chunk {index.Chunk}, not chunk {chunk}");
    });

    /// <summary>One label's share of a piece (<paramref name="index"/> from <see cref="ReadIndex"/>).</summary>
    public PieceSection ReadSection(PieceIndex index, LabelSection section) =>
        Open(index.Chunk, (stream, path) => SurfacePiece.ReadSection(stream, index, section, path));

    private T Open<T>(long chunk, Func<Stream, string, T> read)
    {
        string path = PiecePath(chunk);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            return read(stream, path);
        }
        catch (FileNotFoundException e)
        {
            throw new VolumeException(path, "the surface piece of a finished chunk is missing; pass --overwrite to mesh from scratch", e);
        }
    }

    private string PiecePath(long chunk) => Path.Combine(Pieces, $"{chunk}.bin");
}
