using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// The per-chunk function of a job: given a chunk's read box of the input, produce its core box of the
/// output. Implementations are shared by all worker threads of a node and must be thread-safe.
/// </summary>
public interface IChunkStage
{
    /// <summary>Context each chunk needs beyond its core; the planner adds the halos of all stages.</summary>
    Halo RequiredHalo { get; }

    /// <summary>Writes the output for <paramref name="chunk"/>'s core into <paramref name="coreOutput"/>,
    /// laid out as the output volume's box for that core (output axis order, C order).</summary>
    void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput);
}
