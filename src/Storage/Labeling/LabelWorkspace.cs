using System.IO.Compression;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Labeling;

namespace ChunkSeg.Storage.Labeling;

/// <summary>
/// The scratch directory of a labelling job, beside its output, removed when the job commits:
/// <code>
///   OUT.work/
///     job.txt            the job's parameters: a rerun resumes only the same job
///     local.zarr/        pass 1: each chunk's local labels (uint32), staged and resumable like any output
///     summaries/N.bin    pass 1: chunk N's piece statistics and face planes (<see cref="ChunkLabelSummary"/>)
///     maps/N.bin         numbering: chunk N's local label → final id table, read by the relabel pass
///     final.zarr/        with --dilate/--erode: the relabel pass's final ids, read with a halo by the last pass
///     objects/N.bin      with --dilate/--erode: the statistics of every object in chunk N's core after it
/// </code>
/// Every file is written under a temporary name and renamed, so a crash never leaves half a file behind.
/// </summary>
public sealed class LabelWorkspace(string root) : JobWorkspace(root, "labelling")
{
    public string LocalLabels => Path.Combine(Root, "local.zarr");
    private string Summaries => Path.Combine(Root, "summaries");
    private string Maps => Path.Combine(Root, "maps");
    private string Objects => Path.Combine(Root, "objects");

    /// <summary>The final labels before <c>--dilate</c>/<c>--erode</c> reshape them.</summary>
    public string FinalLabels => Path.Combine(Root, "final.zarr");

    /// <summary>The workspace for the output at <paramref name="outputRoot"/>.</summary>
    public static LabelWorkspace For(string outputRoot) => new(outputRoot.TrimEnd('/') + ".work");

    protected override IEnumerable<string> Folders => [Summaries, Maps, Objects];

    public void WriteSummary(ChunkLabelSummary summary) =>
        WriteAtomically(SummaryPath(summary.Chunk), summary.Write);

    public ChunkLabelSummary ReadSummary(long chunk)
    {
        string path = SummaryPath(chunk);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            var summary = ChunkLabelSummary.Read(stream, path);
            if (summary.Chunk != chunk) throw new VolumeException(path, $"holds chunk {summary.Chunk}, not chunk {chunk}");
            return summary;
        }
        catch (FileNotFoundException e)
        {
            throw new VolumeException(path, "the summary of a finished chunk is missing; pass --overwrite to relabel from scratch", e);
        }
    }

    public void WriteMap(long chunk, ulong[] ids) =>
        WriteAtomically(MapPath(chunk), s =>
        {
            using var zip = new ZLibStream(s, CompressionLevel.Fastest, leaveOpen: true);
            zip.Write(BitConverter.GetBytes(ids.LongLength));
            zip.Write(MemoryMarshal.AsBytes(ids.AsSpan()));
        });

    public ulong[] ReadMap(long chunk)
    {
        string path = MapPath(chunk);
        try
        {
            using var stream = File.OpenRead(path);
            using var zip = new ZLibStream(stream, CompressionMode.Decompress);
            Span<byte> header = stackalloc byte[8];
            zip.ReadExactly(header);
            long n = BitConverter.ToInt64(header);
            if (n < 1 || n > Array.MaxLength) throw new InvalidDataException($"a map of {n} entries");
            var ids = new ulong[n];
            zip.ReadExactly(MemoryMarshal.AsBytes(ids.AsSpan()));
            return ids;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FileNotFoundException)
        {
            throw new VolumeException(path, $"unreadable label map: {e.Message}", e);
        }
    }

    /// <summary>The statistics of the objects (final id → sums over chunk <paramref name="chunk"/>'s core) at time point <paramref name="t"/>.</summary>
    public void WriteObjects(long chunk, long t, IReadOnlyList<(ulong Id, PieceStats Stats)> objects) =>
        WriteAtomically(Path.Combine(Objects, $"{chunk}.bin"), s =>
        {
            using var zip = new ZLibStream(s, CompressionLevel.Fastest, leaveOpen: true);
            using var w = new BinaryWriter(zip);
            w.Write(t);
            w.Write(objects.Count);
            foreach (var (id, p) in objects)
            {
                w.Write(id);
                w.Write(p.Voxels); w.Write(p.First);
                w.Write(p.MinZ); w.Write(p.MinY); w.Write(p.MinX); w.Write(p.MaxZ); w.Write(p.MaxY); w.Write(p.MaxX);
                w.Write(p.SumZ); w.Write(p.SumY); w.Write(p.SumX);
                w.Write(p.IntensitySum);
            }
        });

    public (long T, (ulong Id, PieceStats Stats)[] Objects) ReadObjects(long chunk)
    {
        string path = Path.Combine(Objects, $"{chunk}.bin");
        try
        {
            using var zip = new ZLibStream(File.OpenRead(path), CompressionMode.Decompress);
            using var r = new BinaryReader(zip);
            long t = r.ReadInt64();
            var objects = new (ulong, PieceStats)[r.ReadInt32()];
            for (int i = 0; i < objects.Length; i++)
            {
                ulong id = r.ReadUInt64();
                var p = new PieceStats { Voxels = r.ReadInt64(), First = r.ReadInt64() };
                (p.MinZ, p.MinY, p.MinX, p.MaxZ, p.MaxY, p.MaxX) = (r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64(), r.ReadInt64());
                (p.SumZ, p.SumY, p.SumX) = (r.ReadInt64(), r.ReadInt64(), r.ReadInt64());
                p.IntensitySum = r.ReadDouble();
                objects[i] = (id, p);
            }
            return (t, objects);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FileNotFoundException)
        {
            throw new VolumeException(path, $"the object statistics of a finished chunk are missing or unreadable ({e.Message}); pass --overwrite to start again", e);
        }
    }

    private string SummaryPath(long chunk) => Path.Combine(Summaries, $"{chunk}.bin");
    private string MapPath(long chunk) => Path.Combine(Maps, $"{chunk}.bin");
}
