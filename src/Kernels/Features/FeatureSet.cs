using System.Globalization;
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Kernels.Features;

/// <summary>ilastik's six pixel features, by the ids its project files use.</summary>
public enum FeatureKind
{
    GaussianSmoothing,
    LaplacianOfGaussian,
    GaussianGradientMagnitude,
    DifferenceOfGaussians,
    StructureTensorEigenvalues,
    HessianOfGaussianEigenvalues,
}

/// <summary>One selected (feature, scale) cell of ilastik's selection matrix; <see cref="In2D"/> is ComputeIn2d.</summary>
public readonly record struct FeatureEntry(FeatureKind Kind, double Scale, bool In2D = false);

/// <summary>
/// An ordered feature selection, as ilastik orders it (ILASTIK_RECIPE §3.1): for each feature id in file
/// order, for each scale in file order, if selected, one block of channels; inside a block the input
/// channel is outer and the eigenvalue (descending) inner.
/// </summary>
public sealed class FeatureSet
{
    /// <summary>ilastik's default scales (the columns of its feature table).</summary>
    public static readonly double[] IlastikScales = [0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0];

    /// <summary>ilastik's feature order (the rows of every project seen).</summary>
    public static readonly FeatureKind[] IlastikOrder = Enum.GetValues<FeatureKind>();

