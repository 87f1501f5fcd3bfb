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
// Masks (0/1 corners) use a second table that differs in 24 cases, where the cell's interior joins two parts of
// the surface that the faces keep apart (MC33's interior ambiguity): three outside corners of which two share an
// edge and the third touches neither (case 6 seen from the inside). Lewiner's interior test, which scikit-image
// runs, cuts a tunnel there on 0/1 values; without it the surfaces are 0.55 voxel apart in that cell. The two
// loops become one tube around a vertex at the cell's centre (Centre), every new edge off the cube's faces.
// scikit-image also tunnels the 8 cases of three inside corners around one outside corner (case 7); there no
// tube through one interior vertex keeps its edges off the faces (each crossing of the small loop sees only
// one edge of the large one), and edges in a face could meet a neighbouring tunnel's, so those cells keep two
// sheets, at most 0.5 voxel from scikit-image's tube.
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

    /// <summary>The table for 0/1 masks (see the file comment): as <see cref="Offsets"/>/<see cref="Edges"/>, with vertex <see cref="Centre"/> in tunnel cases.</summary>
    public static readonly int[] MaskOffsets = new int[257];
    public static readonly byte[] MaskEdges;

    /// <summary>The mask cases whose triangles use the <see cref="Centre"/> vertex.</summary>
    public static readonly bool[] HasCentre = new bool[256];

    /// <summary>The vertex at the cell's centre, used by <see cref="MaskEdges"/> only.</summary>
    public const int Centre = 12;

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
        var maskEdges = new List<byte>(256 * 12);
        for (int c = 0; c < 256; c++)
        {
            Offsets[c] = edges.Count;
            MaskOffsets[c] = maskEdges.Count;
            var complement = Triangulate(255 - c);
            for (int k = 0; k < complement.Count; k += 3)
                edges.AddRange([(byte)complement[k], (byte)complement[k + 2], (byte)complement[k + 1]]);
            HasCentre[c] = HasInteriorTunnel(c);
            if (!HasCentre[c])
            {
                maskEdges.AddRange(edges.Skip(Offsets[c]));
                continue;
            }
            // The complement's loops run the other way round: reversed, they wind c's surface outwards.
            var loops = Loops(255 - c);
            if (loops.Count != 2) throw new InvalidOperationException($"case {c}: a tunnel joins two loops, not {loops.Count}");
            foreach (var loop in loops) loop.Reverse();
            foreach (int e in Tube(loops[0], loops[1])) maskEdges.Add((byte)e);
        }
        Offsets[256] = edges.Count;
        MaskOffsets[256] = maskEdges.Count;
        Edges = edges.ToArray();
        MaskEdges = maskEdges.ToArray();
    }

    private static bool Adjacent(int a, int b) => int.IsPow2(a ^ b);

    /// <summary>The mask cases whose interior joins two loops (see the file comment).</summary>
    internal static bool HasInteriorTunnel(int @case)
    {
        int[] outside = Enumerable.Range(0, 8).Where(k => !Inside(@case, k)).ToArray();
        static int AdjacentPairs(int[] corners)
        {
            int pairs = 0;
            for (int i = 0; i < corners.Length; i++)
                for (int j = i + 1; j < corners.Length; j++)
                    if (Adjacent(corners[i], corners[j])) pairs++;
            return pairs;
        }
        return outside.Length == 3 && AdjacentPairs(outside) == 1;
    }

    /// <summary>
    /// One tube joining loops <paramref name="p"/> and <paramref name="q"/> (each wound as its own cap would be) through
    /// the centre vertex. The centre fans over an arc of each loop; two links join the arcs' ends, and the polygon
    /// left between the rest of both loops is triangulated. Of all arcs, the tube whose new edges are shortest
    /// (crossings at edge midpoints) with none between two crossings of one face is taken, first on ties.
    /// <code>
    ///   fan      (p_i, p_i+1, C) for the arc p_s … p_e,  (q_j, q_j+1, C) for the arc r_s … r_e
    ///   links    (p_e, r_s, C), (r_e, p_s, C)
    ///   polygon  p_e → … → p_s → r_e → … → r_s → p_e, triangulated without in-face diagonals
    /// </code>
    /// </summary>
    private static List<int> Tube(List<int> p, List<int> q)
    {
        int np = p.Count, nq = q.Count;
        List<int>? best = null;
        double bestCost = double.MaxValue;
        for (int ps = 0; ps < np; ps++)
            for (int pArc = 0; pArc < np; pArc++)
                for (int qs = 0; qs < nq; qs++)
                    for (int qArc = 0; qArc < nq; qArc++)
                    {
                        int pe = (ps + pArc) % np, qe = (qs + qArc) % nq;
                        var triangles = new List<int>();
                        for (int i = 0; i < pArc; i++) triangles.AddRange([p[(ps + i) % np], p[(ps + i + 1) % np], Centre]);
                        for (int j = 0; j < qArc; j++) triangles.AddRange([q[(qs + j) % nq], q[(qs + j + 1) % nq], Centre]);
                        triangles.AddRange([p[pe], q[qs], Centre, q[qe], p[ps], Centre]);
                        double cost = Distance2(p[pe], q[qs]) + Distance2(q[qe], p[ps]);
                        if (!OffFaces(p[pe], q[qs]) || !OffFaces(q[qe], p[ps])) continue;
                        var polygon = new List<int>();
                        for (int i = 0; i <= np - pArc; i++) polygon.Add(p[(pe + i) % np]);
                        for (int j = 0; j <= nq - qArc; j++) polygon.Add(q[(qe + j) % nq]);
                        var rest = CheapestTriangulation(polygon, (a, b) => OffFaces(a, b) ? Distance2(a, b) : double.PositiveInfinity);
                        if (rest is null) continue;
                        cost += rest.Value.Cost;
                        triangles.AddRange(rest.Value.Triangles);
                        if (cost < bestCost && IsAnnulus(triangles, p, q)) (best, bestCost) = (triangles, cost);
                    }
        return best ?? throw new InvalidOperationException("no tube between the loops keeps its edges off the cube's faces");
    }

    private static bool OffFaces(int e, int f) => (FacesOf(e) & FacesOf(f)) == 0;

    /// <summary>
    /// The polygon's triangulation of least total <paramref name="diagonalCost"/> (infinite: not allowed), by interval
    /// dynamic programming, the first split on ties; null if every triangulation has a diagonal not allowed.
    /// </summary>
    private static (List<int> Triangles, double Cost)? CheapestTriangulation(List<int> polygon, Func<int, int, double> diagonalCost)
    {
        int n = polygon.Count;
        var best = new double[n, n];
        var split = new int[n, n];
        for (int length = 2; length < n; length++)
            for (int i = 0; i + length < n; i++)
            {
                int j = i + length;
                best[i, j] = double.PositiveInfinity;
                for (int k = i + 1; k < j; k++)
                {
                    double cost = best[i, k] + best[k, j] + Diagonal(i, k) + Diagonal(k, j);
                    if (cost < best[i, j]) (best[i, j], split[i, j]) = (cost, k);
                }
            }
        if (double.IsPositiveInfinity(best[0, n - 1])) return null;
        var triangles = new List<int>();
        Emit(0, n - 1);
        return (triangles, best[0, n - 1]);

        double Diagonal(int i, int j)
        {
            if (j == i + 1 || (i == 0 && j == n - 1)) return 0;
            return diagonalCost(polygon[i], polygon[j]);
        }

        void Emit(int i, int j)
        {
            if (j - i < 2) return;
            int k = split[i, j];
            triangles.AddRange([polygon[i], polygon[k], polygon[j]]);
            Emit(i, k);
            Emit(k, j);
        }
    }

    /// <summary>
    /// True when the triangles form an oriented surface whose border is exactly loops p and q as wound: no degenerate
    /// triangle, each directed edge once, a loop's edges once (in the loop's direction) and every other edge twice.
    /// </summary>
    private static bool IsAnnulus(List<int> triangles, List<int> p, List<int> q)
    {
        var directed = new HashSet<(int, int)>();
        for (int t = 0; t < triangles.Count; t += 3)
            for (int k = 0; k < 3; k++)
            {
                int a = triangles[t + k], b = triangles[t + (k + 1) % 3];
                if (a == b || !directed.Add((a, b))) return false;
            }
        var border = new HashSet<(int, int)>();
        foreach (var loop in (List<int>[])[p, q])
            for (int i = 0; i < loop.Count; i++) border.Add((loop[i], loop[(i + 1) % loop.Count]));
        foreach (var (a, b) in directed)
            if (border.Contains((a, b)) == directed.Contains((b, a))) return false;
        return border.IsSubsetOf(directed);
    }

    /// <summary>Squared distance between the midpoints of two cube edges.</summary>
    private static double Distance2(int e, int f)
    {
        double sum = 0;
        for (int axis = 0; axis < 3; axis++)
        {
            double d = Midpoint(e, axis) - Midpoint(f, axis);
            sum += d * d;
        }
        return sum;

        static double Midpoint(int edge, int axis) => edge == Centre || edge >> 2 == axis ? 0.5 : EdgeCorners[edge].Low >> axis & 1;
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
        var triangles = new List<int>();
        foreach (var loop in Loops(@case)) AddLoop(loop, triangles);
        return triangles;
    }

    /// <summary>The case's loops of crossings with every ambiguous face separating its inside corners, wound outwards.</summary>
    private static List<List<int>> Loops(int @case)
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

        var loops = new List<List<int>>();
        var seen = new bool[12];
        for (int start = 0; start < 12; start++)
        {
            if (next[start] < 0 || seen[start]) continue;
            var loop = new List<int>();
            for (int e = start; !seen[e]; e = next[e]) { seen[e] = true; loop.Add(e); }
            loop.Reverse();   // outward winding
            loops.Add(loop);
        }
        return loops;
    }

    /// <summary>
    /// Triangulates a loop with no diagonal between two crossings of one cube face (first valid split on ties, so
    /// the table is deterministic). A loop without one (none exists, a test checks) would fall back to a fan.
    /// </summary>
    private static void AddLoop(List<int> loop, List<int> triangles)
    {
        var found = CheapestTriangulation(loop, (a, b) => OffFaces(a, b) ? 0 : double.PositiveInfinity);
        if (found is null)
        {
            FallbackTriangulations++;
            for (int k = 1; k <= loop.Count - 2; k++) triangles.AddRange([loop[0], loop[k], loop[k + 1]]);
            return;
        }
        triangles.AddRange(found.Value.Triangles);
    }
}
