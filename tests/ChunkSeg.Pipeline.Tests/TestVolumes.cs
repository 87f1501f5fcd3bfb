using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>Small Zarr volumes for CLI tests: written whole, read back whole.</summary>
internal static class TestVolumes
{
    /// <summary>Writes <paramref name="data"/> as a Zarr array named <paramref name="name"/> in <paramref name="dir"/>, chunks of at most 16.</summary>
    public static string WriteZarr(TempDir dir, string name, string axes, long[] shape, DataType type, byte[] data, VoxelSize? voxelSize = null)
    {
        var address = new VolumeAddress(VolumeFormat.Zarr, dir[name], "");
        var chunks = shape.Select(s => (int)Math.Min(s, 16)).ToArray();
        using var volume = VolumeStore.Create(address, new VolumeCreateOptions(AxisOrder.Parse(axes), shape, type, chunks, voxelSize ?? VoxelSize.Isotropic, CodecSpec.Default));
        volume.Write(NdBox.Whole(shape), data);
        return address.RootPath;
    }

    /// <summary>A whole uint32 volume (labels).</summary>
    public static uint[] ReadUInt32(string path)
    {
        using var volume = VolumeStore.Open(path);
        Assert.Equal(DataType.UInt32, volume.Info.DataType);
        var labels = new uint[volume.Info.ElementCount];
        volume.Read(NdBox.Whole(volume.Info.Shape), MemoryMarshal.AsBytes(labels.AsSpan()));
        return labels;
    }
}
