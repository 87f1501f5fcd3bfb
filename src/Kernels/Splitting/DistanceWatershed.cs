// The binary watershed (--split distance): touching objects of a mask split at the necks of its distance map,
// defined so that every step is local and a chunk reproduces the whole image exactly.
//
//      mask ──▶ D² (ExactDistance: µm², voxel size aware) ──▶ seeds ──▶ downhill flood ──▶ filling flood ──▶ labels
//
// Seeds. A foreground voxel v is a seed when (D²(v), key(v)) is the largest pair, compared as (distance, then key),
// over its window: the foreground voxels within the minimum distance (voxels per axis, Chebyshev) of v that its own
// 26-connected (8 in 2D) foreground reaches inside that window. The key is the voxel's Fortran-order index + 1
// (VoronoiOtsu.FortranKey), so ties on a plateau go to one voxel, the same one in any chunk. Restricting the window to
// v's own connected foreground keeps a small object beside a larger one from losing its seed: every connected
// component has at least one (its largest pair). Like skimage's peak_local_max(min_distance), a wider window leaves
// fewer seeds, so an elongated object is not cut at every bump of its ridge.
//
// Floods. Both run VoronoiFlood's synchronous iterations (alternating 26 / 6 neighbours, 8 / 4 in 2D; a voxel keeps
// the label it first gets; stop after the first iteration that labels nothing), with the watershed's rule for the
// label an unlabelled foreground voxel v takes from its labelled neighbours u:
//
//      1 downhill   only from u with D²(u) ≥ D²(v), the one with the largest (D²(u), label(u))
//      2 filling    from any labelled u, the one with the largest (D²(u), label(u)); starts afresh from 1's result
//
//          D  1 2 3 4 3 2 3 5 6 5 3 2 1          the downhill flood climbs nothing: A's water and B's meet at the
//             ─────A─────┼─────B─────            neck (D = 2), each basin keeps its side; voxels below the neck
//               seed A   neck   seed B           go to whichever basin reaches them first
//
// Phase 1 is the watershed proper: a voxel's label comes down a path of non-increasing D from its seed, so a basin is
// only entered over its rim. Phase 2 gives the rest of the foreground (the basins of maxima the window suppressed,
// which no seed reaches downhill) to the neighbouring basins, as a marker watershed floods an unmarked basin from its
// lowest saddle. With the smallest window (1) every maximum is a seed and phase 2 labels nothing.
//
// Chunks. Seeds read D² one window wide around the core. The floods are VoronoiFlood's rounds (its header argues them
// exact): a voxel after iteration i depends on the voxels within i of it, D² included, so a round of K iterations
// reads states and D² K wide. Phase 2 starts when phase 1 has stopped in every chunk of the time point, from phase
// 1's states cut back to its last iteration.
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Kernels.Splitting;

/// <summary>The binary watershed of a mask's distance map (see the header).</summary>
public static class DistanceWatershed
{
    /// <summary>
    /// The whole-image split: the keys of <paramref name="keys"/> (0 background; a seed's key for every voxel of its
    /// region) from <paramref name="mask"/> (non-zero: foreground), one time point of <paramref name="sz"/>×<paramref name="sy"/>×
    /// <paramref name="sx"/> (2D: <paramref name="sz"/> 1), with <paramref name="spacing"/> z, y, x and the seeds' window.
    /// </summary>
    public static void Split(ReadOnlySpan<byte> mask, int sz, int sy, int sx, (double Z, double Y, double X) spacing, Halo window, bool threeD, Span<ulong> keys)
    {
        int n = checked(sz * sy * sx);
        var squared = new double[n];
        ExactDistance.Squared(mask, sz, sy, sx, spacing, squared);
        Seeds(squared, sz, sy, sx, window, threeD, (0, 0, 0, sz, sy, sx), default, new Long3(sz, sy, sx), keys);
        var settled = new int[n];
        foreach (bool downhill in new[] { true, false })
        {
            VoronoiFlood.InitialiseSettled<ulong>(keys, settled);
            VoronoiFlood.Advance<ulong>(keys, settled, mask, sz, sy, sx, threeD, 0, int.MaxValue, default, [], stopWhenUnchanged: true,
                new FloodHeights(squared, downhill));
        }
    }

