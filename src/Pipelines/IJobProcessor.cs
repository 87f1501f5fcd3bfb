using System.Diagnostics;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Pipelines;

/// <summary>What a worker runs for one job: the per-chunk function (ChunkWorker.Process with the job's stage and volumes).</summary>
public interface IJobProcessor : IDisposable
{
    /// <summary>Processes one chunk, answering ChunkCompleted or ChunkFailed; <paramref name="parent"/> is the coordinator's trace.</summary>
    object Process(ProcessChunk command, ActivityContext parent);
}
