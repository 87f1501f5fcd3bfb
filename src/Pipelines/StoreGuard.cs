using ChunkSeg.Contracts.Errors;

namespace ChunkSeg.Pipelines;

/// <summary>
/// Keeps paths that arrive in messages inside the shared store: a worker opens and writes only below its --store-root,
/// and a job's outputs only below the job's own output folder. Paths are normalised first, so ".." cannot climb out.
/// </summary>
public sealed class StoreGuard(string root)
{
    public string Root { get; } = Path.GetFullPath(root).TrimEnd('/') is { Length: > 0 } r ? r : "/";

    /// <summary>The path, absolute, when it lies under the store root; otherwise a clear refusal naming it.</summary>
    public string Check(string path, string what) => Within(path, Root, $"{what} {path}: outside the store root {Root}; refused");

    /// <summary>The path, absolute, when it lies under <paramref name="folder"/> (the job's output root).</summary>
    public static string Within(string path, string folder, string? refusal = null)
    {
        if (string.IsNullOrEmpty(path) || !Path.IsPathRooted(path))
            throw new UsageException(refusal ?? $"{path}: not an absolute path; refused");
        string full = Path.GetFullPath(path);
        string top = Path.GetFullPath(folder).TrimEnd('/');
        if (top.Length == 0) return full;   // the root folder holds everything
        if (full != top && !full.StartsWith(top + "/", StringComparison.Ordinal))
            throw new UsageException(refusal ?? $"{path}: outside the job's output folder {top}; refused");
        return full;
    }
}
