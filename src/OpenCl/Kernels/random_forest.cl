// Random-forest probabilities: the OpenCL twin of src/Kernels/Forest/ForestPredictor.cs (one vigra forest,
// ILASTIK_RECIPE.md §5) and IlastikClassifier.cs (ilastik's forest of forests, §6), bit for bit. One work item
// per voxel; per voxel, in exactly this order:
//
//     a NaN anywhere in the voxel's feature row           →  every output channel +0 (no tree is walked)
//     for each forest i (in the classifier's order):
//         prob[c] = 0f, total = 0.0
//         for each tree t of forest i, in order:  leaf = walk(t)
//             for c = 0 … C−1:  prob[c] = float32(prob[c] + vote_f[leaf + c])     vote_f = float32(w)
//                                total  = total + vote_d[leaf + c]                 double, class order
//         p[c] = prob[c] / float32(total)
//         COMBINE == 0 (one RandomForest):  out[v·C + c] = p[c]
//         COMBINE == 1 (IlastikClassifier): sum[c] = float32(sum[c] + float32(p[c] × treeCount_i))
//     COMBINE == 1:  out[v·L + l] = 0 for every label channel l, then out[v·L + channel_of[c]] = sum[c] / float32(Σ trees)
//
// Nodes, one int4 each (all trees of all forests in one array; children are absolute indices):
//
//     split:  ( feature ≥ 0 , as_int(threshold) , left , right )     x < threshold → left, else right
//     leaf:   ( −1          , first vote        , 0    , 0     )     its C votes at vote_f/vote_d[first … first + C)
//
// The threshold is DecisionTree.FloatThreshold(t), the smallest float32 ≥ the double t, so the float32 compare
// takes vigra's double decision (x promoted to double, strict <) for every x; NaN never reaches a compare (the
// row check above), ±inf compare as ordered floats.
//
// Features are planar: feature f of voxel v at x[f·stride + v] (stride = voxels per plane of the buffer), so
// neighbouring work items read neighbouring floats of the same plane (coalesced while their walks agree).
//
// Exactness: FP_CONTRACT is off (p × treeCount + sum must not fuse), the host builds with KernelSources.StrictOptions
// (no fast-math). The totals are double where the device has cl_khr_fp64 (every GPU ChunkSeg targets and PoCL);
// there the divisions are done in double and rounded once to float32, which equals float32's correctly rounded
// division (53 ≥ 2·24 + 2 bits: double rounding is innocuous for ÷), whereas OpenCL 1.2 lets a plain float `/`
// be 2.5 ulp off. Without fp64 the totals are float and `/` is the device's: close, not bit-identical
// (forest_total_is_double tells the host which).

#pragma OPENCL FP_CONTRACT OFF

#ifndef CLASSES
#error "build with -D CLASSES=<forest classes>"
#endif
#ifndef LABELS
#define LABELS CLASSES
#endif
#ifndef COMBINE
#define COMBINE 0
#endif

#if defined(cl_khr_fp64) && !defined(FLOAT_TOTALS)     // FLOAT_TOTALS: tests of the fallback on an fp64 device
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double total_t;
#define TOTAL_IS_DOUBLE 1
#define DIVIDE(a, b) ((float)((double)(a) / (double)(b)))
#else
typedef float total_t;
#define TOTAL_IS_DOUBLE 0
#define DIVIDE(a, b) ((a) / (b))
#endif

// 1 when this build accumulates totals in double (bit-identical to the CPU), else 0.
kernel void forest_total_is_double(global int* result)
{
    result[0] = TOTAL_IS_DOUBLE;
}

// Probabilities of voxels first … first + count − 1 of the feature buffer x (planes of `stride` voxels) into
// out[(out_first + g)·LABELS + channel], g = 0 … count − 1. Trees of forest i: tree_first[i] … tree_first[i + 1] − 1.
kernel void forest_predict(
    global const float* restrict x,
    const ulong stride,
    const ulong first,
    const int count,
    const int features,
    global const int4* restrict nodes,
    global const int* restrict roots,
    global const int* restrict tree_first,
    const int forests,
    global const float* restrict tree_weight,
    global const float* restrict vote_f,
    global const total_t* restrict vote_d,
    global const int* restrict channel_of,
    const float total_trees,
    global float* restrict out,
    const ulong out_first)
{
    const int g = (int)get_global_id(0);
    if (g >= count) return;
    global const float* xv = x + first + (ulong)g;
    global float* o = out + (out_first + (ulong)g) * LABELS;

    bool nan = false;
    for (int f = 0; f < features; f++)
        nan |= isnan(xv[(ulong)f * stride]);
    if (nan)
    {
        for (int l = 0; l < LABELS; l++) o[l] = 0.0f;
        return;
    }

#if COMBINE
    float sum[CLASSES];
    for (int c = 0; c < CLASSES; c++) sum[c] = 0.0f;
#endif
    for (int i = 0; i < forests; i++)
    {
        float prob[CLASSES];
        for (int c = 0; c < CLASSES; c++) prob[c] = 0.0f;
        total_t total = 0;
        const int end = tree_first[i + 1];
        for (int t = tree_first[i]; t < end; t++)
        {
            int4 node = nodes[roots[t]];
            while (node.x >= 0)
            {
                float value = xv[(ulong)node.x * stride];
                node = nodes[value < as_float(node.y) ? node.z : node.w];
            }
            const int w = node.y;
            for (int c = 0; c < CLASSES; c++)
            {
                prob[c] = prob[c] + vote_f[w + c];
                total = total + vote_d[w + c];
            }
        }
        const float divisor = (float)total;
#if COMBINE
        const float trees = tree_weight[i];
        for (int c = 0; c < CLASSES; c++)
        {
            float p = DIVIDE(prob[c], divisor);
            float weighted = p * trees;
            sum[c] = sum[c] + weighted;
        }
#else
        for (int c = 0; c < CLASSES; c++) o[c] = DIVIDE(prob[c], divisor);
#endif
    }
#if COMBINE
    for (int l = 0; l < LABELS; l++) o[l] = 0.0f;
    for (int c = 0; c < CLASSES; c++) o[channel_of[c]] = DIVIDE(sum[c], total_trees);
#endif
}
