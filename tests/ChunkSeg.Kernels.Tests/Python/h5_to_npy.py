#!/usr/bin/python3
"""Copies an HDF5 dataset (read with h5py) to a .npy file. Usage: h5_to_npy.py FILE.h5 DATASET OUT.npy"""
import sys
import h5py
import numpy as np

with h5py.File(sys.argv[1], "r") as f:
    np.save(sys.argv[3], f[sys.argv[2]][...])
