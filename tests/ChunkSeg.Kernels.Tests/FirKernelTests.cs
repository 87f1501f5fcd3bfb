using System.Globalization;
using ChunkSeg.Kernels.Filters;

namespace ChunkSeg.Kernels.Tests;

public class FirKernelTests
{
    private static readonly double[] IlastikSigmas = [0.3, 0.7, 1.0, 1.6, 3.5, 5.0, 10.0];

    [Fact]
    public void Taps_match_vigra_up_to_float_rounding()
    {
        var requests = new List<(int Order, double Sigma, double Window)>();
        foreach (double w in new[] { 2.0, 3.5 })
            foreach (double s in IlastikSigmas)
                for (int order = 0; order <= 2; order++)
                    requests.Add((order, s, w));

        string[] lines = PythonReference.Run("vigra_kernels.py",
                [.. requests.Select(q => FormattableString.Invariant($"{q.Order}:{q.Sigma:R}:{q.Window:R}"))])
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(requests.Count, lines.Length);

        for (int q = 0; q < requests.Count; q++)
        {
            var (order, sigma, window) = requests[q];
            string[] fields = lines[q].Split(' ');
            int left = int.Parse(fields[0], CultureInfo.InvariantCulture), right = int.Parse(fields[1], CultureInfo.InvariantCulture);
            double[] vigra = [.. fields.Skip(2).Select(f => double.Parse(f, CultureInfo.InvariantCulture))];
            var kernel = FirKernel.Gaussian(order, sigma, window);
            string what = $"order {order}, sigma {sigma}, window {window}";

            // Same radius (vigra forces R >= 1; the ilastik scales never give R = 0 here).
            Assert.True(right == kernel.Radius && left == -kernel.Radius, $"{what}: vigra radius {right}, ours {kernel.Radius}");
            double scale = vigra.Max(Math.Abs);
            for (int x = 0; x <= kernel.Radius; x++)
            {
                // vigra convolves out[i] = Σ k[m]·in[i−m], so our c[x] (weight of in[i+x]) is vigra's k[−x].
                // For order 1 that makes k[−x] = +c[x]: the same derivative, mirrored storage.
                double expected = vigra[-x - left];
                double got = kernel.Taps[x];
                Assert.True(Math.Abs(got - expected) <= 1e-6 * scale,
                    $"{what}: tap {x} = {got:R}, vigra {expected:R} (tolerance {1e-6 * scale:R})");
            }
        }
    }

    [Theory]
    [InlineData(2.0)]
    [InlineData(3.5)]
    public void Normalisations_hold(double window)
    {
        foreach (double sigma in IlastikSigmas)
        {
            var g = FirKernel.Gaussian(0, sigma, window).Taps;
            double sum0 = g[0];
            for (int k = 1; k < g.Length; k++) sum0 += 2.0 * g[k];
            Assert.True(Math.Abs(sum0 - 1) < 1e-6, $"order 0 sigma {sigma}: taps sum to {sum0:R}");

            var d = FirKernel.Gaussian(1, sigma, window).Taps;
            Assert.Equal(0f, d[0]);
            double moment1 = 0;
            for (int k = 1; k < d.Length; k++) { moment1 += 2.0 * k * d[k]; Assert.True(d[k] > 0, $"order 1 sigma {sigma}: tap {k} = {d[k]}"); }
            Assert.True(Math.Abs(moment1 - 1) < 1e-6, $"order 1 sigma {sigma}: Σ 2k·c[k] = {moment1:R}");

            var h = FirKernel.Gaussian(2, sigma, window).Taps;
            double dc = h[0], moment2 = 0;
            for (int k = 1; k < h.Length; k++) { dc += 2.0 * h[k]; moment2 += (double)k * k * h[k]; }
            Assert.True(Math.Abs(dc) < 1e-6, $"order 2 sigma {sigma}: DC {dc:R}");
            Assert.True(Math.Abs(moment2 - 1) < 1e-6, $"order 2 sigma {sigma}: Σ k²·c[k] = {moment2:R}");
        }
    }

    [Theory]
    [InlineData(0.3, 2.0, 1)]     // floor(0.6 + 0.5)
    [InlineData(0.7, 2.0, 1)]     // floor(1.4 + 0.5)
    [InlineData(1.0, 2.0, 2)]
    [InlineData(9.95, 3.5, 35)]   // pre-smoothing for scale 10: sqrt(10² − 1)
    [InlineData(0.2, 2.0, 0)]     // fastfilters allows R = 0: the identity
    [InlineData(5e-7, 3.5, 0)]    // sigma < 1e-6 forces R = 0
    public void Radius_follows_fastfilters(double sigma, double window, int radius)
    {
        var k = FirKernel.Gaussian(0, sigma, window);
        Assert.Equal(radius, k.Radius);
        if (radius == 0) Assert.Equal(1f, k.Taps[0]);
    }

    [Fact]
    public void Antisymmetric_centre_tap_is_positive_zero_as_in_fastfilters()
    {
        // fastfilters: c[0] = 0·g with g < 0 gives −0, divided by the positive moment stays −0, and the
        // final negation makes it +0. So acc starts as +0·in[i], whose sign follows in[i].
        Assert.Equal(0, BitConverter.SingleToInt32Bits(FirKernel.Gaussian(1, 1.6, 2.0).Taps[0]));
    }

    [Theory]
    [InlineData(3, 1.0, 2.0, "order")]
    [InlineData(-1, 1.0, 2.0, "order")]
    [InlineData(0, 0.0, 2.0, "sigma")]
    [InlineData(0, double.NaN, 2.0, "sigma")]
    [InlineData(0, 1.0, 0.0, "windowRatio")]
    [InlineData(1, 0.2, 2.0, "sigma")]    // a derivative with radius 0
    public void Invalid_arguments_are_refused(int order, double sigma, double window, string parameter)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => FirKernel.Gaussian(order, sigma, window));
        Assert.Equal(parameter, e.ParamName);
    }
}
