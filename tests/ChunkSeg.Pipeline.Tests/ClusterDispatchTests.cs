using System.Threading.Channels;
using Akka.Actor;
using ChunkSeg.Cluster.Dispatch;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using Microsoft.Extensions.Logging.Abstractions;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// The coordinator's dispatch (<see cref="ClusterChunkTransport"/> and <see cref="NodeBoard"/>) in one process: the
/// shard region is an actor that records what is sent, and the test plays the gpu-node, its answers and its deaths, so
/// every interleaving is the test's choice. Waits are on messages, with generous limits; no fixed delays. Chunks report
/// an hour of work each, so no straggler copy is ever sent.
/// </summary>
public sealed class ClusterDispatchTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private const string Node = "n1", Address = "akka.tcp://chunkseg@127.0.0.1:4100";

    private static readonly int[] AllShards = [.. Enumerable.Range(0, ClusterChunkTransport.ShardCount)];

    private readonly ActorSystem _system = ActorSystem.Create("dispatch-tests");
    private readonly Channel<ChunkWork> _sent = Channel.CreateUnbounded<ChunkWork>();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await _system.Terminate();

    /// <summary>
    /// A gpu-node (concurrency 1, so a window of 2) gets an innocent chunk and, behind it, a chunk that kills the node as
    /// it starts (SIGKILL): the innocent chunk is done, but its answer dies with the node, so the coordinator sees both
    /// chunks held and unanswered, the innocent one accepted first. The node is restarted in place each time. The old
    /// accounting charged the loss to the oldest accepted chunk, the innocent one, three times, and failed it as poison;
    /// now the innocent chunk completes and only the poison chunk fails, after three losses of a node holding it alone.
    /// With <paramref name="shardsForgotten"/>, the restarted node's region comes back with no shard (sharding places them
    /// again as chunks come), so the suspects must find their node through their home shards.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_chunk_whose_answer_died_with_the_node_killed_by_the_next_chunk_is_not_failed_as_poison(bool shardsForgotten)
    {
        // 4×4×4 blocks: chunks 0 and 2 lie in different 2×2×2 bricks, so in different shards, whose messages may reach the
        // node in either order: here the innocent chunk always arrives first.
        const long innocent = 0, poison = 2;
        var grid = new ChunkGrid(new Long3(32, 32, 32), 1, new Long3(8, 8, 8), new Halo(0, 0, 0));
        var job = new JobSpec(new JobId("pass-1"), "label", "/in", "/out", grid.ChunkShape, grid.Halo, new Dictionary<string, string>());
        var region = _system.ActorOf(Props.Create(() => new Recorder(_sent.Writer)));
        var board = new NodeBoard();
        var beat = new NodeHeartbeat(Node, Address, "host", 1, "cpu", null, 1, 0, 0, 0, 0, 0, false, DateTimeOffset.UtcNow);
        board.Heard(beat);
        board.ShardHomes(new Dictionary<string, IReadOnlyCollection<int>> { [Address] = AllShards });
        await using var transport = new ClusterChunkTransport(region, board,
            new DispatchSettings(TimeSpan.FromHours(1), TimeSpan.FromHours(1), TimeSpan.FromSeconds(1)), NullLogger.Instance);
        await transport.StartAsync(job, grid, TestContext.Current.CancellationToken);
        await transport.SendAsync(new ProcessChunk(job.Id, new ChunkId(innocent), 1), TestContext.Current.CancellationToken);
        await transport.SendAsync(new ProcessChunk(job.Id, new ChunkId(poison), 1), TestContext.Current.CancellationToken);

        var queue = new List<ChunkWork>();   // the node's queue, in the order it runs it
        int deaths = 0, mostHeldAfterFirstDeath = 0;
        long received = 0;
        for (int step = 0; step < 100; step++)
        {
            // Everything the coordinator sent reaches the node, the only one (the innocent chunk first), and is accepted.
            var arrived = new List<ChunkWork>();
            for (; received < transport.Sent; received++)
                arrived.Add(await _sent.Reader.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(Patience, TestContext.Current.CancellationToken));
            foreach (var work in arrived.OrderBy(w => w.Chunk == poison))
            {
                queue.Add(work);
                Assert.True(board.Deliver(job.Id.Value, new ChunkAccepted(job.Id.Value, work.Chunk, work.Attempt, work.Shard, Node)));
            }
            if (deaths > 0) mostHeldAfterFirstDeath = Math.Max(mostHeldAfterFirstDeath, queue.Count);
            if (queue.Count == 0) break;

            var head = queue[0];
            if (head.Chunk == poison || queue.Count > 1 && queue[1].Chunk == poison)
            {
                // The node dies on the poison chunk: when the head was innocent, it finished, but its answer was still in
                // the node when the next chunk killed it. Then it is restarted in place (same name and address) and
                // takes work once its new region is listed.
                queue.Clear();
                deaths++;
                board.Unreachable(Address, "is unreachable");
                board.Heard(beat with { Time = DateTimeOffset.UtcNow });
                board.ShardHomes(new Dictionary<string, IReadOnlyCollection<int>> { [Address] = shardsForgotten ? [] : AllShards });
            }
            else
            {
                queue.RemoveAt(0);
                Assert.True(board.Deliver(job.Id.Value, new ChunkResult(Node,
                    new ChunkCompleted(job.Id, new ChunkId(head.Chunk), head.Attempt, 512, 0, TimeSpan.FromHours(1), Node), null)));
            }
        }

        var results = new Dictionary<long, object>();
        await using (var answers = transport.Results(TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken))
        {
            while (results.Count < 2)
            {
                Assert.True(await answers.MoveNextAsync().AsTask().WaitAsync(Patience, TestContext.Current.CancellationToken), "the transport's results ended early");
                results.Add(answers.Current switch { ChunkCompleted c => c.Chunk.Value, ChunkFailed f => f.Chunk.Value, var o => throw new InvalidOperationException($"{o}") },
                    answers.Current);
            }
        }
        Assert.IsType<ChunkCompleted>(results[innocent]);
        var failed = Assert.IsType<ChunkFailed>(results[poison]);
        Assert.False(failed.Retryable);
        Assert.Contains($"stopped without answering {ClusterChunkTransport.MaxLosses} times", failed.Reason);
        // One death with both chunks on the node (which was to blame is unknown), then the poison chunk alone on it.
        Assert.Equal(1 + ClusterChunkTransport.MaxLosses, deaths);
        Assert.Equal(1, mostHeldAfterFirstDeath);
    }

    /// <summary>
    /// Two nodes; one dies holding two chunks (neither is to blame alone), so both are suspects: each is sent again alone
    /// to a node holding nothing else of the pass, while the other chunks wait (a node is kept from new chunks until it
    /// is empty) and are sent once the suspects are answered; nothing fails.
    /// </summary>
    [Fact]
    public async Task Chunks_of_a_node_lost_with_several_are_sent_again_one_per_empty_node_and_nothing_fails()
    {
        var grid = new ChunkGrid(new Long3(32, 32, 32), 1, new Long3(8, 8, 8), new Halo(0, 0, 0));
        var job = new JobSpec(new JobId("pass-2"), "label", "/in", "/out", grid.ChunkShape, grid.Halo, new Dictionary<string, string>());
        var region = _system.ActorOf(Props.Create(() => new Recorder(_sent.Writer)));
        var board = new NodeBoard();
        string[] nodes = ["a", "b"];
        var beats = nodes.Select((n, i) => new NodeHeartbeat(n, $"akka.tcp://chunkseg@127.0.0.1:{4200 + i}", "host", 1, "cpu", null, 1, 0, 0, 0, 0, 0, false,
            DateTimeOffset.UtcNow)).ToList();
        foreach (var b in beats) board.Heard(b);
        board.ShardHomes(new Dictionary<string, IReadOnlyCollection<int>>
        {
            [beats[0].Address] = Enumerable.Range(0, 32).ToList(),
            [beats[1].Address] = Enumerable.Range(32, 32).ToList(),
        });
        await using var transport = new ClusterChunkTransport(region, board,
            new DispatchSettings(TimeSpan.FromHours(1), TimeSpan.FromHours(1), TimeSpan.FromSeconds(1)), NullLogger.Instance);
        await transport.StartAsync(job, grid, TestContext.Current.CancellationToken);
        const int chunks = 8;
        for (long c = 0; c < chunks; c++) await transport.SendAsync(new ProcessChunk(job.Id, new ChunkId(c), 1), TestContext.Current.CancellationToken);

        // Works addressed to a node, by the shard homes the board knows.
        var queues = nodes.ToDictionary(n => n, _ => new List<ChunkWork>());
        long received = 0;
        async Task Arrive()
        {
            for (; received < transport.Sent; received++)
            {
                var work = await _sent.Reader.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(Patience, TestContext.Current.CancellationToken);
                string node = board.NodeOfShard(work.Shard) ?? throw new InvalidOperationException($"shard {work.Shard} has no node");
                queues[node].Add(work);
                Assert.True(board.Deliver(job.Id.Value, new ChunkAccepted(job.Id.Value, work.Chunk, work.Attempt, work.Shard, node)));
            }
        }
        await Arrive();
        var lost = queues["a"].Select(w => w.Chunk).ToList();
        Assert.Equal(2, lost.Count);
        queues["a"].Clear();
        board.Unreachable(beats[0].Address, "is unreachable");
        board.Heard(beats[0] with { Time = DateTimeOffset.UtcNow });
        // Restarted in place: it takes work once its region is listed again (with the shards it had).
        Assert.False(board.IsAvailable("a"));
        board.ShardHomes(new Dictionary<string, IReadOnlyCollection<int>>
        {
            [beats[0].Address] = Enumerable.Range(0, 32).ToList(),
            [beats[1].Address] = Enumerable.Range(32, 32).ToList(),
        });

        var done = new HashSet<long>();
        for (int step = 0; step < 100 && done.Count < chunks; step++)
        {
            await Arrive();
            // While a suspect is out, the node holding it holds nothing else.
            foreach (var queue in queues.Values.Where(q => q.Any(w => lost.Contains(w.Chunk) && !done.Contains(w.Chunk))))
                Assert.Single(queue);
            var node = queues.First(q => q.Value.Count > 0);
            var head = node.Value[0];
            node.Value.RemoveAt(0);
            Assert.True(board.Deliver(job.Id.Value, new ChunkResult(node.Key,
                new ChunkCompleted(job.Id, new ChunkId(head.Chunk), head.Attempt, 512, 0, TimeSpan.FromHours(1), node.Key), null)));
            done.Add(head.Chunk);
        }
        Assert.Equal(chunks, done.Count);
        Assert.DoesNotContain(transport.LoadByNode(), p => p.Value > 0);
        await using var answers = transport.Results(TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken);
        for (int i = 0; i < chunks; i++)
        {
            Assert.True(await answers.MoveNextAsync().AsTask().WaitAsync(Patience, TestContext.Current.CancellationToken), "the transport's results ended early");
            Assert.IsType<ChunkCompleted>(answers.Current);
        }
    }

    /// <summary>The <c>chunk</c> shard region as the coordinator sees it: whatever it is told is recorded.</summary>
    private sealed class Recorder : ReceiveActor
    {
        public Recorder(ChannelWriter<ChunkWork> sent) => Receive<ChunkWork>(w => sent.TryWrite(w));
    }
}
