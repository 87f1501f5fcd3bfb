using System.Runtime.InteropServices;
using ChunkSeg.Contracts.Volumes;
using ChunkSeg.Kernels.Labeling;

namespace ChunkSeg.Kernels.Tests.Labeling;

/// <summary>The block labeller against scipy.ndimage.label and scikit-image's label, numbering included.</summary>
public sealed class ConnectedComponentsTests
{
    /// <summary>Random binary blocks: sparse, near the percolation threshold of both connectivities, and dense.</summary>
    public static TheoryData<int> Connectivities => new() { 6, 26 };

    [Theory]
    [MemberData(nameof(Connectivities))]
    public void Random_blocks_equal_scipy_label(int connectivity)
    {
        using var dir = new TempDir();
        var cases = new List<(byte[] Mask, int Sz, int Sy, int Sx, string Expected)>();
        var list = new List<string>();
        int n = 0;
        foreach (var (sz, sy, sx) in new[] { (17, 23, 29), (1, 64, 80), (5, 1, 40), (9, 31, 1), (32, 32, 32) })
        foreach (double density in new[] { 0.05, 0.2, 0.31, 0.5, 0.8 })
        {
            var mask = RandomMask(sz * sy * sx, density, seed: n);
            string input = dir[$"in{n}.npy"], expected = dir[$"out{n}.npy"];
            long[] shape = sz == 1 ? [sy, sx] : [sz, sy, sx];
            NpyFile.Write(input, DataType.UInt8, shape, mask);
            list.Add($"{input} {expected}");
            cases.Add((mask, sz, sy, sx, expected));
            n++;
        }
        File.WriteAllLines(dir["list.txt"], list);
        PythonReference.Run("label_reference.py", "batch", dir["list.txt"], connectivity == 6 ? "1" : "3");

        foreach (var (mask, sz, sy, sx, expected) in cases)
        {
            using var runs = ConnectedComponents.Label<byte>(mask, sz, sy, sx, (Connectivity)connectivity);
            var labels = new uint[mask.Length];
            runs.WriteLabels(labels);
            var reference = NpyFile.Read(expected);
            TestArrays.AssertEqual(DataType.UInt32, reference.Data, MemoryMarshal.AsBytes(labels.AsSpan()), [sz, sy, sx],
                $"{connectivity}-connected {sz}x{sy}x{sx}");
            Assert.Equal((int)labels.DefaultIfEmpty().Max(), runs.Components);
        }
    }

    [Theory]
    [MemberData(nameof(Connectivities))]
    public void Label_images_keep_touching_labels_apart_as_scikit_image(int connectivity)
    {
        using var dir = new TempDir();
        const int sz = 12, sy = 20, sx = 24;
        var rng = new Random(7);
        var values = new ushort[sz * sy * sx];
        for (int i = 0; i < values.Length; i++) values[i] = (ushort)(rng.NextDouble() < 0.3 ? 0 : rng.Next(1, 4));
        NpyFile.Write(dir["in.npy"], DataType.UInt16, [sz, sy, sx], MemoryMarshal.AsBytes(values.AsSpan()));
        PythonReference.Run("label_reference.py", "label", dir["in.npy"], dir.Path, connectivity == 6 ? "1" : "3", "--multilabel");

        using var runs = ConnectedComponents.Label<ushort>(values, sz, sy, sx, (Connectivity)connectivity);
        var labels = new uint[values.Length];
        runs.WriteLabels(labels);
        TestArrays.AssertEqual(DataType.UInt32, NpyFile.Read(dir["labels.npy"]).Data, MemoryMarshal.AsBytes(labels.AsSpan()), [sz, sy, sx], "multilabel");
    }

    [Fact]
    public void Components_are_numbered_by_first_voxel_and_joined_through_later_rows()
    {
        // A U whose arms start before the second object but only meet in the last row.
        byte[] mask =
        [
            1, 0, 1, 0, 1,
            1, 0, 1, 0, 0,
            1, 1, 1, 0, 1,
        ];
        using var runs = ConnectedComponents.Label<byte>(mask, 1, 3, 5, Connectivity.Faces);
        var labels = new uint[mask.Length];
        runs.WriteLabels(labels);
        Assert.Equal(new uint[] { 1, 0, 1, 0, 2, 1, 0, 1, 0, 0, 1, 1, 1, 0, 3 }, labels);
        Assert.Equal(3, runs.Components);
    }

    [Fact]
    public void Diagonal_neighbours_join_only_under_full_connectivity()
    {
        byte[] mask = [1, 0, 0, 1];                         // 2x2 image, a diagonal pair
        using var faces = ConnectedComponents.Label<byte>(mask, 1, 2, 2, Connectivity.Faces);
        using var all = ConnectedComponents.Label<byte>(mask, 1, 2, 2, Connectivity.All);
        Assert.Equal(2, faces.Components);
        Assert.Equal(1, all.Components);
    }

    [Fact]
    public void Bad_arguments_are_refused_with_the_reason()
    {
        var e = Assert.Throws<ArgumentException>(() => ConnectedComponents.Label<byte>(new byte[7], 2, 2, 2, Connectivity.Faces));
        Assert.Contains("needs 8", e.Message);
        e = Assert.Throws<ArgumentException>(() => ConnectedComponents.Label<byte>(new byte[8], 2, 2, 2, (Connectivity)18));
        Assert.Contains("18", e.Message);
    }

    internal static byte[] RandomMask(int count, double density, int seed)
    {
        var rng = new Random(seed);
        var mask = new byte[count];
        for (int i = 0; i < count; i++) mask[i] = rng.NextDouble() < density ? (byte)1 : (byte)0;
        return mask;
    }
}
