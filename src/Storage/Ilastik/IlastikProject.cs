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

    /// <summary>/PixelClassification/LabelNames: one output channel per name (channel i is label value i + 1).</summary>
    public string[] LabelNames() => File.ReadStrings("/PixelClassification/LabelNames");

    public void Dispose() => File.Dispose();

    public override string ToString() => Path;
}
