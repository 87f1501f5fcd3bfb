using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Stages;

/// <summary>
/// Generates a synthetic nuclei-like light-sheet volume (uint16): ellipsoidal nuclei of a few micrometers,
/// placed by a seeded random generator, with soft edges, a dim textured background, intensity falling
/// off with depth, and Gaussian noise. Each voxel is a pure function of (seed, z, y, x), so the volume
/// is identical whatever the chunking: the demo exercises the chunk spine with no input file.
/// Nuclei are sized in micrometers and mapped through the voxel size, so anisotropic voxels give
/// flattened nuclei in voxel space, as real z-stacks do.
/// Besides the image (<see cref="SyntheticKind.Raw"/>), the same nuclei give what a user would paint and what is
/// true: sparse brush strokes for training (<see cref="SyntheticKind.Strokes"/>) and the nuclei's ids (<see cref="SyntheticKind.Truth"/>).
/// </summary>
public sealed class SynthesizeStage : IChunkStage
{
    /// <summary>Stroke classes, in ilastik's convention (1 = the first label painted).</summary>
    public const byte BackgroundStroke = 1, NucleusStroke = 2;

    private readonly Nucleus[] _nuclei;
    private readonly ulong _seed;
    private readonly double _depthDecayVoxels;
    private readonly SyntheticKind _kind;

    public SynthesizeStage(Long3 shape, VoxelSize voxelSize, int nucleusCount, ulong seed, SyntheticKind kind = SyntheticKind.Raw)
    {
        _seed = seed;
        _kind = kind;
        _depthDecayVoxels = Math.Max(1, shape.Z) * 1.5;
        var rng = new Random(unchecked((int)seed));
        _nuclei = new Nucleus[nucleusCount];
        for (int i = 0; i < nucleusCount; i++)
        {
            double radiusUm = 3.0 + 2.5 * rng.NextDouble();
            var r = new Vec(radiusUm / voxelSize.Z * (0.85 + 0.3 * rng.NextDouble()),
                            radiusUm / voxelSize.Y * (0.85 + 0.3 * rng.NextDouble()),
                            radiusUm / voxelSize.X * (0.85 + 0.3 * rng.NextDouble()));
            var c = new Vec(rng.NextDouble() * shape.Z, rng.NextDouble() * shape.Y, rng.NextDouble() * shape.X);
            _nuclei[i] = new Nucleus(c, r, 900 + 1400 * rng.NextDouble());
        }
    }

    public Halo RequiredHalo => Halo.None;

    /// <summary>The voxel type each kind is written as.</summary>
    public static DataType TypeOf(SyntheticKind kind) => kind switch
    {
        SyntheticKind.Strokes => DataType.UInt8,
        SyntheticKind.Truth => DataType.UInt32,
        _ => DataType.UInt16,
    };

    public void Process(ChunkSpec chunk, IVolume? input, IVolume output, Memory<byte> coreOutput)
    {
        if (output.Info.DataType != TypeOf(_kind))
            throw new ArgumentException($"the synthetic {_kind.ToString().ToLowerInvariant()} volume is {TypeOf(_kind)}");
        var box = chunk.Core;
        // Only nuclei whose bounding box (with the soft edge) touches the chunk contribute.
        int[] near = Enumerable.Range(0, _nuclei.Length).Where(n => _nuclei[n].Touches(box)).ToArray();
        if (_kind == SyntheticKind.Raw) Image(box, near, MemoryMarshal.Cast<byte, ushort>(coreOutput.Span));
        else Annotate(box, near, coreOutput.Span);
    }

    private void Image(Box3 box, int[] near, Span<ushort> voxels)
    {
        int i = 0;
        for (long z = box.Start.Z; z < box.End.Z; z++)
        {
            double depth = Math.Exp(-z / _depthDecayVoxels);
            for (long y = box.Start.Y; y < box.End.Y; y++)
            for (long x = box.Start.X; x < box.End.X; x++, i++)
            {
                double signal = 0;
                foreach (int n in near)
                    signal = Math.Max(signal, _nuclei[n].Intensity(z, y, x));
                double background = 120 + 30 * Math.Sin(x * 0.05) * Math.Cos(y * 0.04);
                double value = background + signal * depth + 25 * Noise(z, y, x);
                voxels[i] = (ushort)Math.Clamp(Math.Round(value), 0, ushort.MaxValue);
            }
        }
    }

