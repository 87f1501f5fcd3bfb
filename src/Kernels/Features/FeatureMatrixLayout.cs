namespace ChunkSeg.Kernels.Features;

/// <summary>
/// Where each feature image goes in ilastik's feature matrix: feature entry, then input channel, then eigenvalue
/// (ILASTIK_RECIPE §4). The forest reads its features in this order, so every producer of a matrix uses this one map.
/// </summary>
public sealed class FeatureMatrixLayout
{
    private readonly int[] _entryOffsets;   // first channel of each entry, for input channel 0
    private readonly int[] _entryWidths;    // eigenvalue count of each entry

    public FeatureMatrixLayout(FeatureSet set, long volumeZ, int inputChannels)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputChannels);
        InputChannels = inputChannels;
        _entryWidths = set.Entries.Select(e => set.ChannelsOf(e, volumeZ)).ToArray();
        _entryOffsets = new int[_entryWidths.Length];
        for (int i = 1; i < _entryWidths.Length; i++) _entryOffsets[i] = _entryOffsets[i - 1] + _entryWidths[i - 1] * inputChannels;
        Channels = set.ChannelCount(volumeZ, inputChannels);
    }

    public int InputChannels { get; }

    /// <summary>Columns of the matrix: every entry's eigenvalues for every input channel.</summary>
    public int Channels { get; }

    /// <summary>The matrix column of component <paramref name="component"/> of entry <paramref name="entry"/> on <paramref name="inputChannel"/>.</summary>
    public int ChannelOf(int entry, int inputChannel, int component) => _entryOffsets[entry] + inputChannel * _entryWidths[entry] + component;
}
