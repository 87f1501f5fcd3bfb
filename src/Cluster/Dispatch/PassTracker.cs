using System.Diagnostics;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Cluster.Dispatch;

/// <summary>
/// What one pass of a job has done with each of its chunks, for the job page, `status` and the metrics: fed by the pass's
/// <see cref="ClusterChunkTransport"/> as chunks go out and answers come back, read by the job manager.
/// <code>
///   waiting ──sent──▶ in flight ──done──▶ done            (recorded by an earlier run: done from the start)
///      ▲                 │  │
///      │                 │  └─failed──▶ failed ──sent again (a retry)──▶ re-sent ──▶ done | failed
///      │                 └── node gone, lease expired, refused ──▶ re-sent
/// </code>
/// One byte per chunk (a pass of 2.5 million chunks costs 2.5 MB); failures and re-sends keep their latest
/// <see cref="MaxEvents"/> entries. Thread-safe: updates come from the transport's threads, reads from the manager's.
/// </summary>
public sealed class PassTracker
{
    /// <summary>A chunk's state as the chunk map spells it, one character per chunk.</summary>
    public static class States
    {
        public const char Waiting = '.', InFlight = 'i', Resent = 'r', Done = 'd', Failed = 'f';
    }

    public const int MaxEvents = 20;

    /// <summary>Reasons are cut to this many characters (a status message must stay within the cluster's frame size).</summary>
    public const int MaxReason = 300;

    private readonly object _gate = new();
    private readonly byte[] _states;
    private readonly ChunkGrid _grid;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly LinkedList<ChunkFailure> _failures = new();
    private readonly LinkedList<ChunkResend> _resends = new();
    private long _done, _doneBefore, _failed, _resent, _voxelsDone, _voxelsBefore;
    private long? _ended;

    public PassTracker(string job, int index, JobSpec pass, ChunkGrid grid)
    {
        Job = job;
        Index = index;
        Pass = pass.Id.Value;
        Stage = pass.Stage;
        _grid = grid;
        _states = new byte[checked((int)grid.Count)];
        Array.Fill(_states, (byte)States.Waiting);
    }

    /// <summary>The submitted job this pass belongs to, and the pass's place in it (0, 1, …).</summary>
    public string Job { get; }
    public int Index { get; }
    public string Pass { get; }
    public string Stage { get; }

    /// <summary>Recorded by an earlier run (a resumed job): done, and not sent.</summary>
    public void Recorded(long chunk)
    {
        lock (_gate)
        {
            if (_states[chunk] == States.Done) return;
            _states[chunk] = (byte)States.Done;
            _doneBefore++;
            _voxelsBefore += _grid[chunk].Core.VoxelCount;
        }
    }

    /// <summary>A copy of the chunk went out; a chunk that failed or was lost before goes out re-sent.</summary>
    public void Sent(long chunk, int attempt)
    {
        lock (_gate)
        {
            byte state = _states[chunk];
            if (state is (byte)States.Done or (byte)States.InFlight or (byte)States.Resent) return;   // done, or a straggler's second copy
            if (state == States.Failed) _failed--;
            _states[chunk] = (byte)(state == States.Waiting && attempt <= 1 ? States.InFlight : States.Resent);
            if (state == States.Failed)
                for (var entry = _failures.First; entry is not null; entry = entry.Next)
                    if (entry.Value.Chunk == chunk) entry.Value = entry.Value with { Retried = true };
        }
    }

    /// <summary>The chunk's copies were dropped (node gone, lease expired, refused): it waits to be sent again.</summary>
    public void Dropped(long chunk, string why)
    {
        lock (_gate)
        {
            if (_states[chunk] == States.Done) return;
            _states[chunk] = (byte)States.Resent;
            _resent++;
            Add(_resends, new ChunkResend(chunk, why.Length <= MaxReason ? why : why[..MaxReason], DateTimeOffset.UtcNow));
        }
    }

    public void Completed(ChunkCompleted done)
    {
        lock (_gate)
        {
            byte state = _states[done.Chunk.Value];
            if (state == States.Done) return;
            if (state == States.Failed) _failed--;
            _states[done.Chunk.Value] = (byte)States.Done;
            _done++;
            _voxelsDone += done.Voxels;
            if (_done + _doneBefore == _states.Length) _ended ??= Stopwatch.GetTimestamp();
        }
    }

    /// <summary>An attempt failed: the runner may send the chunk again (<see cref="Sent"/> then marks it re-sent).</summary>
    public void Failed(ChunkFailed failure)
    {
        lock (_gate)
        {
            byte state = _states[failure.Chunk.Value];
            if (state is (byte)States.Done or (byte)States.Failed) return;
            _states[failure.Chunk.Value] = (byte)States.Failed;
            _failed++;
            string reason = failure.Reason.Length <= MaxReason ? failure.Reason : failure.Reason[..(MaxReason - 1)] + "…";
            Add(_failures, new ChunkFailure(failure.Chunk.Value, failure.Attempt, failure.Worker, reason, DateTimeOffset.UtcNow));
        }
    }

    /// <summary>The pass is over (all answered, or stopped).</summary>
    public void End()
    {
        lock (_gate) _ended ??= Stopwatch.GetTimestamp();
    }

    public PassStatus Snapshot()
    {
        lock (_gate)
        {
            double seconds = Stopwatch.GetElapsedTime(_started, _ended ?? Stopwatch.GetTimestamp()).TotalSeconds;
            long total = _states.Length, done = _done + _doneBefore, left = total - done - _failed;
            // Rate and time left from this run's own chunks (those recorded earlier took no time here).
            double voxelsPerSecond = seconds > 0 ? _voxelsDone / seconds : 0;
            double? secondsLeft = _ended is not null ? 0 : _done > 0 ? left * seconds / _done : null;
            var grid = _grid;
            return new PassStatus(Index, Pass, Stage, _ended is null ? "running" : "ended", done, total, _done, _failed, _resent,
                _voxelsDone + _voxelsBefore, grid.VolumeShape.Volume * grid.TimePoints, seconds, voxelsPerSecond, secondsLeft,
                [grid.TimePoints, grid.Blocks.Z, grid.Blocks.Y, grid.Blocks.X],
                [.. _failures], [.. _resends]);
        }
    }

    /// <summary>Chunks in one z-plane of the grid: its rows (y) and columns (x).</summary>
    public (long Height, long Width) PlaneShape => (_grid.Blocks.Y, _grid.Blocks.X);

    /// <summary>The states of the chunks of one z-plane of the grid at time point <paramref name="t"/>, row by row (y, then x).</summary>
    public string Plane(long t, long z)
    {
        var blocks = _grid.Blocks;
        if (!HasPlane(t, z))
            throw new ArgumentOutOfRangeException(nameof(z), $"no plane t={t} z={z} in a grid of {_grid.TimePoints} × {blocks.Z} × {blocks.Y} × {blocks.X} chunks");
        int start = checked((int)_grid.IndexOfBlock(t, new Long3(z, 0, 0))), length = checked((int)(blocks.Y * blocks.X));
        lock (_gate) return string.Create(length, (_states, start), static (span, s) =>
        {
            for (int i = 0; i < span.Length; i++) span[i] = (char)s._states[s.start + i];
        });
    }

    public bool HasPlane(long t, long z) => t >= 0 && t < _grid.TimePoints && z >= 0 && z < _grid.Blocks.Z;

    private static void Add<T>(LinkedList<T> list, T item)
    {
        list.AddLast(item);
        if (list.Count > MaxEvents) list.RemoveFirst();
    }
}
