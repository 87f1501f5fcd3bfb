using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Contracts.Messages;

/// <summary>Identifies one job (one run of a pipeline over one input).</summary>
public readonly record struct JobId(string Value)
{
    public override string ToString() => Value;
}

/// <summary>
/// Everything a worker needs to process any chunk of a job, so that a worker on another machine can run
/// it from this record alone. Extend-only: new fields must be optional.
/// </summary>
public sealed record JobSpec(
    JobId Id,
    string Stage,
    string Input,
    string Output,
    Long3 ChunkShape,
    Halo Halo,
    IReadOnlyDictionary<string, string> Parameters);

/// <summary>Command: process one chunk of a job. <see cref="Attempt"/> counts from 1.</summary>
public sealed record ProcessChunk(JobId Job, ChunkId Chunk, int Attempt);

/// <summary>Event: a chunk's core was written. <see cref="Checksum"/> is over the written core bytes.</summary>
public sealed record ChunkCompleted(JobId Job, ChunkId Chunk, int Attempt, long Voxels, uint Checksum, TimeSpan Elapsed, string Worker);

/// <summary>Event: a chunk could not be processed. <see cref="Retryable"/> is false for data errors.</summary>
public sealed record ChunkFailed(JobId Job, ChunkId Chunk, int Attempt, string Reason, bool Retryable, string Worker);
