using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Storage;
using ChunkSeg.GpuNode.Stages;

namespace ChunkSeg.Pipelines;

/// <summary>
/// <c>--threshold otsu</c>, as `label` and `run` both do it: Otsu's threshold of the segmented channel over the whole
/// volume (<see cref="VolumeOtsu"/>, smoothed as the segmentation smooths), then the segmentation thresholded at it
/// (foreground: the values above it).
/// </summary>
public static class OtsuSegmentation
{
    /// <summary>The refusal of <c>--threshold otsu</c> with a segmentation that thresholds no single channel (argmax, Voronoi-Otsu).</summary>
    public static void Check(Segmentation segmentation)
    {
        ArgumentNullException.ThrowIfNull(segmentation);
        if (segmentation.Mode != SegmentationMode.Threshold)
            throw new UsageException("--threshold otsu thresholds one channel; it does not combine with --argmax or --voronoi-otsu");
    }

    /// <summary>
    /// Otsu's threshold of <paramref name="segmentation"/>'s channel of <paramref name="volume"/> (smoothed as it smooths);
    /// a constant channel is a usage error.
    /// </summary>
    public static double Find(IVolume volume, Segmentation segmentation, int workers, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(volume);
        Check(segmentation);
        double otsu = VolumeOtsu.Threshold(volume, segmentation.Channel, segmentation.Smoothing, workers, ct);
        if (double.IsNaN(otsu))
            throw new UsageException($"{volume.Info.Location}: channel {segmentation.Channel} is constant; Otsu's threshold needs at least two values");
        return otsu;
    }

    /// <summary><paramref name="segmentation"/> thresholded at <paramref name="otsu"/>: foreground exactly the values above it.</summary>
    public static Segmentation At(Segmentation segmentation, double otsu) => segmentation with { Threshold = VolumeOtsu.AsInclusive(otsu) };

    /// <summary>The status line reporting the threshold found, e.g. "label: Otsu threshold of channel 1: 0.4321 (foreground above it)".</summary>
    public static string Describe(string command, int channel, bool smoothed, double otsu) =>
        string.Create(CultureInfo.InvariantCulture, $"{command}: Otsu threshold of channel {channel}{(smoothed ? " (smoothed)" : "")}: {otsu:G7} (foreground above it)");
}

/// <summary>The Otsu threshold a run found (<c>--threshold otsu</c>): of which channel, of it smoothed or not, and its value.</summary>
public sealed record OtsuFound(int Channel, bool Smoothed, double Threshold)
{
    /// <summary>The status line, as `label` reports it.</summary>
    public string Describe(string command) => OtsuSegmentation.Describe(command, Channel, Smoothed, Threshold);
}
