using System.CommandLine;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Storage.Ilastik;

namespace ChunkSeg.Cli.Commands;

/// <summary>Options shared by several commands; their values are checked into domain types by <see cref="Pipelines.OptionValues"/>.</summary>
internal static class Options
{
    public static Option<string?> Axes() => new("--axes")
    {
        Description = "Axis order of the input when its file does not say (or says wrongly), e.g. zyxc, tzyx, czyx",
    };

    public static Option<int> Workers() => new("--workers")
    {
        Description = "Worker threads (default: one per core)",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    };

    /// <param name="what">What the backend computes for this command, as the option's help names it.</param>
    public static Option<string> Backend(string what = "features and the forest") => new("--backend")
    {
        Description = $"Where {what} run: cpu, gpu (through ILGPU: the accelerator CHUNKSEG_GPU=cuda|opencl|cpu names, else CUDA, else an " +
            "OpenCL GPU), or auto (a GPU when ILGPU finds one, else cpu); results are the same on each",
        DefaultValueFactory = _ => "auto",
    };

    /// <summary>The backend <c>--backend</c> names, opened (the caller disposes it).</summary>
    public static GpuNode.Backends.ComputeBackend OpenBackend(string? name) =>
        GpuNode.Backends.ComputeBackends.Open(name ?? "auto", warning => Console.Error.WriteLine("warning: " + warning));

    public static Option<string?> ZarrFormat() => new("--format")
    {
        Description = "Zarr output version: zarr3 (OME-NGFF 0.5, zarr.json, sharded; the default) or zarr2 (OME-NGFF 0.4, for readers without Zarr v3)",
    };

    public static Option<string?> Shard() => new("--shard")
    {
        Description = "With --format zarr3: shard shape z,y,x, whole storage chunks (default: one shard per compute chunk)",
    };

    public static Option<string?> Levels() => new("--levels")
    {
        Description = "Multiscale pyramid levels in all, level 0 included: N (1 = none, the default) or auto (until the coarsest level fits one chunk); OME-Zarr output only",
    };

    public static Option<string?> Downsample(string defaults) => new("--downsample")
    {
        Description = $"How pyramid levels summarise each block: mean (images) or mode (labels: every id kept); {defaults}",
    };

    /// <summary>The output's Zarr layout from --format and --shard.</summary>
    public static Pipelines.ZarrLayout? ZarrLayoutOf(ParseResult parse, Option<string?> format, Option<string?> shard) =>
        Pipelines.ZarrLayout.Parse(parse.GetValue(format), parse.GetValue(shard));

    public static Option<bool> Overwrite() => new("--overwrite")
    {
        Description = "Replace an existing output (and discard an unfinished one)",
    };

    /// <summary>The feature selection of exactly one of --ilp (a project's FeatureSelections) or --features (a spec).</summary>
    public static FeatureSet SelectFeatures(string? ilp, string? spec)
    {
        if ((ilp is null) == (spec is null))
            throw new UsageException("give exactly one of --features SPEC or --ilp PROJECT.ilp");
        try
        {
            if (spec is not null) return FeatureSet.Parse(spec);
            using var project = IlastikProject.Open(ilp!);
            var selection = project.ReadFeatureSelection();
            return FeatureSet.FromIlastikSelection(selection.FeatureIds, selection.Scales, selection.Selection, selection.ComputeIn2d);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(spec is not null ? $"--features: {e.Message}" : $"{ilp}: {e.Message}", e);
        }
    }

}

internal static class Units
{
    public static string Bytes(double bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        int u = 0;
        while (bytes >= 1024 && u < units.Length - 1) { bytes /= 1024; u++; }
        return string.Create(CultureInfo.InvariantCulture, $"{bytes:0.##} {units[u]}");
    }

    public static string Rate(double voxelsPerSecond) =>
        voxelsPerSecond >= 1e6 ? string.Create(CultureInfo.InvariantCulture, $"{voxelsPerSecond / 1e6:0.0} Mvx/s")
                               : string.Create(CultureInfo.InvariantCulture, $"{voxelsPerSecond / 1e3:0.0} kvx/s");
}
