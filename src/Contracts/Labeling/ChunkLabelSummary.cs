using System.IO.Compression;
using ChunkSeg.Contracts.Geometry;

namespace ChunkSeg.Contracts.Labeling;

/// <summary>
/// Partial statistics of one piece: a component as one chunk sees it. The coordinator adds up the pieces
/// of an object (sums, extremes), so these are exactly the quantities that merge by addition or min/max.
/// Coordinates are global voxel indices within the piece's time point.
/// </summary>
public struct PieceStats
{
    public long Voxels;
    /// <summary>Raster index <c>x + X·(y + Y·z)</c> of the piece's first voxel in the whole volume.</summary>
    public long First;
    /// <summary>The input value the piece holds (1 for a thresholded mask; the label for a label image).</summary>
    public ulong Value;
    public long MinZ, MinY, MinX, MaxZ, MaxY, MaxX;
    public long SumZ, SumY, SumX;
    /// <summary>Sum of the intensity (or probability) over the piece's voxels; 0 when none was given.</summary>
    public double IntensitySum;
    public bool TouchesVolumeBorder;

    /// <summary>Adds <paramref name="other"/>, a piece of the same object.</summary>
    public void Add(in PieceStats other)
    {
        Voxels += other.Voxels;
        First = Math.Min(First, other.First);
        MinZ = Math.Min(MinZ, other.MinZ); MinY = Math.Min(MinY, other.MinY); MinX = Math.Min(MinX, other.MinX);
        MaxZ = Math.Max(MaxZ, other.MaxZ); MaxY = Math.Max(MaxY, other.MaxY); MaxX = Math.Max(MaxX, other.MaxX);
        SumZ += other.SumZ; SumY += other.SumY; SumX += other.SumX;
        IntensitySum += other.IntensitySum;
        TouchesVolumeBorder |= other.TouchesVolumeBorder;
    }
}

/// <summary>A piece: local label <see cref="Label"/> of chunk <see cref="Chunk"/>.</summary>
public readonly record struct PieceRef(long Chunk, uint Label);

/// <summary>Which face of a chunk's core: the first or last plane along z, y or x.</summary>
public enum Face { ZLow, ZHigh, YLow, YHigh, XLow, XHigh }

/// <summary>
/// What one chunk of a labelling job tells the coordinator: the statistics of its pieces (local labels
/// 1 … n, numbered by first voxel in raster order) and the local labels on the six faces of its core,
/// from which neighbouring chunks' equivalences are found without reading any voxel data again.
/// <code>
///   face planes (core sz × sy × sx):  ZLow/ZHigh: sy × sx   YLow/YHigh: sz × sx   XLow/XHigh: sz × sy
/// </code>
/// Stored zlib-compressed, versioned; <see cref="Read"/> rejects anything else with a clear message.
/// </summary>
public sealed class ChunkLabelSummary
{
    private const uint Magic = 0x424C5343;   // "CSLB"
    private const int Version = 1;

