"""Separable Gaussian (derivative) convolution of a raw float32 volume with vigra (double kernels).

Usage: vigra_convolve.py in.raw sz sy sx sigma window order_z order_y order_x out.raw
Kernels: Kernel1D.initGaussian / initGaussianDerivative(sigma, order, 1.0, window), border REFLECT
(reflect-101). The array is C-ordered (sz, sy, sx); kernel i is applied along array axis i.
"""
import sys
import numpy as np
import vigra

src, sz, sy, sx, sigma, window, oz, oy, ox, dst = sys.argv[1:]
shape = (int(sz), int(sy), int(sx))
data = np.fromfile(src, dtype=np.float32).reshape(shape)
kernels = []
for order in (int(oz), int(oy), int(ox)):
    k = vigra.filters.Kernel1D()
    if order == 0:
        k.initGaussian(float(sigma), 1.0, float(window))
    else:
        k.initGaussianDerivative(float(sigma), order, 1.0, float(window))
    k.setBorderTreatment(vigra.filters.BorderTreatmentMode.BORDER_TREATMENT_REFLECT)
    kernels.append(k)
# A plain ndarray carries no axistags, so vigra keeps numpy's axis order: kernel i runs along axis i.
out = vigra.filters.convolve(data, tuple(kernels))
np.ascontiguousarray(np.asarray(out), dtype=np.float32).tofile(dst)
