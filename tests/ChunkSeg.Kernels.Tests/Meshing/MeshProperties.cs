using ChunkSeg.Kernels.Meshing;

namespace ChunkSeg.Kernels.Tests.Meshing;

/// <summary>
/// What a mesh is, counted the slow and obvious way (dictionaries of edges, a union-find over vertices), so
/// that it checks the kernels instead of sharing their shortcuts.
/// </summary>
internal sealed record MeshProperties(
    int UsedVertices,
    int Edges,
    int Triangles,
    int BoundaryEdges,          // used by one triangle
    int NonManifoldEdges,       // used by three or more
    int RepeatedDirectedEdges,  // a directed edge used twice: neighbours wound against each other
    int DegenerateTriangles,    // a vertex twice, or zero area
    int DuplicateTriangles,     // the same three vertices as an earlier triangle
    int Components,             // connected through shared vertices
    double Volume,              // signed, by the divergence theorem: positive when wound outward
    double Area)
{
    public int Euler => UsedVertices - Edges + Triangles;

    public static MeshProperties Of(TriangleMesh mesh)
    {
        var undirected = new Dictionary<(int, int), int>();
        var directed = new Dictionary<(int, int), int>();
        var seen = new HashSet<(int, int, int)>();
        var parent = Enumerable.Range(0, mesh.VertexCount).ToArray();
        var used = new bool[mesh.VertexCount];
        int degenerate = 0, duplicate = 0;
        double volume = 0, area = 0;

        for (int t = 0; t < mesh.TriangleCount; t++)
        {
            int a = mesh.Triangles[3 * t], b = mesh.Triangles[3 * t + 1], c = mesh.Triangles[3 * t + 2];
            foreach (var (from, to) in new[] { (a, b), (b, c), (c, a) })
            {
                var key = (Math.Min(from, to), Math.Max(from, to));
                undirected[key] = undirected.GetValueOrDefault(key) + 1;
                directed[(from, to)] = directed.GetValueOrDefault((from, to)) + 1;
                Union(parent, from, to);
            }
            used[a] = used[b] = used[c] = true;

            int[] sorted = [a, b, c];
            Array.Sort(sorted);
            if (!seen.Add((sorted[0], sorted[1], sorted[2]))) duplicate++;

            var (pa, pb, pc) = (Point(mesh, a), Point(mesh, b), Point(mesh, c));
            var n = Cross(Sub(pb, pa), Sub(pc, pa));
            double doubleArea = Math.Sqrt(Dot(n, n));
            if (a == b || b == c || c == a || doubleArea == 0) degenerate++;
            area += doubleArea / 2;
            volume += Dot(pa, Cross(pb, pc)) / 6;
        }

        int components = 0;
        for (int v = 0; v < used.Length; v++)
            if (used[v] && Find(parent, v) == v) components++;

        return new MeshProperties(
            used.Count(u => u), undirected.Count, mesh.TriangleCount,
            undirected.Values.Count(n => n == 1), undirected.Values.Count(n => n > 2), directed.Values.Count(n => n > 1),
            degenerate, duplicate, components, volume, area);
    }

    /// <summary>Closed and manifold: every edge in exactly two triangles, once in each direction, and clean triangles.</summary>
    public static MeshProperties AssertClosedManifold(TriangleMesh mesh)
    {
        var p = AssertManifold(mesh);
        Assert.Equal(0, p.BoundaryEdges);
        return p;
    }

    /// <summary>Manifold, maybe with open boundaries: every edge in one or two triangles, consistently wound.</summary>
    public static MeshProperties AssertManifold(TriangleMesh mesh)
    {
        var p = Of(mesh);
        Assert.Equal(0, p.NonManifoldEdges);
        Assert.Equal(0, p.RepeatedDirectedEdges);   // with ≤ 2 uses per edge: an interior edge runs once each way
        Assert.Equal(0, p.DegenerateTriangles);
        Assert.Equal(0, p.DuplicateTriangles);
        Assert.Equal(mesh.VertexCount, p.UsedVertices);
        return p;
    }

    /// <summary>The edges used by one triangle (open borders), as vertex pairs (smaller index first).</summary>
    public static List<(int A, int B)> OpenEdges(TriangleMesh mesh)
    {
        var uses = new Dictionary<(int, int), int>();
        for (int t = 0; t < mesh.TriangleCount; t++)
            for (int c = 0; c < 3; c++)
            {
                int a = mesh.Triangles[3 * t + c], b = mesh.Triangles[3 * t + (c + 1) % 3];
                var key = (Math.Min(a, b), Math.Max(a, b));
                uses[key] = uses.GetValueOrDefault(key) + 1;
            }
        return uses.Where(u => u.Value == 1).Select(u => u.Key).ToList();
    }

    /// <summary>The edges used by one triangle, as pairs of positions (order-free), to compare boundaries across renumbering.</summary>
    public static HashSet<string> BoundaryEdgePositions(TriangleMesh mesh)
    {
        var edges = new HashSet<string>();
        foreach (var (a, b) in OpenEdges(mesh))
        {
            string pa = PointText(mesh, a), pb = PointText(mesh, b);
            edges.Add(string.CompareOrdinal(pa, pb) < 0 ? $"{pa}|{pb}" : $"{pb}|{pa}");
        }
        return edges;
    }

    private static string PointText(TriangleMesh mesh, int v) =>
        $"{BitConverter.SingleToInt32Bits(mesh.Positions[3 * v])},{BitConverter.SingleToInt32Bits(mesh.Positions[3 * v + 1])},{BitConverter.SingleToInt32Bits(mesh.Positions[3 * v + 2])}";

    private static (double X, double Y, double Z) Point(TriangleMesh mesh, int v) =>
        (mesh.Positions[3 * v], mesh.Positions[3 * v + 1], mesh.Positions[3 * v + 2]);

    private static (double X, double Y, double Z) Sub((double X, double Y, double Z) a, (double X, double Y, double Z) b) =>
        (a.X - b.X, a.Y - b.Y, a.Z - b.Z);

    private static (double X, double Y, double Z) Cross((double X, double Y, double Z) a, (double X, double Y, double Z) b) =>
        (a.Y * b.Z - a.Z * b.Y, a.Z * b.X - a.X * b.Z, a.X * b.Y - a.Y * b.X);

    private static double Dot((double X, double Y, double Z) a, (double X, double Y, double Z) b) =>
        a.X * b.X + a.Y * b.Y + a.Z * b.Z;

    private static int Find(int[] parent, int v)
    {
        while (parent[v] != v) v = parent[v] = parent[parent[v]];
        return v;
    }

    private static void Union(int[] parent, int a, int b)
    {
        int ra = Find(parent, a), rb = Find(parent, b);
        if (ra != rb) parent[Math.Max(ra, rb)] = Math.Min(ra, rb);
    }
}