    public FeatureSet(IReadOnlyList<FeatureEntry> entries, Sigma3? axisScales = null, bool vigraStructureTensor = false)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (entries.Count == 0) throw new ArgumentException("the feature selection is empty; select at least one feature and scale");
        foreach (var e in entries)
        {
            if (!(e.Scale > 0) || double.IsInfinity(e.Scale))
                throw new ArgumentException($"{e.Kind} scale {e.Scale.ToString(CultureInfo.InvariantCulture)} must be a positive number");
            if (!Enum.IsDefined(e.Kind)) throw new ArgumentException($"unknown feature {e.Kind}");
        }
        Entries = entries.ToArray();
        AxisScales = axisScales ?? Sigma3.One;
        VigraStructureTensor = vigraStructureTensor;
        if (!(AxisScales.Z > 0 && AxisScales.Y > 0 && AxisScales.X > 0))
            throw new ArgumentException($"axis scale factors {AxisScales} must be positive");
    }

    public IReadOnlyList<FeatureEntry> Entries { get; }

    /// <summary>
    /// Per-axis factors applied to every scale (z, y, x). (1, 1, 1), ilastik's behaviour, ignores the voxel
    /// size; <see cref="ForVoxelSize"/> makes sigmas physical, so anisotropic stacks are smoothed alike in µm.
    /// </summary>
    public Sigma3 AxisScales { get; }

    /// <summary>
    /// False (default): fastfilters' structure tensor, as every ilastik release build computes it — gradient
    /// at 0.5·s', tensor smoothed at s'. True: VIGRA's order, gradient at s' and smoothing at 0.5·s', which
    /// projects trained by an ilastik without fastfilters (developer builds) expect (ILASTIK_RECIPE §1).
    /// </summary>
    public bool VigraStructureTensor { get; }

    /// <summary>The same selection with sigmas scaled per axis.</summary>
    public FeatureSet WithAxisScales(Sigma3 axisScales) => new(Entries, axisScales, VigraStructureTensor);

    /// <summary>The same selection with the structure tensor's scales in VIGRA's order (see <see cref="VigraStructureTensor"/>).</summary>
    public FeatureSet WithVigraStructureTensor(bool vigra = true) => new(Entries, AxisScales, vigra);

    /// <summary>(gradient, smoothing) sigma factors of the structure tensor, relative to s'.</summary>
    internal (double Gradient, double Smoothing) StructureTensorScales => VigraStructureTensor ? (1.0, 0.5) : (0.5, 1.0);

    /// <summary>
    /// Factors that make a scale mean "this many of the finest voxel's widths" on every axis:
    /// min(voxel size) / voxel size of the axis (a z step 5x the xy step gets a z sigma 1/5 as many voxels).
    /// </summary>
    public static Sigma3 ForVoxelSize(double z, double y, double x)
    {
        double finest = Math.Min(z, Math.Min(y, x));
        return new Sigma3(finest / z, finest / y, finest / x);
    }

    /// <summary>The whole ilastik feature table: Gaussian smoothing at all 7 scales, the others from 0.7 (37 entries, 61 channels in 3D).</summary>
    public static FeatureSet IlastikFull { get; } = new(
        IlastikOrder.SelectMany(kind => IlastikScales.Where(s => kind == FeatureKind.GaussianSmoothing || s >= 0.7).Select(s => new FeatureEntry(kind, s))).ToList());

    /// <summary>
    /// Builds the selection from an ilastik project's FeatureSelections group: FeatureIds (rows), Scales
    /// (columns), SelectionMatrix[row, column], ComputeIn2d[column] (absent in projects before ilastik 1.3.2).
    /// </summary>
    public static FeatureSet FromIlastikSelection(string[] featureIds, double[] scales, bool[,] selection, bool[]? computeIn2d)
    {
        if (selection.GetLength(0) != featureIds.Length || selection.GetLength(1) != scales.Length)
            throw new ArgumentException($"SelectionMatrix is {selection.GetLength(0)}x{selection.GetLength(1)} but there are {featureIds.Length} feature ids and {scales.Length} scales");
        if (computeIn2d is not null && computeIn2d.Length != scales.Length)
            throw new ArgumentException($"ComputeIn2d has {computeIn2d.Length} entries but there are {scales.Length} scales");
        var entries = new List<FeatureEntry>();
        for (int row = 0; row < featureIds.Length; row++)
        {
            var kind = ParseKind(featureIds[row]);
            for (int col = 0; col < scales.Length; col++)
                if (selection[row, col])
                    entries.Add(new FeatureEntry(kind, scales[col], computeIn2d?[col] ?? false));
        }
        return new FeatureSet(entries);
    }

    /// <summary>
    /// Parses a feature spec: <c>all</c> (the whole ilastik table), or blocks separated by ';' of
    /// <c>FeatureId:scale,scale,...</c>, a scale followed by <c>/2d</c> computing it per z-slice, e.g.
    /// <c>GaussianSmoothing:0.3,1.0;HessianOfGaussianEigenvalues:1.6/2d,3.5</c>. Ids are ilastik's (any case)
    /// or the short forms gs, log, ggm, dog, ste, hoge.
    /// </summary>
    public static FeatureSet Parse(string spec)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        if (spec.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return IlastikFull;
        var entries = new List<FeatureEntry>();
        foreach (string block in spec.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = block.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0) throw new ArgumentException($"feature spec block \"{block}\" needs FeatureId:scales, e.g. GaussianSmoothing:1.0,3.5");
            var kind = ParseKind(block[..colon].Trim());
            foreach (string item in block[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                bool in2D = item.EndsWith("/2d", StringComparison.OrdinalIgnoreCase);
                string number = in2D ? item[..^3] : item;
                if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double scale))
                    throw new ArgumentException($"feature spec: \"{item}\" in \"{block}\" is not a scale (a positive number, optionally followed by /2d)");
                entries.Add(new FeatureEntry(kind, scale, in2D));
            }
        }
        return new FeatureSet(entries);
    }

    public static FeatureKind ParseKind(string id) => id.Trim().ToLowerInvariant() switch
    {
        "gaussiansmoothing" or "gs" => FeatureKind.GaussianSmoothing,
        "laplacianofgaussian" or "log" => FeatureKind.LaplacianOfGaussian,
        "gaussiangradientmagnitude" or "ggm" => FeatureKind.GaussianGradientMagnitude,
        "differenceofgaussians" or "dog" => FeatureKind.DifferenceOfGaussians,
        "structuretensoreigenvalues" or "ste" => FeatureKind.StructureTensorEigenvalues,
        "hessianofgaussianeigenvalues" or "hoge" => FeatureKind.HessianOfGaussianEigenvalues,
        _ => throw new ArgumentException($"unknown feature id \"{id}\"; expected one of {string.Join(", ", IlastikOrder)} (or gs, log, ggm, dog, ste, hoge)"),
    };

    /// <summary>
    /// How the recipe computes <paramref name="e"/> on a volume whose full z extent is <paramref name="volumeZ"/>
    /// (ILASTIK_RECIPE §3.2, §3.7), applied per axis to the scale times <see cref="AxisScales"/>.
    /// </summary>
    public FeaturePlan PlanOf(FeatureEntry e, long volumeZ)
    {
        var s = AxisScales * e.Scale;
        var presmooth = s.Map(v => v > 1 ? Math.Sqrt(v * v - 1) : v);
        var filter = s.Map(v => v > 1 ? 1.0 : v);
        bool presmooth2D = volumeZ == 1 || e.In2D;
        // A 3D filter falls back to per-slice 2D when ceil(2σ)+1 > Z for any of its sigmas (OpBaseFilter.invalid_z);
        // the pre-smoothing stays 3D then.
        bool filter2D = presmooth2D || FilterSigmas(e.Kind, filter.Z).Any(sigma => Math.Ceiling(2 * sigma) + 1 > volumeZ);
        return new FeaturePlan(presmooth, filter, presmooth2D, filter2D);
    }

    /// <summary>Every sigma the feature's own filter uses (after pre-smoothing).</summary>
    internal static double[] FilterSigmas(FeatureKind kind, double filter) => kind switch
    {
        FeatureKind.DifferenceOfGaussians => [filter, 0.66 * filter],
        FeatureKind.StructureTensorEigenvalues => [filter, 0.5 * filter],
        _ => [filter],
    };

    /// <summary>Channels of one entry per input channel: 1, or the eigenvalue count (3 in 3D, 2 in 2D).</summary>
    public int ChannelsOf(FeatureEntry e, long volumeZ) =>
        e.Kind is FeatureKind.StructureTensorEigenvalues or FeatureKind.HessianOfGaussianEigenvalues
            ? (PlanOf(e, volumeZ).Filter2D ? 2 : 3)
            : 1;

    /// <summary>Channels of the whole feature matrix for <paramref name="inputChannels"/> input channels.</summary>
    public int ChannelCount(long volumeZ, int inputChannels = 1) => inputChannels * Entries.Sum(e => ChannelsOf(e, volumeZ));

    /// <summary>
    /// Context a chunk needs so its core equals the whole-volume result (ILASTIK_RECIPE §3.8): the
    /// pre-smoothing radius plus the feature's filter radius (structure tensor: gradient plus smoothing
    /// radius). Per-slice (2D) computation needs no z context beyond the pre-smoothing's.
    /// </summary>
    public Halo RequiredHalo(long volumeZ)
    {
        int z = 0, y = 0, x = 0;
        foreach (var e in Entries)
        {
            var plan = PlanOf(e, volumeZ);
            y = Math.Max(y, Radius(plan.Presmooth.Y, 3.5) + FilterRadius(e.Kind, plan.Filter.Y));
            x = Math.Max(x, Radius(plan.Presmooth.X, 3.5) + FilterRadius(e.Kind, plan.Filter.X));
            z = Math.Max(z, (plan.Presmooth2D ? 0 : Radius(plan.Presmooth.Z, 3.5)) + (plan.Filter2D ? 0 : FilterRadius(e.Kind, plan.Filter.Z)));
        }
        return new Halo(z, y, x);
    }

    /// <summary>Support of the feature's own filter along one axis (structure tensor: gradient plus smoothing).</summary>
    private static int FilterRadius(FeatureKind kind, double filter) => kind == FeatureKind.StructureTensorEigenvalues
        ? Radius(0.5 * filter, 2.0) + Radius(filter, 2.0)
        : FilterSigmas(kind, filter).Max(sigma => Radius(sigma, 2.0));

    /// <summary>
    /// Refuses entries whose kernels are longer than the volume (reflect-101 needs radius ≤ extent − 1 at
    /// every pass; ilastik's GUI refuses such scales too), naming the feature, scale and axis.
    /// </summary>
    public void Validate(Long3 volumeShape)
    {
        foreach (var e in Entries)
        {
            var plan = PlanOf(e, volumeShape.Z);
            CheckAxis(e, 'y', volumeShape.Y, plan.Presmooth.Y, plan.Filter.Y, StructureTensorScales.Gradient);
            CheckAxis(e, 'x', volumeShape.X, plan.Presmooth.X, plan.Filter.X, StructureTensorScales.Gradient);
            if (!plan.Presmooth2D) CheckAxis(e, 'z', volumeShape.Z, plan.Presmooth.Z, plan.Filter2D ? null : plan.Filter.Z, StructureTensorScales.Gradient);
        }

        static void CheckAxis(FeatureEntry e, char axis, long extent, double presmooth, double? filter, double gradientFactor)
        {
            int radius = Math.Max(Radius(presmooth, 3.5), filter is { } f ? FilterSigmas(e.Kind, f).Max(sigma => Radius(sigma, 2.0)) : 0);
            string what = $"{e.Kind} at scale {e.Scale.ToString(CultureInfo.InvariantCulture)}";
            if (radius > extent - 1)
                throw new ArgumentException($"{what} needs at least {radius + 1} voxels along {axis} " +
                    $"(kernel radius {radius}); the volume has {extent}. Use a smaller scale" + (axis == 'z' ? " or compute it per slice (/2d)" : ""));
            // A derivative kernel needs a radius of at least 1 (fastfilters' rule gives 0 below sigma 0.25).
            double derivative = e.Kind == FeatureKind.StructureTensorEigenvalues ? gradientFactor * (filter ?? 1) : filter ?? 1;
            if (e.Kind is not (FeatureKind.GaussianSmoothing or FeatureKind.DifferenceOfGaussians) && Radius(derivative, 2.0) < 1)
                throw new ArgumentException($"{what} takes derivatives with sigma {derivative.ToString("G4", CultureInfo.InvariantCulture)} along {axis}, " +
                    "too small for a derivative kernel (radius 0); use a larger scale (ilastik's minimum for derivative features is 0.7)");
        }
    }

    /// <summary>fastfilters' kernel radius: floor(w·σ + 0.5), 0 below σ = 1e-6.</summary>
    public static int Radius(double sigma, double windowRatio) => sigma < 1e-6 ? 0 : (int)Math.Floor(windowRatio * sigma + 0.5);

    /// <summary>
    /// Channel names as ilastik stores them in ClassifierForests/feature_names:
    /// "&lt;Name&gt; (σ=&lt;scale&gt;)" + " in 2D" + " [i]" for multi-channel blocks.
    /// </summary>
    public string[] ChannelNames(long volumeZ, int inputChannels = 1)
    {
        var names = new List<string>();
        foreach (var e in Entries)
        {
            int k = ChannelsOf(e, volumeZ);
            int block = k * inputChannels;
            string name = $"{DisplayName(e.Kind)} (\u03c3={PythonFloat(e.Scale)}){(e.In2D ? " in 2D" : "")}";
            for (int i = 0; i < block; i++) names.Add(block > 1 ? $"{name} [{i}]" : name);
        }
        return names.ToArray();
    }

    public static string DisplayName(FeatureKind kind) => kind switch
    {
        FeatureKind.GaussianSmoothing => "Gaussian Smoothing",
        FeatureKind.LaplacianOfGaussian => "Laplacian of Gaussian",
        FeatureKind.GaussianGradientMagnitude => "Gaussian Gradient Magnitude",
        FeatureKind.DifferenceOfGaussians => "Difference of Gaussians",
        FeatureKind.StructureTensorEigenvalues => "Structure Tensor Eigenvalues",
        _ => "Hessian of Gaussian Eigenvalues",
    };

    /// <summary>Python's str(float): "1.0", "0.3", "10.0".</summary>
    private static string PythonFloat(double v)
    {
        string r = v.ToString("R", CultureInfo.InvariantCulture);
        return r.Contains('.', StringComparison.Ordinal) || r.Contains('E', StringComparison.Ordinal) ? r : r + ".0";
    }

    /// <summary>The spec <see cref="Parse"/> reads back to an equal set (one block per run of one feature).</summary>
    public override string ToString()
    {
        var blocks = new List<string>();
        for (int i = 0; i < Entries.Count;)
        {
            int j = i;
            while (j < Entries.Count && Entries[j].Kind == Entries[i].Kind) j++;
            blocks.Add($"{Entries[i].Kind}:" + string.Join(",", Entries.Skip(i).Take(j - i)
                .Select(e => e.Scale.ToString("R", CultureInfo.InvariantCulture) + (e.In2D ? "/2d" : ""))));
            i = j;
        }
        return string.Join(";", blocks);
    }
}

/// <summary>
/// How one entry is computed: pre-smoothing sigmas (window 3.5), the feature's filter sigmas (window 2.0),
/// per axis, and whether each runs per z-slice.
/// </summary>
public readonly record struct FeaturePlan(Sigma3 Presmooth, Sigma3 Filter, bool Presmooth2D, bool Filter2D);

/// <summary>A z, y, x triple of sigmas (or per-axis factors).</summary>
public readonly record struct Sigma3(double Z, double Y, double X)
{
    public static Sigma3 One => new(1, 1, 1);
    public static Sigma3 Uniform(double v) => new(v, v, v);
    public static Sigma3 operator *(Sigma3 a, double f) => new(a.Z * f, a.Y * f, a.X * f);
    public Sigma3 Map(Func<double, double> f) => new(f(Z), f(Y), f(X));
    public bool IsIsotropic => Z == Y && Y == X;

    public static Sigma3 Parse(string text)
    {
        var v = text.Split(',').Select(p => double.Parse(p, NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray();
        return v.Length == 3 ? new Sigma3(v[0], v[1], v[2]) : throw new ArgumentException($"\"{text}\" is not z,y,x");
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Z:R},{Y:R},{X:R}");
}
