"""The local image denoisers evaluated in multi-precision from their definitions:
the oracle for theory/local_scores.py and for numdiff.local.

Written with explicit index loops over patch centres and offsets (no shared code
with either float64 implementation). Every number is an ``mpmath.mpf`` at the
caller's ``mp.mp.prec`` / ``mp.mp.dps``; the inputs are float64, converted exactly.
``model`` is one of ``"ls"``, ``"els_valid"``, ``"els_circular"``, ``"boundary"``:
LS pads the query and training patches with zeros; ELS pads the query circularly,
with valid training patches (``"els_valid"``) or circularly padded ones
(``"els_circular"``); the boundary-aware ELS matches a pixel within ``k // 2`` of an
edge only with training patches at the same offset from it (docs/local_scores.md).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np


def patch(image, ci, cj, k, pad):
    """The ``k x k`` patch of ``image (H, W, C)`` centred at ``(ci, cj)``, flattened
    row-major with channels last; ``pad`` ``"wrap"`` (circular) or ``"zero"``."""
    h, w, c = image.shape
    r = k // 2
    out = []
    for u in range(-r, r + 1):
        for v in range(-r, r + 1):
            i, j = ci + u, cj + v
            if pad == "wrap":
                i, j = i % h, j % w
            inside = 0 <= i < h and 0 <= j < w
            out.extend(mp.mpf(image[i, j, ch]) if inside else mp.mpf(0) for ch in range(c))
    return out


def posterior_mean(q, keys, values, alpha, sigma2):
    """``sum_k w_k values_k`` with ``w_k`` proportional to ``exp(-|q - alpha key_k|^2 /
    (2 sigma2))``, shifted by the largest logit."""
    logits = [-sum((a - alpha * b) ** 2 for a, b in zip(q, key)) / (2 * sigma2) for key in keys]
    top = max(logits)
    weights = [mp.e ** (g - top) for g in logits]
    total = sum(weights)
    return [sum(wt * v[ch] for wt, v in zip(weights, values)) / total
            for ch in range(len(values[0]))]


def denoise(train, query, alpha, sigma2, k, model):
    """The denoised images ``(M, H, W, C)`` (rounded to float64) of ``query (M, H, W,
    C)`` under ``model`` with training images ``train (N, H, W, C)``."""
    h, w, c = train.shape[1:]
    r = k // 2
    alpha, sigma2 = mp.mpf(alpha), mp.mpf(sigma2)
    out = np.empty(query.shape)
    for i in range(h):
        for j in range(w):
            if model == "ls":
                centres = [(i, j)]
            elif model == "els_valid":
                centres = [(a, b) for a in range(r, h - r) for b in range(r, w - r)]
            elif model == "els_circular":
                centres = [(a, b) for a in range(h) for b in range(w)]
            else:  # boundary: near an edge keep the offset, else any interior centre
                rows = [i] if min(i, h - 1 - i) < r else list(range(r, h - r))
                cols = [j] if min(j, w - 1 - j) < r else list(range(r, w - r))
                centres = [(a, b) for a in rows for b in cols]
            key_pad = "wrap" if model == "els_circular" else "zero"
            query_pad = "wrap" if model.startswith("els") else "zero"
            keys = [patch(y, a, b, k, key_pad) for y in train for a, b in centres]
            values = [[mp.mpf(y[a, b, ch]) for ch in range(c)] for y in train for a, b in centres]
            for m, x in enumerate(query):
                out[m, i, j] = [float(v) for v in
                                posterior_mean(patch(x, i, j, k, query_pad), keys, values, alpha,
                                        sigma2)]
    return out
