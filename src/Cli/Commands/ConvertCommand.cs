using System.CommandLine;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Pipelines;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Tiff;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// `chunkseg convert IN OUT`: Zarr ↔ HDF5, chunk by chunk through the job spine, so memory is bounded by
/// the chunk size whatever the volume size. Zarr output is OME-Zarr 0.4 (axes reordered to t, c, z, y, x);
/// HDF5 output keeps the input's axis order and records it in ilastik's axistags.
/// TIFF output (out.tif) is an ImageJ hyperstack written page after page straight from the input
/// (<see cref="TiffWriter"/>): TIFF pages are sequential, so it is not a chunk sink of the job spine.
/// </summary>
internal static class ConvertCommand
{
    public static Command Create(CommandContext context)
    {
        var input = new Argument<string>("input") { Description = "Volume to read: x.zarr, x.zarr/0 or file.h5/dataset" };
        var output = new Argument<string>("output") { Description = "Volume to write: out.zarr (OME-Zarr), out.h5/dataset or out.tif (ImageJ hyperstack)" };
        var chunks = new Option<string?>("--chunks") { Description = "Output storage chunk shape z,y,x (default 64,128,128; 2D: y,x)" };
        var computeChunk = new Option<string?>("--chunk") { Description = "Compute chunk core shape z,y,x (rounded to whole output storage chunks; default 128³ within a 256 MiB budget)" };
        var codec = new Option<string?>("--codec") { Description = $"Output compression: {string.Join(", ", CodecSpec.Names)}, optional :level (default blosc-lz4:5 for Zarr, gzip:4 for HDF5; TIFF: none (default), or zlib/gzip for deflate)" };
        var axes = Options.Axes();
        var voxelSize = new Option<string?>("--voxel-size") { Description = "Voxel size z,y,x in micrometers, overriding the input's" };
        var workers = Options.Workers();
        var overwrite = Options.Overwrite();
        var (format, shard) = (Options.ZarrFormat(), Options.Shard());
        var (levels, downsample) = (Options.Levels(), Options.Downsample("default mode for uint64, mean otherwise"));
        var command = new Command("convert", "Convert a volume between Zarr/OME-Zarr and HDF5, chunk by chunk, or write it as an ImageJ TIFF")
        {
            input, output, chunks, computeChunk, codec, format, shard, axes, voxelSize, workers, overwrite, levels, downsample,
        };
        command.SetAction(async (parse, ct) =>
        {
            var target = VolumeStore.ParseAddress(parse.GetValue(output)!);
            var requestedChunks = OptionValues.ParseLong3("--chunks", parse.GetValue(chunks));
            var requestedCompute = OptionValues.ParseLong3("--chunk", parse.GetValue(computeChunk));
            var codecSpec = OptionValues.ParseCodec(parse.GetValue(codec));
            var voxel = OptionValues.ParseVoxelSize(parse.GetValue(voxelSize));
            int workerCount = OptionValues.CheckWorkers(parse.GetValue(workers));
            using var source = VolumeStore.Open(parse.GetValue(input)!, OptionValues.ParseAxes(parse.GetValue(axes)));
            var pyramid = OptionValues.Pyramid(parse.GetValue(levels), parse.GetValue(downsample), DownsampleStage.DefaultFor(source.Info.DataType, labelImage: false));
            if (pyramid.Levels != 1 && target.Format != VolumeFormat.Zarr)
                throw new UsageException($"--levels {parse.GetValue(levels)}: pyramids are written to OME-Zarr (out.zarr) only; {target.Format} output holds one level");
            if (target.Format == VolumeFormat.Tiff)
                return WriteTiff(context, source, target, codecSpec, voxel, parse.GetValue(overwrite), ct);
            var options = OutputLayout.WithZarr(OutputLayout.For(source.Info, target.Format, requestedChunks, codecSpec, voxel), target.Format,
                Options.ZarrLayoutOf(parse, format, shard));

            var request = new JobRequest(StageCatalog.Convert, source, target, options, requestedCompute, workerCount,
                parse.GetValue(overwrite), new Dictionary<string, string>(), Pyramid: pyramid);
            var outcome = await JobConsole.RunWithProgressAsync(context, "convert", request, ct).ConfigureAwait(false);
            return JobConsole.Summarize(context, "convert", outcome);
        });
        return command;
    }

    /// <summary>convert to TIFF: a sequential page writer from the input (memory: a slab of whole planes), atomic by rename.</summary>
    private static int WriteTiff(CommandContext context, IVolume source, VolumeAddress target, CodecSpec? codec, VoxelSize? voxel,
        bool overwrite, CancellationToken ct)
    {
        if (target.RootPath.Contains('*') || target.RootPath.Contains('?') || Directory.Exists(target.RootPath))
            throw new UsageException($"{target.RootPath}: a TIFF output is one file (out.tif)");
        if (File.Exists(target.RootPath) && !overwrite)
            throw new UsageException($"{target.RootPath}: output already exists; pass --overwrite to replace it");
        bool deflate = codec?.Name switch
        {
            null or "none" => false,
            "zlib" or "gzip" => true,
            _ => throw new UsageException($"--codec {codec}: TIFF output is uncompressed (none) or deflate (zlib, gzip)"),
        };
        var sw = System.Diagnostics.Stopwatch.StartNew();
        long pages = TiffWriter.Write(source, target.RootPath, voxel, deflate, ct: ct);
        context.Out.WriteLine($"convert: wrote {target.RootPath} ({pages} pages, ImageJ hyperstack{(deflate ? ", deflate" : "")}) in {sw.Elapsed.TotalSeconds:F1} s");
        return 0;
    }
}
