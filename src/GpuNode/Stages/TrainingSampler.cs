using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Backends;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>Feature rows of the labelled voxels: row-major [sample][feature], with each sample's label value.</summary>
public sealed record TrainingSamples(float[] Features, int FeatureCount, int[] Labels)
{
    public int Count => Labels.Length;
}

/// <summary>
/// Collects training samples the way ilastik's brush strokes are used: features are computed only for
/// chunks whose core holds labelled voxels (label ≠ 0), each with its halo, never for the whole volume.
/// Chunks are visited in parallel; the rows are then put in the volume's raster order (t, z, y, x), so the
/// samples, and the trees trained from them with a given seed, depend neither on the chunk shape nor on the
/// worker count.
/// </summary>
public static class TrainingSampler
{
    /// <param name="backend">Where the features are computed (default: the CPU); every backend gives the same samples.</param>
    public static TrainingSamples Collect(FeatureSet set, IVolume raw, IVolume labels, Long3 chunkShape, int workers,
        IProgress<(long Done, long Total)>? progress = null, ComputeBackend? backend = null)
    {
        var info = raw.Info;
        CheckLabels(info, labels.Info);
        int inputChannels = checked((int)info.Channels);
        var features = new ChunkFeatures(set, info.SpatialShape.Z, inputChannels, backend);
        var grid = new ChunkGrid(info.SpatialShape, info.TimePoints, chunkShape, features.RequiredHalo);
        int f = features.Channels;
        var perChunk = new (float[] Rows, int[] Labels, long[] Positions)?[checked((int)grid.Count)];
        long done = 0;
        Parallel.For(0, grid.Count, new ParallelOptions { MaxDegreeOfParallelism = workers }, i =>
        {
            var chunk = grid[i];
            var coreLabels = ReadLabels(labels, chunk);
            int[] where = Enumerable.Range(0, coreLabels.Length).Where(v => coreLabels[v] != 0).ToArray();
            if (where.Length > 0)
            {
                var rows = new float[where.Length * f];
                features.Compute(chunk, raw, (channel, image) =>
                {
                    for (int s = 0; s < where.Length; s++) rows[s * f + channel] = image[where[s]];
                });
                perChunk[i] = (rows, where.Select(v => coreLabels[v]).ToArray(), where.Select(v => RasterIndex(chunk, v, info.SpatialShape)).ToArray());
            }
            progress?.Report((Interlocked.Increment(ref done), grid.Count));
        });

        var all = perChunk.Where(p => p is not null).Select(p => p!.Value).ToArray();
        var positions = all.SelectMany(p => p.Positions).ToArray();
        var order = Enumerable.Range(0, positions.Length).ToArray();
        Array.Sort(positions.ToArray(), order);                       // raster order of the whole volume
        var chunkRows = all.SelectMany(p => Enumerable.Range(0, p.Labels.Length).Select(r => (p.Rows, Row: r))).ToArray();
        var labelsInOrder = all.SelectMany(p => p.Labels).ToArray();
        var sortedRows = new float[positions.Length * f];
        var sortedLabels = new int[positions.Length];
        for (int k = 0; k < order.Length; k++)
        {
            var (rows, row) = chunkRows[order[k]];
            rows.AsSpan(row * f, f).CopyTo(sortedRows.AsSpan(k * f, f));
            sortedLabels[k] = labelsInOrder[order[k]];
        }
        return new TrainingSamples(sortedRows, f, sortedLabels);
    }

    /// <summary>Linear index of core voxel <paramref name="v"/> of <paramref name="chunk"/> in the (t, z, y, x) volume.</summary>
    private static long RasterIndex(ChunkSpec chunk, int v, Long3 shape)
    {
        var core = chunk.Core;
        long x = core.Start.X + v % core.Size.X;
        long y = core.Start.Y + v / core.Size.X % core.Size.Y;
        long z = core.Start.Z + v / (core.Size.X * core.Size.Y);
        return ((chunk.TimePoint * shape.Z + z) * shape.Y + y) * shape.X + x;
    }

    /// <summary>The label volume must cover the same voxels: same t, z, y, x extents, one channel at most.</summary>
    private static void CheckLabels(VolumeInfo raw, VolumeInfo labels)
    {
        if (labels.SpatialShape != raw.SpatialShape || labels.TimePoints != raw.TimePoints || labels.Channels != 1)
            throw new VolumeException(labels.Location,
                $"labels of shape [{string.Join(", ", labels.Shape)}] ({labels.Axes}) do not match the raw data's spatial shape {raw.SpatialShape} " +
                $"with {raw.TimePoints} time point(s); expected one label channel per voxel");
        if (labels.DataType.IsFloat())
            throw new VolumeException(labels.Location, $"labels must be integers (0 = unlabelled, 1..K = classes); got {labels.DataType.Name()}");
    }

    private static int[] ReadLabels(IVolume labels, ChunkSpec chunk)
    {
        var info = labels.Info;
        var box = BoxLayout.ForChunk(info.Axes, info.Shape, chunk.TimePoint, chunk.Core);
        int n = (int)box.ElementCount, size = info.DataType.SizeInBytes();
        var bytes = new byte[n * size];
        labels.Read(box, bytes);
        // Any axis order: reorder to t, c, z, y, x (t and c have extent 1 here) so values follow the core's raster order.
        var ordered = new byte[bytes.Length];
        BoxLayout.Transpose(bytes, box.Shape, info.Axes, ordered, info.Axes.ToOmeOrder(), size);
        var values = new int[n];
        for (int i = 0; i < n; i++)
        {
            var e = ordered.AsSpan(i * size, size);
            long v = info.DataType switch
            {
                DataType.UInt8 => e[0], DataType.Int8 => (sbyte)e[0],
                DataType.UInt16 => MemoryMarshal.Read<ushort>(e), DataType.Int16 => MemoryMarshal.Read<short>(e),
                DataType.UInt32 => MemoryMarshal.Read<uint>(e), DataType.Int32 => MemoryMarshal.Read<int>(e),
                DataType.UInt64 => (long)MemoryMarshal.Read<ulong>(e), _ => MemoryMarshal.Read<long>(e),
            };
            if (v < 0 || v > int.MaxValue)
                throw new VolumeException(info.Location, $"label value {v} is outside 0..{int.MaxValue} (0 = unlabelled, 1..K = classes)");
            values[i] = (int)v;
        }
        return values;
    }
}
