using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Coordinator.Labeling;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Kernels.Splitting;
using ChunkSeg.Storage;

namespace ChunkSeg.Pipelines;

/// <summary>
/// Option values (as the command line or a <see cref="RunSpec"/> gives them) checked into domain types before any work;
/// a bad value is a <see cref="UsageException"/> naming the option (`--chunk`, `--threshold`, ...), the value and what is allowed.
/// </summary>
public static class OptionValues
{
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

    /// <summary>Refuses Gaussian smoothing (kernels from <see cref="BlockSmoothing"/>) wider than the volume.</summary>
    public static void CheckSmoothingFits(string? sigmaText, Kernels.Filters.FirKernel?[] kernels, VolumeInfo info)
    {
        if (BlockSmoothing.Misfit(kernels, info.SpatialShape) is { } why)
            throw new UsageException($"--smooth-sigma {sigmaText}: {why} ({info.Location})");
    }

    public static int CheckWorkers(int workers) => workers > 0 ? workers
        : throw new UsageException($"--workers must be at least 1; got {workers}");

    /// <summary>The size and border filters: at least <paramref name="minSize"/>, at most <paramref name="maxSize"/> voxels (no bound when null).</summary>
    public static ObjectFilter Filter(long minSize, long? maxSize, bool excludeBorder)
    {
        long min = minSize, max = maxSize ?? long.MaxValue;
        if (min < 0) throw new UsageException($"--min-size must not be negative; got {min}");
        if (max < Math.Max(1, min)) throw new UsageException($"--max-size {max} is below --min-size {min} (or 1): every object would be dropped");
        return new ObjectFilter(min, max, excludeBorder);
    }

    /// <summary>Threshold or argmax on the <paramref name="channels"/> probabilities of <paramref name="what"/> over <paramref name="volume"/>'s shape.</summary>
    public static Segmentation ProbabilitySegmentation(string what, long channels, VolumeInfo volume, float? threshold, int? channel, bool argmax,
        int? foreground, string? smooth)
    {
        if (argmax && (threshold is not null || channel is not null))
            throw new UsageException("--argmax picks the foreground by --foreground; --threshold and --channel are for thresholding one channel");
        if (!argmax && foreground is not null)
            throw new UsageException("--foreground goes with --argmax; to threshold one channel use --channel");
        int ch = argmax ? foreground ?? 1 : channel ?? (channels == 1 ? 0 : 1);
        string option = argmax ? "--foreground" : "--channel";
        if (ch < 0 || ch >= channels)
            throw new UsageException($"{option} {ch}: {what} has {channels} channel(s), numbered 0 to {channels - 1}");
        if (argmax && channels < 2)
            throw new UsageException($"--argmax: {what} has one channel; argmax needs the probabilities of at least two classes");
        float t = threshold ?? 0.5f;
        if (!float.IsFinite(t)) throw new UsageException($"--threshold must be a number; got {t}");
        var sigma = OptionValues.ParseSigma("--smooth-sigma", smooth);
        var segmentation = new Segmentation(argmax ? SegmentationMode.Argmax : SegmentationMode.Threshold, ch, t, sigma);
        OptionValues.CheckSmoothingFits(smooth, BlockSmoothing.Kernels(sigma, !volume.Axes.HasZ), volume);
        return segmentation;
    }

    /// <summary>
    /// --split voronoi --spot-sigma s|z,y,x or --split distance [--min-distance d|z,y,x] on the segmentation
    /// <paramref name="segmentation"/> makes (threshold or argmax of probabilities), once the split's own options are
    /// checked; null without --split.
    /// </summary>
    public static SplitSpec? SeededSplit(string? mode, string? spotSigma, string? minDistance, int? connectivity, Func<Segmentation> segmentation, VolumeInfo volume)
    {
        if (mode is null)
        {
            if (spotSigma is not null) throw new UsageException("--spot-sigma goes with --split voronoi");
            if (minDistance is not null) throw new UsageException("--min-distance goes with --split distance");
            return null;
        }
        if (mode is not ("voronoi" or "distance"))
            throw new UsageException($"--split {mode}: the splits available are voronoi (seeds from the maxima of the segmented channel) " +
                "and distance (the watershed of the foreground's distance map)");
        if (connectivity is not null)
            throw new UsageException("--split labels the flooded regions, which grow through all 26 (8 in 2D) neighbours; --connectivity does not apply");
        if (mode == "distance")
        {
            if (spotSigma is not null) throw new UsageException("--spot-sigma goes with --split voronoi; --split distance seeds at the distance map's maxima (--min-distance)");
            var size = volume.VoxelSize;
            return SplitSpec.Distance(segmentation(), new DistanceSplit(MinDistance(minDistance, volume.Axes.HasZ), (size.Z, size.Y, size.X)));
        }
        if (minDistance is not null) throw new UsageException("--min-distance goes with --split distance");
        if (spotSigma is null)
            throw new UsageException("--split voronoi needs --spot-sigma s or z,y,x: the blur (in voxels) whose maxima seed the split");
        return new SplitSpec(VoronoiOtsuSigmas.SpotOnly(SigmaPerAxis("--spot-sigma", spotSigma, volume.Axes.HasZ)), segmentation());
    }

