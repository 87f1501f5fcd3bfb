using ChunkSeg.GpuNode.Backends;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Memory;
using System.Globalization;
using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Meshing;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.GpuNode.Internal;
using ChunkSeg.Storage.Internal;
using ChunkSeg.Kernels.Features;
using ChunkSeg.Kernels.Filters;
using ChunkSeg.Kernels.Meshing;
using ChunkSeg.Storage;
using ChunkSeg.Storage.Meshing;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>Which surfaces a mesh job extracts.</summary>
public enum SurfaceKind
{
    /// <summary>The isosurface of one channel of a scalar volume (a probability map at 0.5).</summary>
    Isosurface,
    /// <summary>One surface around every non-zero voxel of a label or mask volume.</summary>
    Foreground,
    /// <summary>One closed surface per label of a label volume.</summary>
    PerLabel,
}

/// <summary>
/// What to mesh: <see cref="Channel"/> (0-based) of the input for an isosurface at <see cref="Isovalue"/>, after an
/// optional Gaussian (<see cref="Smoothing"/>, sigmas z, y, x in voxels, window 3 sigma) as
/// blender_tissue_cartography's marching_cubes(…, sigma_smoothing) does. A smoothed foreground is the
/// isosurface of the smoothed 0/1 mask. <see cref="TimePoint"/> picks the time point of a 3D+t volume.
/// </summary>
public sealed record SurfaceSpec(SurfaceKind Kind, int Channel = 0, float Isovalue = 0.5f, Sigma3 Smoothing = default, long TimePoint = 0)
{
    public bool Smooths => Smoothing.Z > 0 || Smoothing.Y > 0 || Smoothing.X > 0;

    /// <summary>The spec <see cref="AddTo"/> wrote into a job's parameters (how a remote worker learns it).</summary>
    public static SurfaceSpec FromParameters(IReadOnlyDictionary<string, string> parameters)
    {
        string Get(string key) => parameters.TryGetValue(key, out var v) ? v
            : throw new UsageException($"mesh job parameters: \"{key}\" is missing");
        var kind = Get("surface") switch
        {
            "perlabel" => SurfaceKind.PerLabel,
            "foreground" => SurfaceKind.Foreground,
            "isosurface" => SurfaceKind.Isosurface,
            var other => throw new UsageException($"mesh job parameters: surface \"{other}\" is not perlabel, foreground or isosurface"),
        };
        long t = long.Parse(Get("t"), CultureInfo.InvariantCulture);
        if (kind == SurfaceKind.PerLabel) return new SurfaceSpec(kind, TimePoint: t);
        float isovalue = float.Parse(Get("isovalue"), CultureInfo.InvariantCulture);
        int channel = kind == SurfaceKind.Isosurface ? int.Parse(Get("channel"), CultureInfo.InvariantCulture) : 0;
        var smoothing = parameters.TryGetValue("smoothing", out var s) ? Sigma3.Parse(s) : default;
        return new SurfaceSpec(kind, channel, isovalue, smoothing, t);
    }

    public void AddTo(IDictionary<string, string> parameters)
    {
        parameters["surface"] = Kind.ToString().ToLowerInvariant();
        parameters["t"] = TimePoint.ToString(CultureInfo.InvariantCulture);
        if (Kind == SurfaceKind.PerLabel) return;
        parameters["isovalue"] = Isovalue.ToString("R", CultureInfo.InvariantCulture);
        if (Kind == SurfaceKind.Isosurface) parameters["channel"] = Channel.ToString(CultureInfo.InvariantCulture);
        if (Smooths) parameters["smoothing"] = Smoothing.ToString();
    }
}

/// <summary>
/// The per-chunk meshing work: reads the chunk's cells (its core, one voxel more towards higher coordinates and
/// the smoothing halo), runs <see cref="MarchingCubes"/> on the cells whose lowest corner lies in the core and
/// stores the <see cref="SurfacePiece"/> in the workspace. Thread-safe; chunks are independent.
/// </summary>
public sealed class SurfaceTask
{
    private readonly SurfaceSpec _spec;
    private readonly IVolume _input;
    private readonly MeshWorkspace _workspace;
    private readonly FirKernel?[] _kernels;
    private readonly Long3 _volumeShape;
    private readonly ComputeBackend _backend;

