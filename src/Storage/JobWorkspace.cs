using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.Storage;

/// <summary>
/// The scratch directory of a multi-pass job (<c>OUT.work/</c> beside its output), removed when the job
/// commits. <c>job.txt</c> names the job: a rerun of the same job resumes from what the directory holds, any
/// other job is refused unless it overwrites. Files inside are written atomically.
/// </summary>
public abstract class JobWorkspace
{
    private readonly string _kind;

    protected JobWorkspace(string root, string kind)
    {
        Root = Path.GetFullPath(root);
        _kind = kind;
    }

    public string Root { get; }
    public string JobFile => Path.Combine(Root, "job.txt");

    /// <summary>Folders the workspace keeps its files in, created by <see cref="Begin"/>.</summary>
    protected abstract IEnumerable<string> Folders { get; }

    /// <summary>
    /// Opens the workspace for job <paramref name="jobKey"/>: an existing one of the same job is kept (resume);
    /// one of another job is an error unless <paramref name="overwrite"/>, which clears it.
    /// </summary>
    public void Begin(string jobKey, bool overwrite)
    {
        if (Directory.Exists(Root))
        {
            string? existing = File.Exists(JobFile) ? File.ReadAllText(JobFile) : null;
            if (existing != jobKey)
            {
                if (!overwrite)
                    throw new UsageException($"{Root}: holds an unfinished {_kind} run with other inputs or parameters; " +
                        "rerun that command to finish it, or pass --overwrite to discard it");
                Directory.Delete(Root, recursive: true);
            }
        }
        foreach (var folder in Folders) Directory.CreateDirectory(folder);
        Directory.CreateDirectory(Root);
        if (!File.Exists(JobFile)) WriteAtomically(JobFile, s => s.Write(System.Text.Encoding.UTF8.GetBytes(jobKey)));
    }

    /// <summary>Removes the workspace after the job committed its outputs.</summary>
    /// <summary>
    /// Removes the workspace: first renamed out of the way (one atomic step, so a process killed meanwhile leaves either the
    /// whole workspace or none), then deleted, along with what an earlier interrupted deletion left.
    /// </summary>
    public void Delete()
    {
        string doomed = Root.TrimEnd('/') + DeletedSuffix;
        if (Directory.Exists(Root))
        {
            if (Directory.Exists(doomed)) Directory.Delete(doomed, recursive: true);
            Directory.Move(Root, doomed);
        }
        if (Directory.Exists(doomed)) Directory.Delete(doomed, recursive: true);
    }

    /// <summary>Suffix of a workspace being deleted.</summary>
    public const string DeletedSuffix = ".deleted";

    protected static void WriteAtomically(string path, Action<Stream> write) => Internal.AtomicFile.Write(path, write);
}