    public ChunkLabelSummary(long chunk, Box3 core, PieceStats[] pieces, uint[][] faces)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentNullException.ThrowIfNull(faces);
        if (faces.Length != 6) throw new ArgumentException($"a chunk has 6 faces; got {faces.Length}");
        for (int f = 0; f < 6; f++)
            if (faces[f].LongLength != FaceLength(core.Size, (Face)f))
                throw new ArgumentException($"face {(Face)f} holds {faces[f].Length} labels; the core {core.Size} needs {FaceLength(core.Size, (Face)f)}");
        Chunk = chunk;
        Core = core;
        Pieces = pieces;
        Faces = faces;
    }

    public long Chunk { get; }
    public Box3 Core { get; }

    /// <summary>Statistics of local label l at index l − 1.</summary>
    public PieceStats[] Pieces { get; }

    /// <summary>Local labels of the six face planes, indexed by <see cref="Face"/>, each in raster order.</summary>
    public uint[][] Faces { get; }

    public static long FaceLength(Long3 core, Face face) => face switch
    {
        Face.ZLow or Face.ZHigh => core.Y * core.X,
        Face.YLow or Face.YHigh => core.Z * core.X,
        _ => core.Z * core.Y,
    };

    /// <summary>
    /// The local label at global voxel <paramref name="p"/>, which must lie on a face of the core:
    /// read from a face plane that contains it.
    /// </summary>
    public uint LabelOnFace(Long3 p)
    {
        var s = Core.Start;
        var e = Core.End - new Long3(1, 1, 1);
        var size = Core.Size;
        long z = p.Z - s.Z, y = p.Y - s.Y, x = p.X - s.X;
        if (p.Z == s.Z) return Faces[(int)Face.ZLow][y * size.X + x];
        if (p.Z == e.Z) return Faces[(int)Face.ZHigh][y * size.X + x];
        if (p.Y == s.Y) return Faces[(int)Face.YLow][z * size.X + x];
        if (p.Y == e.Y) return Faces[(int)Face.YHigh][z * size.X + x];
        if (p.X == s.X) return Faces[(int)Face.XLow][z * size.Y + y];
        if (p.X == e.X) return Faces[(int)Face.XHigh][z * size.Y + y];
        throw new ArgumentOutOfRangeException(nameof(p), p, $"voxel {p} is not on a face of {Core}");
    }

    /// <summary>
    /// Local labels on faces that another chunk touches (those whose plane is not on the volume's border), sorted
    /// and distinct: the only pieces that can belong to an object crossing chunks.
    /// </summary>
    public uint[] InteriorFaceLabels(Long3 volumeShape)
    {
        var onFace = new bool[Pieces.Length + 1];
        var end = Core.End;
        bool[] interior =
        [
            Core.Start.Z > 0, end.Z < volumeShape.Z, Core.Start.Y > 0, end.Y < volumeShape.Y, Core.Start.X > 0, end.X < volumeShape.X,
        ];
        for (int f = 0; f < 6; f++)
            if (interior[f])
                foreach (uint l in Faces[f]) onFace[l] = true;
        var labels = new List<uint>();
        for (int l = 1; l < onFace.Length; l++) if (onFace[l]) labels.Add((uint)l);
        return [.. labels];
    }

    public void Write(Stream stream)
    {
        using var zip = new ZLibStream(stream, CompressionLevel.Fastest, leaveOpen: true);
        using var w = new BinaryWriter(zip);
        w.Write(Magic);
        w.Write(Version);
        w.Write(Chunk);
        foreach (long v in new[] { Core.Start.Z, Core.Start.Y, Core.Start.X, Core.Size.Z, Core.Size.Y, Core.Size.X }) w.Write(v);
        w.Write(Pieces.Length);
        foreach (var p in Pieces)
        {
            w.Write(p.Voxels); w.Write(p.First); w.Write(p.Value);
            w.Write(p.MinZ); w.Write(p.MinY); w.Write(p.MinX); w.Write(p.MaxZ); w.Write(p.MaxY); w.Write(p.MaxX);
            w.Write(p.SumZ); w.Write(p.SumY); w.Write(p.SumX);
            w.Write(p.IntensitySum);
            w.Write(p.TouchesVolumeBorder);
        }
        foreach (var face in Faces)
            w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(face.AsSpan()));
    }

    /// <summary>Reads a summary written by <see cref="Write"/>; <paramref name="source"/> names it in errors.</summary>
    public static ChunkLabelSummary Read(Stream stream, string source)
    {
        try
        {
            using var zip = new ZLibStream(stream, CompressionMode.Decompress, leaveOpen: true);
            using var r = new BinaryReader(zip);
            if (r.ReadUInt32() != Magic) throw new InvalidDataException("not a ChunkSeg chunk label summary");
            int version = r.ReadInt32();
            if (version != Version) throw new InvalidDataException($"summary version {version}; this ChunkSeg reads version {Version}");
            long chunk = r.ReadInt64();
            var start = new Long3(r.ReadInt64(), r.ReadInt64(), r.ReadInt64());
            var size = new Long3(r.ReadInt64(), r.ReadInt64(), r.ReadInt64());
            var core = new Box3(start, size);
            int n = r.ReadInt32();
            if (n < 0 || n > core.VoxelCount) throw new InvalidDataException($"{n} pieces in a core of {core.VoxelCount} voxels");
            var pieces = new PieceStats[n];
            for (int i = 0; i < n; i++)
            {
                ref var p = ref pieces[i];
                p.Voxels = r.ReadInt64(); p.First = r.ReadInt64(); p.Value = r.ReadUInt64();
                p.MinZ = r.ReadInt64(); p.MinY = r.ReadInt64(); p.MinX = r.ReadInt64();
                p.MaxZ = r.ReadInt64(); p.MaxY = r.ReadInt64(); p.MaxX = r.ReadInt64();
                p.SumZ = r.ReadInt64(); p.SumY = r.ReadInt64(); p.SumX = r.ReadInt64();
                p.IntensitySum = r.ReadDouble();
                p.TouchesVolumeBorder = r.ReadBoolean();
            }
            var faces = new uint[6][];
            for (int f = 0; f < 6; f++)
            {
                faces[f] = new uint[FaceLength(size, (Face)f)];
                var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(faces[f].AsSpan());
                r.BaseStream.ReadExactly(bytes);
                foreach (uint l in faces[f])
                    if (l > n) throw new InvalidDataException($"face {(Face)f} holds label {l} but the chunk has {n} pieces");
            }
            return new ChunkLabelSummary(chunk, core, pieces, faces);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or ArgumentException)
        {
            throw new Errors.VolumeException(source, $"corrupt chunk label summary: {e.Message}", e);
        }
    }
}
