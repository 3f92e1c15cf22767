"""The pruned plan's pieces on their own, against independent numpy oracles.

* :func:`numdiff.pruned.bounds.sort_by_key` against Python's ``sorted`` by
  ``(key, item)`` (hypothesis: ties, repeated keys, ``n`` from 0).
* The kept leaves of :func:`numdiff.pruned.plan.plan_query` come out in increasing
  order without duplicates (the merge reads them as runs of consecutive points),
  and they are the leaves the certificate needs: the exact weights (numpy, from the
  distances) of the points in the skipped leaves sum to at most ``2^-60`` of those
  in the kept ones, and the nearest point's leaf is kept.
* The running-maximum merge, compiled only when a call needs it (a logit above
  ``LOGIT_CAP``, here ``sigma2 = 1e-300``): its pass runs, takes the queries, and
  gives the nearest data point as the denoiser, exactly.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numdiff as nd
from numdiff.pruned import dispatch
from numdiff.pruned.bounds import SKIP_MASS, sort_by_key
from numdiff.pruned.plan import REJECTED, plan_query, plan_scratch

# The module, not the function numdiff.pruned.moments that its package exports.
moments = importlib.import_module("numdiff.pruned.moments")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([-np.inf, -3.0, -1.0, -1.0, 0.0, 0.5, 2.0]), max_size=40),
    st.integers(0, 2**32 - 1),
)
def test_sort_by_key_matches_sorted(keys, seed):
    key = np.array(keys + [7.0])  # one spare entry: items past n stay untouched
    n = len(keys)
    items = np.random.default_rng(seed).permutation(len(key)).astype(np.int64)
    items = np.concatenate([items[items != n], [n]])
    want = sorted(items[:n].tolist(), key=lambda i: (key[i], i))
    sort_by_key(items, n, key)
    assert items[:n].tolist() == want
    assert items[n] == n


def _plans(data, t, x, leaf_size):
    """Per query: the kept leaves of plan_query and the exact normalised weights."""
    f = nd.EmpiricalScore(data, nd.OU())
    x, alpha, sigma2 = f._prepare(t, x)
    index = dispatch.index_of(f, leaf_size)
    scale, _, k_s, _, _ = dispatch._coefficients(f.keys, x, alpha, sigma2)
    first = index.leaf_of(x / alpha[:, None])
    tree, levels = dispatch._tree(index)
    scratch = plan_scratch(data.shape[1], index.n_leaves, 64)
    for m in range(x.shape[0]):
        s = scale[m]
        ref, n_kept, kept_points, _ = plan_query(
            x[m] * s, alpha[m] * s, k_s[m], first[m], tree, levels, np.inf, scratch
        )
        assert ref != REJECTED
        kept = scratch[4][:n_kept].copy()
        dist2 = np.sum((x[m] - alpha[m] * index.points) ** 2, axis=1)
        logit = -(dist2 - dist2.min()) / (2.0 * sigma2[m])
        yield index, ref, kept, kept_points, np.exp(logit), dist2


@pytest.mark.parametrize("sigma2", [3e-4, 3e-3, 1e-2])
def test_kept_leaves_increasing_and_certified(sigma2):
    """Many leaves; at these noise levels the walk keeps whole subtrees and lists
    boundary leaves, some kept and some skipped: both lists are merged."""
    rng = np.random.default_rng(11)
    data = rng.uniform(-1.0, 1.0, (20000, 2))
    t = -0.5 * np.log1p(-sigma2)
    x = np.sqrt(1.0 - sigma2) * data[rng.integers(len(data), size=40)]
    x += np.sqrt(sigma2) * rng.standard_normal(x.shape)
    n_leaf_kept = []
    for index, ref, kept, kept_points, weight, dist2 in _plans(data, t, x, 16):
        assert np.all(np.diff(kept) > 0), kept
        assert kept_points == index.leaf_weight[kept].sum()
        in_kept = np.zeros(len(weight), dtype=bool)
        for leaf in kept:
            in_kept[index.leaf_start[leaf] : index.leaf_start[leaf + 1]] = True
        assert in_kept[ref] and dist2[ref] == dist2.min()
        assert weight[~in_kept].sum() <= SKIP_MASS * weight[in_kept].sum()
        n_leaf_kept.append(len(kept))
    assert max(n_leaf_kept) > 10  # the case exercises many kept leaves


def test_running_merge_runs_only_where_needed(monkeypatch):
    """At ``sigma2 = 1e-300`` the capped merge declines every query (the folded
    constants of ``d = 2`` would overflow); the second pass with a running maximum
    takes them, and the denoiser is the nearest data point (every other weight
    underflows to 0)."""
    passes = []

    def recording(kernel, n_groups, pairs, *args):
        queries, taken = args[5], args[17]
        kernel_call(kernel, n_groups, pairs, *args)
        passes.append((args[-1] is True, taken[queries].copy()))  # running given last

    kernel_call = moments.run_groups
    monkeypatch.setattr(moments, "run_groups", recording)
    rng = np.random.default_rng(3)
    data = rng.uniform(-1.0, 1.0, (3000, 2))
    f = nd.EmpiricalScore(data, nd.OU())
    f.pruning = "always"
    x = data[:50] + 1e-3 * rng.standard_normal((50, 2))
    t = 5e-301  # sigma2 = 1 - exp(-2 t) = 1e-300
    assert f._prepare(t, x)[2][0] == pytest.approx(1e-300, rel=1e-12)
    got = f.denoise(t, x)
    assert [running for running, _ in passes] == [False, True]  # capped, then running
    assert not passes[0][1].any() and passes[1][1].all()
    nearest = np.argmin(((x[:, None, :] - data[None]) ** 2).sum(axis=2), axis=1)
    assert np.array_equal(got, data[nearest])

    passes.clear()
    f.denoise(1e-4, x)  # an ordinary noise level: one pass, all taken
    assert [running for running, _ in passes] == [False] and passes[0][1].all()