    /// <summary>
    /// Truth: the id (index + 1) of the brightest nucleus at a voxel, where it is above half its peak. Strokes, as a
    /// user paints a few in ilastik: a three-row line through the centre of every third nucleus, inside it (class 2)
    /// and continued just outside its edge (class 1), and lines of background far from every nucleus on every 16th
    /// plane and 40th row (class 1).
    /// </summary>
    private void Annotate(Box3 box, int[] near, Span<byte> output)
    {
        var truth = MemoryMarshal.Cast<byte, uint>(output);
        int i = 0;
        for (long z = box.Start.Z; z < box.End.Z; z++)
        for (long y = box.Start.Y; y < box.End.Y; y++)
        for (long x = box.Start.X; x < box.End.X; x++, i++)
        {
            int brightest = -1;
            double best = 0, nearest = double.MaxValue;
            foreach (int n in near)
            {
                double v = _nuclei[n].Intensity(z, y, x);
                if (v > best) (best, brightest) = (v, n);
                nearest = Math.Min(nearest, _nuclei[n].Distance(z, y, x));
            }
            bool inside = brightest >= 0 && best >= _nuclei[brightest].Peak / 2;
            if (_kind == SyntheticKind.Truth)
            {
                truth[i] = inside ? (uint)brightest + 1 : 0;
                continue;
            }
            byte stroke = 0;
            int painted = near.FirstOrDefault(n => n % 3 == 0 && _nuclei[n].OnCentreLine(z, y), -1);
            double r = painted >= 0 ? _nuclei[painted].Distance(z, y, x) : double.MaxValue;
            if (painted >= 0 && r < 0.8 && brightest == painted) stroke = NucleusStroke;
            else if ((r > 1.25 && r < 1.6 && nearest > 1.25) || (nearest > 1.6 && z % 16 == 8 && y % 40 == 20)) stroke = BackgroundStroke;
            output[i] = stroke;
        }
    }

    /// <summary>A standard normal sample from a hash of the coordinates (Box–Muller on two hashed uniforms).</summary>
    private double Noise(long z, long y, long x)
    {
        ulong h = Mix(_seed ^ Mix((ulong)z * 0x9E3779B97F4A7C15UL ^ Mix((ulong)y * 0xC2B2AE3D27D4EB4FUL ^ (ulong)x)));
        double u1 = ((h >> 11) + 1) * (1.0 / 9007199254740993.0);
        double u2 = (Mix(h) >> 11) * (1.0 / 9007199254740992.0);
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    private static ulong Mix(ulong v)   // splitmix64 finaliser
    {
        v ^= v >> 30; v *= 0xBF58476D1CE4E5B9UL;
        v ^= v >> 27; v *= 0x94D049BB133111EBUL;
        return v ^ (v >> 31);
    }

    private readonly record struct Vec(double Z, double Y, double X);

    private readonly record struct Nucleus(Vec Center, Vec Radius, double Peak)
    {
        private const double Edge = 1.4;   // intensity reaches ~0 at 1.4 radii

        public bool Touches(Box3 b) =>
            Center.Z + Edge * Radius.Z >= b.Start.Z && Center.Z - Edge * Radius.Z < b.End.Z &&
            Center.Y + Edge * Radius.Y >= b.Start.Y && Center.Y - Edge * Radius.Y < b.End.Y &&
            Center.X + Edge * Radius.X >= b.Start.X && Center.X - Edge * Radius.X < b.End.X;

        /// <summary>Distance from the centre in radii (1 = on the nominal surface).</summary>
        public double Distance(long z, long y, long x)
        {
            double dz = (z - Center.Z) / Radius.Z, dy = (y - Center.Y) / Radius.Y, dx = (x - Center.X) / Radius.X;
            return Math.Sqrt(dz * dz + dy * dy + dx * dx);
        }

        public bool OnCentreLine(long z, long y) => z == (long)Math.Round(Center.Z) && Math.Abs(y - Math.Round(Center.Y)) <= 1;

        public double Intensity(long z, long y, long x)
        {
            double r = Distance(z, y, x);
            if (r >= Edge) return 0;
            return Peak / (1 + Math.Exp((r - 1) * 8));     // soft, blurred edge
        }
    }
}

/// <summary>What <see cref="SynthesizeStage"/> writes: the image, training strokes, or the true nuclei.</summary>
public enum SyntheticKind { Raw, Strokes, Truth }
