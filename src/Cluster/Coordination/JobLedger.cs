using System.Text.Json;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Cluster.Coordination;

/// <summary>
/// The jobs of the cluster, on the shared store (<c>jobs.jsonl</c> in the coordinators' state folder): one line per
/// change of a job (submitted, started, finished), appended and fsynced before the change is acknowledged. Whichever
/// coordinator is the singleton reads it at start-up, so a job running when its coordinator died continues on the
/// next one without being submitted again (its passes resume from their manifests in the job's output folder).
/// </summary>
public sealed class JobLedger(string folder)
{
    public sealed record Entry(SubmitJob Job, JobStatus Status);

    public string Path { get; } = System.IO.Path.Combine(folder, "jobs.jsonl");

    public void Append(SubmitJob job, JobStatus status)
    {
        Directory.CreateDirectory(folder);
        byte[] line = JsonSerializer.SerializeToUtf8Bytes(new Entry(job with { Auth = null }, status), ClusterWire.Options);
        using var stream = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        stream.Write(line);
        stream.WriteByte((byte)'\n');
        stream.Flush(flushToDisk: true);
    }

    /// <summary>The last state of every job, in submission order; lines cut short by a crash are skipped.</summary>
    public IReadOnlyList<Entry> Load()
    {
        if (!File.Exists(Path)) return [];
        var latest = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(Path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                if (JsonSerializer.Deserialize<Entry>(line, ClusterWire.Options) is { Job: not null, Status: not null } entry) latest[entry.Job.Id] = entry;
            }
            catch (JsonException)
            {
            }
        }
        return latest.Values.OrderBy(e => e.Job.Submitted).ToList();
    }
}
