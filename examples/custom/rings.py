"""Data of your own for trainlab: a function returning (train, val, test).

Each split may be an (X, y) pair of NumPy arrays or tensors, a torch Dataset or a DataLoader;
integer targets are class labels. The config's `[data] args` are its keyword arguments.
"""

import numpy as np


def rings(n=1500, classes=3, noise=0.08, seed=0):
    """Points on `classes` concentric rings in 2-D (radius 1, 2, ...) with Gaussian noise;
    the class is the ring. 60% train, 20% validation, 20% test."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    angle = rng.uniform(0.0, 2.0 * np.pi, n)
    radius = (1.0 + y) / classes + rng.normal(0.0, noise, n)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).astype(np.float32)
    order = rng.permutation(n)
    x, y = x[order], y[order]
    a, b = int(0.6 * n), int(0.8 * n)
    return (x[:a], y[:a]), (x[a:b], y[a:b]), (x[b:], y[b:])
