using ChunkSeg.Kernels.Meshing;

namespace ChunkSeg.Kernels.Tests.Meshing;

/// <summary>
/// Meshes with analytic truths, built here: welded (one vertex per point), closed ones outward oriented
/// (counter-clockwise seen from outside), which <see cref="MeshProperties"/> confirms in the tests.
/// </summary>
internal static class TestMeshes
{
    /// <summary>
    /// An icosahedron whose triangles are split into four, <paramref name="subdivisions"/> times, with every
    /// vertex on the sphere: 20·4ⁿ triangles, 10·4ⁿ + 2 vertices.
    /// </summary>
    public static TriangleMesh Icosphere(int subdivisions, double radius = 1, double cx = 0, double cy = 0, double cz = 0)
    {
        double g = (1 + Math.Sqrt(5)) / 2;
        var points = new List<(double X, double Y, double Z)>
        {
            (-1, g, 0), (1, g, 0), (-1, -g, 0), (1, -g, 0), (0, -1, g), (0, 1, g),
            (0, -1, -g), (0, 1, -g), (g, 0, -1), (g, 0, 1), (-g, 0, -1), (-g, 0, 1),
        };
        for (int i = 0; i < points.Count; i++) points[i] = Normalize(points[i]);
        var triangles = new List<int>
        {
            0, 11, 5, 0, 5, 1, 0, 1, 7, 0, 7, 10, 0, 10, 11, 1, 5, 9, 5, 11, 4, 11, 10, 2, 10, 7, 6, 7, 1, 8,
            3, 9, 4, 3, 4, 2, 3, 2, 6, 3, 6, 8, 3, 8, 9, 4, 9, 5, 2, 4, 11, 6, 2, 10, 8, 6, 7, 9, 8, 1,
        };
        for (int s = 0; s < subdivisions; s++)
        {
            var midpoints = new Dictionary<(int, int), int>();
            int Midpoint(int a, int b)
            {
                var key = (Math.Min(a, b), Math.Max(a, b));
                if (midpoints.TryGetValue(key, out int m)) return m;
                var (pa, pb) = (points[a], points[b]);
                points.Add(Normalize(((pa.X + pb.X) / 2, (pa.Y + pb.Y) / 2, (pa.Z + pb.Z) / 2)));
                return midpoints[key] = points.Count - 1;
            }
            var next = new List<int>(4 * triangles.Count);
            for (int t = 0; t < triangles.Count; t += 3)
            {
                int a = triangles[t], b = triangles[t + 1], c = triangles[t + 2];
                int ab = Midpoint(a, b), bc = Midpoint(b, c), ca = Midpoint(c, a);
                next.AddRange([a, ab, ca, b, bc, ab, c, ca, bc, ab, bc, ca]);
            }
            triangles = next;
        }
        var positions = new float[3 * points.Count];
        for (int i = 0; i < points.Count; i++)
        {
            positions[3 * i] = (float)(cx + radius * points[i].X);
            positions[3 * i + 1] = (float)(cy + radius * points[i].Y);
            positions[3 * i + 2] = (float)(cz + radius * points[i].Z);
        }
        return new TriangleMesh(positions, triangles.ToArray());
    }

    /// <summary>
    /// A torus around the z axis (ring radius <paramref name="ringRadius"/>, tube radius
    /// <paramref name="tubeRadius"/>) as an around × across grid of quads, two triangles each: Euler characteristic 0.
    /// </summary>
    public static TriangleMesh Torus(double ringRadius, double tubeRadius, int around, int across)
    {
        var positions = new float[3 * around * across];
        for (int i = 0; i < around; i++)
            for (int j = 0; j < across; j++)
            {
                double u = 2 * Math.PI * i / around, v = 2 * Math.PI * j / across, r = ringRadius + tubeRadius * Math.Cos(v);
                int p = 3 * (i * across + j);
                positions[p] = (float)(r * Math.Cos(u));
                positions[p + 1] = (float)(r * Math.Sin(u));
                positions[p + 2] = (float)(tubeRadius * Math.Sin(v));
            }
        var triangles = new List<int>(6 * around * across);
        int Index(int i, int j) => (i % around) * across + j % across;
        for (int i = 0; i < around; i++)
            for (int j = 0; j < across; j++)
            {
                // ∂p/∂u × ∂p/∂v points out of the tube, so (i,j) → (i+1,j) → (i+1,j+1) winds outward.
                int p00 = Index(i, j), p10 = Index(i + 1, j), p11 = Index(i + 1, j + 1), p01 = Index(i, j + 1);
                triangles.AddRange([p00, p10, p11, p00, p11, p01]);
            }
        return new TriangleMesh(positions, triangles.ToArray());
    }

