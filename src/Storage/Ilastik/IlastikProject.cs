using ChunkSeg.Contracts.Errors;
using ChunkSeg.Storage.Hdf5;

namespace ChunkSeg.Storage.Ilastik;

/// <summary>
/// The FeatureSelections group of an ilastik project, as stored (the feature layer interprets it):
/// <see cref="Selection"/>[i, j] says whether feature <see cref="FeatureIds"/>[i] is computed at scale
/// <see cref="Scales"/>[j]; <see cref="ComputeIn2d"/>[j] (absent before ilastik 1.3.2) whether scale j is computed
/// slice by slice in 2D.
/// </summary>
public sealed record IlastikFeatureSelection(string[] FeatureIds, double[] Scales, bool[,] Selection, bool[]? ComputeIn2d);

/// <summary>
/// An ilastik project file (.ilp, an HDF5 file), opened read-only. Reads what applying a trained pixel
/// classifier needs; the layout is described in ILASTIK_RECIPE.md §4 and the random forests (§5) are read
/// through <see cref="File"/>.
/// </summary>
public sealed class IlastikProject : IDisposable
{
    internal const string FeatureSelectionsGroup = "/FeatureSelections";
    internal const string ForestsGroup = "/PixelClassification/ClassifierForests";

    private IlastikProject(string path, Hdf5File file, string ilastikVersion, string workflowName)
    {
        Path = path;
        File = file;
        IlastikVersion = ilastikVersion;
        WorkflowName = workflowName;
    }

