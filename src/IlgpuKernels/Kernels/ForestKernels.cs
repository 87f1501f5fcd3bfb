// Random-forest probabilities on the device: the twin of src/Kernels/Forest/ForestPredictor.cs (one vigra forest,
// ILASTIK_RECIPE.md §5) and IlastikClassifier.cs (ilastik's forest of forests, §6), bit for bit. One thread per voxel;
// per voxel, in exactly this order:
//
//     a NaN anywhere in the voxel's feature row           →  every output channel +0 (no tree is walked)
//     for each forest i (in the classifier's order):
//         prob[c] = 0f, total = 0.0
//         for each tree t of forest i, in order:  leaf = walk(t)
//             for c = 0 … C−1:  prob[c] = float32(prob[c] + vote_f[leaf + c])     vote_f = float32(w)
//                                total  = total + vote_d[leaf + c]                 double, class order
//         p[c] = prob[c] / float32(total)                                          correctly rounded float division
//         Combine = 0 (one RandomForest):  out[v·C + c] = p[c]
//         Combine = 1 (IlastikClassifier): sum[c] = float32(sum[c] + float32(p[c] × treeCount_i))
//     Combine = 1:  out[v·L + l] = 0 for every label channel l, then out[v·L + channel_of[c]] = sum[c] / float32(Σ trees)
//
// Tables (ForestTables, uploaded once), nodes 4 ints each, children absolute:
//
//     split:  ( feature ≥ 0 , threshold bits , left , right )     x < threshold → left, else right
//     leaf:   ( −1          , first vote     , 0    , 0     )     its C votes at vote[first … first + C)
//
// The threshold is DecisionTree.FloatThreshold(t), the smallest float32 ≥ the double t, so the float compare takes
// vigra's double decision for every x; NaN never reaches a compare (the row check), ±inf compare as ordered floats.
// Features are planar, feature f of voxel v at x[f·stride + v], so neighbouring threads read neighbouring floats.
// prob[] and sum[] live in a per-voxel scratch row (C floats each): kernels cannot size a local array by a run-time C.
using ChunkSeg.IlgpuKernels.Arithmetic;
using ILGPU;

namespace ChunkSeg.IlgpuKernels.Kernels;

/// <summary>One forest launch: voxels first … first + count − 1 of planes <see cref="Stride"/> apart, and where each table starts.</summary>
/// <param name="Roots">Offset of the tree roots in the int table (nodes start at 0).</param>
/// <param name="TreeFirst">Offset of each forest's first tree (Forests + 1 entries).</param>
/// <param name="ChannelOf">Offset of the class → output channel map.</param>
/// <param name="TreeWeight">Offset of each forest's tree count in the float table (votes start at 0).</param>
public readonly record struct ForestLaunch(long Stride, long First, int Features, int Forests, int Classes, int Labels, int Combine,
    float TotalTrees, int Roots, int TreeFirst, int ChannelOf, int TreeWeight, long OutputFirst);

public static class ForestKernels<TOps> where TOps : struct, IFloatOps<TOps>
{
    /// <param name="ints">Nodes, roots, each forest's first tree, class → channel (offsets in <paramref name="launch"/>).</param>
    /// <param name="floats">Votes as float32, then each forest's tree count.</param>
    /// <param name="votes">Votes as double.</param>
    /// <param name="scratch">2 · Classes floats per thread: prob[], then sum[].</param>
    public static void Predict(Index1D g, ArrayView<float> x, ArrayView<int> ints, ArrayView<float> floats, ArrayView<double> votes,
        ArrayView<float> scratch, ArrayView<float> output, ForestLaunch launch)
    {
        long v = launch.First + g.X;
        long o = (launch.OutputFirst + g.X) * launch.Labels;
        int classes = launch.Classes;
        long prob = (long)g.X * 2 * classes, sum = prob + classes;

        bool nan = false;
        for (int f = 0; f < launch.Features; f++)
        {
            float value = x[f * launch.Stride + v];
            nan |= float.IsNaN(value);
        }
        if (nan)
        {
            for (int l = 0; l < launch.Labels; l++) output[o + l] = 0f;
            return;
        }

        for (int c = 0; c < classes; c++) scratch[sum + c] = 0f;
        for (int i = 0; i < launch.Forests; i++)
        {
            for (int c = 0; c < classes; c++) scratch[prob + c] = 0f;
            double total = 0;
            int end = ints[launch.TreeFirst + i + 1];
            for (int t = ints[launch.TreeFirst + i]; t < end; t++)
            {
                int node = ints[launch.Roots + t];
                int feature = ints[4 * node];
                while (feature >= 0)
                {
                    float value = x[feature * launch.Stride + v];
                    float threshold = Interop.IntAsFloat((uint)ints[4 * node + 1]);
                    node = value < threshold ? ints[4 * node + 2] : ints[4 * node + 3];
                    feature = ints[4 * node];
                }
                int w = ints[4 * node + 1];
                for (int c = 0; c < classes; c++)
                {
                    scratch[prob + c] = TOps.Add(scratch[prob + c], floats[w + c]);
                    total = TOps.Add(total, votes[w + c]);
                }
            }
            float divisor = (float)total;
            if (launch.Combine == 0)
            {
                for (int c = 0; c < classes; c++) output[o + c] = scratch[prob + c] / divisor;
            }
            else
            {
                float trees = floats[launch.TreeWeight + i];
                for (int c = 0; c < classes; c++)
                    scratch[sum + c] = TOps.Add(scratch[sum + c], TOps.Multiply(scratch[prob + c] / divisor, trees));
            }
        }
        if (launch.Combine == 0) return;
        for (int l = 0; l < launch.Labels; l++) output[o + l] = 0f;
        for (int c = 0; c < classes; c++) output[o + ints[launch.ChannelOf + c]] = scratch[sum + c] / launch.TotalTrees;
    }
}