    /// <summary>
    /// An icosphere with the triangles above z = <paramref name="cutHeight"/>·radius removed (by centroid),
    /// like a surface cut by the volume border: one open, jagged boundary loop.
    /// </summary>
    public static TriangleMesh CutSphere(int subdivisions, double radius, double cutHeight)
    {
        var sphere = Icosphere(subdivisions, radius);
        var kept = new List<int>();
        for (int t = 0; t < sphere.TriangleCount; t++)
        {
            double z = 0;
            for (int c = 0; c < 3; c++) z += sphere.Positions[3 * sphere.Triangles[3 * t + c] + 2];
            if (z / 3 <= cutHeight * radius)
                kept.AddRange(sphere.Triangles.AsSpan(3 * t, 3));
        }
        return Compact(sphere.Positions, kept.ToArray());
    }

    /// <summary>Several meshes as one, vertices and triangles appended in order.</summary>
    public static TriangleMesh Join(params TriangleMesh[] meshes)
    {
        var positions = new List<float>();
        var triangles = new List<int>();
        foreach (var mesh in meshes)
        {
            int offset = positions.Count / 3;
            positions.AddRange(mesh.Positions);
            foreach (int v in mesh.Triangles) triangles.Add(v + offset);
        }
        return new TriangleMesh(positions.ToArray(), triangles.ToArray());
    }

    /// <summary>Every vertex moved by a seeded uniform offset in [−amplitude, amplitude] per coordinate.</summary>
    public static TriangleMesh WithNoise(TriangleMesh mesh, double amplitude, int seed)
    {
        var rng = new Random(seed);
        var positions = (float[])mesh.Positions.Clone();
        for (int i = 0; i < positions.Length; i++) positions[i] += (float)(amplitude * (2 * rng.NextDouble() - 1));
        return new TriangleMesh(positions, (int[])mesh.Triangles.Clone());
    }

    /// <summary>Distance of each vertex from the centre.</summary>
    public static double[] Radii(TriangleMesh mesh, double cx = 0, double cy = 0, double cz = 0)
    {
        var radii = new double[mesh.VertexCount];
        for (int v = 0; v < radii.Length; v++)
        {
            double x = mesh.Positions[3 * v] - cx, y = mesh.Positions[3 * v + 1] - cy, z = mesh.Positions[3 * v + 2] - cz;
            radii[v] = Math.Sqrt(x * x + y * y + z * z);
        }
        return radii;
    }

    /// <summary>
    /// Triangles whose normal points towards the centre rather than away from it: none on a decimated
    /// star-shaped surface unless a collapse folded the surface over, which the topology checks cannot see.
    /// </summary>
    public static int InwardFacing(TriangleMesh mesh, double cx = 0, double cy = 0, double cz = 0)
    {
        int inward = 0;
        var p = mesh.Positions;
        for (int t = 0; t < mesh.TriangleCount; t++)
        {
            int a = 3 * mesh.Triangles[3 * t], b = 3 * mesh.Triangles[3 * t + 1], c = 3 * mesh.Triangles[3 * t + 2];
            double ux = p[b] - p[a], uy = p[b + 1] - p[a + 1], uz = p[b + 2] - p[a + 2];
            double vx = p[c] - p[a], vy = p[c + 1] - p[a + 1], vz = p[c + 2] - p[a + 2];
            double nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
            double mx = (p[a] + p[b] + p[c]) / 3 - cx, my = (p[a + 1] + p[b + 1] + p[c + 1]) / 3 - cy, mz = (p[a + 2] + p[b + 2] + p[c + 2]) / 3 - cz;
            if (nx * mx + ny * my + nz * mz <= 0) inward++;
        }
        return inward;
    }

    private static TriangleMesh Compact(float[] positions, int[] triangles)
    {
        var newIndex = new Dictionary<int, int>();
        var kept = new List<float>();
        var renumbered = new int[triangles.Length];
        for (int i = 0; i < triangles.Length; i++)
        {
            int v = triangles[i];
            if (!newIndex.TryGetValue(v, out int n))
            {
                newIndex[v] = n = newIndex.Count;
                kept.AddRange(positions.AsSpan(3 * v, 3));
            }
            renumbered[i] = n;
        }
        return new TriangleMesh(kept.ToArray(), renumbered);
    }

    private static (double X, double Y, double Z) Normalize((double X, double Y, double Z) p)
    {
        double length = Math.Sqrt(p.X * p.X + p.Y * p.Y + p.Z * p.Z);
        return (p.X / length, p.Y / length, p.Z / length);
    }
}
