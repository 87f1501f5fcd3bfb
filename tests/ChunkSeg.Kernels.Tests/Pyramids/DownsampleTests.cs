using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Pyramids;

namespace ChunkSeg.Kernels.Tests.Pyramids;

/// <summary>
/// Block mean against scikit-image's downscale_local_mean (divisible shapes) and against
/// tools/reference/pyramid_reference.py (ragged edges, rounding ties, the float order) bit for bit; block mode
/// against scipy.stats.mode (ties to the smallest); any chunking of the output equal to the whole; the vector loops
/// equal to their scalar tails at every length.
/// </summary>
public sealed class DownsampleTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly Long3[] Factors = [new(2, 2, 2), new(1, 2, 2), new(2, 1, 1), new(2, 2, 1), new(1, 1, 2)];

    private static T[] Random<T>(int count, int seed, Func<Random, T> draw)
    {
        var rng = new Random(seed);
        var values = new T[count];
        for (int i = 0; i < count; i++) values[i] = draw(rng);
        return values;
    }

    private static byte[] RandomU8(int n, int seed) => Random(n, seed, r => (byte)r.Next(256));
    private static ushort[] RandomU16(int n, int seed) => Random(n, seed, r => (ushort)r.Next(65536));
    private static uint[] RandomU32(int n, int seed) => Random(n, seed, r => (uint)r.NextInt64(1L << 32));   // full range: sums pass 2³²
    private static float[] RandomF32(int n, int seed) => Random(n, seed, r => (float)((r.NextDouble() - 0.3) * Math.Pow(10, r.Next(-3, 4))));

    /// <summary>Writes each input, runs the reference on all of them in one process (its start-up is most of the
    /// cost), reads each output back.</summary>
    private NpyArray[] Reference(string mode, params (Long3 Factor, DataType Type, Long3 Shape, byte[] Data)[] inputs)
    {
        var args = new List<string> { mode };
        for (int i = 0; i < inputs.Length; i++)
        {
            var (f, type, shape, data) = inputs[i];
            NpyFile.Write(_dir[$"in{i}.npy"], type, [shape.Z, shape.Y, shape.X], data);
            args.AddRange([$"{f.Z},{f.Y},{f.X}", _dir[$"in{i}.npy"], _dir[$"out{i}.npy"]]);
        }
        PythonReference.Run("pyramid_reference.py", [.. args]);
        return [.. Enumerable.Range(0, inputs.Length).Select(i => NpyFile.Read(_dir[$"out{i}.npy"]))];
    }

    private static double[] Doubles(NpyArray a) => a.DataType switch
    {
        DataType.Float64 => Values<double>(a),
        DataType.Float32 => [.. Values<float>(a).Select(v => (double)v)],
        _ => throw new InvalidDataException($"expected a float array from scikit-image, got {a.DataType}"),
    };

    private static byte[] Bytes<T>(T[] values) where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
    private static T[] Values<T>(NpyArray a) where T : unmanaged => MemoryMarshal.Cast<byte, T>(a.Data).ToArray();

    private static T[] Mean<T>(T[] source, Long3 shape, Long3 factor) where T : unmanaged
    {
        var output = new T[Downsample.OutputShape(shape, factor).Volume];
        switch (source)
        {
            case byte[] s: Downsample.Mean(s, shape, factor, (byte[])(object)output); break;
            case ushort[] s: Downsample.Mean(s, shape, factor, (ushort[])(object)output); break;
            case uint[] s: Downsample.Mean(s, shape, factor, (uint[])(object)output); break;
            case float[] s: Downsample.Mean(s, shape, factor, (float[])(object)output); break;
            default: throw new NotSupportedException(typeof(T).Name);
        }
        return output;
    }

    private static void AssertSame<T>(T[] expected, T[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int differ = 0, first = -1;
        for (int i = 0; i < expected.Length; i++)
            if (!EqualityComparer<T>.Default.Equals(expected[i], actual[i]) && differ++ == 0) first = i;
        Assert.True(differ == 0, $"{what}: {differ} of {expected.Length} voxels differ; first at {first}: expected {(first >= 0 ? expected[first] : default)}, got {(first >= 0 ? actual[first] : default)}");
    }

    [Fact]
    public void Mean_equals_skimage_downscale_local_mean_on_divisible_shapes()
    {
        // x of 68: a Vector256 step of 32 bytes (and of 16, 8 lanes) plus a scalar tail, whole or halved.
        var shape = new Long3(6, 10, 68);
        int n = (int)shape.Volume;
        var cases = Factors.Select((factor, k) => (factor, u8: RandomU8(n, 10 * k), u16: RandomU16(n, 10 * k + 1), u32: RandomU32(n, 10 * k + 2), f32: RandomF32(n, 10 * k + 3))).ToArray();
        var sk = Reference("skimage", [.. cases.SelectMany(c => new[] { (c.factor, DataType.UInt8, shape, Bytes(c.u8)), (c.factor, DataType.UInt16, shape, Bytes(c.u16)),
            (c.factor, DataType.UInt32, shape, Bytes(c.u32)), (c.factor, DataType.Float32, shape, Bytes(c.f32)) })]);
        for (int k = 0; k < cases.Length; k++)
        {
            var (factor, u8, u16, u32, f32) = cases[k];
            // The block sizes are powers of two, so skimage's float64 means of integers are exact: rounding them half
            // to even must give the integer kernels' results exactly.
            AssertSame(Doubles(sk[4 * k]).Select(m => (byte)Math.Round(m, MidpointRounding.ToEven)).ToArray(), Mean(u8, shape, factor), $"uint8 {factor}");
            AssertSame(Doubles(sk[4 * k + 1]).Select(m => (ushort)Math.Round(m, MidpointRounding.ToEven)).ToArray(), Mean(u16, shape, factor), $"uint16 {factor}");
            AssertSame(Doubles(sk[4 * k + 2]).Select(m => (uint)Math.Round(m, MidpointRounding.ToEven)).ToArray(), Mean(u32, shape, factor), $"uint32 {factor}");

            // float32: skimage sums in float32 in its own order, so with mixed signs it loses bits to cancellation;
            // allow a few float32 roundings of the block's magnitude (8 × the mean |value| bounds every |value|).
            // Ours is pinned bit for bit by the reference script below.
            var expected = Doubles(sk[4 * k + 3]);
            var actual = Mean(f32, shape, factor);
            var magnitude = Mean([.. f32.Select(MathF.Abs)], shape, factor);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(actual[i] - expected[i]) <= 8 * 8 * Math.ScaleB(1, -24) * magnitude[i],
                    $"float32 {factor} voxel {i}: skimage {expected[i]:R}, ours {actual[i]:R}, block mean |value| {magnitude[i]:R}");
        }
    }

    [Fact]
    public void Mean_equals_the_reference_bit_for_bit_with_ragged_edges()
    {
        // Odd on every axis (ragged blocks on three faces, edges, the corner); one plane (a factor 2 on z leaves a
        // ragged block of one); a single row; a tiny cube; factors of the plan and a general one.
        Long3[] shapes = [new(5, 7, 37), new(1, 9, 33), new(7, 1, 70), new(3, 3, 3)];
        var cases = new List<(Long3 Shape, Long3 Factor, byte[] Small, byte[] U8, ushort[] U16, uint[] U32, float[] F32)>();
        int seed = 0;
        foreach (var shape in shapes)
            foreach (var factor in Factors.Append(new Long3(3, 2, 5)))
            {
                int n = (int)shape.Volume;
                // Values 0..3 make ties common: a block of two with sum 5 → 2.5 → 2, sum 7 → 3.5 → 4.
                cases.Add((shape, factor, Random(n, seed++, r => (byte)r.Next(4)), RandomU8(n, seed++), RandomU16(n, seed++), RandomU32(n, seed++), RandomF32(n, seed++)));
            }
        var r = Reference("mean", [.. cases.SelectMany(c => new[] { (c.Factor, DataType.UInt8, c.Shape, Bytes(c.Small)), (c.Factor, DataType.UInt8, c.Shape, Bytes(c.U8)),
            (c.Factor, DataType.UInt16, c.Shape, Bytes(c.U16)), (c.Factor, DataType.UInt32, c.Shape, Bytes(c.U32)), (c.Factor, DataType.Float32, c.Shape, Bytes(c.F32)) })]);
        for (int k = 0; k < cases.Count; k++)
        {
            var (shape, factor, small, u8, u16, u32, f32) = cases[k];
            AssertSame(Values<byte>(r[5 * k]), Mean(small, shape, factor), $"uint8 ties {shape} {factor}");
            AssertSame(Values<byte>(r[5 * k + 1]), Mean(u8, shape, factor), $"uint8 {shape} {factor}");
            AssertSame(Values<ushort>(r[5 * k + 2]), Mean(u16, shape, factor), $"uint16 {shape} {factor}");
            AssertSame(Values<uint>(r[5 * k + 3]), Mean(u32, shape, factor), $"uint32 {shape} {factor}");
            AssertSame(Values<float>(r[5 * k + 4]).Select(BitConverter.SingleToInt32Bits).ToArray(), Mean(f32, shape, factor).Select(BitConverter.SingleToInt32Bits).ToArray(), $"float32 bits {shape} {factor}");
        }
    }

    [Fact]
    public void Integer_means_round_half_to_even_and_never_overflow()
    {
        // Pairs along x (factor 1,1,2): 1.5 → 2, 2.5 → 2, 3.5 → 4, 0.5 → 0, and the ragged last voxel alone.
        byte[] pairs = [1, 2, 2, 3, 3, 4, 0, 1, 255, 255, 254, 255, 7];
        Assert.Equal(new byte[] { 2, 2, 4, 0, 255, 254, 7 }, Mean(pairs, new Long3(1, 1, pairs.Length), new Long3(1, 1, 2)));
        uint[] big = [uint.MaxValue, uint.MaxValue, uint.MaxValue, uint.MaxValue - 1];   // 4294967294.75 → …295
        Assert.Equal(new uint[] { uint.MaxValue }, Mean(big, new Long3(1, 2, 2), new Long3(1, 2, 2)));
        ushort[] third = [1, 1, 2];                                                       // 4/3 → 1, ragged block of 3 at factor 4
        Assert.Equal(new ushort[] { 1 }, Mean(third, new Long3(1, 1, 3), new Long3(1, 1, 4)));
    }

    [Fact]
    public void Float_means_propagate_nan_and_infinities_as_ieee_sums_do()
    {
        float[] values = [1, float.NaN, 2, 3, float.PositiveInfinity, 1, float.PositiveInfinity, float.NegativeInfinity, -0f, -0f];
        var mean = Mean(values, new Long3(1, 1, values.Length), new Long3(1, 1, 2));
        Assert.True(float.IsNaN(mean[0]));
        Assert.Equal(2.5f, mean[1]);
        Assert.Equal(float.PositiveInfinity, mean[2]);
        Assert.True(float.IsNaN(mean[3]));
        Assert.Equal(0, BitConverter.SingleToInt32Bits(mean[4]));                         // +0: the sum starts at 0
    }

    [Fact]
    public void Mode_equals_scipy_stats_mode_ties_to_the_smallest()
    {
        var shape = new Long3(7, 9, 13);
        int n = (int)shape.Volume;
        // Few values over blocks of ≤ 12: ties in many blocks; uint64 ids above 2⁶³, uint32 ids near the top.
        // (3,2,2): 12 values, counted pairwise; (3,3,2): 18, sorted.
        var cases = Factors.Append(new Long3(3, 2, 2)).Append(new Long3(3, 3, 2)).Select((factor, k) => (factor,
            u64: Random(n, 10 * k, r => r.Next(4) switch { 0 => 0ul, 1 => 5ul, 2 => (1ul << 63) + 7, _ => ulong.MaxValue }),
            u32: Random(n, 10 * k + 1, r => (uint)r.Next(3) * 0x7FFF_FFFFu),
            u16: Random(n, 10 * k + 2, r => (ushort)r.Next(6)),
            u8: Random(n, 10 * k + 3, r => (byte)(r.Next(2) * 200)))).ToArray();
        var s = Reference("mode", [.. cases.SelectMany(c => new[] { (c.factor, DataType.UInt64, shape, Bytes(c.u64)), (c.factor, DataType.UInt32, shape, Bytes(c.u32)),
            (c.factor, DataType.UInt16, shape, Bytes(c.u16)), (c.factor, DataType.UInt8, shape, Bytes(c.u8)) })]);
        for (int k = 0; k < cases.Length; k++)
        {
            var (factor, u64, u32, u16, u8) = cases[k];
            AssertSame(Values<ulong>(s[4 * k]), ModeOf(u64, shape, factor), $"uint64 {factor}");
            AssertSame(Values<uint>(s[4 * k + 1]), ModeOf(u32, shape, factor), $"uint32 {factor}");
            AssertSame(Values<ushort>(s[4 * k + 2]), ModeOf(u16, shape, factor), $"uint16 {factor}");
            AssertSame(Values<byte>(s[4 * k + 3]), ModeOf(u8, shape, factor), $"uint8 {factor}");
        }
    }

    private static T[] ModeOf<T>(T[] source, Long3 shape, Long3 factor) where T : unmanaged, System.Numerics.IBinaryInteger<T>, System.Numerics.IUnsignedNumber<T>
    {
        var output = new T[Downsample.OutputShape(shape, factor).Volume];
        Downsample.Mode<T>(source, shape, factor, output);
        return output;
    }

    [Fact]
    public void Mode_keeps_only_ids_of_its_block_and_counts_background_like_any_label()
    {
        //  block of 8: 0 ×4, 9 ×4 → 0 (tie, smaller); 0 ×5, 9 ×3 → 0; 7 ×3, 3 ×3, 0 ×2 → 3
        uint[] tie = [0, 9, 0, 9, 9, 0, 9, 0];
        Assert.Equal(new uint[] { 0 }, ModeOf(tie, new Long3(2, 2, 2), new Long3(2, 2, 2)));
        uint[] three = [7, 3, 7, 0, 3, 7, 0, 3];
        Assert.Equal(new uint[] { 3 }, ModeOf(three, new Long3(2, 2, 2), new Long3(2, 2, 2)));
        ulong[] ids = [10, 40, 40, 30, 10, 50];            // [10 40 40] → 40, [30 10 50] → 10 (a mean would invent 30 and 30)
        Assert.Equal(new ulong[] { 40, 10 }, ModeOf(ids, new Long3(1, 1, 6), new Long3(1, 1, 3)));
    }

    [Fact]
    public void Pairwise_counts_and_the_sorted_runs_agree_with_a_plain_count_at_every_block_size()
    {
        var rng = new Random(41);
        for (int n = 1; n <= 40; n++)                     // ≤ 16 pairwise, above sorted
            for (int trial = 0; trial < 50; trial++)
            {
                var values = Random(n, rng.Next(), r => (ulong)r.Next(1 + n / 3));
                ulong expected = values.GroupBy(v => v).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
                Assert.Equal(expected, ModeEngine.ModeOf(values.AsSpan()));
            }
    }

    [Fact]
    public void Any_chunking_of_any_level_equals_the_whole_volume()
    {
        var rng = new Random(27);
        for (int trial = 0; trial < 150; trial++)
        {
            var shape = new Long3(rng.Next(1, 12), rng.Next(1, 20), rng.Next(1, 45));
            var factor = new Long3(rng.Next(1, 4), rng.Next(1, 4), rng.Next(1, 4));
            var output = Downsample.OutputShape(shape, factor);
            int n = (int)shape.Volume;
            var u8 = RandomU8(n, trial); var u16 = RandomU16(n, trial); var u32 = RandomU32(n, trial); var f32 = RandomF32(n, trial);
            var labels = Random(n, trial, r => (ulong)r.Next(4));
            var wholeU8 = Mean(u8, shape, factor); var wholeU16 = Mean(u16, shape, factor); var wholeU32 = Mean(u32, shape, factor);
            var wholeF32 = Mean(f32, shape, factor); var wholeMode = ModeOf(labels, shape, factor);

            var written = new int[output.Volume];
            foreach (var box in RandomTiling(output, rng))
            {
                var input = Downsample.InputBox(box, factor, shape);
                string where = $"trial {trial} shape {shape} factor {factor} output box {box} input box {input}";
                Check(Crop(u8, shape, input), input.Size, factor, box, wholeU8, output, Mean, where + " uint8");
                Check(Crop(u16, shape, input), input.Size, factor, box, wholeU16, output, Mean, where + " uint16");
                Check(Crop(u32, shape, input), input.Size, factor, box, wholeU32, output, Mean, where + " uint32");
                Check(Crop(f32, shape, input), input.Size, factor, box, wholeF32, output, Mean, where + " float32");
                Check(Crop(labels, shape, input), input.Size, factor, box, wholeMode, output, ModeOf, where + " mode");
                foreach (long i in Indices(box, output)) written[i]++;
            }
            Assert.All(written, c => Assert.Equal(1, c));
        }
    }

    [Fact]
    public void A_pyramid_built_chunk_by_chunk_equals_one_built_whole()
    {
        var shape = new Long3(9, 37, 50);
        var plan = PyramidPlan.Create(shape, new VoxelSize(3, 1, 1), new Long3(4, 8, 8));
        Assert.True(plan.Count >= 4, $"the case should have several levels; it has {plan.Count}");
        var rng = new Random(5);
        ulong[] wholeLabels = Random((int)shape.Volume, 5, r => (ulong)r.Next(3)), chunkedLabels = wholeLabels;
        ushort[] wholeImage = RandomU16((int)shape.Volume, 6), chunkedImage = wholeImage;
        for (int k = 1; k < plan.Count; k++)
        {
            var (previous, level) = (plan[k - 1], plan[k]);
            wholeLabels = ModeOf(wholeLabels, previous.Shape, level.Factor);
            wholeImage = Mean(wholeImage, previous.Shape, level.Factor);
            var nextLabels = new ulong[level.Shape.Volume];
            var nextImage = new ushort[level.Shape.Volume];
            foreach (var box in RandomTiling(level.Shape, rng))
            {
                var input = plan.InputBox(k, box);
                var labels = ModeOf(Crop(chunkedLabels, previous.Shape, input), input.Size, level.Factor);
                var image = Mean(Crop(chunkedImage, previous.Shape, input), input.Size, level.Factor);
                int j = 0;
                foreach (long i in Indices(box, level.Shape)) { nextLabels[i] = labels[j]; nextImage[i] = image[j++]; }
            }
            (chunkedLabels, chunkedImage) = (nextLabels, nextImage);
            AssertSame(wholeLabels, chunkedLabels, $"labels level {k}");
            AssertSame(wholeImage, chunkedImage, $"image level {k}");
        }
    }

    private static void Check<T>(T[] input, Long3 inputShape, Long3 factor, Box3 box, T[] whole, Long3 wholeShape, Func<T[], Long3, Long3, T[]> run, string where)
    {
        var part = run(input, inputShape, factor);
        Assert.Equal(box.VoxelCount, part.Length);
        int j = 0;
        foreach (long i in Indices(box, wholeShape))
        {
            if (!EqualityComparer<T>.Default.Equals(whole[i], part[j]))
                Assert.Fail($"{where}: output voxel {j} of the box is {part[j]}, the whole volume has {whole[i]}");
            j++;
        }
    }

    [Fact]
    public void Vector_row_sums_equal_the_scalar_loop_at_every_length()
    {
        for (int n = 0; n <= 256; n++)
        {
            AccumulateMatches<ByteMeanOp, byte, uint>(RandomU8(n, n), (a, v) => a + v);
            AccumulateMatches<UInt16MeanOp, ushort, uint>(RandomU16(n, n), (a, v) => a + v);
            AccumulateMatches<UInt32MeanOp, uint, ulong>(RandomU32(n, n), (a, v) => a + v);
            AccumulateMatches<FloatMeanOp, float, double>(RandomF32(n, n), (a, v) => a + v);
        }
    }

    private static void AccumulateMatches<TOp, T, TAcc>(T[] row, Func<TAcc, T, TAcc> add)
        where TOp : struct, IMeanOp<T, TAcc> where T : unmanaged where TAcc : unmanaged, System.Numerics.IAdditionOperators<TAcc, TAcc, TAcc>
    {
        // Start from a non-zero sum (a second row) so the vector loads of the accumulator matter too; one spare slot
        // past the end must stay untouched.
        var acc = new TAcc[row.Length + 1];
        var expected = new TAcc[row.Length + 1];
        TOp.Accumulate(row, acc.AsSpan(0, row.Length));
        for (int i = 0; i < row.Length; i++) expected[i] = add(expected[i], row[i]);
        TOp.Accumulate(row, acc.AsSpan(0, row.Length));
        for (int i = 0; i < row.Length; i++) expected[i] = add(expected[i], row[i]);
        Assert.Equal(expected, acc);
    }

    [Fact]
    public void Bad_spans_and_factors_are_refused_with_the_sizes()
    {
        var e = Assert.Throws<ArgumentException>(() => Downsample.Mean(new byte[10], new Long3(1, 2, 6), new Long3(1, 2, 2), new byte[3]));
        Assert.Contains("shape 1x2x6 needs 12", e.Message);
        e = Assert.Throws<ArgumentException>(() => Downsample.Mean(new float[12], new Long3(1, 2, 6), new Long3(1, 2, 2), new float[2]));
        Assert.Contains("gives 1x1x3 = 3", e.Message);
        Assert.Throws<ArgumentException>(() => Downsample.Mode(new uint[12], new Long3(1, 2, 6), new Long3(0, 2, 2), new uint[3]));
        Assert.Throws<ArgumentException>(() => Downsample.Mode(new uint[12], new Long3(1, 2, 6), new Long3(1, 2, Downsample.MaxFactor + 1), new uint[3]));
        Assert.Throws<ArgumentException>(() => Downsample.InputBox(new Box3(new Long3(0, 0, 2), new Long3(1, 1, 2)), new Long3(1, 2, 2), new Long3(1, 2, 6)));
        Downsample.Mean(ReadOnlySpan<ushort>.Empty, new Long3(0, 4, 4), new Long3(2, 2, 2), Span<ushort>.Empty);   // empty is valid
    }

    private static IEnumerable<Box3> RandomTiling(Long3 shape, Random rng)
    {
        static long[] Cuts(long extent, Random rng)
        {
            var cuts = new SortedSet<long> { 0, extent };
            int count = rng.Next(0, 4);
            for (int i = 0; i < count && extent > 1; i++) cuts.Add(rng.NextInt64(1, extent));
            return [.. cuts];
        }
        long[] z = Cuts(shape.Z, rng), y = Cuts(shape.Y, rng), x = Cuts(shape.X, rng);
        for (int a = 0; a + 1 < z.Length; a++)
            for (int b = 0; b + 1 < y.Length; b++)
                for (int c = 0; c + 1 < x.Length; c++)
                    yield return Box3.FromBounds(new Long3(z[a], y[b], x[c]), new Long3(z[a + 1], y[b + 1], x[c + 1]));
    }

    private static IEnumerable<long> Indices(Box3 box, Long3 shape)
    {
        for (long z = box.Start.Z; z < box.End.Z; z++)
            for (long y = box.Start.Y; y < box.End.Y; y++)
                for (long x = box.Start.X; x < box.End.X; x++)
                    yield return (z * shape.Y + y) * shape.X + x;
    }

    private static T[] Crop<T>(T[] volume, Long3 shape, Box3 box)
    {
        var part = new T[box.VoxelCount];
        int j = 0;
        foreach (long i in Indices(box, shape)) part[j++] = volume[i];
        return part;
    }
}
