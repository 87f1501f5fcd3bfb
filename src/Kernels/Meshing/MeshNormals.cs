namespace ChunkSeg.Kernels.Meshing;

/// <summary>
/// Vertex normals as the normalized sum of the surrounding triangles' normals weighted by their areas (the
/// cross product of two edges is twice the area along the normal), added in triangle order so that the same
/// mesh always gives the same bits.
/// </summary>
public static class MeshNormals
{
    public static float[] AreaWeighted(TriangleMesh mesh)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        var sums = new double[mesh.Positions.Length];
        var p = mesh.Positions;
        var t = mesh.Triangles;
        for (int i = 0; i < t.Length; i += 3)
        {
            var (nx, ny, nz) = Face(p.AsSpan(3 * t[i], 3), p.AsSpan(3 * t[i + 1], 3), p.AsSpan(3 * t[i + 2], 3));
            for (int j = 0; j < 3; j++)
            {
                int v = 3 * t[i + j];
                sums[v] += nx; sums[v + 1] += ny; sums[v + 2] += nz;
            }
        }
        var normals = new float[sums.Length];
        for (int v = 0; v < sums.Length; v += 3) Normalize(sums[v], sums[v + 1], sums[v + 2], normals.AsSpan(v, 3));
        return normals;
    }

    /// <summary>(b − a) × (c − a): the triangle's normal, twice its area long.</summary>
    public static (double X, double Y, double Z) Face(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c)
    {
        double ux = b[0] - (double)a[0], uy = b[1] - (double)a[1], uz = b[2] - (double)a[2];
        double vx = c[0] - (double)a[0], vy = c[1] - (double)a[1], vz = c[2] - (double)a[2];
        return (uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx);
    }

    /// <summary>The unit vector along (x, y, z); zero when it has no length.</summary>
    public static void Normalize(double x, double y, double z, Span<float> normal)
    {
        double length = Math.Sqrt(x * x + y * y + z * z);
        double scale = length > 0 ? 1 / length : 0;
        normal[0] = (float)(x * scale); normal[1] = (float)(y * scale); normal[2] = (float)(z * scale);
    }
}
