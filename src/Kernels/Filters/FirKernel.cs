namespace ChunkSeg.Kernels.Filters;

/// <summary>
/// One 1D FIR kernel exactly as fastfilters builds it (<c>fastfilters_kernel_fir_gaussian</c>,
/// ILASTIK_RECIPE §3.3): the half-kernel taps <c>c[0..R]</c> stored as float32, every intermediate sum in
/// double. Orders 0 and 2 are applied symmetrically (<c>c[-k] = c[k]</c>); order 1 antisymmetrically
/// (<c>c[-k] = -c[k]</c>, <c>c[0] = 0</c>), with the sign chosen so that <c>Σ c[k]·(in[i+k] − in[i−k])</c>
/// is the derivative along increasing index (taps positive).
/// </summary>
/// <remarks>
/// <para>Radius <c>R = floor(w·σ + 0.5)</c>, with <c>w</c> rounded to float32 first (fastfilters takes
/// <c>float window_ratio</c>; 2.0 and 3.5 are exact either way), and <c>R = 0</c> when σ &lt; 1e-6.</para>
/// <para>Differences from fastfilters, all on inputs ilastik never produces: σ must be positive and finite
/// (fastfilters returns NaN taps for σ = 0), the window ratio must be positive (fastfilters then falls back
/// to <c>ceil((3 + order/2)·σ)</c>), and a derivative kernel needs R ≥ 1 (fastfilters divides 0 by 0).</para>
/// <para>vigra's <c>Kernel1D.initGaussianDerivative</c> gives the same taps up to float rounding, except
/// that vigra forces R ≥ 1 and stores the order-1 kernel with the opposite sign convention.</para>
/// </remarks>
public sealed class FirKernel
{
    private readonly float[] _taps;

    private FirKernel(int order, double sigma, float[] taps)
    {
        Order = order;
        Sigma = sigma;
        _taps = taps;
    }

    /// <summary>Derivative order: 0 (smoothing), 1 (gradient) or 2.</summary>
    public int Order { get; }

    /// <summary>Standard deviation in voxels.</summary>
    public double Sigma { get; }

    /// <summary>Half-width R: the kernel covers offsets −R..R.</summary>
    public int Radius => _taps.Length - 1;

    /// <summary>True for order 1: applied as <c>c[k]·(in[i+k] − in[i−k])</c>.</summary>
    public bool IsAntisymmetric => Order == 1;

    /// <summary>Taps <c>c[0..Radius]</c>; for order 1, <c>c[0] = 0</c>.</summary>
    public ReadOnlySpan<float> Taps => _taps;

    /// <summary>Builds the Gaussian (derivative) kernel of <paramref name="order"/> fastfilters builds.</summary>
    /// <param name="order">0, 1 or 2.</param>
    /// <param name="sigma">Standard deviation in voxels, positive and finite.</param>
    /// <param name="windowRatio">Radius in units of σ (ilastik: 2.0 for features, 3.5 for pre-smoothing).</param>
    public static FirKernel Gaussian(int order, double sigma, double windowRatio)
    {
        if (order is < 0 or > 2)
            throw new ArgumentOutOfRangeException(nameof(order), order, $"order must be 0, 1 or 2; got {order}.");
        if (!double.IsFinite(sigma) || sigma <= 0)
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma, $"sigma must be positive and finite; got {sigma}.");
        if (!double.IsFinite(windowRatio) || windowRatio <= 0)
            throw new ArgumentOutOfRangeException(nameof(windowRatio), windowRatio,
                $"windowRatio must be positive and finite; got {windowRatio}. ilastik uses 2.0 (features) and 3.5 (pre-smoothing).");

        // fastfilters: kernel->len = floor(window_ratio * sigma + 0.5) with a float window_ratio.
        double radius = Math.Floor((double)(float)windowRatio * sigma + 0.5);
        if (Math.Abs(sigma) < 1e-6) radius = 0;
        if (radius > int.MaxValue / 4)
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma, $"sigma {sigma} with window {windowRatio} gives an absurd radius {radius}.");
        int r = (int)radius;
        if (order > 0 && r == 0)
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma,
                $"an order-{order} kernel needs radius >= 1, but sigma {sigma} with window {windowRatio} gives radius 0 (fastfilters would return NaN taps).");

        var c = new float[r + 1];
        double sigma2 = -0.5 / sigma / sigma;                 // as written in fir_kernel.c: the rounding matters
        double norm = order == 0
            ? 1.0 / (Math.Sqrt(2.0 * Math.PI) * sigma)
            : -1.0 / (Math.Sqrt(2.0 * Math.PI) * Math.Pow(sigma, 3));

        for (int x = 0; x <= r; x++)
        {
            double xd = x;
            double g = norm * Math.Exp((double)((uint)x * (uint)x) * sigma2);
            c[x] = order switch
            {
                0 => (float)g,
                1 => (float)(xd * g),
                _ => (float)((1.0 - (xd / sigma) * (xd / sigma)) * g),
            };
        }

        if (order == 2)
        {
            // Remove the DC of the float taps (sum in double), storing each corrected tap as float again.
            double dc = c[0];
            for (int x = 1; x <= r; x++) dc += 2 * c[x];     // float doubling is exact, then widened
            dc /= 2.0 * r + 1.0;
            for (int x = 0; x <= r; x++) c[x] = (float)(c[x] - dc);
        }

        double sum;
        if (order == 0)
        {
            sum = c[0];
            for (int x = 1; x <= r; x++) sum += 2 * c[x];
        }
        else
        {
            // Moment normalisation, both halves added separately as fastfilters does (order! = 1 or 2).
            int sign = order == 1 ? -1 : 1;
            double faculty = order == 2 ? 2.0 : 1.0;
            sum = 0.0;
            for (int x = 1; x <= r; x++)
            {
                sum += c[x] * Math.Pow(-(double)x, order) / faculty;
                sum += sign * c[x] * Math.Pow(x, order) / faculty;
            }
        }

        for (int x = 0; x <= r; x++) c[x] = (float)(c[x] / sum);
        if (order == 1)
            for (int x = 0; x <= r; x++) c[x] = -c[x];

        return new FirKernel(order, sigma, c);
    }

    /// <inheritdoc/>
    public override string ToString() => $"FirKernel(order {Order}, sigma {Sigma}, radius {Radius})";
}