    /// <param name="backend">Where the smoothing before marching cubes runs (default: the CPU).</param>
    public SurfaceTask(SurfaceSpec spec, IVolume input, MeshWorkspace workspace, ComputeBackend? backend = null)
    {
        _backend = backend ?? ComputeBackend.Cpu;
        _spec = spec;
        _input = input;
        _workspace = workspace;
        _volumeShape = input.Info.SpatialShape;
        _kernels = spec.Kind != SurfaceKind.PerLabel ? BlockSmoothing.Kernels(spec.Smoothing) : new FirKernel?[3];
        // One voxel beyond the core for the cells' upper corners, plus the smoothing's reach around those.
        RequiredHalo = BlockSmoothing.HaloOf(_kernels) + Halo.Uniform(1);
    }

    public Halo RequiredHalo { get; }

    /// <summary>Meshes one chunk (of a grid over a single time point) and stores its piece; returns its triangle count.</summary>
    public int Run(ChunkSpec chunk)
    {
        var info = _input.Info;
        var cells = Box3.FromBounds(chunk.Core.Start, Long3.Min(chunk.Core.End, _volumeShape - Long3.Uniform(1)));
        using var piece = new SurfacePiece(chunk.Id.Value, _volumeShape, labelled: _spec.Kind == SurfaceKind.PerLabel);
        if (!cells.IsEmpty)
        {
            byte[] planar = PlanarRead.Rent(_input, _spec.TimePoint, chunk.Read, out int bytes);
            try
            {
                Extract(chunk.Read, cells, planar.AsSpan(0, bytes), info.DataType, piece);
            }
            finally
            {
                ChunkBufferPool<byte>.Shared.Return(planar);
            }
        }
        _workspace.WritePiece(piece);
        return piece.TriangleCount;
    }

    /// <summary>
    /// <see cref="Run"/> as a job's chunk action: the piece is on disk (flushed) when this returns; the CRC-32C is over the
    /// piece file as stored.
    /// </summary>
    public uint RunRecorded(ChunkSpec chunk)
    {
        Run(chunk);
        return Crc32C.Compute(_workspace.ReadPieceBytes(chunk.Id.Value));
    }

    private void Extract(Box3 box, Box3 cells, ReadOnlySpan<byte> planar, DataType type, SurfacePiece piece)
    {
        int n = checked((int)box.VoxelCount), elementSize = type.SizeInBytes();
        if (_spec.Kind != SurfaceKind.Isosurface && !_spec.Smooths)
        {
            var labels = planar[..(n * elementSize)];
            bool perLabel = _spec.Kind == SurfaceKind.PerLabel;
            switch (elementSize)
            {
                case 1: MarchingCubes.ExtractLabels(MemoryMarshal.Cast<byte, byte>(labels), box.Size, box.Start, cells, perLabel, piece); break;
                case 2: MarchingCubes.ExtractLabels(MemoryMarshal.Cast<byte, ushort>(labels), box.Size, box.Start, cells, perLabel, piece); break;
                case 4: MarchingCubes.ExtractLabels(MemoryMarshal.Cast<byte, uint>(labels), box.Size, box.Start, cells, perLabel, piece); break;
                default: MarchingCubes.ExtractLabels(MemoryMarshal.Cast<byte, ulong>(labels), box.Size, box.Start, cells, perLabel, piece); break;
            }
            return;
        }
        float[] values = ChunkBufferPool<float>.Shared.Rent(n);
        float[] scratch = ChunkBufferPool<float>.Shared.Rent(n);
        try
        {
            int channel = _spec.Kind == SurfaceKind.Isosurface ? _spec.Channel : 0;
            ToFloat.Convert(planar.Slice(channel * n * elementSize, n * elementSize), type, values.AsSpan(0, n));
            if (_spec.Kind == SurfaceKind.Foreground)
                for (int i = 0; i < n; i++) values[i] = values[i] != 0 ? 1f : 0f;
            _backend.Smooth(_kernels, box.Size, values, scratch);
            MarchingCubes.Extract(values.AsSpan(0, n), box.Size, box.Start, cells, _spec.Isovalue, piece);
        }
        finally
        {
            ChunkBufferPool<float>.Shared.Return(values);
            ChunkBufferPool<float>.Shared.Return(scratch);
        }
    }
}
