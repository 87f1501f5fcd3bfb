using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Coordinator.Planning;

namespace ChunkSeg.Pipeline.Tests;

public class ChunkGridTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Cores_tile_the_volume_exactly_once_and_read_boxes_are_clipped_halos(int seed)
    {
        var rng = new Random(seed);
        for (int trial = 0; trial < 20; trial++)
        {
            var shape = new Long3(rng.Next(1, 14), rng.Next(1, 14), rng.Next(1, 14));
            var chunk = new Long3(rng.Next(1, (int)shape.Z + 4), rng.Next(1, (int)shape.Y + 4), rng.Next(1, (int)shape.X + 4));
            var halo = new Halo(rng.Next(0, 4), rng.Next(0, 4), rng.Next(0, 4));
            int t = rng.Next(1, 3);
            var grid = new ChunkGrid(shape, t, chunk, halo);
            var covered = new int[t, shape.Z, shape.Y, shape.X];
            long count = 0;
            foreach (var c in grid.Enumerate())
            {
                count++;
                Assert.True(grid.Bounds.Contains(c.Core), $"seed {seed}: core {c.Core} outside {shape}");
                Assert.True(c.Read.Contains(c.Core));
                Assert.Equal(c.Core.Grow(halo, grid.Bounds), c.Read);
                for (long z = c.Core.Start.Z; z < c.Core.End.Z; z++)
                for (long y = c.Core.Start.Y; y < c.Core.End.Y; y++)
                for (long x = c.Core.Start.X; x < c.Core.End.X; x++)
                    covered[c.TimePoint, z, y, x]++;
            }
            Assert.Equal(grid.Count, count);
            Assert.All(covered.Cast<int>(), n => Assert.Equal(1, n));
        }
    }

    [Fact]
    public void Read_box_of_an_interior_chunk_is_core_plus_halo_on_every_side()
    {
        var grid = new ChunkGrid(new Long3(100, 100, 100), 1, new Long3(10, 20, 30), new Halo(2, 3, 4));
        var c = grid.Get(new ChunkId(grid.Blocks.X * grid.Blocks.Y + grid.Blocks.X + 1));   // block (1, 1, 1)
        Assert.Equal(new Box3(new Long3(10, 20, 30), new Long3(10, 20, 30)), c.Core);
        Assert.Equal(new Box3(new Long3(8, 17, 26), new Long3(14, 26, 38)), c.Read);
        Assert.Equal(new Long3(2, 3, 4), c.CoreOffsetInRead);
    }

    [Fact]
    public void A_ten_terabyte_plan_is_lazy_and_constant_memory()
    {
        // 5e12 voxels: 100 time points of 1000 x 7072 x 7072, 2.5 million chunks.
        var shape = new Long3(1000, 7072, 7072);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var grid = ChunkPlanner.Plan(shape, 100, new Long3(64, 128, 128), null, Halo.Uniform(20), bytesPerVoxel: 4);
        long middle = grid.Count / 2;
        var spec = grid[middle];
        var last = grid[grid.Count - 1];
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(shape.Volume * 100 >= 5_000_000_000_000L);
        Assert.True(allocated < 64 * 1024, $"planning allocated {allocated} bytes");
        Assert.Equal(shape, last.Core.End);
        Assert.Equal(99, last.TimePoint);
        Assert.True(grid.Bounds.Contains(spec.Read));
        Assert.Throws<ArgumentOutOfRangeException>(() => grid[grid.Count]);
    }

    [Fact]
    public void Planner_aligns_compute_chunks_to_storage_chunks()
    {
        var grid = ChunkPlanner.Plan(new Long3(300, 300, 300), 1, new Long3(64, 100, 30), new Long3(100, 100, 100), Halo.None, 2);
        Assert.Equal(0, grid.ChunkShape.Z % 64);
        Assert.Equal(0, grid.ChunkShape.Y % 100);
        Assert.Equal(0, grid.ChunkShape.X % 30);
        Assert.Equal(new Long3(128, 100, 90), grid.ChunkShape);
    }

    [Fact]
    public void Planner_shrinks_chunks_to_the_memory_budget_in_whole_storage_chunks()
    {
        var grid = ChunkPlanner.Plan(new Long3(1024, 1024, 1024), 1, new Long3(32, 32, 32), new Long3(512, 512, 512), Halo.Uniform(8),
            bytesPerVoxel: 8, maxChunkBytes: 64L << 20);
        var read = grid.MaxReadShape;
        Assert.True(read.Volume * 8 <= 64L << 20, $"read box {read} exceeds the budget");
        Assert.Equal(0, grid.ChunkShape.X % 32);
        Assert.Equal(0, grid.ChunkShape.Y % 32);
        Assert.Equal(0, grid.ChunkShape.Z % 32);
    }

    [Fact]
    public void Two_dimensional_volumes_get_flat_chunks()
    {
        var grid = ChunkPlanner.Plan(new Long3(1, 3000, 2000), 1, new Long3(1, 256, 256), null, Halo.None, 1);
        Assert.Equal(1, grid.ChunkShape.Z);
        Assert.Equal(512, grid.ChunkShape.Y);
    }
}
