using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.Kernels.Features;

/// <summary>One pre-smoothing shared by entries: its sigmas, whether it runs per slice, and its entries in set order.</summary>
internal sealed record FeatureGroup(Sigma3 Presmooth, bool Presmooth2D, IReadOnlyList<(FeatureEntry Entry, int Index, FeaturePlan Plan)> Members);

/// <summary>
/// The work plan every feature engine follows (<see cref="FeatureEngine"/> on the CPU, the OpenCL engine on a device),
/// defined once so the engines compute the same samples in the same boxes and emit images in the same order:
/// <list type="bullet">
/// <item>entries grouped by pre-smoothing (first-occurrence order; entries in set order inside a group);</item>
/// <item>the derivative images each entry reads, and the margin around the core it reads them over;</item>
/// <item>the boxes of a chain of x, y, z passes that shrinks towards a target box.</item>
/// </list>
/// </summary>
internal static class FeatureGeometry
{
    public const double PresmoothWindow = 3.5, FilterWindow = 2.0;

    /// <summary>Entries sharing a pre-smoothing (same sigmas and same 2D flag), in the order the engines emit them.</summary>
    public static IReadOnlyList<FeatureGroup> Groups(FeatureSet set, long volumeZ) =>
        set.Entries.Select((e, i) => (Entry: e, Index: i, Plan: set.PlanOf(e, volumeZ)))
            .GroupBy(x => (x.Plan.Presmooth, x.Plan.Presmooth2D))
            .Select(g => new FeatureGroup(g.Key.Presmooth, g.Key.Presmooth2D, g.ToArray()))
            .ToArray();

    /// <summary>
    /// What a group's features read of each derivative sigma (per filter flatness): the margin around the core, grown for
    /// the structure tensor's smoothing. <paramref name="singleSlice"/>: the block is one slice (every filter is 2D).
    /// </summary>
    public static Dictionary<(Sigma3 Sigma, bool Flat), Halo> Margins(FeatureSet set, FeatureGroup group, bool singleSlice)
    {
        var margins = new Dictionary<(Sigma3 Sigma, bool Flat), Halo>();
        foreach (var (entry, _, plan) in group.Members)
        {
            bool filterFlat = plan.Filter2D || singleSlice;
            foreach (var (sigma, margin) in Uses(set, entry, plan.Filter, filterFlat))
                margins[(sigma, filterFlat)] = margins.TryGetValue((sigma, filterFlat), out var m) ? Max(m, margin) : margin;
        }
        return margins;
    }

    /// <summary>The box the pre-smoothed image is needed over: the core grown by every derivative image's margin plus reach.</summary>
    public static Box3 PresmoothedBox(Dictionary<(Sigma3 Sigma, bool Flat), Halo> margins, Box3 core, Box3 block) =>
        core.Grow(margins.Select(u => u.Value + Reach(u.Key.Sigma, u.Key.Flat)).Aggregate(Max), block);

    /// <summary>The derivative images an entry reads: (sigma, margin around the core it needs them over).</summary>
    public static IEnumerable<(Sigma3 Sigma, Halo Margin)> Uses(FeatureSet set, FeatureEntry entry, Sigma3 s, bool flat)
    {
        switch (entry.Kind)
        {
            case FeatureKind.DifferenceOfGaussians:
                yield return (s, Halo.None);
                yield return (s * 0.66, Halo.None);
                break;
            case FeatureKind.StructureTensorEigenvalues:
                var (gradient, smoothing) = set.StructureTensorScales;
                yield return (s * gradient, Reach(s * smoothing, flat));
                break;
            default:
                yield return (s, Halo.None);
                break;
        }
    }

    /// <summary>How far a filter pass set at <paramref name="sigma"/> reads beyond what it computes (no z when flat).</summary>
    public static Halo Reach(Sigma3 sigma, bool flat) => new(
        flat ? 0 : FirKernel.Gaussian(0, sigma.Z, FilterWindow).Radius,
        FirKernel.Gaussian(0, sigma.Y, FilterWindow).Radius,
        FirKernel.Gaussian(0, sigma.X, FilterWindow).Radius);

    public static Halo Max(Halo a, Halo b) => new(Math.Max(a.Z, b.Z), Math.Max(a.Y, b.Y), Math.Max(a.X, b.X));

    /// <summary>
    /// Boxes of an x, y, (z) pass chain computing <paramref name="target"/> from an image held over <paramref name="source"/>:
    /// the y-pass result over the target grown by the z radius (the target itself when there is no z pass), the x-pass
    /// result over that grown by the y radius, each clipped to the source.
    /// </summary>
    public static (Box3 Xy, Box3 X) PassBoxes(Box3 target, Box3 source, FirKernel? kz, FirKernel ky)
    {
        var xy = kz is null ? target : target.Grow(new Halo(kz.Radius, 0, 0), source);
        return (xy, xy.Grow(new Halo(0, ky.Radius, 0), source));
    }
}
