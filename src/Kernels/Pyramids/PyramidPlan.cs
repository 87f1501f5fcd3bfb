// The level plan of a multiscale pyramid: which axes each level halves, the shape of every level, and its OME-NGFF
// coordinate transformations (the "scale", its physical voxel size, and the "translation" of its voxel centres).
//
// Each level halves some axes of the level before it (factor 2) and keeps the others (factor 1); its shape is the
// previous shape divided by the factor, rounded up, so a ragged last block still has an output voxel:
//
//      level 0   z 16 · 4 µm   y 1000 · 1 µm   x 999 · 1 µm     spacing 4, 1, 1   smallest 1: halve y and x
//      level 1   z 16 · 4 µm   y  500 · 2 µm   x 500 · 2 µm     spacing 4, 2, 2   smallest 2: 4 < 4 fails, halve y, x
//      level 2   z 16 · 4 µm   y  250 · 4 µm   x 250 · 4 µm     spacing 4, 4, 4   isotropic now: halve all three
//      level 3   z  8 · 8 µm   y  125 · 8 µm   x 125 · 8 µm     ...
//
// Anisotropy rule. An axis is halved when its current spacing is below twice the smallest current spacing, so a
// light-sheet z-step of 4 µm over 1 µm pixels gets y and x halved twice before z is touched, and a nearly isotropic
// volume (spacings within a factor 2) halves every axis at once. An axis of extent 1 is never halved (it has nothing
// to average), and the smallest spacing is taken over the axes that can still be halved: a 2D image (z extent 1)
// whose z "spacing" is a nominal 1 µm under 0.1 µm pixels would otherwise never halve at all, nor would a volume whose
// finest axis is already down to one voxel. The finest halvable axis always passes its own test, so every level
// halves at least one axis until all extents are 1; the plan can therefore always end.
//
// How many levels. "--levels N" asks for N levels in all, level 0 (full resolution) included, so N = 1 is no
// pyramid; asking for more levels than the volume has (all extents 1 earlier) is an error naming the most it can
// have. Auto adds levels until the coarsest one fits in a single storage chunk on every axis (a viewer's first read
// is one chunk); a volume that already fits gets level 0 alone.
//
// Coordinates. Spacings are the level-0 voxel size times the cumulative factor c, a power of two, so they are exact
// in double and the comparisons above are exact too. Each level gets an NGFF "scale" (its voxel size) and a
// "translation" under the pixel-centre convention: NGFF coordinates name voxel centres, and the centre of a block of
// c level-0 voxels lies (c − 1) / 2 voxels past the centre of its first one:
//
//      level 0    |  o  |  o  |  o  |  o  |        translation 0
//      level 1    |     o     |     o     |        (2 − 1) / 2 · s₀ = 0.5 s₀
//      level 2    |           o           |        (4 − 1) / 2 · s₀ = 1.5 s₀
//
// so translation[k] = (c − 1) / 2 × s₀ = (scale[k] − scale[0]) / 2, relative to level 0's own origin (a writer adds
// any level-0 translation). This is what the NGFF spec's multiscales examples show since ome/ngff-spec#125 (level-0
// scale 0.5, level-1 scale 1: translation 0.25) and what ome-zarr-py writes since ome/ome-zarr-py#590 (fixing #403:
// "the most common methods of image downsampling result in a translation"); Fiji's n5-ij does the same for its
// averaging downsampler. Older ome-zarr-py wrote scale only (a corner convention that puts coarse levels half a
// coarse voxel off in a centre-convention viewer); the translation matters for the mean, and equally for the mode,
// which also summarises the whole block rather than picking its first voxel.
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Volumes;

namespace ChunkSeg.Kernels.Pyramids;

/// <summary>
/// One level of a <see cref="PyramidPlan"/>. <see cref="Factor"/> is relative to the previous level (1 or 2 per
/// axis; 1,1,1 for level 0); <see cref="CumulativeFactor"/> is relative to level 0. <see cref="Scale"/> and
/// <see cref="Translation"/> (z, y, x, in the voxel size's unit) are the level's NGFF coordinate transformations,
/// the translation relative to level 0's origin under the pixel-centre convention (see the file header).
/// </summary>
public sealed record PyramidLevel(int Index, Long3 Shape, Long3 Factor, Long3 CumulativeFactor, VoxelSize Scale, (double Z, double Y, double X) Translation);

/// <summary>
/// The levels of a multiscale pyramid over a (z, y, x) volume: each level halves the axes whose spacing is below
/// twice the finest (never an axis of extent 1), shapes rounded up; see the file header for the rules.
/// </summary>
public sealed class PyramidPlan
{
    private readonly PyramidLevel[] _levels;

