using System.Globalization;
using ChunkSeg.Contracts.Labeling;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Coordinator.Labeling;

/// <summary>
/// objects.csv: one row per object in id order, streamed as the numbering settles ids. Columns (3D; a 2D
/// table drops every z column and reports area_um2 instead of volume_um3):
/// <code>
///   id, [t,] voxels, volume_um3, centroid_z/y/x (voxels), centroid_z/y/x_um,
///   bbox_z0/y0/x0, bbox_z1/y1/x1 (voxels, half-open as scikit-image's bbox), the same in µm, [mean_intensity]
/// </code>
/// Micrometre coordinates are voxel index × voxel size (voxel centres, as OME-NGFF's scale puts them).
/// </summary>
public sealed class ObjectTableWriter : IDisposable
{
    private readonly TextWriter _writer;
    private readonly VoxelSize _voxel;
    private readonly bool _hasTime, _hasZ, _hasIntensity;

    public ObjectTableWriter(TextWriter writer, VoxelSize voxelSize, bool hasTime, bool hasZ, bool hasIntensity)
    {
        _writer = writer;
        _voxel = voxelSize;
        (_hasTime, _hasZ, _hasIntensity) = (hasTime, hasZ, hasIntensity);
        var columns = new List<string> { "id" };
        if (hasTime) columns.Add("t");
        columns.Add("voxels");
        columns.Add(hasZ ? "volume_um3" : "area_um2");
        string[] axes = hasZ ? ["z", "y", "x"] : ["y", "x"];
        foreach (var a in axes) columns.Add($"centroid_{a}");
        foreach (var a in axes) columns.Add($"centroid_{a}_um");
        foreach (var a in axes) columns.Add($"bbox_{a}0");
        foreach (var a in axes) columns.Add($"bbox_{a}1");
        foreach (var a in axes) columns.Add($"bbox_{a}0_um");
        foreach (var a in axes) columns.Add($"bbox_{a}1_um");
        if (hasIntensity) columns.Add("mean_intensity");
        _writer.WriteLine(string.Join(',', columns));
    }

    public void Write(ulong id, long t, in PieceStats o)
    {
        var row = new List<string> { id.ToString(CultureInfo.InvariantCulture) };
        if (_hasTime) row.Add(I(t));
        row.Add(I(o.Voxels));
        double voxelVolume = (_hasZ ? _voxel.Z : 1) * _voxel.Y * _voxel.X;
        row.Add(D(o.Voxels * voxelVolume));
        var centroid = new[] { (double)o.SumZ / o.Voxels, (double)o.SumY / o.Voxels, (double)o.SumX / o.Voxels };
        var size = new[] { _voxel.Z, _voxel.Y, _voxel.X };
        long[] min = [o.MinZ, o.MinY, o.MinX], max = [o.MaxZ, o.MaxY, o.MaxX];
        int firstAxis = _hasZ ? 0 : 1;
        for (int a = firstAxis; a < 3; a++) row.Add(D(centroid[a]));
        for (int a = firstAxis; a < 3; a++) row.Add(D(centroid[a] * size[a]));
        for (int a = firstAxis; a < 3; a++) row.Add(I(min[a]));
        for (int a = firstAxis; a < 3; a++) row.Add(I(max[a] + 1));
        for (int a = firstAxis; a < 3; a++) row.Add(D(min[a] * size[a]));
        for (int a = firstAxis; a < 3; a++) row.Add(D((max[a] + 1) * size[a]));
        if (_hasIntensity) row.Add(D(o.IntensitySum / o.Voxels));
        _writer.WriteLine(string.Join(',', row));
    }

    public void Dispose() => _writer.Dispose();

    private static string I(long v) => v.ToString(CultureInfo.InvariantCulture);
    private static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
