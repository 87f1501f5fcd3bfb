// The masked Voronoi flood of clEsperanto's voronoi_otsu_labeling, and how to run it chunk by chunk exactly.
//
// clEsperanto (masked_voronoi_labeling) grows labelled seeds through a foreground mask in synchronous
// iterations, alternating two neighbourhoods, until an iteration changes nothing:
//
//      iteration 0, 2, 4, ...  box      every unlabelled foreground voxel takes the LARGEST label among its
//                                       26 neighbours (8 in 2D), as they were before this iteration
//      iteration 1, 3, 5, ...  diamond  the same over the 6 face neighbours (4 in 2D)
//      stop after the first iteration that labels nothing (even when a later box step would label more)
//
//      . . . . . . .        . . . . . . .        . . . . . . .
//      . . . . . . .        . 2 2 2 . . .        2 2 2 2 3 . .       ties go to the larger label (3 over 2):
//      . . 2 . 3 . .  ──▶   . 2 2 3 3 3 .  ──▶   2 2 2 3 3 3 3       the seed numbered later in raster order
//      . . . . . . .        . 2 2 3 3 3 .        2 2 2 3 3 3 3
//        seeds               after box            after diamond
//
// A voxel's value after iteration i depends only on the voxels within i steps of it (Chebyshev distance),
// and labels never change once set. That makes the chunked flood exact, bulk-synchronously: a round of K
// iterations (K even, so every round starts with a box step) reads each chunk with a halo of K from the
// state the previous round left, floods the read box K iterations, and keeps the core, which lies at least K
// from every face of the read box that is not a face of the volume; wrong values that start at those faces
// travel one voxel per iteration and never reach it. The whole-volume stop rule is global, so each chunk
// reports in which of its K iterations its core changed; the first iteration in which no core anywhere
// changed is clEsperanto's last (T), and a voxel keeps its label only when it was labelled in an iteration
// before T (the settled iteration each voxel carries): a round that ran past T is cut back without rerunning.
// A chunk whose read box did not change in a round does not change in the next one either (the same state
// and the same K iterations), so only chunks next to a change run again.
//
// The flood itself follows a frontier: only unlabelled foreground voxels next to a labelled one are examined,
// so an iteration costs the voxels on the moving fronts, not the block.
using System.Buffers;
using System.Numerics;
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Kernels.Splitting;

/// <summary>The masked, alternating box/diamond, largest-label-wins flood of clEsperanto's Voronoi labelling.</summary>
public static class VoronoiFlood
{
    /// <summary>The settled iteration of a seed (a voxel labelled before the flood).</summary>
    public const int Seed = 0;

    /// <summary>A voxel no iteration has labelled (yet).</summary>
    public const int Unsettled = int.MaxValue;

    /// <summary>
    /// Floods the whole volume as clEsperanto does: iterations until one labels nothing. Returns the number of
    /// iterations that labelled something.
    /// </summary>
    /// <param name="labels">Seeds on entry (0 = unlabelled), the flooded labels on return; index <c>x + sx·(y + sy·z)</c>.</param>
    /// <param name="mask">Non-zero where the flood may go (clEsperanto's binary foreground).</param>
    /// <param name="threeD">Whether the neighbourhoods are 3D (26 / 6) or 2D (8 / 4; then <paramref name="sz"/> is 1).</param>
    public static int Run<T>(Span<T> labels, ReadOnlySpan<byte> mask, int sz, int sy, int sx, bool threeD)
        where T : unmanaged, IBinaryInteger<T>
    {
        var settled = ArrayPool<int>.Shared.Rent(labels.Length);
        try
        {
            InitialiseSettled(labels, settled.AsSpan(0, labels.Length));
            return Advance(labels, settled.AsSpan(0, labels.Length), mask, sz, sy, sx, threeD, firstIteration: 0, int.MaxValue, default, [], stopWhenUnchanged: true);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(settled);
        }
    }

    /// <summary>Sets <paramref name="settled"/> to <see cref="Seed"/> where a label is present and <see cref="Unsettled"/> elsewhere.</summary>
    public static void InitialiseSettled<T>(ReadOnlySpan<T> labels, Span<int> settled) where T : unmanaged, IBinaryInteger<T>
    {
        for (int i = 0; i < labels.Length; i++) settled[i] = T.IsZero(labels[i]) ? Unsettled : Seed;
    }

