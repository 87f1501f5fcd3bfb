"""Prints vigra's Gaussian (derivative) kernel taps, one line per request "order:sigma:window".

Output line: left right tap[left] ... tap[right] (vigra's Kernel1D, double, repr precision).
Uses Debian's python3-vigra 1.11.1: Kernel1D.initGaussian / initGaussianDerivative(sigma, order, 1.0, w).
"""
import sys
import vigra

for request in sys.argv[1:]:
    order, sigma, window = request.split(":")
    order, sigma, window = int(order), float(sigma), float(window)
    k = vigra.filters.Kernel1D()
    if order == 0:
        k.initGaussian(sigma, 1.0, window)
    else:
        k.initGaussianDerivative(sigma, order, 1.0, window)
    taps = [repr(k[i]) for i in range(k.left(), k.right() + 1)]
    print(k.left(), k.right(), " ".join(taps))
