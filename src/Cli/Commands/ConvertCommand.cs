using System.CommandLine;
using ChunkSeg.Cli.Jobs;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Storage;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// `chunkseg convert IN OUT`: Zarr ↔ HDF5, chunk by chunk through the job spine, so memory is bounded by
/// the chunk size whatever the volume size. Zarr output is OME-Zarr 0.4 (axes reordered to t, c, z, y, x);
/// HDF5 output keeps the input's axis order and records it in ilastik's axistags.
/// </summary>
internal static class ConvertCommand
{
    public static Command Create(CommandContext context)
    {
        var input = new Argument<string>("input") { Description = "Volume to read: x.zarr, x.zarr/0 or file.h5/dataset" };
        var output = new Argument<string>("output") { Description = "Volume to write: out.zarr (OME-Zarr) or out.h5/dataset" };
        var chunks = new Option<string?>("--chunks") { Description = "Output storage chunk shape z,y,x (default 64,128,128; 2D: y,x)" };
        var computeChunk = new Option<string?>("--chunk") { Description = "Compute chunk core shape z,y,x (rounded to whole output storage chunks; default 128³ within a 256 MiB budget)" };
        var codec = new Option<string?>("--codec") { Description = $"Output compression: {string.Join(", ", CodecSpec.Names)}, optional :level (default blosc-lz4:5 for Zarr, gzip:4 for HDF5)" };
        var axes = Options.Axes();
        var voxelSize = new Option<string?>("--voxel-size") { Description = "Voxel size z,y,x in micrometers, overriding the input's" };
        var workers = Options.Workers();
        var overwrite = Options.Overwrite();
        var command = new Command("convert", "Convert a volume between Zarr/OME-Zarr and HDF5, chunk by chunk")
        {
            input, output, chunks, computeChunk, codec, axes, voxelSize, workers, overwrite,
        };
        command.SetAction(async (parse, ct) =>
        {
            var target = VolumeStore.ParseAddress(parse.GetValue(output)!);
            var requestedChunks = Options.ParseLong3("--chunks", parse.GetValue(chunks));
            var requestedCompute = Options.ParseLong3("--chunk", parse.GetValue(computeChunk));
            var codecSpec = Options.ParseCodec(parse.GetValue(codec));
            var voxel = Options.ParseVoxelSize(parse.GetValue(voxelSize));
            int workerCount = Options.CheckWorkers(parse.GetValue(workers));
            using var source = VolumeStore.Open(parse.GetValue(input)!, Options.ParseAxes(parse.GetValue(axes)));
            var options = OutputLayout.For(source.Info, target.Format, requestedChunks, codecSpec, voxel);

            var request = new JobRequest(StageCatalog.Convert, source, target, options, requestedCompute, workerCount,
                parse.GetValue(overwrite), new Dictionary<string, string>());
            var outcome = await JobConsole.RunWithProgressAsync(context, "convert", request, ct).ConfigureAwait(false);
            return JobConsole.Summarize(context, "convert", outcome);
        });
        return command;
    }
}

/// <summary>How a converted (or generated) volume is laid out on disk.</summary>
internal static class OutputLayout
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
