namespace ChunkSeg.Kernels.Forest;

/// <summary>
/// Converts vigra's stored random-forest trees (ILASTIK_RECIPE.md §5) to <see cref="DecisionTree"/>'s flat layout.
/// <code>
///   topology   = [F, C, node, node, …]; a node is referenced by its start index; the root starts at index 2
///   split node = [0,          paramAddr, child0, child1, column]   parameters[paramAddr + 1] = threshold
///   leaf       = [0x40000000, paramAddr]                           parameters[paramAddr] = leaf weight,
///                                                                  parameters[paramAddr + 1 ..] = class values
/// </code>
/// Child references (topology offsets) become flat node indices, numbered depth first from the root (node 0).
/// With <c>predictWeighted</c> the leaf values are multiplied by the leaf weight, as vigra does when predicting
/// (the product is the same double vigra computes).
/// </summary>
public static class VigraForestConverter
{
    public const int ThresholdNode = 0;
    public const int ConstProbNode = 0x40000000;

    /// <summary>One tree from its topology and parameters; <paramref name="classCount"/> class values per leaf.</summary>
    public static DecisionTree TreeFromVigra(int[] topology, double[] parameters, int columnCount, int classCount, bool predictWeighted = false)
    {
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columnCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classCount);
        if (topology.Length < 4)
            throw new ArgumentException($"a vigra tree topology holds [F, C, root node, …]; got {topology.Length} ints");
        if (topology[0] != columnCount || topology[1] != classCount)
            throw new ArgumentException($"the tree topology starts [{topology[0]}, {topology[1]}] (features, classes); the forest has [{columnCount}, {classCount}]");

        var feature = new List<int>();
        var threshold = new List<double>();
        var left = new List<int>();
        var right = new List<int>();
        var leafValues = new List<double>();
        var indexOf = new Dictionary<int, int>();          // topology offset → flat node index
        var pending = new List<(int Node, int Child, bool IsLeft)>();
        var stack = new Stack<int>();
        stack.Push(2);
        while (stack.Count > 0)
        {
            int at = stack.Pop();
            if (indexOf.ContainsKey(at)) continue;
            if (at < 2 || at + 1 >= topology.Length)
                throw new ArgumentException($"a node reference {at} is outside the topology of {topology.Length} ints");
            int node = feature.Count;
            indexOf[at] = node;
            int type = topology[at], param = topology[at + 1];
            switch (type)
            {
                case ThresholdNode:
                {
                    if (at + 4 >= topology.Length)
                        throw new ArgumentException($"the split node at topology {at} runs past the topology's end ({topology.Length})");
                    int column = topology[at + 4];
                    if ((uint)column >= (uint)columnCount)
                        throw new ArgumentException($"the split node at topology {at} reads column {column}; the forest has {columnCount}");
                    if (param < 0 || param + 1 >= parameters.Length)
                        throw new ArgumentException($"the split node at topology {at} has parameters at {param}, outside the {parameters.Length} stored");
                    feature.Add(column);
                    threshold.Add(parameters[param + 1]);
                    left.Add(-1);
                    right.Add(-1);
                    pending.Add((node, topology[at + 2], true));
                    pending.Add((node, topology[at + 3], false));
                    stack.Push(topology[at + 3]);
                    stack.Push(topology[at + 2]);
                    break;
                }
                case ConstProbNode:
                {
                    if (param < 0 || param + classCount >= parameters.Length)
                        throw new ArgumentException($"the leaf at topology {at} has parameters at {param} (+1+{classCount}), outside the {parameters.Length} stored");
                    double weight = predictWeighted ? parameters[param] : 1.0;
                    feature.Add(-1);
                    threshold.Add(0);
                    left.Add(leafValues.Count);
                    right.Add(0);
                    for (int c = 0; c < classCount; c++)
                        leafValues.Add(parameters[param + 1 + c] * weight);
                    break;
                }
                default:
                    throw new ArgumentException(
                        $"the node at topology {at} has type {type} (0x{type:X8}); only threshold splits (0) and constant-probability leaves " +
                        $"(0x{ConstProbNode:X8}), the nodes ilastik's random forest produces, are supported");
            }
        }
        var l = left.ToArray();
        var r = right.ToArray();
        foreach (var (node, child, isLeft) in pending)
            (isLeft ? l : r)[node] = indexOf[child];
        return new DecisionTree(feature.ToArray(), threshold.ToArray(), l, r, leafValues.ToArray(), classCount);
    }

    /// <summary>A forest from each tree's topology and parameters (in vigra's tree order) and the forest's class labels.</summary>
    public static RandomForest FromVigra(int[][] topologies, double[][] parameters, int columnCount, int[] classLabels, bool predictWeighted = false)
    {
        ArgumentNullException.ThrowIfNull(topologies);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(classLabels);
        if (topologies.Length != parameters.Length)
            throw new ArgumentException($"{topologies.Length} topologies but {parameters.Length} parameter arrays");
        var trees = new DecisionTree[topologies.Length];
        for (int t = 0; t < trees.Length; t++)
        {
            try
            {
                trees[t] = TreeFromVigra(topologies[t], parameters[t], columnCount, classLabels.Length, predictWeighted);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"tree {t}: {e.Message}", e);
            }
        }
        return new RandomForest(trees, columnCount, classLabels);
    }
}
