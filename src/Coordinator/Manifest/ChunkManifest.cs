using System.Collections;
using System.Text.Json;
using System.Text.Json.Serialization;
using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.Coordinator.Manifest;

/// <summary>
/// The coordinator's durable record of which chunks of a job are finished, stored with the output.
/// A JSON-lines file: one header line naming the job, then one line per finished chunk, appended and
/// flushed to disk before the chunk counts as done. A torn last line (the process died mid-write) is
/// ignored, so the worst a crash costs is recomputing that one chunk.
/// <code>
///   {"format":"chunkseg-manifest/1","job":"convert a.h5/data -> b.zarr ...","chunks":512}
///   {"chunk":17,"checksum":3735928559,"voxels":2097152,"worker":"local-1"}
/// </code>
/// Memory is one bit per chunk: 2.5 million chunks of a 10 TB volume cost 300 kB.
/// </summary>
public sealed class ChunkManifest : IDisposable
{
    public const string Format = "chunkseg-manifest/1";

    private readonly BitArray _done;
    private readonly FileStream _stream;
    private readonly object _gate = new();

    private ChunkManifest(string path, FileStream stream, BitArray done, long doneCount)
    {
        Path = path;
        _stream = stream;
        _done = done;
        DoneCount = doneCount;
    }

    public string Path { get; }
    public long DoneCount { get; private set; }
    public long ChunkCount => _done.Length;

    public bool IsDone(long chunk)
    {
        lock (_gate) return _done[checked((int)chunk)];
    }

    /// <summary>
    /// Opens the manifest at <paramref name="path"/>, creating it for a fresh job. An existing manifest must
    /// name the same <paramref name="jobKey"/> and chunk count, or the staged output belongs to another job.
    /// </summary>
    public static ChunkManifest OpenOrCreate(string path, string jobKey, long chunkCount)
    {
        if (chunkCount > int.MaxValue)
            throw new UsageException($"the job has {chunkCount} chunks, more than one manifest can track; use a larger --chunk");
        var done = new BitArray(checked((int)chunkCount));
        long doneCount = 0;
        long validLength = 0;
        if (File.Exists(path))
        {
            using var reader = new StreamReader(path);
            string? header = reader.ReadLine();
            var h = header is null ? null : TryParse<Header>(header);
            if (h is null)
            {
                validLength = -1;   // unreadable header: start over
            }
            else if (h.Job != jobKey || h.Chunks != chunkCount || h.Format != Format)
            {
                throw new UsageException($"{path}: the unfinished output was started by a different job (\"{h.Job}\", {h.Chunks} chunks); " +
                    "pass --overwrite to discard it");
            }
            else
            {
                validLength = header!.Length + 1;
                for (string? line = reader.ReadLine(); line is not null; line = reader.ReadLine())
                {
                    var entry = TryParse<Entry>(line);
                    if (entry is null || entry.Chunk < 0 || entry.Chunk >= chunkCount) break;   // torn tail
                    if (!done[(int)entry.Chunk]) { done[(int)entry.Chunk] = true; doneCount++; }
                    validLength += line.Length + 1;
                }
            }
        }

        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read);
        if (validLength <= 0)
        {
            stream.SetLength(0);
            var headerLine = JsonSerializer.Serialize(new Header(Format, jobKey, chunkCount), JsonOptions) + "\n";
            stream.Write(System.Text.Encoding.UTF8.GetBytes(headerLine));
            stream.Flush(flushToDisk: true);
        }
        else
        {
            stream.SetLength(validLength);           // drop a torn tail so appends stay parseable
            stream.Position = validLength;
        }
        return new ChunkManifest(path, stream, done, doneCount);
    }

    /// <summary>
    /// The job named in the manifest at <paramref name="path"/> and how many of its chunks are recorded,
    /// or null when there is no readable manifest there.
    /// </summary>
    public static (string Job, long Chunks, long Done)? ReadSummary(string path)
    {
        if (!File.Exists(path)) return null;
        using var reader = new StreamReader(path);
        var header = reader.ReadLine() is { } h ? TryParse<Header>(h) : null;
        if (header is null || header.Format != Format) return null;
        var done = new HashSet<long>();
        for (string? line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            if (TryParse<Entry>(line) is not { } entry) break;
            done.Add(entry.Chunk);
        }
        return (header.Job, header.Chunks, done.Count);
    }

    /// <summary>Records a finished chunk durably. Returns false when it was already recorded (a duplicate reply).</summary>
    public bool MarkDone(long chunk, uint checksum, long voxels, string worker)
    {
        var line = JsonSerializer.Serialize(new Entry(chunk, checksum, voxels, worker), JsonOptions) + "\n";
        lock (_gate)
        {
            if (_done[checked((int)chunk)]) return false;
            _stream.Write(System.Text.Encoding.UTF8.GetBytes(line));
            _stream.Flush(flushToDisk: true);
            _done[(int)chunk] = true;
            DoneCount++;
            return true;
        }
    }

    public void Dispose() => _stream.Dispose();

    private static T? TryParse<T>(string line) where T : class
    {
        try { return JsonSerializer.Deserialize<T>(line, JsonOptions); }
        catch (JsonException) { return null; }
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private sealed record Header(string Format, string Job, long Chunks);
    private sealed record Entry(long Chunk, uint Checksum, long Voxels, string? Worker);
}