    /// <summary>
    /// The key of every seed of <paramref name="core"/> (block coordinates; 0 elsewhere) into <paramref name="keys"/>
    /// (the core's voxels, x fastest), from D² of the block; <paramref name="origin"/> places the block in a time point of
    /// <paramref name="volume"/> voxels. The block must hold <paramref name="window"/> around the core where the image
    /// does. Returns how many.
    /// </summary>
    public static int Seeds(ReadOnlySpan<double> squared, int sz, int sy, int sx, Halo window, bool threeD,
        (int Z, int Y, int X, int EndZ, int EndY, int EndX) core, Long3 origin, Long3 volume, Span<ulong> keys)
    {
        if (window.Y < 1 || window.X < 1 || (threeD ? window.Z < 1 : window.Z != 0))
            throw new ArgumentOutOfRangeException(nameof(window), window, "the seeds' window is at least 1 voxel on each axis the image has (z 0 in 2D)");
        int cy = core.EndY - core.Y, cx = core.EndX - core.X;
        keys[..((core.EndZ - core.Z) * cy * cx)].Clear();
        var stamp = new int[(2 * window.Z + 1) * (2 * window.Y + 1) * (2 * window.X + 1)];
        int visit = 0, count = 0;
        var stack = new Stack<(int Z, int Y, int X)>();
        for (int z = core.Z; z < core.EndZ; z++)
            for (int y = core.Y; y < core.EndY; y++)
                for (int x = core.X; x < core.EndX; x++)
                {
                    double d = squared[(z * sy + y) * sx + x];
                    if (d <= 0) continue;
                    ulong key = KeyAt(z, y, x);
                    if (!LargestInWindow(z, y, x, d, key, ++visit, squared)) continue;
                    keys[((z - core.Z) * cy + (y - core.Y)) * cx + (x - core.X)] = key;
                    count++;
                }
        return count;

        ulong KeyAt(int z, int y, int x) => VoronoiOtsu.FortranKey(origin.Z + z, origin.Y + y, origin.X + x, volume.Y, volume.Z);

        // A depth-first walk of v's connected foreground inside its window, stopping at the first larger pair.
        bool LargestInWindow(int vz, int vy, int vx, double d, ulong key, int mark, ReadOnlySpan<double> squared)
        {
            int wy = 2 * window.Y + 1, wx = 2 * window.X + 1;
            int z0 = Math.Max(0, vz - window.Z), z1 = Math.Min(sz - 1, vz + window.Z);
            int y0 = Math.Max(0, vy - window.Y), y1 = Math.Min(sy - 1, vy + window.Y);
            int x0 = Math.Max(0, vx - window.X), x1 = Math.Min(sx - 1, vx + window.X);
            stack.Clear();
            stack.Push((vz, vy, vx));
            stamp[Slot(vz, vy, vx)] = mark;
            while (stack.Count > 0)
            {
                var (z, y, x) = stack.Pop();
                for (int nz = Math.Max(z0, z - 1); nz <= Math.Min(z1, z + 1); nz++)
                    for (int ny = Math.Max(y0, y - 1); ny <= Math.Min(y1, y + 1); ny++)
                        for (int nx = Math.Max(x0, x - 1); nx <= Math.Min(x1, x + 1); nx++)
                        {
                            int slot = Slot(nz, ny, nx);
                            if (stamp[slot] == mark) continue;
                            double du = squared[(nz * sy + ny) * sx + nx];
                            if (du <= 0) continue;
                            if (du > d || (du == d && KeyAt(nz, ny, nx) > key)) return false;
                            stamp[slot] = mark;
                            stack.Push((nz, ny, nx));
                        }
            }
            return true;

            int Slot(int z, int y, int x) => ((z - vz + window.Z) * wy + (y - vy + window.Y)) * wx + (x - vx + window.X);
        }
    }
}

/// <summary>
/// The watershed's rule for VoronoiFlood (DistanceWatershed's header): labels come from the neighbour with the largest
/// (D², label); with <see cref="Downhill"/>, only from neighbours at least as far from the background.
/// </summary>
public readonly ref struct FloodHeights(ReadOnlySpan<double> squared, bool downhill)
{
    public ReadOnlySpan<double> Squared { get; } = squared;
    public bool Downhill { get; } = downhill;
    public bool IsEmpty => Squared.IsEmpty;
}
