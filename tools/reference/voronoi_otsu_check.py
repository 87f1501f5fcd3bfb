#!/usr/bin/python3
"""Self-checks of voronoi_otsu.py: its vectorised steps against literal per-voxel transcriptions of the OpenCL
loops (random tie-heavy images), the blur against scipy, and the synthetic 2D/3D cases of docs/voronoi-otsu.md.

Usage: voronoi_otsu_check.py   (prints what it checked; exits non-zero on a mismatch; a few seconds)
"""
import os
import itertools
import sys

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import voronoi_otsu as vo  # noqa: E402

F32 = np.float32
rng = np.random.default_rng(0)
# literal per-voxel simulation of detect_maxima kernel
def dm_literal(a):
    a=a.astype(F32); nd=a.ndim; out=np.zeros(a.shape,np.uint8)
    shp=a.shape
    for pos in itertools.product(*[range(n) for n in shp]):
        lm=F32(a[pos]-F32(1)); lmp=pos
        for oxyz in itertools.product((-1,0,1),repeat=nd):
            o=oxyz[::-1]
            q=tuple(p+d for p,d in zip(pos,o))
            if any(c<0 for c in q): continue
            qc=tuple(min(c,n-1) for c,n in zip(q,shp))
            v=a[qc]
            if v>lm: lm=v; lmp=q
        out[pos]= 1 if lmp==pos else 0
    return out
for nd,shape in ((2,(7,9)),(3,(4,5,6))):
    for t in range(30):
        a=rng.integers(0,3,size=shape).astype(F32)
        assert np.array_equal(dm_literal(a), vo.detect_maxima_box(a)), (nd,t)
print("detect_maxima vectorised == literal scan (60 random tie-heavy images)")

# literal CCL: pixel index, iterative nonzero-min box, relabel sequential
def ccl_literal(b):
    b=b!=0; shp=b.shape; nd=b.ndim
    if nd==2: D=1;H,W=shp
    else: D,H,W=shp
    idx=np.zeros(shp,F32)
    for pos in itertools.product(*[range(n) for n in shp]):
        if nd==2: z=0;y,x=pos
        else: z,y,x=pos
        if b[pos]: idx[pos]=F32(x*H*D+y*D+z+1)
    cur=idx
    while True:
        pos_=np.where(cur>0,cur,np.inf)
        m=ndi.minimum_filter(pos_,size=3,mode='nearest')
        new=np.where(cur!=0,np.minimum(cur,m),0).astype(F32)
        if np.array_equal(new,cur): break
        cur=new
    u=np.unique(cur[cur>0]); out=np.zeros(shp,F32)
    for i,v in enumerate(u): out[cur==v]=i+1
    return out
for shape in ((8,9),(4,6,7)):
    for t in range(20):
        b=rng.random(shape)<0.25
        assert np.array_equal(ccl_literal(b), vo.connected_components_box(b)),(shape,t)
print("connected_components_box == literal pixel-index/min/relabel simulation (40 images)")

# literal masked voronoi flooding
def mv_literal(binary,mask):
    m=mask.astype(F32); cur=(m-1+vo.connected_components_box(binary)).astype(F32)
    nd=m.ndim; shp=m.shape; it=0
    while True:
        new=cur.copy(); flag=False
        for pos in itertools.product(*[range(n) for n in shp]):
            if cur[pos]!=0: continue
            fm=F32(0)
            for o in itertools.product((-1,0,1),repeat=nd):
                if it%2==1 and sum(abs(x) for x in o)!=1: continue
                q=tuple(min(max(p+d,0),n-1) for p,d,n in zip(pos,o,shp))
                v=cur[q]
                if v>fm and v>0: fm=v
            if fm!=cur[pos]: flag=True
            new[pos]=fm
        cur=new; it+=1
        if not flag: break
    return np.where(m!=0,cur,0), it
for shape in ((9,11),(5,6,7)):
    for t in range(15):
        mask=rng.random(shape)<0.7
        seeds=(rng.random(shape)<0.08)&mask
        a,ia=mv_literal(seeds,mask); b,ib=vo.masked_voronoi_labeling(seeds,mask)
        assert ia==ib and np.array_equal(a,b),(shape,t)
# diagonal-only connection: flooding stops early
mask=np.zeros((5,5),bool); mask[0,0]=mask[1,1]=mask[2,2]=mask[3,3]=True
seed=np.zeros_like(mask); seed[0,0]=True
lab,it=vo.masked_voronoi_labeling(seed,mask)
print("masked_voronoi vectorised == literal kernel loop (30 random images); diagonal chain:", lab[np.arange(4),np.arange(4)], "iterations", it)

# gaussian vs scipy (not bit-exact by design; same taps & clamp)
a=rng.random((20,30,40)).astype(F32)*1000
for s in (0.5,1,2,3):
    c=(vo.sigma_to_kernel_size(s)-1)//2
    ref=ndi.gaussian_filter(a.astype(np.float64),s,mode='nearest',truncate=c/s)
    g=vo.gaussian_blur(a,s); gf=vo.gaussian_blur(a,s,fma=True)
    print(f"sigma {s}: N={vo.sigma_to_kernel_size(s)} r={c}; max |cle32 - scipy64| = {np.abs(g-ref).max():.3g}; voxels where fma differs: {(g!=gf).sum()} of {g.size}")
# otsu vs skimage
from skimage.filters import threshold_otsu
b=vo.gaussian_blur(a,2)
t,_=vo.threshold_otsu(b); print("otsu cle-style", t, "skimage", threshold_otsu(b))

# synthetic cases quoted in docs/voronoi-otsu.md
yy, xx = np.mgrid[0:40, 0:60].astype(np.float64)
img2 = (1000 * np.exp(-((yy - 20) ** 2 + (xx - 22) ** 2) / 50) + 1000 * np.exp(-((yy - 20) ** 2 + (xx - 36) ** 2) / 50)).astype(F32)
info = {}
lab = vo.voronoi_otsu_labeling(img2, 2, 1, info=info)
print("2D two touching gaussians, spot 2 outline 1:", info, "sizes", np.bincount(lab.ravel())[1:].tolist())
assert lab.max() == 2 and lab[20, 22] == 1 and lab[20, 36] == 2
zz, yy, xx = np.mgrid[0:32, 0:40, 0:48].astype(np.float64)
cs = [(16, 20, 14), (16, 20, 26), (16, 10, 36), (8, 30, 30)]
img3 = sum(800 * np.exp(-((zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2) / 32.0) for z, y, x in cs)
img3 = (img3 + np.random.default_rng(1).normal(0, 5, img3.shape)).astype(F32)
for outline, trim in ((1, False), (2, False), (2, True)):
    info = {}
    lab3 = vo.voronoi_otsu_labeling(img3, 3, outline, otsu_trim=trim, info=info)
    print(f"3D four blobs, spot 3 outline {outline} otsu_trim {trim}:", info, "labels at centres",
          [int(lab3[c]) for c in cs])
print("all checks passed")
