using System.Buffers;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Labeling;

namespace ChunkSeg.Kernels.Labeling;

/// <summary>
/// Which pieces of neighbouring chunks touch, found from the chunks' face planes alone.
/// <para>
/// Chunk C looks at the box E = its core grown by one voxel towards lower coordinates: the core's lower
/// faces plus a one-voxel shell that lies on the upper faces of up to seven neighbours. Every pair of
/// touching voxels p, q in different chunks lies in the E of exactly the chunk holding their componentwise
/// maximum (both coordinates are within one of it, and not above it), so visiting every chunk's E finds
/// every crossing adjacency, including the diagonal ones of 26-connectivity across edges and corners:
/// <code>
///     y ▲   ┌───────────┐
///       │   │     C     │      E = C plus the shell ▒ (from the neighbours below and to the left,
///       │  ▒┼───────────┤          and the one diagonally below-left)
///       │  ▒▒▒▒▒▒▒▒▒▒▒▒▒
///       └──────────────────▶ x
/// </code>
/// </para>
/// </summary>
public static class ChunkEquivalences
{
    /// <summary>
    /// Calls <paramref name="touch"/> once for every distinct pair of pieces, one in the shell and one in E, that
    /// touch under <paramref name="connectivity"/> and hold the same value. <paramref name="summaryOf"/> gives the
    /// summary of chunk C's lower neighbours (chunk indices of <paramref name="grid"/>).
    /// </summary>
    public static void Find(ChunkGrid grid, ChunkLabelSummary self, Func<long, ChunkLabelSummary> summaryOf, Connectivity connectivity,
        Action<PieceRef, PieceRef> touch)
    {
        ArgumentNullException.ThrowIfNull(grid);
        ArgumentNullException.ThrowIfNull(self);
        var spec = grid[self.Chunk];
        var lo = spec.Core.Start;
        var hi = spec.Core.End;
        // E's origin and extent: one more voxel on each lower side that has a neighbour.
        var grow = new Long3(lo.Z > 0 ? 1 : 0, lo.Y > 0 ? 1 : 0, lo.X > 0 ? 1 : 0);
        if (grow == Long3.Zero) return;
        var origin = lo - grow;
        int ez = (int)(hi.Z - origin.Z), ey = (int)(hi.Y - origin.Y), ex = (int)(hi.X - origin.X);

        // The eight chunks E touches, by slot = 4·(below in z) + 2·(below in y) + (below in x).
        var block = grid.BlockOf(self.Chunk);
        var slots = new ChunkLabelSummary?[8];
        slots[0] = self;
        for (int s = 1; s < 8; s++)
        {
            var d = new Long3((s >> 2) & 1, (s >> 1) & 1, s & 1);
            if (d.Z > grow.Z || d.Y > grow.Y || d.X > grow.X) continue;
            slots[s] = summaryOf(grid.IndexOfBlock(spec.TimePoint, block - d));
        }

        // E's labels on the shell and on the core's lower faces. The rest of the core is never read (no shell voxel
        // touches it), so pooled buffers need no clearing.
        int size = ez * ey * ex;
        var labels = ArrayPool<uint>.Shared.Rent(size);
        var slotOf = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            Match(labels, slotOf, slots, origin, grow, ez, ey, ex, connectivity, touch);
        }
        finally
        {
            ArrayPool<uint>.Shared.Return(labels);
            ArrayPool<byte>.Shared.Return(slotOf);
        }
    }

    private static void Match(uint[] labels, byte[] slotOf, ChunkLabelSummary?[] slots, Long3 origin, Long3 grow, int ez, int ey, int ex,
        Connectivity connectivity, Action<PieceRef, PieceRef> touch)
    {
        for (int z = 0; z < ez; z++)
        for (int y = 0; y < ey; y++)
        for (int x = 0, xEnd = z > grow.Z && y > grow.Y ? (int)grow.X + 1 : ex; x < xEnd; x++)
        {
            int s = (z < grow.Z ? 4 : 0) | (y < grow.Y ? 2 : 0) | (x < grow.X ? 1 : 0);
            bool onLowerFace = z == grow.Z || y == grow.Y || x == grow.X;
            if (s == 0 && !onLowerFace) continue;
            int i = (z * ey + y) * ex + x;
            labels[i] = slots[s]!.LabelOnFace(origin + new Long3(z, y, x));
            slotOf[i] = (byte)s;
        }

        var offsets = Neighbourhood(connectivity);
        var seen = new HashSet<(int, uint, int, uint)>();
        var last = (-1, 0u, -1, 0u);
        for (int z = 0; z < ez; z++)
        for (int y = 0; y < ey; y++)
        for (int x = 0; x < ex; x++)
        {
            if (z >= grow.Z && y >= grow.Y && x >= grow.X) { x = ex; continue; }   // the rest of this row is the core
            int i = (z * ey + y) * ex + x;
            uint a = labels[i];
            if (a == 0) continue;
            int sa = slotOf[i];
            ulong value = slots[sa]!.Pieces[a - 1].Value;
            foreach (var (dz, dy, dx) in offsets)
            {
                int qz = z + dz, qy = y + dy, qx = x + dx;
                if ((uint)qz >= (uint)ez || (uint)qy >= (uint)ey || (uint)qx >= (uint)ex) continue;
                int j = (qz * ey + qy) * ex + qx;
                uint b = labels[j];
                int sb = slotOf[j];
                if (b == 0 || sb == sa || slots[sb]!.Pieces[b - 1].Value != value) continue;
                var key = sa < sb ? (sa, a, sb, b) : (sb, b, sa, a);
                if (key == last) continue;                          // neighbouring voxels mostly repeat the last pair
                last = key;
                if (seen.Add(key)) touch(new PieceRef(slots[key.Item1]!.Chunk, key.Item2), new PieceRef(slots[key.Item3]!.Chunk, key.Item4));
            }
        }
    }

    private static (int, int, int)[] Neighbourhood(Connectivity connectivity)
    {
        var offsets = new List<(int, int, int)>();
        for (int dz = -1; dz <= 1; dz++)
        for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
        {
            int steps = Math.Abs(dz) + Math.Abs(dy) + Math.Abs(dx);
            if (steps == 0 || (connectivity == Connectivity.Faces && steps > 1)) continue;
            offsets.Add((dz, dy, dx));
        }
        return [.. offsets];
    }
}
