using System.CommandLine;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Ilastik;

namespace ChunkSeg.Cli.Commands;

/// <summary>Options shared by several commands, and their validation into domain types.</summary>
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
        Description = $"Where {what} run: cpu, opencl (the OpenCL device CHUNKSEG_OPENCL_DEVICE names, else a GPU, else any), " +
            "or auto (a GPU through OpenCL when one is present, else cpu); results are the same on each",
        DefaultValueFactory = _ => "auto",
    };

    /// <summary>The backend <c>--backend</c> names, opened (the caller disposes it).</summary>
    public static GpuNode.Backends.ComputeBackend OpenBackend(string? name) =>
        GpuNode.Backends.ComputeBackends.Open(name ?? "auto", warning => Console.Error.WriteLine("warning: " + warning));

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

    /// <summary>
    /// <paramref name="set"/> for the volume <paramref name="info"/>: sigmas scaled per axis by its voxel size
    /// when <paramref name="anisotropic"/>, and scales its extents cannot hold refused before any work.
    /// </summary>
    public static FeatureSet FitToVolume(FeatureSet set, VolumeInfo info, bool anisotropic)
    {
        if (anisotropic)
            set = set.WithAxisScales(FeatureSet.ForVoxelSize(info.Axes.HasZ ? info.VoxelSize.Z : info.VoxelSize.Y, info.VoxelSize.Y, info.VoxelSize.X));
        try
        {
            set.Validate(info.SpatialShape);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"{info.Location}: {e.Message}", e);
        }
        return set;
    }

    public static AxisOrder? ParseAxes(string? text) => text is null ? null : Usage("--axes", () => AxisOrder.Parse(text));

    public static Long3? ParseLong3(string option, string? text) => text is null ? null : Usage(option, () => Long3.Parse(text, option));

    public static VoxelSize? ParseVoxelSize(string? text) => text is null ? null : Usage("--voxel-size", () => VoxelSize.Parse(text));

    public static CodecSpec? ParseCodec(string? text) => text is null ? null : Usage("--codec", () => CodecSpec.Parse(text));

    /// <summary>Gaussian sigmas in voxels from "s" or "z,y,x" (finite, not negative); zero when <paramref name="text"/> is null.</summary>
    public static Sigma3 ParseSigma(string option, string? text)
    {
        if (text is null) return default;
        Sigma3 sigma;
        try
        {
            sigma = text.Split(',').Length == 1 ? Sigma3.Uniform(double.Parse(text, CultureInfo.InvariantCulture)) : Sigma3.Parse(text);
        }
        catch (FormatException e) { throw new UsageException($"{option} \"{text}\": expected a sigma s or z,y,x in voxels", e); }
        catch (ArgumentException e) { throw new UsageException($"{option}: {e.Message}", e); }
        if (sigma.Z < 0 || sigma.Y < 0 || sigma.X < 0 || !double.IsFinite(sigma.Z + sigma.Y + sigma.X))
            throw new UsageException($"{option} {text}: sigmas must be finite and not negative");
        return sigma;
    }

    /// <summary>Refuses Gaussian smoothing (kernels from <see cref="GpuNode.Stages.BlockSmoothing"/>) wider than the volume.</summary>
    public static void CheckSmoothingFits(string? sigmaText, Kernels.Filters.FirKernel?[] kernels, VolumeInfo info)
    {
        if (GpuNode.Stages.BlockSmoothing.Misfit(kernels, info.SpatialShape) is { } why)
            throw new UsageException($"--smooth-sigma {sigmaText}: {why} ({info.Location})");
    }

    public static int CheckWorkers(int workers) => workers > 0 ? workers
        : throw new UsageException($"--workers must be at least 1; got {workers}");

    private static T Usage<T>(string option, Func<T> parse)
    {
        try { return parse(); }
        catch (ArgumentException e) { throw new UsageException($"{option}: {e.Message}", e); }
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

/// <summary>IProgress that reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