    /// <summary>
    /// Runs iterations <paramref name="firstIteration"/> … <paramref name="firstIteration"/> + <paramref name="iterations"/> − 1
    /// over one block in place (with <paramref name="stopWhenUnchanged"/>, the block is the whole volume: stop after an
    /// iteration that labels nothing, as clEsperanto does; a chunk's read box runs on, since the volume may not have
    /// stopped). Each voxel it labels
    /// gets the number of its iteration + 1 in <paramref name="settled"/>; <paramref name="coreChanged"/>[k] is set when
    /// iteration <paramref name="firstIteration"/> + k labelled a voxel of <paramref name="core"/> (block coordinates).
    /// Returns the number of iterations run that labelled something. With <paramref name="heights"/>, the label a voxel
    /// takes follows the watershed's rule (DistanceWatershed) instead of clEsperanto's largest label.
    /// </summary>
    public static int Advance<T>(Span<T> labels, Span<int> settled, ReadOnlySpan<byte> mask, int sz, int sy, int sx, bool threeD,
        int firstIteration, int iterations, Box3 core, Span<bool> coreChanged, bool stopWhenUnchanged = false, FloodHeights heights = default)
        where T : unmanaged, IBinaryInteger<T>
    {
        long n = (long)sz * sy * sx;
        if (labels.Length < n || settled.Length < n || mask.Length < n)
            throw new ArgumentException($"a {sz}x{sy}x{sx} block needs {n} labels, settled iterations and mask values; got {labels.Length}, {settled.Length}, {mask.Length}");
        if (!threeD && sz != 1) throw new ArgumentException($"a 2D flood runs on one plane; the block has {sz}");
        if (!heights.IsEmpty && heights.Squared.Length < n) throw new ArgumentException($"a {sz}x{sy}x{sx} block needs {n} heights; got {heights.Squared.Length}");
        if (firstIteration < 0 || iterations < 0) throw new ArgumentOutOfRangeException(nameof(iterations), "iterations are counted from 0");
        var block = new Block(sz, sy, sx, threeD);
        var queued = ArrayPool<bool>.Shared.Rent((int)n);
        var front = new List<int>();
        var next = new List<int>();
        var labelled = new List<(int Voxel, T Label)>();
        try
        {
            Array.Clear(queued, 0, (int)n);
            // The first front: unlabelled foreground voxels with a labelled neighbour in the box.
            Span<int> neighbours = stackalloc int[26];
            for (int v = 0; v < n; v++)
            {
                if (T.IsZero(labels[v])) continue;
                foreach (int u in neighbours[..block.BoxNeighbours(v, neighbours)])
                    Enqueue(u, labels, mask, queued, front);
            }

            int run = 0;
            for (int k = 0; k < iterations && front.Count > 0; k++)
            {
                int iteration = firstIteration + k;
                bool box = (iteration & 1) == 0;
                labelled.Clear();
                next.Clear();
                foreach (int v in front)
                {
                    T largest = !heights.IsEmpty ? block.Highest(labels, heights, v, box)
                        : box ? block.LargestInBox(labels, v) : block.LargestInDiamond(labels, v);
                    if (!T.IsZero(largest)) labelled.Add((v, largest));
                    else next.Add(v);                   // a diagonal neighbour only: waits for the next box step
                }
                if (labelled.Count == 0)
                {
                    if (stopWhenUnchanged) break;       // clEsperanto stops here
                    (front, next) = (next, front);
                    continue;
                }
                run++;
                foreach (var (v, label) in labelled)
                {
                    labels[v] = label;
                    settled[v] = iteration + 1;
                    queued[v] = false;
                    if (k < coreChanged.Length && block.IsIn(core, v)) coreChanged[k] = true;
                }
                foreach (var (v, _) in labelled)
                    foreach (int u in neighbours[..block.BoxNeighbours(v, neighbours)])
                        Enqueue(u, labels, mask, queued, next);
                (front, next) = (next, front);
            }
            return run;
        }
        finally
        {
            ArrayPool<bool>.Shared.Return(queued);
        }
    }

    private static void Enqueue<T>(int u, ReadOnlySpan<T> labels, ReadOnlySpan<byte> mask, bool[] queued, List<int> front)
        where T : unmanaged, IBinaryInteger<T>
    {
        if (!T.IsZero(labels[u]) || mask[u] == 0 || queued[u]) return;
        queued[u] = true;
        front.Add(u);
    }

    /// <summary>
    /// The final labels of a flood that clEsperanto stopped after <paramref name="lastIteration"/> iterations that labelled
    /// something: labels set by a later iteration (a chunk's round that ran on past the global stop) are cleared.
    /// </summary>
    public static void CutBack<T>(Span<T> labels, ReadOnlySpan<int> settled, int lastIteration) where T : unmanaged, IBinaryInteger<T>
    {
        for (int i = 0; i < labels.Length; i++)
            if (!Kept(settled[i], lastIteration)) labels[i] = T.Zero;
    }

    /// <summary>Whether a voxel labelled with <paramref name="settled"/> keeps its label when the flood stopped after <paramref name="lastIteration"/>.</summary>
    public static bool Kept(int settled, int lastIteration) => settled == Unsettled || settled <= lastIteration;

