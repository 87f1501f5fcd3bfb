using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Storage;

namespace ChunkSeg.Pipelines;

/// <summary>How a converted (or generated) volume is laid out on disk.</summary>
public static class OutputLayout
{
    public static readonly Long3 DefaultChunks3D = new(64, 128, 128);
    public static readonly Long3 DefaultChunks2D = new(1, 256, 256);

    /// <summary>
    /// A float32 matrix with the input's spatial and time axes and <paramref name="channels"/> channels last
    /// (features, probabilities), stored in <paramref name="spatialChunks"/> with every channel in a chunk.
    /// </summary>
    public static VolumeCreateOptions ChannelsLast(VolumeInfo input, VolumeFormat format, int channels, Long3? spatialChunks,
        Long3 defaultChunks3D, Long3 defaultChunks2D, CodecSpec? codec, CodecSpec defaultHdf5Codec)
    {
        var axes = FeaturesStage.OutputAxes(input.Axes);
        var chunk3 = spatialChunks ?? (input.Axes.HasZ ? defaultChunks3D : defaultChunks2D);
        var shape = new long[axes.Rank];
        var chunks = new int[axes.Rank];
        for (int d = 0; d < axes.Rank; d++)
        {
            char a = axes[d];
            shape[d] = a == 'c' ? channels : input.Extent(a);
            long c = a switch { 'z' => chunk3.Z, 'y' => chunk3.Y, 'x' => chunk3.X, 'c' => channels, _ => 1 };
            chunks[d] = (int)Math.Clamp(c, 1, shape[d]);
        }
        return new VolumeCreateOptions(axes, shape, Contracts.Volumes.DataType.Float32, chunks, input.VoxelSize, CodecFor(format, codec, defaultHdf5Codec));
    }

    public static VolumeCreateOptions For(VolumeInfo input, VolumeFormat format, Long3? spatialChunks, CodecSpec? codec, Contracts.Volumes.VoxelSize? voxelSize)
    {
        var axes = format == VolumeFormat.Zarr ? input.Axes.ToOmeOrder() : input.Axes;
        codec = CodecFor(format, codec, CodecSpec.Gzip());
        var chunk3 = spatialChunks ?? (input.Axes.HasZ ? DefaultChunks3D : DefaultChunks2D);
        var shape = new long[axes.Rank];
        var chunks = new int[axes.Rank];
        for (int d = 0; d < axes.Rank; d++)
        {
            char a = axes[d];
            shape[d] = input.Extent(a);
            long c = a switch
            {
                'z' => chunk3.Z, 'y' => chunk3.Y, 'x' => chunk3.X,
                'c' => format == VolumeFormat.Hdf5 ? shape[d] : 1,   // ilastik reads channel-last HDF5 best with all channels per chunk
                _ => 1,
            };
            chunks[d] = (int)Math.Clamp(c, 1, shape[d]);
        }
        return new VolumeCreateOptions(axes, shape, input.DataType, chunks, voxelSize ?? input.VoxelSize, codec, input.FillValue);
    }
    /// <summary>
    /// A label volume: the input's spatial and time axes (no channels), <paramref name="type"/> voxels; in Zarr an OME-NGFF
    /// label image (OME order, "image-label" metadata).
    /// </summary>
    public static VolumeCreateOptions Labels(VolumeInfo input, VolumeFormat format, Contracts.Volumes.DataType type, Long3? spatialChunks, CodecSpec? codec)
    {
        var axes = Contracts.Volumes.AxisOrder.Parse(input.Axes.Names.Replace("c", "", StringComparison.Ordinal));
        if (format == VolumeFormat.Zarr) axes = axes.ToOmeOrder();
        var chunk3 = spatialChunks ?? (input.Axes.HasZ ? new Long3(64, 64, 64) : new Long3(1, 256, 256));
        var shape = new long[axes.Rank];
        var chunks = new int[axes.Rank];
        for (int d = 0; d < axes.Rank; d++)
        {
            char a = axes[d];
            shape[d] = input.Extent(a);
            long c = a switch { 'z' => chunk3.Z, 'y' => chunk3.Y, 'x' => chunk3.X, _ => 1 };
            chunks[d] = (int)Math.Clamp(c, 1, shape[d]);
        }
        return new VolumeCreateOptions(axes, shape, type, chunks, input.VoxelSize, CodecFor(format, codec, CodecSpec.Gzip(1)),
            LabelImage: format == VolumeFormat.Zarr);
    }

    /// <summary>The asked codec, or the format's default; HDF5 output takes only none and gzip.</summary>
    private static CodecSpec CodecFor(VolumeFormat format, CodecSpec? codec, CodecSpec defaultHdf5Codec)
    {
        codec ??= format == VolumeFormat.Zarr ? CodecSpec.Default : defaultHdf5Codec;
        if (format == VolumeFormat.Hdf5 && codec.Name is not ("none" or "gzip" or "zlib"))
            throw new UsageException($"--codec {codec}: HDF5 output supports none and gzip");
        return codec;
    }
}
