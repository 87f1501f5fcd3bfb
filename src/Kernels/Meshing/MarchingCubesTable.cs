// The marching-cubes case table, generated from the cube's geometry instead of typed in.
//
// A cell is the cube between eight voxels; a corner is "inside" when its value is above the isovalue. Where an
// edge joins an inside and an outside corner, the surface crosses it at one vertex. On each of the cube's six
// faces the crossings pair up into segments that cut the face's inside corners off its outside ones:
//
//      one inside corner      two adjacent         two opposite (ambiguous): always joined
//      ●───x───○              ●───────●            ●───x───○
//      │ ╱     │              x───────x            x  ╲    │
//      x╱      │              │       │            │    ╲  x
//      ○───────○              ○───────○            ○───x───●
//
// Every crossing lies on exactly two faces, so the segments chain into closed loops around the cube, and each
// loop is triangulated. A face's segments depend only on which of its four corners are inside, so the two cells
// that share a face cut it identically: the surface has no cracks, every edge of it inside the volume belongs to
// exactly two triangles, and the loops of neighbouring cells join into closed, consistently wound surfaces.
//
// An ambiguous face (inside corners on one diagonal) always joins its inside corners (cuts off the outside
// ones). That is what scikit-image's Lewiner marching cubes does with a binary mask, whose face saddle is a
// tie: inside voxels that share an edge are one surface (18-connected), corners touching only at a point
// are not. The asymptotic decider, which may join or separate by the values, was tried: mixing the two
// makes loops of up to nine crossings that no triangulation of crossings alone keeps manifold across faces
// (MC33 adds vertices inside the cell for those). A fixed rule keeps every loop triangulable with crossings
// only: the table is generated for "separate the inside corners" and case c takes the triangles of its
// complement 255 − c, wound the other way (separating the complement's inside is joining c's).
//
// Segments run from where the boundary walk (counter-clockwise seen from outside the cube) leaves the inside to
// where it re-enters, so each loop circles the inside part of the cube's surface; reversed, its triangles face
// outwards (from inside to outside values). A loop of n vertices becomes n − 2 triangles, chosen so that no
// diagonal joins two crossings of the same cube face: such a diagonal would lie in the face, where the
// neighbouring cell could draw it too and an edge would get four triangles.
//
// Geometry conventions (shared with MarchingCubes): corner c = x + 2y + 4z; edge e = 4·axis + k with axis
// 0 = x, 1 = y, 2 = z and k the other two coordinates (x-edges k = y + 2z, y-edges k = x + 2z, z-edges
// k = x + 2y); face f = 2·axis + side.

namespace ChunkSeg.Kernels.Meshing;

internal static class MarchingCubesTable
{
    /// <summary>Triangles of case c (bit k set when corner k is inside; ambiguous faces joined): edges [Offsets[c], Offsets[c + 1]) of <see cref="Edges"/>, three per triangle.</summary>
    public static readonly int[] Offsets = new int[257];
    public static readonly byte[] Edges;

    /// <summary>Lower and upper corner of each edge.</summary>
    public static readonly (int Low, int High)[] EdgeCorners = new (int, int)[12];

    /// <summary>The four corners of each face, counter-clockwise seen from outside the cube.</summary>
    public static readonly int[][] FaceCorners = new int[6][];

    /// <summary>Loops that had no fan free of same-face diagonals (tests expect none).</summary>
    internal static int FallbackTriangulations { get; private set; }

    static MarchingCubesTable()
    {
        for (int e = 0; e < 12; e++)
        {
            int axis = e >> 2, k = e & 3;
            int low = axis switch
            {
                0 => 2 * (k & 1) + 4 * (k >> 1),
                1 => (k & 1) + 4 * (k >> 1),
                _ => (k & 1) + 2 * (k >> 1),
            };
            EdgeCorners[e] = (low, low + (1 << axis));
        }
        for (int axis = 0; axis < 3; axis++)
        {
            // (u, v, axis) right-handed: counter-clockwise in (u, v) is counter-clockwise seen from +axis.
            int u = (axis + 1) % 3, v = (axis + 2) % 3;
            (int U, int V)[] ccw = [(0, 0), (1, 0), (1, 1), (0, 1)];
            for (int side = 0; side < 2; side++)
            {
                var corners = new int[4];
                for (int i = 0; i < 4; i++)
                {
                    // Seen from −axis the same walk is clockwise, so the low face walks it backwards.
                    var (cu, cv) = side == 1 ? ccw[i] : ccw[(4 - i) % 4];
                    corners[i] = (side << axis) | (cu << u) | (cv << v);
                }
                FaceCorners[2 * axis + side] = corners;
            }
        }

        var edges = new List<byte>(256 * 12);
        for (int c = 0; c < 256; c++)
        {
            Offsets[c] = edges.Count;
            var complement = Triangulate(255 - c);
            for (int k = 0; k < complement.Count; k += 3)
                edges.AddRange([(byte)complement[k], (byte)complement[k + 2], (byte)complement[k + 1]]);
        }
        Offsets[256] = edges.Count;
        Edges = edges.ToArray();
    }

