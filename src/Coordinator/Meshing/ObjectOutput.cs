using ChunkSeg.Contracts.Meshing;
using ChunkSeg.Kernels.Meshing;

namespace ChunkSeg.Coordinator.Meshing;

/// <summary>How a welded object goes to the sink: post-processed and given normals when asked, then written as one group.</summary>
internal static class ObjectOutput
{
    /// <summary>An object ready to write; <see cref="Normals"/> empty when none were asked for.</summary>
    public sealed record Finished(string Name, float[] Positions, float[] Normals, int[] Triangles);

    public static Finished Finish(string name, float[] positions, int[] triangles, bool normals, Func<TriangleMesh, TriangleMesh>? finish)
    {
        if (finish is null && !normals) return new Finished(name, positions, [], triangles);
        var mesh = new TriangleMesh(positions, triangles);
        if (finish is not null) mesh = finish(mesh);
        return new Finished(name, mesh.Positions, normals ? MeshNormals.AreaWeighted(mesh) : [], mesh.Triangles);
    }

    /// <summary>Writes one object, numbering its vertices from <paramref name="vertices"/>; advances both counts.</summary>
    public static void Write(IMeshSink sink, Finished done, ref long vertices, ref long triangles)
    {
        sink.BeginObject(done.Name);
        sink.AddVertices(done.Positions, done.Normals);
        sink.AddTriangles(done.Triangles, vertices);
        vertices += done.Positions.Length / 3;
        triangles += done.Triangles.Length / 3;
    }

    public static void ReverseWinding(Span<int> triangles)
    {
        for (int i = 0; i < triangles.Length; i += 3) (triangles[i + 1], triangles[i + 2]) = (triangles[i + 2], triangles[i + 1]);
    }
}
