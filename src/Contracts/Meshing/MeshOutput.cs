using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Contracts.Meshing;

/// <summary>
/// How vertex ids become coordinates: micrometers from the voxel size, written x y z (<see cref="ArrayOrder"/>
/// false, what Blender and most mesh tools expect) or z y x (array order, as blender_tissue_cartography keeps).
/// </summary>
public sealed record MeshCoordinates(Long3 VolumeShape, VoxelSize VoxelSize, bool ArrayOrder = false)
{
    /// <summary>Writes the position of vertex <paramref name="id"/> with edge offset <paramref name="offset"/> (see <see cref="SurfacePiece"/>).</summary>
    public void PositionOf(ulong id, float offset, Span<float> xyz)
    {
        var (voxel, axis) = SurfacePiece.DecodeVertexId(id);
        long x = voxel % VolumeShape.X, row = voxel / VolumeShape.X;
        Write(x, row % VolumeShape.Y, row / VolumeShape.Y, axis, offset, xyz);
    }

    /// <summary>
    /// <see cref="PositionOf"/> for vertices in id order: consecutive ids mostly share a row of voxels, so a vertex's
    /// x, y, z follow from the previous one's without dividing.
    /// </summary>
    public void PositionsOf(ReadOnlySpan<ulong> ids, ReadOnlySpan<float> offsets, Span<float> xyz)
    {
        long rowStart = -1, rowEnd = -1, y = 0, z = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            var (voxel, axis) = SurfacePiece.DecodeVertexId(ids[i]);
            if (voxel < rowStart || voxel >= rowEnd)
            {
                long row = voxel / VolumeShape.X;
                (y, z) = (row % VolumeShape.Y, row / VolumeShape.Y);
                rowStart = row * VolumeShape.X;
                rowEnd = rowStart + VolumeShape.X;
            }
            Write(voxel - rowStart, y, z, axis, offsets[i], xyz.Slice(3 * i, 3));
        }
    }

    private void Write(long voxelX, long voxelY, long voxelZ, int axis, float offset, Span<float> xyz)
    {
        double x = voxelX, y = voxelY, z = voxelZ;
        switch (axis)
        {
            case 0: x += offset; break;
            case 1: y += offset; break;
            case 2: z += offset; break;
            default: x += offset; y += offset; z += offset; break;
        }
        x *= VoxelSize.X; y *= VoxelSize.Y; z *= VoxelSize.Z;
        if (ArrayOrder) { xyz[0] = (float)z; xyz[1] = (float)y; xyz[2] = (float)x; }
        else { xyz[0] = (float)x; xyz[1] = (float)y; xyz[2] = (float)z; }
    }
}

/// <summary>
/// Where a welded mesh goes, in order: vertices (0-based indices count on across objects), then triangles that
/// name only vertices already given; an object starts a named group. Writers stream what they get.
/// </summary>
public interface IMeshSink
{
    void BeginObject(string name);

    /// <summary>Three coordinates per vertex; <paramref name="normals"/> three per vertex, or empty (the same in every non-empty batch).</summary>
    void AddVertices(ReadOnlySpan<float> positions, ReadOnlySpan<float> normals);

    /// <summary>Three vertices per triangle, vertex <paramref name="first"/> + corner (0-based; a corner may be negative).</summary>
    void AddTriangles(ReadOnlySpan<int> corners, long first);

    /// <summary>Finishes the file; nothing is written after this.</summary>
    void Complete();
}