    /// <summary>
    /// Opens <paramref name="path"/>. A <see cref="VolumeException"/> when the file is missing, is not HDF5, or is
    /// not an ilastik project (no /workflowName or no /FeatureSelections).
    /// </summary>
    public static IlastikProject Open(string path)
    {
        var file = Hdf5File.Open(path);
        try
        {
            var missing = new[] { "/workflowName", FeatureSelectionsGroup }.Where(p => !file.Exists(p)).ToList();
            if (missing.Count > 0)
                throw new VolumeException(path,
                    $"is not an ilastik project: it has no {string.Join(" and no ", missing)}; " +
                    "pass the .ilp file saved by ilastik's Pixel Classification workflow");
            string version = file.Exists("/ilastikVersion") ? file.ReadString("/ilastikVersion") : "";
            return new IlastikProject(path, file, version, file.ReadString("/workflowName"));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>/ilastikVersion, e.g. "1.4.1b15"; empty when the project does not record it.</summary>
    public string IlastikVersion { get; }

    /// <summary>/workflowName, e.g. "Pixel Classification".</summary>
    public string WorkflowName { get; }

    /// <summary>The underlying file, for readers of other parts of the project (the random forests).</summary>
    internal Hdf5File File { get; }

    /// <summary>
    /// /FeatureSelections/{FeatureIds, Scales, SelectionMatrix, ComputeIn2d}; a <see cref="VolumeException"/> when
    /// SelectionMatrix is not [FeatureIds.Length, Scales.Length] or ComputeIn2d not [Scales.Length].
    /// </summary>
    public IlastikFeatureSelection ReadFeatureSelection()
    {
        const string g = FeatureSelectionsGroup;
        string[] ids = File.ReadStrings($"{g}/FeatureIds");
        double[] scales = File.ReadDoubles($"{g}/Scales");
        long[] shape = File.Shape($"{g}/SelectionMatrix");
        if (shape.Length != 2 || shape[0] != ids.Length || shape[1] != scales.Length)
            throw new VolumeException($"{Path}: {g}/SelectionMatrix",
                $"has shape [{string.Join(", ", shape)}]; expected [{ids.Length}, {scales.Length}] " +
                $"(one row per FeatureIds entry, one column per Scales entry)");
        bool[] flat = File.ReadBools($"{g}/SelectionMatrix");
        var selection = new bool[ids.Length, scales.Length];
        for (int i = 0; i < ids.Length; i++)
            for (int j = 0; j < scales.Length; j++)
                selection[i, j] = flat[i * scales.Length + j];

        bool[]? in2d = null;
        if (File.Exists($"{g}/ComputeIn2d"))
        {
            in2d = File.ReadBools($"{g}/ComputeIn2d");
            if (in2d.Length != scales.Length)
                throw new VolumeException($"{Path}: {g}/ComputeIn2d",
                    $"has {in2d.Length} entries; expected {scales.Length}, one per Scales entry");
        }
        return new IlastikFeatureSelection(ids, scales, selection, in2d);
    }

    /// <summary>/PixelClassification/ClassifierForests/feature_names (the forests' input columns); empty when absent.</summary>
    public string[] FeatureNames()
    {
        string path = $"{ForestsGroup}/feature_names";
        return File.Exists(path) ? File.ReadStrings(path) : [];
    }

    /// <summary>
    /// The trained classifier's vigra random forests, <c>Forest####</c> groups of
    /// /PixelClassification/ClassifierForests in sorted name order, each with its trees (every subgroup not starting
    /// with '_', in sorted name order, as vigra reads them). A <see cref="VolumeException"/> when the project has no
    /// trained classifier, when the classifier is not ilastik's vigra random forest (e.g. a scikit-learn classifier),
    /// or when a forest is malformed.
    /// </summary>
    public IReadOnlyList<VigraForestData> ReadForests()
    {
        RequireVigraClassifier();
        var forests = new List<VigraForestData>();
        foreach (string name in File.Children(ForestsGroup))
        {
            string g = $"{ForestsGroup}/{name}";
            if (!name.StartsWith("Forest", StringComparison.Ordinal) || !File.IsGroup(g)) continue;
            if (!File.HasAttribute(g, "vigra_random_forest_version"))
                throw new VolumeException($"{Path}: {g}",
                    "has no attribute vigra_random_forest_version: it is not a vigra random forest, which is the only classifier ChunkSeg applies");
            int columns = ReadCount(g, "_ext_param/column_count_");
            int classes = ReadCount(g, "_ext_param/class_count_");
            uint[] labels = File.ReadUInt32s($"{g}/_ext_param/labels");
            if (labels.Length != classes)
                throw new VolumeException($"{Path}: {g}/_ext_param/labels", $"holds {labels.Length} labels; expected class_count_ = {classes}");
            string weighted = $"{g}/_options/predict_weighted_";
            bool predictWeighted = File.Exists(weighted) && File.ReadDoubles(weighted) is [var w] && w != 0;
            var trees = new List<VigraTreeData>();
            foreach (string tree in File.Children(g))
            {
                if (tree.StartsWith('_') || !File.IsGroup($"{g}/{tree}")) continue;
                trees.Add(new VigraTreeData(tree, File.ReadInt32s($"{g}/{tree}/topology"), File.ReadDoubles($"{g}/{tree}/parameters")));
            }
            if (trees.Count == 0) throw new VolumeException($"{Path}: {g}", "has no trees");
            forests.Add(new VigraForestData(name, columns, classes, labels, predictWeighted, trees));
        }
        if (forests.Count == 0)
            throw new VolumeException($"{Path}: {ForestsGroup}", "holds no Forest#### group; train the classifier in ilastik first");
        return forests;
    }

    /// <summary>
    /// /PixelClassification/ClassifierForests/known_labels: the label value of forest class index i (1..K when an
    /// older ilastik did not store it). A <see cref="VolumeException"/> when the project has no trained classifier.
    /// </summary>
    public uint[] KnownLabels()
    {
        RequireTrainedClassifier();
        string path = $"{ForestsGroup}/known_labels";
        if (File.Exists(path)) return File.ReadUInt32s(path);
        var forests = ReadForests();
        return Enumerable.Range(1, forests[0].ClassCount).Select(i => (uint)i).ToArray();
    }

    private int ReadCount(string group, string dataset)
    {
        string path = $"{group}/{dataset}";
        if (!File.Exists(path)) throw new VolumeException($"{Path}: {path}", "is missing; the vigra forest is incomplete");
        double[] v = File.ReadDoubles(path);
        if (v.Length != 1 || v[0] < 1 || v[0] != Math.Floor(v[0]) || v[0] > int.MaxValue)
            throw new VolumeException($"{Path}: {path}", $"holds [{string.Join(", ", v)}]; expected one positive whole number");
        return (int)v[0];
    }

    private void RequireTrainedClassifier()
    {
        if (!File.Exists(ForestsGroup) || !File.IsGroup(ForestsGroup))
            throw new VolumeException(Path, "the project has no trained classifier; train it in ilastik first (add labels, then live update or save after training)");
    }

    /// <summary>Refuses classifiers other than ilastik's default ParallelVigraRfLazyflowClassifier (recipe §4).</summary>
    private void RequireVigraClassifier()
    {
        RequireTrainedClassifier();
        string typePath = $"{ForestsGroup}/pickled_type";
        if (File.Exists(typePath))
        {
            string type = PickleText(typePath);
            if (!type.Contains("ParallelVigraRfLazyflowClassifier", StringComparison.Ordinal))
                throw new VolumeException($"{Path}: {typePath}",
                    $"names the classifier {Describe(type)}; ChunkSeg applies only ilastik's default vigra random forest " +
                    "(ParallelVigraRfLazyflowClassifier): choose it in ilastik's classifier menu and retrain");
        }
        const string factoryPath = "/PixelClassification/ClassifierFactory";
        if (File.Exists(factoryPath))
        {
            string factory = PickleText(factoryPath);
            if (factory.Contains("sklearn", StringComparison.OrdinalIgnoreCase))
                throw new VolumeException($"{Path}: {factoryPath}",
                    $"is a scikit-learn classifier factory ({Describe(factory)}); ChunkSeg applies only ilastik's default vigra random forest");
        }
    }

    private string PickleText(string path)
    {
        try
        {
            return string.Join('\n', File.ReadStrings(path));
        }
        catch (VolumeException)
        {
            return "";   // not a string dataset: nothing to learn from it
        }
    }

    /// <summary>The module and class lines of a protocol-0 pickle ("c<module>\n<class>\n"), else its printable start.</summary>
    private static string Describe(string pickle)
    {
        var lines = pickle.Split('\n');
        for (int i = 0; i + 1 < lines.Length; i++)
            if (lines[i].StartsWith('c') && lines[i].Length > 1 && !lines[i].Contains(' ') && lines[i + 1].Length > 0
                && lines[i] != "ccopy_reg" && lines[i] != "c__builtin__")
                return $"{lines[i][1..]}.{lines[i + 1]}";
        string printable = new(pickle.Where(ch => ch >= ' ' && ch < 127).Take(80).ToArray());
        return $"'{printable}'";
    }

    /// <summary>/PixelClassification/LabelNames: one output channel per name (channel i is label value i + 1).</summary>
    public string[] LabelNames() => File.ReadStrings("/PixelClassification/LabelNames");

    public void Dispose() => File.Dispose();

    public override string ToString() => Path;
}
