using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Splitting;

namespace ChunkSeg.Kernels.Tests.Splitting;

/// <summary>
/// The frontier flood against clEsperanto's loop written out literally (every voxel, every iteration, two buffers),
/// and the chunked, bulk-synchronous rounds against the whole-volume flood, bit for bit.
/// </summary>
public sealed class VoronoiFloodTests
{
    /// <summary>
    /// clEsperanto's masked_voronoi_labeling loop as it runs on the device: outside the mask is −1, each iteration
    /// writes every zero voxel's largest neighbour (box on even iterations, diamond on odd) into the other buffer,
    /// and the loop ends after the first iteration that changed nothing.
    /// </summary>
    private static uint[] Literal(uint[] seeds, byte[] mask, int sz, int sy, int sx, bool threeD)
    {
        var flip = new long[seeds.Length];
        for (int i = 0; i < seeds.Length; i++) flip[i] = mask[i] == 0 ? -1 : seeds[i];
        var flop = (long[])flip.Clone();
        for (int iteration = 0; ; iteration++)
        {
            bool box = iteration % 2 == 0, changed = false;
            for (int z = 0; z < sz; z++)
                for (int y = 0; y < sy; y++)
                    for (int x = 0; x < sx; x++)
                    {
                        int v = (z * sy + y) * sx + x;
                        long value = flip[v];
                        if (value == 0)
                        {
                            long largest = 0;
                            for (int dz = threeD ? -1 : 0; dz <= (threeD ? 1 : 0); dz++)
                                for (int dy = -1; dy <= 1; dy++)
                                    for (int dx = -1; dx <= 1; dx++)
                                    {
                                        if (!box && Math.Abs(dz) + Math.Abs(dy) + Math.Abs(dx) > 1) continue;
                                        // clamp-to-edge reads, as the OpenCL sampler does
                                        int zz = Math.Clamp(z + dz, 0, sz - 1), yy = Math.Clamp(y + dy, 0, sy - 1), xx = Math.Clamp(x + dx, 0, sx - 1);
                                        largest = Math.Max(largest, flip[(zz * sy + yy) * sx + xx]);
                                    }
                            if (largest != 0) changed = true;
                            value = largest;
                        }
                        flop[v] = value;
                    }
            (flip, flop) = (flop, flip);
            if (!changed) break;
        }
        return flip.Select(v => v < 0 ? 0u : (uint)v).ToArray();
    }

    /// <summary>Random foreground blobs with a few seeds, some touching, some plateaus of two seed voxels.</summary>
    private static (uint[] Seeds, byte[] Mask) RandomScene(int sz, int sy, int sx, int seed, double fill = 0.62, int seeds = 9)
    {
        var rng = new Random(seed);
        int n = sz * sy * sx;
        var mask = new byte[n];
        for (int i = 0; i < n; i++) mask[i] = rng.NextDouble() < fill ? (byte)1 : (byte)0;
        var labels = new uint[n];
        for (uint s = 1; s <= seeds; s++)
        {
            int v = rng.Next(n);
            mask[v] = 1;
            labels[v] = (uint)rng.Next(1, 1000);               // any ids: the flood compares them, nothing more
            if (rng.Next(3) == 0 && v + 1 < n) { mask[v + 1] = 1; labels[v + 1] = labels[v]; }
        }
        return (labels, mask);
    }

    [Theory]
    [InlineData(1, 23, 31, false, 1)]
    [InlineData(1, 40, 40, false, 2)]
    [InlineData(9, 17, 21, true, 3)]
    [InlineData(16, 16, 16, true, 4)]
    [InlineData(12, 30, 8, true, 5)]
    public void The_frontier_flood_is_clEsperantos_loop(int sz, int sy, int sx, bool threeD, int seed)
    {
        foreach (double fill in new[] { 0.35, 0.62, 0.9, 1.0 })
        {
            var (seeds, mask) = RandomScene(sz, sy, sx, seed, fill);
            var expected = Literal(seeds, mask, sz, sy, sx, threeD);
            var labels = (uint[])seeds.Clone();
            VoronoiFlood.Run(labels, mask, sz, sy, sx, threeD);
            Assert.True(expected.AsSpan().SequenceEqual(labels), $"fill {fill}: the flood differs from clEsperanto's loop");
        }
    }

    [Fact]
    public void A_diamond_step_that_labels_nothing_ends_the_flood_even_where_a_box_step_would_go_on()
    {
        // A seed at (0,0); the foreground continues only diagonally at (1,1) then (2,2): iteration 0 (box) reaches (1,1),
        // iteration 1 (diamond) reaches nothing, so clEsperanto stops and (2,2) stays background.
        int s = 4;
        var mask = new byte[s * s];
        var labels = new uint[s * s];
        foreach (int i in new[] { 0, 5, 10 }) mask[i] = 1;
        labels[0] = 7;
        Assert.Equal(1, VoronoiFlood.Run(labels, mask, 1, s, s, threeD: false));
        Assert.Equal(7u, labels[5]);
        Assert.Equal(0u, labels[10]);
        Assert.Equal(Literal([7, .. new uint[15]], mask, 1, s, s, false), labels);
    }

