using System.CommandLine;
using ChunkSeg.Coordinator.Labeling;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Kernels.Labeling;
using ChunkSeg.Pipelines;
using ChunkSeg.Storage;

namespace ChunkSeg.Cli.Commands;

/// <summary>
/// The options of `label` and `run` that say what an object is: the segmentation of probabilities (threshold or
/// argmax, optional smoothing), the connectivity, the size and border filters, and the dilation or erosion after them.
/// </summary>
internal sealed class ObjectOptions
{
    public Option<string?> Threshold { get; } = new("--threshold")
    {
        Description = "Foreground where the channel's value is >= this (default 0.5); or otsu: above Otsu's threshold of the channel over " +
            "the whole volume, as clEsperanto's threshold_otsu (label: also on a raw integer image; run: the probabilities are written whole first)",
    };
    public Option<int?> Channel { get; } = new("--channel") { Description = "Probability channel (class) to threshold, 0-based along c (default 1: the second label; 0 with one channel)" };
    public Option<bool> Argmax { get; } = new("--argmax") { Description = "Simple segmentation: foreground where --foreground holds the largest probability" };
    public Option<int?> Foreground { get; } = new("--foreground") { Description = "With --argmax: the foreground channel, 0-based (default 1)" };
    public Option<string?> Smooth { get; } = new("--smooth-sigma") { Description = "Gaussian pre-smoothing of the probabilities, sigma in voxels: s or z,y,x" };
    public Option<int?> Connectivity { get; } = new("--connectivity") { Description = "6 or 26 in 3D (default 6), 4 or 8 in 2D (default 4)" };
    public Option<long> MinSize { get; } = new("--min-size") { Description = "Drop objects smaller than this many voxels (after merging across chunks)" };
    public Option<long?> MaxSize { get; } = new("--max-size") { Description = "Drop objects larger than this many voxels" };
    public Option<bool> ExcludeBorder { get; } = new("--exclude-border") { Description = "Drop objects that touch the volume's border" };
    public Option<string?> Dilate { get; } = new("--dilate")
    {
        Description = "R: grow the labels into the background by a Euclidean distance R in voxels, never over another label " +
            "(scikit-image's expand_labels(labels, distance=R)); after the filters; exact across chunks",
    };
    public Option<string?> Erode { get; } = new("--erode")
    {
        Description = "R: shrink the labels: a voxel keeps its label only when no voxel of another value (background included) lies " +
            "within R voxels; the volume's outside is not background; after the filters; exact across chunks",
    };

    public IEnumerable<Option> All => [Threshold, Channel, Argmax, Foreground, Smooth, Connectivity, MinSize, MaxSize, ExcludeBorder, Dilate, Erode];

    public void AddTo(Command command)
    {
        foreach (var option in All) command.Options.Add(option);
    }

    /// <summary>Whether --threshold otsu was given.</summary>
    public bool OtsuThreshold(ParseResult parse) => string.Equals(parse.GetValue(Threshold), "otsu", StringComparison.OrdinalIgnoreCase);

    /// <summary>--threshold as a number; null when not given or otsu.</summary>
    public float? ThresholdValue(ParseResult parse)
    {
        string? text = parse.GetValue(Threshold);
        if (text is null || OtsuThreshold(parse)) return null;
        if (!float.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float value) || !float.IsFinite(value))
            throw new Contracts.Errors.UsageException($"--threshold {text}: give a number (e.g. 0.5) or otsu");
        return value;
    }

    /// <summary>Threshold or argmax on <paramref name="channels"/> probabilities of <paramref name="what"/> over <paramref name="volume"/>'s shape.</summary>
    public Segmentation ProbabilitySegmentation(ParseResult parse, string what, long channels, VolumeInfo volume) =>
        OptionValues.ProbabilitySegmentation(what, channels, volume, ThresholdValue(parse), parse.GetValue(Channel), parse.GetValue(Argmax),
            parse.GetValue(Foreground), parse.GetValue(Smooth));

    /// <summary>The option naming a probability setting, when one was given (they do not apply to a label image).</summary>
    public string? ProbabilityOptionGiven(ParseResult parse) =>
        parse.GetValue(Threshold) is not null ? "--threshold" : parse.GetValue(Channel) is not null ? "--channel" : parse.GetValue(Argmax) ? "--argmax"
            : parse.GetValue(Foreground) is not null ? "--foreground" : parse.GetValue(Smooth) is not null ? "--smooth-sigma" : null;

    public Kernels.Labeling.Connectivity ConnectivityOf(ParseResult parse, VolumeInfo info) => OptionValues.ConnectivityOf(info, parse.GetValue(Connectivity));

    /// <summary>--dilate R or --erode R, checked (<see cref="OptionValues.Morphology"/>); null without either.</summary>
    public LabelMorphology? Morphology(ParseResult parse) => OptionValues.Morphology(parse.GetValue(Dilate), parse.GetValue(Erode));

    public ObjectFilter Filter(ParseResult parse) => OptionValues.Filter(parse.GetValue(MinSize), parse.GetValue(MaxSize), parse.GetValue(ExcludeBorder));
}
