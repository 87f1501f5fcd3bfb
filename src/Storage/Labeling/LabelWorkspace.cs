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
/// </code>
/// Every file is written under a temporary name and renamed, so a crash never leaves half a file behind.
/// </summary>
public sealed class LabelWorkspace(string root) : JobWorkspace(root, "labelling")
{
    public string LocalLabels => Path.Combine(Root, "local.zarr");
    private string Summaries => Path.Combine(Root, "summaries");
    private string Maps => Path.Combine(Root, "maps");

    /// <summary>The workspace for the output at <paramref name="outputRoot"/>.</summary>
    public static LabelWorkspace For(string outputRoot) => new(outputRoot.TrimEnd('/') + ".work");

    protected override IEnumerable<string> Folders => [Summaries, Maps];

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

    private string SummaryPath(long chunk) => Path.Combine(Summaries, $"{chunk}.bin");
    private string MapPath(long chunk) => Path.Combine(Maps, $"{chunk}.bin");
}
