namespace ChunkSeg.Contracts.Errors;

/// <summary>
/// An error the user can act on. The message names the file, dataset or option and what is wrong;
/// the CLI prints it without a stack trace and exits with <see cref="ExitCode"/>.
/// </summary>
public abstract class ChunkSegException : Exception
{
    protected ChunkSegException(string message, Exception? inner = null) : base(message, inner) { }
    public abstract int ExitCode { get; }
}

/// <summary>The command line asks for something impossible (bad option, unsupported codec name). Exit code 2.</summary>
public sealed class UsageException : ChunkSegException
{
    public UsageException(string message, Exception? inner = null) : base(message, inner) { }
    public override int ExitCode => 2;
}

/// <summary>
/// The data cannot be read or written as asked (missing file or dataset, corrupt chunk, unsupported dtype,
/// out-of-range box). Exit code 1. <see cref="Location"/> is the file or store path involved.
/// </summary>
public sealed class VolumeException : ChunkSegException
{
    public VolumeException(string location, string problem, Exception? inner = null)
        : base($"{location}: {problem}", inner)
    {
        Location = location;
        Problem = problem;
    }

    public string Location { get; }
    public string Problem { get; }
    public override int ExitCode => 1;
}

/// <summary>A service the command needs (the cluster, its coordinator) did not answer. Exit code 1.</summary>
public sealed class ClusterException : ChunkSegException
{
    public ClusterException(string message, Exception? inner = null) : base(message, inner) { }
    public override int ExitCode => 1;
}
