using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Storage;

namespace ChunkSeg.Pipelines;

/// <summary>
/// The Zarr version of an output and its shards (<c>--format zarr2|zarr3</c>, <c>--shard z,y,x</c>). Zarr outputs are v3
/// by default (OME-NGFF 0.5), sharded: by <see cref="Shard"/> when given, else one shard per compute chunk
/// (<see cref="EmbeddedJob"/> sets it once the chunks are planned), so every writer owns its shards whole and a terabyte
/// array is a few thousand files, not millions. <c>--format zarr2</c> writes OME-NGFF 0.4 for readers without v3.
/// </summary>
public sealed record ZarrLayout(int Format, Long3? Shard)
{
    public static readonly ZarrLayout V2 = new(2, null);

    /// <summary>What a Zarr output is when neither option is given: v3, one shard per compute chunk.</summary>
    public static readonly ZarrLayout Default = new(3, null);

    /// <summary>
    /// The layout the options ask for: <paramref name="format"/> zarr2 or zarr3, <paramref name="shard"/> z,y,x (zarr3 only);
    /// null when neither is given (<see cref="Default"/> for a Zarr output, nothing for HDF5 or TIFF).
    /// </summary>
    public static ZarrLayout? Parse(string? format, string? shard)
    {
        if (format is null && shard is null) return null;
        int version = format switch
        {
            null or "zarr3" or "3" => 3,
            "zarr2" or "2" => 2,
            _ => throw new UsageException($"--format {format}: use zarr3 (OME-NGFF 0.5, sharded; the default) or zarr2 (OME-NGFF 0.4)"),
        };
        var shape = OptionValues.ParseLong3("--shard", shard);
        if (shape is not null && version != 3)
            throw new UsageException($"--shard {shard}: shards are a Zarr v3 feature; drop --format zarr2");
        return new ZarrLayout(version, shape);
    }

    /// <summary>The option's text for <paramref name="layout"/> (null: the default), as a run's parameters record it.</summary>
    public static string Describe(ZarrLayout? layout)
    {
        var l = layout ?? Default;
        return $"zarr{l.Format}" + (l.Shard is { } shard ? " shard " + shard : "");
    }
}

/// <summary>How a converted (or generated) volume is laid out on disk.</summary>
public static class OutputLayout
{
    /// <summary>
    /// <paramref name="options"/> in the Zarr version and shards of <paramref name="zarr"/> (null: the default, v3 for a Zarr
    /// output); a non-Zarr output with an asked v3 layout and shards that do not hold whole chunks are refused, naming the option.
    /// </summary>
    public static VolumeCreateOptions WithZarr(VolumeCreateOptions options, VolumeFormat format, ZarrLayout? zarr)
    {
        if (zarr is null && format != VolumeFormat.Zarr) return options;
        zarr ??= ZarrLayout.Default;
        if (zarr == ZarrLayout.V2) return options;
        if (format != VolumeFormat.Zarr)
            throw new UsageException($"--format zarr{zarr.Format}{(zarr.Shard is null ? "" : " --shard")}: applies to Zarr outputs (out.zarr) only");
        int[]? shards = zarr.Shard is { } s ? SpatialShape(options, s) : null;
        var result = options with { ZarrFormat = zarr.Format, ShardShape = shards };
        try
        {
            result.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--shard: {e.Message}", e);
        }
        return result;
    }

    /// <summary>
    /// Per axis of <paramref name="options"/>: the z, y, x of <paramref name="spatial"/> (at most the axis's extent rounded up
    /// to whole chunks), every channel of a chunk, one time point.
    /// </summary>
    public static int[] SpatialShape(VolumeCreateOptions options, Long3 spatial)
    {
        var shape = new int[options.Axes.Rank];
        for (int d = 0; d < shape.Length; d++)
        {
            long chunk = options.Chunks[d];
            long whole = (options.Shape[d] + chunk - 1) / chunk * chunk;
            shape[d] = options.Axes[d] switch
            {
                'z' => (int)Math.Min(spatial.Z, whole), 'y' => (int)Math.Min(spatial.Y, whole), 'x' => (int)Math.Min(spatial.X, whole),
                _ => (int)chunk,
            };
        }
        return shape;
    }

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
