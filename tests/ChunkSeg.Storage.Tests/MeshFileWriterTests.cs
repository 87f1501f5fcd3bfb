using System.Text;
using ChunkSeg.Storage.Meshing;

namespace ChunkSeg.Storage.Tests;

public class MeshFileWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("chunkseg-meshwriter-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>One triangle with normals, streamed as a welder does: vertices, an empty batch, then the face numbered from vertex 1.</summary>
    private string Write(string name)
    {
        string path = Path.Combine(_dir, name);
        using var writer = MeshFileWriter.Create(path, ["test"], labelled: false);
        writer.BeginObject("surface");
        writer.AddVertices([0, 0, 0, 1, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1, 0, 0, 1]);
        writer.AddVertices([], []);
        writer.AddTriangles([-1, 0, 1], first: 1);
        writer.Complete();
        return path;
    }

    [Fact]
    public void An_empty_vertex_batch_keeps_the_obj_normals()
    {
        var lines = File.ReadAllLines(Write("t.obj"));
        Assert.Equal(3, lines.Count(l => l.StartsWith("vn ", StringComparison.Ordinal)));
        Assert.Contains("f 1//1 2//2 3//3", lines);
    }

    [Fact]
    public void An_empty_vertex_batch_keeps_the_ply_normals()
    {
        var bytes = File.ReadAllBytes(Write("t.ply"));
        string text = Encoding.ASCII.GetString(bytes);
        int body = text.IndexOf("end_header\n", StringComparison.Ordinal) + "end_header\n".Length;
        Assert.Contains("property float nx", text[..body]);
        Assert.Equal(3 * 6 * 4 + (1 + 3 * 4), bytes.Length - body);
    }
}
