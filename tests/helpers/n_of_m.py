"""N:M patterns in plain NumPy, the references of the N:M tests."""

import numpy as np


def reference_mask(weights, n, m):
    """The n largest |w| of each run of m along axis -2, one group at a time
    by a stable sort (of equal values, the lower position is kept)."""
    rows = np.moveaxis(np.abs(np.asarray(weights, np.float64)), -2, -1)
    mask = np.zeros(rows.shape)
    flat_rows = rows.reshape(-1, rows.shape[-1])
    flat_mask = mask.reshape(-1, rows.shape[-1])
    for row, row_mask in zip(flat_rows, flat_mask):
        for start in range(0, len(row), m):
            order = np.argsort(-row[start:start + m], kind='stable')
            row_mask[start + order[:n]] = 1
    return np.moveaxis(mask, -1, -2)


def group_counts(values, m, axis=-2):
    """Non-zeros of each run of m along `axis`, a shorter last run last.

    Returns:
      An int array [positions of the other axes, runs along `axis`].
    """
    rows = np.moveaxis(np.asarray(values) != 0, axis, -1)
    rows = rows.reshape(-1, rows.shape[-1]).astype(int)
    return np.add.reduceat(rows, np.arange(0, rows.shape[1], m), axis=1)
