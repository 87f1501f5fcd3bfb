using System.Reflection;
using ChunkSeg.IlgpuKernels.Arithmetic;
using ILGPU;
using ILGPU.Runtime;

namespace ChunkSeg.IlgpuKernels.Kernels;

/// <summary>
/// Every kernel, loaded on one accelerator as a launcher taking the stream first. The float operations are pinned by
/// the instantiation: <see cref="CudaFloatOps"/> on CUDA, <see cref="PortableFloatOps"/> elsewhere (see
/// <see cref="IFloatOps{TSelf}"/>). <see cref="EntryPoints"/> lists the same methods for the PTX test.
/// </summary>
internal sealed class DeviceKernels
{
    public required Action<AcceleratorStream, Index3D, ArrayView<float>, ArrayView<float>, ArrayView<float>, BoxPass> ConvolveBox { get; init; }
    public required Action<AcceleratorStream, Index3D, ArrayView<float>, ArrayView<float>, CropShape> Crop { get; init; }
    public required Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Add { get; init; }
    public required Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Subtract { get; init; }
    public required Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Multiply { get; init; }
    public required Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> Log3 { get; init; }
    public required Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Magnitude2 { get; init; }
    public required Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> Magnitude3 { get; init; }
    public required Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> Eigen2 { get; init; }
    public required Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
        ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> Eigen3 { get; init; }
    public required Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<double>, ArrayView<float>,
        ArrayView<float>, ForestLaunch> Forest { get; init; }
    public required Action<AcceleratorStream, Index3D, ArrayView<float>, ArrayView<byte>, CoreInReadBox, float> Threshold { get; init; }
    public required Action<AcceleratorStream, Index3D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, CoreInReadBox, int, int> ArgmaxUpdate { get; init; }
    public required Action<AcceleratorStream, Index3D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ClampPass> ClesperantoPass { get; init; }

    public static DeviceKernels Load(Accelerator accelerator) =>
        accelerator.AcceleratorType == AcceleratorType.Cuda ? Load<CudaFloatOps>(accelerator) : Load<PortableFloatOps>(accelerator);

    private static DeviceKernels Load<TOps>(Accelerator a) where TOps : struct, IFloatOps<TOps> => new()
    {
        ConvolveBox = a.LoadAutoGroupedKernel<Index3D, ArrayView<float>, ArrayView<float>, ArrayView<float>, BoxPass>(FeatureKernels<TOps>.ConvolveBox),
        Crop = a.LoadAutoGroupedKernel<Index3D, ArrayView<float>, ArrayView<float>, CropShape>(FeatureKernels<TOps>.Crop),
        Add = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(FeatureKernels<TOps>.Add),
        Subtract = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(FeatureKernels<TOps>.Subtract),
        Multiply = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(FeatureKernels<TOps>.Multiply),
        Log3 = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(FeatureKernels<TOps>.Log3),
        Magnitude2 = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(FeatureKernels<TOps>.Magnitude2),
        Magnitude3 = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(FeatureKernels<TOps>.Magnitude3),
        Eigen2 = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>(FeatureKernels<TOps>.Eigen2),
        Eigen3 = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>>(FeatureKernels<TOps>.Eigen3),
        Forest = a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<double>, ArrayView<float>, ArrayView<float>,
            ForestLaunch>(ForestKernels<TOps>.Predict),
        Threshold = a.LoadAutoGroupedKernel<Index3D, ArrayView<float>, ArrayView<byte>, CoreInReadBox, float>(SegmentationKernels.Threshold),
        ArgmaxUpdate = a.LoadAutoGroupedKernel<Index3D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, CoreInReadBox, int, int>(SegmentationKernels.ArgmaxUpdate),
        ClesperantoPass = a.LoadAutoGroupedKernel<Index3D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ClampPass>(SplitKernels<TOps>.ClesperantoPass),
    };

    /// <summary>Every kernel method as <see cref="Load"/> instantiates it for <typeparamref name="TOps"/>.</summary>
    public static IReadOnlyList<MethodInfo> EntryPoints<TOps>() where TOps : struct, IFloatOps<TOps> =>
        new[] { typeof(FeatureKernels<TOps>), typeof(ForestKernels<TOps>), typeof(SegmentationKernels), typeof(SplitKernels<TOps>) }
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static))
            .Where(m => m.GetParameters() is [{ ParameterType: var index }, ..] && (index == typeof(Index1D) || index == typeof(Index3D)))
            .ToList();
}