    /// <summary>
    /// --voronoi-otsu SPOT,OUTLINE as clEsperanto's voronoi_otsu_labeling(spot_sigma, outline_sigma) on a one-channel raw
    /// image: sigmas per axis (z unused in 2D), <paramref name="spotSigma"/> / <paramref name="outlineSigma"/> z,y,x
    /// replacing either; null without it (then neither per-axis sigma may be given).
    /// </summary>
    public static SplitSpec? VoronoiOtsu(string? text, string? spotSigma, string? outlineSigma, VolumeInfo volume)
    {
        if (text is null)
        {
            if (outlineSigma is not null) throw new UsageException("--outline-sigma goes with --voronoi-otsu SPOT,OUTLINE");
            return null;
        }
        var parts = text.Split(',');
        if (parts.Length != 2 || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double spot) ||
            !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double outline) ||
            !(spot > 0) || !(outline > 0) || double.IsInfinity(spot) || double.IsInfinity(outline))
            throw new UsageException($"--voronoi-otsu {text}: give two positive sigmas in voxels, SPOT,OUTLINE (e.g. 2,1)");
        if (volume.Channels != 1)
            throw new UsageException($"{volume.Location}: --voronoi-otsu reads one channel; this image has {volume.Channels}");
        bool threeD = volume.Axes.HasZ;
        (double, double, double) PerAxis(string option, string? given, double uniform) =>
            given is null ? (threeD ? uniform : 0, uniform, uniform) : SigmaPerAxis(option, given, threeD);
        return new SplitSpec(new VoronoiOtsuSigmas(PerAxis("--spot-sigma", spotSigma, spot), PerAxis("--outline-sigma", outlineSigma, outline)));
    }

    /// <summary>--levels N|auto (default 1: no pyramid) and --downsample mean|mode (default <paramref name="fallback"/>).</summary>
    public static PyramidRequest Pyramid(string? levels, string? method, DownsampleMethod fallback)
    {
        int? count = levels?.Trim().ToLowerInvariant() switch
        {
            null => 1,
            "auto" => null,
            var n when int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= 1 => v,
            _ => throw new UsageException($"--levels {levels}: give a number of levels from 1 (level 0 alone) up, or auto"),
        };
        if (count == 1 && method is not null)
            throw new UsageException("--downsample goes with --levels N (N > 1) or --levels auto");
        return new PyramidRequest(count, method is null ? fallback : DownsampleStage.ParseMethod(method));
    }

    /// <summary>The distance split's seed window when --min-distance is not given, in voxels per axis.</summary>
    public const int DefaultMinDistance = 2;

    /// <summary>--min-distance d or z,y,x (y,x in 2D): whole voxels, at least 1 on every axis the image has; z 0 in 2D.</summary>
    public static Halo MinDistance(string? text, bool threeD)
    {
        if (text is null) return new Halo(threeD ? DefaultMinDistance : 0, DefaultMinDistance, DefaultMinDistance);
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out values[i]) || values[i] < 1)
                throw new UsageException($"--min-distance {text}: \"{parts[i]}\" is not a whole number of voxels of at least 1");
        return (values.Length, threeD) switch
        {
            (1, _) => new Halo(threeD ? values[0] : 0, values[0], values[0]),
            (3, true) => new Halo(values[0], values[1], values[2]),
            (2, false) => new Halo(0, values[0], values[1]),
            _ => throw new UsageException($"--min-distance {text}: give one value or one per axis ({(threeD ? "z,y,x" : "y,x for a 2D image")})"),
        };
    }

    /// <summary>A split's sigma option (s or z,y,x) as z, y, x in voxels, z 0 in 2D; every axis used must be positive.</summary>
    public static (double Z, double Y, double X) SigmaPerAxis(string option, string text, bool threeD)
    {
        var sigma = ParseSigma(option, text);
        if (!(sigma.Y > 0 && sigma.X > 0 && (!threeD || sigma.Z > 0)))
            throw new UsageException($"{option} {text}: every axis needs a positive sigma");
        return (threeD ? sigma.Z : 0, sigma.Y, sigma.X);
    }

    /// <summary>
    /// --dilate R or --erode R (not both) as the label post-processing of `label` and `run`; null without either. R is a
    /// positive distance in voxels, at most <see cref="LabelMorphology.MaxRadius"/>.
    /// </summary>
    public static LabelMorphology? Morphology(string? dilate, string? erode)
    {
        if (dilate is not null && erode is not null)
            throw new UsageException($"--dilate {dilate} and --erode {erode}: give one of them (the result of both depends on their order; run label twice for that)");
        if ((dilate ?? erode) is not { } text) return null;
        string option = dilate is not null ? "--dilate" : "--erode";
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double radius) || !(radius > 0) || double.IsInfinity(radius))
            throw new UsageException($"{option} {text}: give a positive distance in voxels (e.g. 2.5)");
        if (radius > LabelMorphology.MaxRadius)
            throw new UsageException($"{option} {text}: the distance is at most {LabelMorphology.MaxRadius} voxels (each chunk reads that much context on every side)");
        return new LabelMorphology(dilate is not null ? LabelMorphologyMode.Dilate : LabelMorphologyMode.Erode, radius);
    }

    public static Connectivity ConnectivityOf(VolumeInfo info, int? value)
    {
        bool is3D = info.Axes.HasZ;
        return (value ?? (is3D ? 6 : 4), is3D) switch
        {
            (6, true) or (4, false) => Connectivity.Faces,
            (26, true) or (8, false) => Connectivity.All,
            var (v, _) => throw new UsageException($"--connectivity {v}: {info.Location} is {(is3D ? "3D; use 6 or 26" : "2D; use 4 or 8")}"),
        };
    }

    /// <summary>The voxel size in micrometers: <paramref name="text"/> (z,y,x) when given, else the input's own, converted from its unit.</summary>
    public static VoxelSize VoxelSizeOf(VolumeInfo info, string? text)
    {
        if (OptionValues.ParseVoxelSize(text) is { } given) return given;
        var v = info.VoxelSize;
        double scale = VoxelSize.MicrometersPer(v.Unit)
            ?? throw new UsageException($"{info.Location}: voxel size is in {v.Unit}, which ChunkSeg cannot convert to micrometers; give --voxel-size z,y,x in micrometers");
        return new VoxelSize(v.Z * scale, v.Y * scale, v.X * scale);
    }

    /// <summary>
    /// Loads the classifier and fits its features to <paramref name="input"/>. The parameters name it as a job records
    /// it (ilp or model path, inputChannels, structureTensor) so <see cref="StageCatalog"/> can load it again.
    /// </summary>
    public static (LoadedClassifier Classifier, Dictionary<string, string> Parameters) LoadClassifier(string? ilpPath, string? modelPath, bool vigraStructureTensor, VolumeInfo input)
    {
        if ((ilpPath is null) == (modelPath is null))
            throw new UsageException("give exactly one of --ilp PROJECT.ilp or --model MODEL");
        if (modelPath is not null && vigraStructureTensor)
            throw new UsageException("--vigra-structure-tensor applies to ilastik projects (--ilp); a ChunkSeg model records its own");
        int inputChannels = checked((int)input.Channels);
        var parameters = new Dictionary<string, string> { ["inputChannels"] = inputChannels.ToString(CultureInfo.InvariantCulture) };
        if (ilpPath is not null)
        {
            parameters["ilp"] = Path.GetFullPath(ilpPath);
            if (vigraStructureTensor) parameters["structureTensor"] = "vigra";
        }
        else
        {
            parameters["model"] = Path.GetFullPath(modelPath!);
        }
        var loaded = StageCatalog.ClassifierOf(parameters);
        if (loaded.InputChannels is { } trained && trained != inputChannels)
            throw new UsageException($"{modelPath}: the model was trained on {trained}-channel data; {input.Location} has {inputChannels} channel(s)");
        OptionValues.FitToVolume(loaded.Features, input, anisotropic: false);
        return (loaded, parameters);
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

    private static T Usage<T>(string option, Func<T> parse)
    {
        try { return parse(); }
        catch (ArgumentException e) { throw new UsageException($"{option}: {e.Message}", e); }
    }
}
