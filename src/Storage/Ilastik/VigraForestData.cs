namespace ChunkSeg.Storage.Ilastik;

/// <summary>
/// One tree of a vigra random forest as stored (ILASTIK_RECIPE.md §5): <see cref="Topology"/> is
/// <c>[F, C, node, node, …]</c> with the root at index 2, <see cref="Parameters"/> holds thresholds and leaf values.
/// </summary>
public sealed record VigraTreeData(string Name, int[] Topology, double[] Parameters);

/// <summary>
/// One <c>Forest####</c> group of /PixelClassification/ClassifierForests as stored: the forest reads
/// <see cref="ColumnCount"/> features and votes for <see cref="ClassCount"/> classes, class index i standing for
/// label value <see cref="Labels"/>[i]; <see cref="PredictWeighted"/> is vigra's predict_weighted_ option (leaf
/// weight times leaf values; 0 in ilastik). <see cref="Trees"/> are in the order vigra reads them (sorted names).
/// </summary>
public sealed record VigraForestData(
    string Name, int ColumnCount, int ClassCount, uint[] Labels, bool PredictWeighted, IReadOnlyList<VigraTreeData> Trees);