    [Theory]
    [InlineData(1, 64, 70, false, 4, 7, 11, 2)]
    [InlineData(1, 50, 50, false, 2, 9, 9, 3)]
    [InlineData(20, 24, 26, true, 4, 5, 7, 4)]
    [InlineData(18, 18, 18, true, 2, 4, 6, 5)]
    [InlineData(24, 20, 22, true, 6, 8, 8, 6)]
    public void Chunked_rounds_equal_the_whole_volume_bit_for_bit(int sz, int sy, int sx, bool threeD, int halo, int cy, int cx, int seed)
    {
        int longest = 0;
        foreach (double fill in new[] { 0.5, 0.75, 1.0 })
        {
            // Few seeds in a dense foreground: floods run many chunks wide, far longer than one round.
            var (seeds, mask) = RandomScene(sz, sy, sx, seed, fill, seeds: 3);
            var whole = (uint[])seeds.Clone();
            VoronoiFlood.Run(whole, mask, sz, sy, sx, threeD);
            var chunk = new Long3(threeD ? Math.Max(halo, cy - 1) : 1, cy, cx);
            var (chunked, rounds) = FloodInRounds(seeds, mask, new Long3(sz, sy, sx), chunk, halo, threeD);
            Assert.True(whole.AsSpan().SequenceEqual(chunked), $"fill {fill}, chunks {chunk}, halo {halo}: chunked differs from whole ({rounds} rounds)");
            longest = Math.Max(longest, rounds);
        }
        Assert.True(longest >= 3, $"the floods should outrun the halo for several rounds; the longest took {longest}");
    }

    /// <summary>
    /// The rounds the pipeline runs, in memory: every active chunk reads its core grown by <paramref name="halo"/>
    /// from the state the previous round left, floods <paramref name="halo"/> iterations and keeps its core; the first
    /// iteration no core changed in is the global stop; only chunks next to a change stay active.
    /// </summary>
    internal static (T[] Labels, int Rounds) FloodInRounds<T>(T[] seeds, byte[] mask, Long3 shape, Long3 chunk, int halo, bool threeD)
        where T : unmanaged, System.Numerics.IBinaryInteger<T>
    {
        var before = (T[])seeds.Clone();
        var settledBefore = new int[seeds.Length];
        VoronoiFlood.InitialiseSettled<T>(before, settledBefore);
        var grid = new Long3((shape.Z + chunk.Z - 1) / chunk.Z, (shape.Y + chunk.Y - 1) / chunk.Y, (shape.X + chunk.X - 1) / chunk.X);
        var volume = new Box3(Long3.Zero, shape);
        var active = new bool[grid.Volume];
        Array.Fill(active, true);
        int first = 0, rounds = 0;
        while (true)
        {
            rounds++;
            var after = (T[])before.Clone();
            var settledAfter = (int[])settledBefore.Clone();
            var changedAt = new bool[halo];
            var chunkChanged = new bool[grid.Volume];
            for (long c = 0; c < grid.Volume; c++)
            {
                if (!active[c]) continue;
                var at = new Long3(c / (grid.Y * grid.X), c / grid.X % grid.Y, c % grid.X);
                var core = new Box3(new Long3(at.Z * chunk.Z, at.Y * chunk.Y, at.X * chunk.X), chunk).Intersect(volume);
                var read = core.Grow(threeD ? Halo.Uniform(halo) : new Halo(0, halo, halo), volume);
                var labels = Crop(before, shape, read);
                var settled = Crop(settledBefore, shape, read);
                var m = Crop(mask, shape, read);
                var changed = new bool[halo];
                VoronoiFlood.Advance(labels, settled, m, (int)read.Size.Z, (int)read.Size.Y, (int)read.Size.X, threeD, first, halo,
                    new Box3(core.Start - read.Start, core.Size), changed);
                Paste(labels, read, core, after, shape);
                Paste(settled, read, core, settledAfter, shape);
                for (int k = 0; k < halo; k++) changedAt[k] |= changed[k];
                chunkChanged[c] = changed.Contains(true);
            }
            int stop = Array.IndexOf(changedAt, false);
            if (stop >= 0)
            {
                VoronoiFlood.CutBack(after, settledAfter, first + stop);
                return (after, rounds);
            }
            // Next round: the chunks that changed and their neighbours.
            Array.Clear(active);
            for (long c = 0; c < grid.Volume; c++)
            {
                if (!chunkChanged[c]) continue;
                var at = new Long3(c / (grid.Y * grid.X), c / grid.X % grid.Y, c % grid.X);
                for (long z = Math.Max(at.Z - 1, 0); z <= Math.Min(at.Z + 1, grid.Z - 1); z++)
                    for (long y = Math.Max(at.Y - 1, 0); y <= Math.Min(at.Y + 1, grid.Y - 1); y++)
                        for (long x = Math.Max(at.X - 1, 0); x <= Math.Min(at.X + 1, grid.X - 1); x++)
                            active[(z * grid.Y + y) * grid.X + x] = true;
            }
            (before, settledBefore) = (after, settledAfter);
            first += halo;
        }
    }

    private static T[] Crop<T>(T[] source, Long3 shape, Box3 box)
    {
        var result = new T[box.VoxelCount];
        int i = 0;
        for (long z = box.Start.Z; z < box.End.Z; z++)
            for (long y = box.Start.Y; y < box.End.Y; y++)
                for (long x = box.Start.X; x < box.End.X; x++)
                    result[i++] = source[(z * shape.Y + y) * shape.X + x];
        return result;
    }

    private static void Paste<T>(T[] block, Box3 blockBox, Box3 core, T[] target, Long3 shape)
    {
        for (long z = core.Start.Z; z < core.End.Z; z++)
            for (long y = core.Start.Y; y < core.End.Y; y++)
                for (long x = core.Start.X; x < core.End.X; x++)
                    target[(z * shape.Y + y) * shape.X + x] =
                        block[((z - blockBox.Start.Z) * blockBox.Size.Y + (y - blockBox.Start.Y)) * blockBox.Size.X + (x - blockBox.Start.X)];
    }
}
