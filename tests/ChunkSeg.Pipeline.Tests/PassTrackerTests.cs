using ChunkSeg.Cluster.Dispatch;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using States = ChunkSeg.Cluster.Dispatch.PassTracker.States;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>The job page's record of a pass: each chunk's state through sends, losses, failures, retries and completions.</summary>
public sealed class PassTrackerTests
{
    private static readonly JobSpec Pass = new(new JobId("p0"), "label", "/in", "/out", new Long3(4, 4, 4), new Halo(1, 1, 1), new Dictionary<string, string>());

    // 2 time points × 2 × 3 × 4 chunks of 4³ (the last row and column partly outside: 8 × 10 × 14 voxels).
    private static PassTracker NewTracker() => new("job", 0, Pass, new ChunkGrid(new Long3(8, 10, 14), 2, new Long3(4, 4, 4), new Halo(1, 1, 1)));

    private static ChunkCompleted Done(long chunk, long voxels = 64) => new(Pass.Id, new ChunkId(chunk), 1, voxels, 0, TimeSpan.FromSeconds(1), "n1");

    private static ChunkFailed Failure(long chunk, int attempt, string reason = "disk full") => new(Pass.Id, new ChunkId(chunk), attempt, reason, true, "n2");

    [Fact]
    public void Each_chunk_moves_through_its_states_and_the_counts_follow()
    {
        var tracker = NewTracker();
        tracker.Recorded(0);                                   // done by an earlier run
        tracker.Sent(1, 1);                                    // in flight
        tracker.Sent(2, 1);
        tracker.Failed(Failure(2, 1));                         // failed…
        tracker.Sent(2, 2);                                    // …and sent again (a retry)
        tracker.Sent(3, 1);
        tracker.Dropped(3, "n1 is unreachable");               // its node went away
        tracker.Sent(3, 1);                                    // sent again: stays "sent again"
        tracker.Sent(1, 1);                                    // a straggler's second copy: still in flight
        tracker.Completed(Done(1));
        tracker.Completed(Done(1));                            // the second copy's answer changes nothing
        tracker.Sent(4, 1);
        tracker.Failed(Failure(4, 1, new string('x', 1000)));  // failed for good

        Assert.Equal("ddrrf.......", tracker.Plane(0, 0));
        var status = tracker.Snapshot();
        Assert.Equal(2, status.ChunksDone);
        Assert.Equal(1, status.ChunksDoneHere);
        Assert.Equal(1, status.ChunksFailed);
        Assert.Equal(1, status.ChunksResent);
        Assert.Equal(48, status.ChunksTotal);
        Assert.Equal([2L, 2, 3, 4], status.Grid);
        Assert.Equal(64 + 64, status.VoxelsDone);               // chunk 0's core (4³) recorded, chunk 1's reported
        Assert.Equal(2 * 8 * 10 * 14, status.VoxelsTotal);
        Assert.Equal("running", status.State);
        Assert.NotNull(status.SecondsLeft);
        Assert.Collection(status.Failures,
            f => Assert.True(f.Chunk == 2 && f.Retried && f.Node == "n2" && f.Reason == "disk full"),
            f => Assert.True(f.Chunk == 4 && !f.Retried && f.Reason.Length == PassTracker.MaxReason && f.Reason.EndsWith('…')));
        Assert.Equal(3, Assert.Single(status.Resends).Chunk);
    }

    [Fact]
    public void Planes_are_addressed_by_time_point_and_z_and_events_are_bounded()
    {
        var tracker = NewTracker();
        var grid = new ChunkGrid(new Long3(8, 10, 14), 2, new Long3(4, 4, 4), new Halo(1, 1, 1));
        long last = grid.IndexOfBlock(1, new Long3(1, 2, 3));
        tracker.Sent(last, 1);
        tracker.Completed(Done(last));
        Assert.Equal(new string(States.Waiting, 11) + States.Done, tracker.Plane(1, 1));
        Assert.Equal(new string(States.Waiting, 12), tracker.Plane(1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.Plane(2, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.Plane(0, 2));

        for (long chunk = 0; chunk < 40; chunk++)
        {
            tracker.Sent(chunk, 1);
            tracker.Dropped(chunk, $"lease expired {chunk}");
        }
        var status = tracker.Snapshot();
        Assert.Equal(PassTracker.MaxEvents, status.Resends.Count);
        Assert.Equal(39, status.Resends[^1].Chunk);           // the latest kept
        Assert.Equal(40, status.ChunksResent);                 // all counted
    }

    [Fact]
    public void A_pass_whose_chunks_are_all_done_has_ended_with_no_time_left()
    {
        var tracker = NewTracker();
        for (long chunk = 0; chunk < 48; chunk++)
        {
            if (chunk % 2 == 0) tracker.Recorded(chunk);
            else tracker.Completed(Done(chunk));
        }
        var status = tracker.Snapshot();
        Assert.Equal("ended", status.State);
        Assert.Equal(0, status.SecondsLeft);
        Assert.Equal(48, status.ChunksDone);
        Assert.Equal(new string(States.Done, 12), tracker.Plane(0, 1));
    }
}
