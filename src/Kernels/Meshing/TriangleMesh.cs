namespace ChunkSeg.Kernels.Meshing;

/// <summary>
/// An indexed triangle mesh held in memory: <see cref="Positions"/> holds x, y, z of each vertex in a row
/// (in whatever units and axis order the caller chose), <see cref="Triangles"/> three vertex indices per
/// triangle, counter-clockwise seen from outside (normals by the right-hand rule point outwards).
/// </summary>
public sealed class TriangleMesh
{
    public TriangleMesh(float[] positions, int[] triangles)
    {
        ArgumentNullException.ThrowIfNull(positions);
        ArgumentNullException.ThrowIfNull(triangles);
        if (positions.Length % 3 != 0) throw new ArgumentException("positions must hold three coordinates per vertex", nameof(positions));
        if (triangles.Length % 3 != 0) throw new ArgumentException("triangles must hold three indices per triangle", nameof(triangles));
        Positions = positions;
        Triangles = triangles;
    }

    public static TriangleMesh Empty => new([], []);

    public float[] Positions { get; }
    public int[] Triangles { get; }
    public int VertexCount => Positions.Length / 3;
    public int TriangleCount => Triangles.Length / 3;
}
