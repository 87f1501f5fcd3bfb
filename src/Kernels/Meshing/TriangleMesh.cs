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

    /// <summary>Refuses indices out of range and coordinates that are not finite (the post-processing kernels trust both).</summary>
    internal void ThrowIfInvalid()
    {
        int vertexCount = VertexCount;
        for (int i = 0; i < Triangles.Length; i++)
            if ((uint)Triangles[i] >= (uint)vertexCount)
                throw new ArgumentException(
                    $"triangle {i / 3} refers to vertex {Triangles[i]}, but the mesh has {vertexCount} vertices (0 … {vertexCount - 1})", "mesh");
        for (int i = 0; i < Positions.Length; i++)
            if (!float.IsFinite(Positions[i]))
                throw new ArgumentException($"vertex {i / 3} has a coordinate that is not finite ({Positions[i]})", "mesh");
    }
}
