using ChunkSeg.Contracts.Memory;
using FsCheck;
using FsCheck.Fluent;

namespace ChunkSeg.Pipeline.Tests;

public sealed class ChunkBufferPoolTests
{
    [Fact]
    public void A_returned_buffer_serves_the_next_request_of_its_size_and_new_ones_are_exact()
    {
        var pool = new ChunkBufferPool<float>();
        var first = pool.Rent(1000);
        Assert.Equal(1000, first.Length);
        pool.Return(first);
        Assert.Same(first, pool.Rent(900));
        Assert.Equal(300, pool.Rent(300).Length);
    }

    [Fact]
    public void A_kept_buffer_more_than_twice_too_long_is_not_handed_out()
    {
        var pool = new ChunkBufferPool<byte>();
        var big = pool.Rent(1000);
        pool.Return(big);
        var small = pool.Rent(400);
        Assert.NotSame(big, small);
        Assert.Equal(400, small.Length);
    }

    [Fact]
    public void What_is_kept_stays_within_a_quarter_above_the_most_ever_rented_at_once()
    {
        var property = Prop.ForAll(Gen.ListOf(Gen.Choose(-40, 4000)).ToArbitrary(), steps =>
        {
            // Positive steps rent that many elements, negative ones return the |step|-th oldest buffer still out.
            var pool = new ChunkBufferPool<int>();
            var rented = new List<int[]>();
            long outNow = 0, peak = 0;
            foreach (int step in steps)
            {
                if (step >= 0)
                {
                    var buffer = pool.Rent(step);
                    Assert.InRange(buffer.Length, step, Math.Max(2 * step, 1));
                    rented.Add(buffer);
                    outNow += buffer.Length;
                    peak = Math.Max(peak, outNow);
                }
                else if (rented.Count > 0)
                {
                    var buffer = rented[Math.Min(-step, rented.Count) - 1];
                    rented.Remove(buffer);
                    outNow -= buffer.Length;
                    pool.Return(buffer);
                }
                Assert.True(outNow + pool.KeptElements <= peak + peak / 4, $"{pool.KeptElements} kept with {outNow} out, peak {peak}");
            }
            return true;
        });
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), property);
    }

    [Fact]
    public void Trim_lets_every_kept_buffer_go()
    {
        var pool = new ChunkBufferPool<float>();
        var a = pool.Rent(100);
        var b = pool.Rent(200);
        pool.Return(a);
        pool.Return(b);
        Assert.Equal(300, pool.KeptElements);
        pool.Trim();
        Assert.Equal(0, pool.KeptElements);
        Assert.NotSame(b, pool.Rent(200));
    }
}