    private readonly ref struct Block(int sz, int sy, int sx, bool threeD)
    {
        private readonly int _sz = sz, _sy = sy, _sx = sx, _sxy = sy * sx;
        private readonly bool _threeD = threeD;

        public (int Z, int Y, int X) At(int v) => (v / _sxy, v / _sx % _sy, v % _sx);

        public T LargestInBox<T>(ReadOnlySpan<T> labels, int v) where T : unmanaged, IBinaryInteger<T>
        {
            var (z, y, x) = At(v);
            int z0 = _threeD ? Math.Max(z - 1, 0) : z, z1 = _threeD ? Math.Min(z + 1, _sz - 1) : z;
            int y0 = Math.Max(y - 1, 0), y1 = Math.Min(y + 1, _sy - 1), x0 = Math.Max(x - 1, 0), x1 = Math.Min(x + 1, _sx - 1);
            T largest = T.Zero;
            for (int zz = z0; zz <= z1; zz++)
                for (int yy = y0; yy <= y1; yy++)
                {
                    int row = zz * _sxy + yy * _sx;
                    for (int xx = x0; xx <= x1; xx++) largest = T.Max(largest, labels[row + xx]);
                }
            return largest;
        }

        public T LargestInDiamond<T>(ReadOnlySpan<T> labels, int v) where T : unmanaged, IBinaryInteger<T>
        {
            var (z, y, x) = At(v);
            T largest = T.Zero;
            if (x > 0) largest = T.Max(largest, labels[v - 1]);
            if (x < _sx - 1) largest = T.Max(largest, labels[v + 1]);
            if (y > 0) largest = T.Max(largest, labels[v - _sx]);
            if (y < _sy - 1) largest = T.Max(largest, labels[v + _sx]);
            if (_threeD && z > 0) largest = T.Max(largest, labels[v - _sxy]);
            if (_threeD && z < _sz - 1) largest = T.Max(largest, labels[v + _sxy]);
            return largest;
        }

        /// <summary>The label of the neighbour with the largest (height, label) that <paramref name="heights"/> lets label <paramref name="v"/>; 0 if none.</summary>
        public T Highest<T>(ReadOnlySpan<T> labels, FloodHeights heights, int v, bool box) where T : unmanaged, IBinaryInteger<T>
        {
            var (z, y, x) = At(v);
            var h = heights.Squared;
            double floor = heights.Downhill ? h[v] : double.NegativeInfinity, best = double.NegativeInfinity;
            T winner = T.Zero;
            int z0 = _threeD ? Math.Max(z - 1, 0) : z, z1 = _threeD ? Math.Min(z + 1, _sz - 1) : z;
            int y0 = Math.Max(y - 1, 0), y1 = Math.Min(y + 1, _sy - 1), x0 = Math.Max(x - 1, 0), x1 = Math.Min(x + 1, _sx - 1);
            for (int zz = z0; zz <= z1; zz++)
                for (int yy = y0; yy <= y1; yy++)
                    for (int xx = x0; xx <= x1; xx++)
                    {
                        if (!box && Math.Abs(zz - z) + Math.Abs(yy - y) + Math.Abs(xx - x) != 1) continue;
                        int u = zz * _sxy + yy * _sx + xx;
                        T label = labels[u];
                        if (T.IsZero(label) || h[u] < floor) continue;
                        if (h[u] > best || (h[u] == best && label > winner)) (best, winner) = (h[u], label);
                    }
            return winner;
        }

        public bool IsIn(Box3 box, int v)
        {
            var (z, y, x) = At(v);
            return z >= box.Start.Z && z < box.End.Z && y >= box.Start.Y && y < box.End.Y && x >= box.Start.X && x < box.End.X;
        }

        /// <summary>Writes the indices of <paramref name="v"/>'s box neighbours inside the block; returns how many.</summary>
        public int BoxNeighbours(int v, Span<int> neighbours)
        {
            var (z, y, x) = At(v);
            int z0 = _threeD ? Math.Max(z - 1, 0) : z, z1 = _threeD ? Math.Min(z + 1, _sz - 1) : z;
            int y0 = Math.Max(y - 1, 0), y1 = Math.Min(y + 1, _sy - 1), x0 = Math.Max(x - 1, 0), x1 = Math.Min(x + 1, _sx - 1);
            int count = 0;
            for (int zz = z0; zz <= z1; zz++)
                for (int yy = y0; yy <= y1; yy++)
                {
                    int row = zz * _sxy + yy * _sx;
                    for (int xx = x0; xx <= x1; xx++)
                        if (row + xx != v) neighbours[count++] = row + xx;
                }
            return count;
        }
    }
}