    private PyramidPlan(PyramidLevel[] levels, Long3 chunkShape)
    {
        _levels = levels;
        ChunkShape = chunkShape;
    }

    /// <summary>The levels, level 0 (full resolution) first.</summary>
    public IReadOnlyList<PyramidLevel> Levels => _levels;

    public int Count => _levels.Length;

    public PyramidLevel this[int level] => _levels[level];

    /// <summary>The storage chunk shape the plan was made for (auto stops when a level fits in one).</summary>
    public Long3 ChunkShape { get; }

    /// <summary>
    /// Plans <paramref name="levels"/> levels in all (level 0 included), or with null as many as it takes for the
    /// coarsest level to fit in one chunk of <paramref name="chunkShape"/>.
    /// </summary>
    public static PyramidPlan Create(Long3 shape, VoxelSize voxelSize, Long3 chunkShape, int? levels = null)
    {
        ArgumentNullException.ThrowIfNull(voxelSize);
        if (shape.Z <= 0 || shape.Y <= 0 || shape.X <= 0)
            throw new ArgumentException($"volume shape {shape} must be positive on every axis", nameof(shape));
        if (chunkShape.Z <= 0 || chunkShape.Y <= 0 || chunkShape.X <= 0)
            throw new ArgumentException($"chunk shape {chunkShape} must be positive on every axis", nameof(chunkShape));
        foreach (double s in (double[])[voxelSize.Z, voxelSize.Y, voxelSize.X])
            if (!(s > 0) || double.IsInfinity(s))
                throw new ArgumentException($"voxel size {voxelSize} must be positive and finite on every axis", nameof(voxelSize));
        if (levels is < 1)
            throw new ArgumentOutOfRangeException(nameof(levels), levels, "levels counts level 0 too, so it must be at least 1 (1 = no pyramid); leave it unset for auto");

        var list = new List<PyramidLevel> { new(0, shape, Long3.Uniform(1), Long3.Uniform(1), voxelSize, (0, 0, 0)) };
        while (levels is { } n ? list.Count < n : !FitsOneChunk(list[^1].Shape, chunkShape))
        {
            var previous = list[^1];
            var factor = NextFactor(previous.Shape, previous.Scale);
            if (factor == Long3.Uniform(1))
                throw new ArgumentOutOfRangeException(nameof(levels), levels,
                    $"a {shape} volume has at most {list.Count} pyramid levels (level {list.Count - 1} is one voxel); got {levels}");
            var cumulative = new Long3(previous.CumulativeFactor.Z * factor.Z, previous.CumulativeFactor.Y * factor.Y, previous.CumulativeFactor.X * factor.X);
            list.Add(new PyramidLevel(list.Count, Downsample.OutputShape(previous.Shape, factor), factor, cumulative,
                voxelSize with { Z = voxelSize.Z * cumulative.Z, Y = voxelSize.Y * cumulative.Y, X = voxelSize.X * cumulative.X },
                ((cumulative.Z - 1) * 0.5 * voxelSize.Z, (cumulative.Y - 1) * 0.5 * voxelSize.Y, (cumulative.X - 1) * 0.5 * voxelSize.X)));
        }
        return new PyramidPlan([.. list], chunkShape);
    }

    /// <summary>
    /// The box of level <paramref name="level"/> − 1 that level <paramref name="level"/>'s <paramref name="outputBox"/>
    /// is computed from (see <see cref="Downsample.InputBox"/>).
    /// </summary>
    public Box3 InputBox(int level, Box3 outputBox)
    {
        if (level < 1 || level >= _levels.Length)
            throw new ArgumentOutOfRangeException(nameof(level), level, $"level must be 1..{_levels.Length - 1} (level 0 is the input itself)");
        return Downsample.InputBox(outputBox, _levels[level].Factor, _levels[level - 1].Shape);
    }

    private static bool FitsOneChunk(Long3 shape, Long3 chunk) => shape.Z <= chunk.Z && shape.Y <= chunk.Y && shape.X <= chunk.X;

    /// <summary>2 on the axes of extent above 1 whose spacing is below twice the finest such spacing; 1 elsewhere.</summary>
    private static Long3 NextFactor(Long3 shape, VoxelSize spacing)
    {
        double finest = double.PositiveInfinity;
        for (int a = 0; a < 3; a++)
            if (shape[a] > 1) finest = Math.Min(finest, Spacing(spacing, a));
        long F(int a) => shape[a] > 1 && Spacing(spacing, a) < 2 * finest ? 2 : 1;
        return new Long3(F(0), F(1), F(2));
    }

    private static double Spacing(VoxelSize s, int axis) => axis switch { 0 => s.Z, 1 => s.Y, _ => s.X };
}