    private static bool Inside(int @case, int corner) => (@case >> corner & 1) != 0;

    private static int EdgeBetween(int a, int b)
    {
        for (int e = 0; e < 12; e++)
            if (EdgeCorners[e] == (Math.Min(a, b), Math.Max(a, b))) return e;
        throw new InvalidOperationException($"corners {a} and {b} share no edge");
    }

    /// <summary>The two faces an edge lies on, as a bit set.</summary>
    private static int FacesOf(int edge)
    {
        var (low, _) = EdgeCorners[edge];
        int axis = edge >> 2, faces = 0;
        for (int other = 0; other < 3; other++)
            if (other != axis) faces |= 1 << (2 * other + (low >> other & 1));
        return faces;
    }

    /// <summary>The case's triangles with every ambiguous face separating its inside corners.</summary>
    private static List<int> Triangulate(int @case)
    {
        // next[e] = the crossing that follows crossing e along its loop.
        var next = new int[12];
        Array.Fill(next, -1);
        for (int f = 0; f < 6; f++)
        {
            var q = FaceCorners[f];
            int[] exits = new int[4], entries = new int[4];
            int inside = 0;
            for (int i = 0; i < 4; i++) inside += Inside(@case, q[i]) ? 1 : 0;
            for (int i = 0; i < 4; i++)
            {
                int a = q[i], b = q[(i + 1) & 3];
                exits[i] = entries[(i + 1) & 3] = -1;
                if (Inside(@case, a) == Inside(@case, b)) continue;
                int e = EdgeBetween(a, b);
                if (Inside(@case, a)) exits[i] = e;           // leaves corner i's inside
                else entries[(i + 1) & 3] = e;                // enters corner i+1
            }
            for (int i = 0; i < 4; i++)
            {
                if (exits[i] < 0) continue;
                // An exit pairs with the entry of its own corner when the face has two inside corners (the
                // ambiguous face, separated), else with the next entry along the walk.
                int target = inside == 2 && entries[i] >= 0 ? entries[i] : -1;
                for (int step = 1; step <= 4 && target < 0; step++) target = entries[(i + step) & 3];
                next[exits[i]] = target;
            }
        }

        var triangles = new List<int>();
        var seen = new bool[12];
        for (int start = 0; start < 12; start++)
        {
            if (next[start] < 0 || seen[start]) continue;
            var loop = new List<int>();
            for (int e = start; !seen[e]; e = next[e]) { seen[e] = true; loop.Add(e); }
            loop.Reverse();   // outward winding
            AddLoop(loop, triangles);
        }
        return triangles;
    }

    /// <summary>
    /// Triangulates a loop by interval dynamic programming, with no diagonal between two crossings of one cube
    /// face (first valid split on ties, so the table is deterministic). A loop without one (none exists, a test
    /// checks) would fall back to a fan.
    /// </summary>
    private static void AddLoop(List<int> loop, List<int> triangles)
    {
        const int Forbidden = 1 << 20;
        int n = loop.Count;
        int Cost(int i, int j)
        {
            if (j == i + 1 || (i == 0 && j == n - 1)) return 0;
            return (FacesOf(loop[i]) & FacesOf(loop[j])) != 0 ? Forbidden : 0;
        }
        var best = new int[n, n];
        var split = new int[n, n];
        for (int length = 2; length < n; length++)
            for (int i = 0; i + length < n; i++)
            {
                int j = i + length;
                best[i, j] = int.MaxValue;
                for (int k = i + 1; k < j; k++)
                {
                    int cost = best[i, k] + best[k, j] + Cost(i, k) + Cost(k, j);
                    if (cost < best[i, j]) (best[i, j], split[i, j]) = (cost, k);
                }
            }
        if (best[0, n - 1] >= Forbidden)
        {
            FallbackTriangulations++;
            for (int k = 1; k <= n - 2; k++) triangles.AddRange([loop[0], loop[k], loop[k + 1]]);
            return;
        }
        Emit(0, n - 1);

        void Emit(int i, int j)
        {
            if (j - i < 2) return;
            int k = split[i, j];
            triangles.AddRange([loop[i], loop[k], loop[j]]);
            Emit(i, k);
            Emit(k, j);
        }
    }
}
