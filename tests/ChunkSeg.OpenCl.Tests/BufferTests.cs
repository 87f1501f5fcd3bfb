using ChunkSeg.OpenCl;

namespace ChunkSeg.OpenCl.Tests;

public class BufferTests(ITestOutputHelper output)
{
    [Fact]
    public void Blocking_writes_and_reads_honour_element_offsets()
    {
        var context = TestDevice.Context;
        using var queue = context.CreateQueue();
        using var buffer = context.CreateBuffer(10 * sizeof(int));
        Assert.Equal(10, buffer.Length<int>());
        queue.Write<int>(buffer, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        queue.Write<int>(buffer, [-3, -4], elementOffset: 3);
        var all = new int[10];
        queue.Read(buffer, all.AsSpan());
        Assert.Equal([0, 1, 2, -3, -4, 5, 6, 7, 8, 9], all);
        var tail = new int[3];
        queue.Read(buffer, tail.AsSpan(), elementOffset: 7);
        Assert.Equal([7, 8, 9], tail);
        queue.Write(buffer, ReadOnlySpan<int>.Empty, 10);         // empty at the very end: a no-op

        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Read(buffer, new int[4].AsSpan(), elementOffset: 7));
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Write<int>(buffer, [1], elementOffset: -1));
    }

    [Fact]
    public void Non_blocking_transfers_copy_and_fill_complete_through_their_events()
    {
        var context = TestDevice.Context;
        using var queue = context.CreateQueue(profiling: true, outOfOrder: false);
        const int n = 1 << 16;
        var source = Enumerable.Range(0, n).Select(i => (float)i).ToArray();
        using var a = context.CreateBuffer((long)n * sizeof(float));
        using var b = context.CreateBuffer((long)n * sizeof(float));

        using var written = queue.EnqueueWrite<float>(a, source, 0);
        using var copied = queue.EnqueueCopy(a, b, 0, 4 * sizeof(float), (n - 4) * sizeof(float), written);
        using var filled = queue.EnqueueFill(b, -1f, 0, 4, copied);
        var result = new float[n];
        using (var read = queue.EnqueueRead<float>(b, result, 0, filled))
        {
            read.Wait();
            Assert.True(read.IsComplete);
            output.WriteLine($"read of {n * 4} bytes: queued {read.QueuedNs}, submit {read.SubmitNs}, start {read.StartNs}, end {read.EndNs} ns; {read.DurationNs} ns");
            Assert.True(read.QueuedNs <= read.SubmitNs && read.SubmitNs <= read.StartNs && read.StartNs <= read.EndNs);
        }
        Assert.Equal([-1f, -1f, -1f, -1f, 0f, 1f], result[..6]);
        Assert.Equal(n - 5, result[^1]);
        Assert.True(written.DurationNs >= 0);
        OpenClEvent.WaitAll(written, copied, filled);
        queue.Finish();
    }

    [Fact]
    public void Disposing_a_pending_read_event_waits_before_releasing_the_host_memory()
    {
        var context = TestDevice.Context;
        using var queue = context.CreateQueue();
        var data = new float[4096];
        using var buffer = context.CreateBuffer<float>(Enumerable.Repeat(2.5f, data.Length).ToArray());
        queue.EnqueueRead<float>(buffer, data).Dispose();
        Assert.All(data, v => Assert.Equal(2.5f, v));
        using var marker = queue.EnqueueMarker();
        marker.Wait();
    }

    [Fact]
    public void Profiling_without_a_profiling_queue_says_how_to_get_it()
    {
        var context = TestDevice.Context;
        using var queue = context.CreateQueue(profiling: false);
        using var buffer = context.CreateBuffer(64);
        using var filled = queue.EnqueueFill(buffer, 0, 0, 16);
        filled.Wait();
        var e = Assert.Throws<OpenClException>(() => filled.StartNs);
        output.WriteLine(e.Message);
        Assert.Equal("CL_PROFILING_INFO_NOT_AVAILABLE", e.StatusName);
        Assert.Contains("clGetEventProfilingInfo", e.Message);
        Assert.Contains("profiling: true", e.Message);
    }

    [Fact]
    public void A_buffer_larger_than_the_device_allows_is_refused_with_the_limit()
    {
        var context = TestDevice.Context;
        var e = Assert.Throws<OpenClException>(() => context.CreateBuffer(context.Device.MaxAllocationBytes + 1));
        Assert.Contains("CL_DEVICE_MAX_MEM_ALLOC_SIZE", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => context.CreateBuffer(0));
    }

    [Fact]
    public void A_disposed_event_cannot_be_waited_for()
    {
        var context = TestDevice.Context;
        using var queue = context.CreateQueue();
        var marker = queue.EnqueueMarker();
        marker.Dispose();
        Assert.Throws<ObjectDisposedException>(() => queue.EnqueueMarker(marker));
    }
}
