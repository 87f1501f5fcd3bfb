using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;
using Spectre.Console;

namespace ChunkSeg.Cli.Commands;

/// <summary>`chunkseg info VOLUME [--json] [--axes ...]`: what a volume is, without reading its voxels.</summary>
internal static class InfoCommand
{
    public static Command Create(CommandContext context)
    {
        var volume = new Argument<string>("volume") { Description = "x.zarr, x.zarr/0 or file.h5/dataset/path" };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table" };
        var axes = Options.Axes();
        var command = new Command("info", "Show axes, shape, dtype, storage chunks, codec, voxel size and size of a volume") { volume, json, axes };
        command.SetAction(parse =>
        {
            using var v = VolumeStore.Open(parse.GetValue(volume)!, OptionValues.ParseAxes(parse.GetValue(axes)));
            var info = v.Info;
            if (parse.GetValue(json))
            {
                context.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    location = info.Location,
                    format = info.Format.ToString().ToLowerInvariant(),
                    axes = info.Axes.Names,
                    shape = info.Shape,
                    dtype = info.DataType.Name(),
                    chunks = info.StorageChunks,
                    shards = info.ShardShape,
                    codec = info.Codec,
                    fillValue = double.IsNaN(info.FillValue) ? (double?)null : info.FillValue,
                    voxelSize = new { z = info.VoxelSize.Z, y = info.VoxelSize.Y, x = info.VoxelSize.X, unit = info.VoxelSize.Unit },
                    sizeBytes = info.SizeInBytes,
                }, new JsonSerializerOptions { WriteIndented = true }));
                return CliApp.Ok;
            }
            var table = new Table().HideHeaders().AddColumn("").AddColumn("").Border(TableBorder.Rounded)
                .Title(Markup.Escape(info.Location));
            table.AddRow("format", info.Format switch { VolumeFormat.Zarr => "Zarr", VolumeFormat.Hdf5 => "HDF5", VolumeFormat.N5 => "N5", _ => "TIFF" });
            table.AddRow("axes", info.Axes.Names);
            table.AddRow("shape", Join(info.Shape));
            table.AddRow("dtype", info.DataType.Name());
            table.AddRow("storage chunks", Join(info.StorageChunks.Select(c => (long)c)));
            if (info.ShardShape is { } shards)
                table.AddRow("shards", Join(shards.Select(c => (long)c)));
            table.AddRow("codec", Markup.Escape(info.Codec));
            table.AddRow("fill value", info.FillValue.ToString(CultureInfo.InvariantCulture));
            table.AddRow("voxel size", Markup.Escape(info.VoxelSize.ToString()));
            table.AddRow("size", $"{Units.Bytes(info.SizeInBytes)} ({info.ElementCount:N0} voxels)");
            context.Stdout.Write(table);
            return CliApp.Ok;
        });
        return command;
    }

    private static string Join(IEnumerable<long> values) => string.Join(" x ", values);
}
