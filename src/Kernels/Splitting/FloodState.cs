namespace ChunkSeg.Kernels.Splitting;

/// <summary>
/// A flood's state of one voxel in one 64-bit value, as the chunk rounds store it between passes:
/// <code>
///   0                                    background (outside the foreground)
///   settled « 44  |  key + 1             foreground: key 0 = not reached yet; settled = the iteration that labelled
///                                        it + 1 (0 for a seed), which the final cut-back needs
/// </code>
/// Keys are clEsperanto's Fortran-order pixel indices, below 2^44 − 1 (17 × 10^12 voxels per image); a flood
/// runs fewer than 2^20 iterations.
/// </summary>
public static class FloodState
{
    private const int KeyBits = 44;
    private const ulong KeyMask = (1UL << KeyBits) - 1;

    public const ulong MaxKey = KeyMask - 1;
    public const int MaxIterations = (1 << (64 - KeyBits)) - 2;

    public static ulong Pack(bool foreground, ulong key, int settled)
    {
        if (!foreground) return 0;
        int stored = settled == VoronoiFlood.Unsettled ? 0 : settled;
        return ((ulong)stored << KeyBits) | (key + 1);
    }

    /// <summary>Unpacks <paramref name="states"/> into the flood's labels (keys), settled iterations and mask.</summary>
    public static void Unpack(ReadOnlySpan<ulong> states, Span<ulong> keys, Span<int> settled, Span<byte> mask)
    {
        for (int i = 0; i < states.Length; i++)
        {
            ulong s = states[i];
            mask[i] = s == 0 ? (byte)0 : (byte)1;
            ulong key = s == 0 ? 0 : (s & KeyMask) - 1;
            keys[i] = key;
            settled[i] = key == 0 ? VoronoiFlood.Unsettled : (int)(s >> KeyBits);
        }
    }

    /// <summary>The key a voxel keeps when the flood stopped after <paramref name="lastIteration"/> iterations (0: none).</summary>
    public static ulong FinalKey(ulong state, int lastIteration)
    {
        if (state == 0) return 0;
        ulong key = (state & KeyMask) - 1;
        return key != 0 && VoronoiFlood.Kept((int)(state >> KeyBits), lastIteration) ? key : 0;
    }
}
