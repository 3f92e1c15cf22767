"""``C_T`` against a port of the paper's companion code, written here on the same cells.

The port follows the reference algorithm of Meehan, Chaudhuri & Dasgupta
(2020), github.com/casey-meehan/data-copying (``data_copying_tests.C_T``): the
cells are those that hold held-out points; in each, ``L`` is the distance to the
nearest training point *of the cell* (brute force here), ``u`` counts the pairs
whose generated distance is the larger (ties one half), ``Z_U = (u - (mn/2 -
1/2)) / sqrt(mn(m+n+1)/12)``; a cell enters when it holds more than 20
generated points, and ``C_T = sum P_n(pi) Z_U / sum P_n(pi)``. Given the audit's
own cell labels, ``distance="cell"`` must agree with it to rounding, and
``distance="train"`` with the same port using the whole training set and no
continuity correction.
"""

from __future__ import annotations

import numpy as np
import pytest

from numdiff.audit import audit
from numdiff.audit.cells import partition


def nearest(points, train):
    """Brute-force nearest distance of each point to ``train``."""
    return np.sqrt(((points[:, None, :] - train[None, :, :]) ** 2).sum(axis=2)).min(axis=1)


def reference_c_t(train, train_cell, held, held_cell, gen, gen_cell, *, within_cell=True,
                  continuity=True, more_than=20):
    """The companion code's C_T, ported (``within_cell=False, continuity=False``: numdiff's)."""
    m, n = gen.shape[0], held.shape[0]
    num = den = 0.0
    for c in np.unique(held_cell):
        p, q = held[held_cell == c], gen[gen_cell == c]
        if not q.shape[0] / m > more_than / m:
            continue
        t = train[train_cell == c] if within_cell else train
        lp, lq = nearest(p, t), nearest(q, t)
        u = (lq[:, None] > lp[None, :]).sum() + 0.5 * (lq[:, None] == lp[None, :]).sum()
        mq, mp = q.shape[0], p.shape[0]
        centre = mq * mp / 2 - (0.5 if continuity else 0.0)
        z = (u - centre) / np.sqrt(mq * mp * (mq + mp + 1) / 12)
        w = mp / n
        num, den = num + w * z, den + w
    return num / den


def model(kind, n_train, n_gen, n_held, seed, d=8):
    rng = np.random.default_rng(seed)
    train, held = rng.standard_normal((n_train, d)), rng.standard_normal((n_held, d))
    gen = rng.standard_normal((n_gen, d))
    if kind == "copying":
        k = rng.integers(n_train, size=n_gen // 3)
        gen[: k.size] = train[k] + 0.01 * rng.standard_normal((k.size, d))
    elif kind == "over-dispersed":
        gen *= 1.5
    return train + 3.0, held + 3.0, gen + 3.0  # off-centre: the audit centres, the port not


@pytest.mark.parametrize("kind, n_train, n_gen, n_held, cells", [
    ("null", 600, 600, 600, 6),
    ("copying", 600, 600, 600, 6),
    ("over-dispersed", 600, 600, 600, 6),
    # few generated points: cells with <= 20 of them are left out; few held-out
    # points: cells without any are left out.
    ("null", 400, 150, 25, 8),
])
def test_c_t_equals_the_reference_port_on_shared_cells(kind, n_train, n_gen, n_held, cells):
    train, held, gen = model(kind, n_train, n_gen, n_held, seed=11)
    res = audit(train, gen, held, n_cells=cells, distance="cell", seed=3)
    lab = res.cells
    ref_cell = reference_c_t(train, lab["train"], held, lab["holdout"], gen, lab["samples"])
    ref_train = reference_c_t(train, lab["train"], held, lab["holdout"], gen, lab["samples"],
                              within_cell=False, continuity=False)
    assert res.c_t is res.c_t_by_distance["cell"]
    assert res.c_t.statistic == pytest.approx(ref_cell, rel=1e-12, abs=1e-12)
    assert res.c_t_by_distance["train"].statistic == pytest.approx(ref_train, rel=1e-12,
                                                                   abs=1e-12)
    # The comparison is not empty: the distances differ for a good share of points.
    own = nearest(held, train) < np.array([nearest(held[i:i + 1], train[lab["train"] == c])[0]
                                           for i, c in enumerate(lab["holdout"])])
    assert own.mean() > 0.05
    assert abs(ref_cell - ref_train) > 1e-3


def test_the_same_seed_gives_the_same_cells_and_restarts_lower_the_inertia():
    rng = np.random.default_rng(4)
    train, queries = rng.standard_normal((500, 5)), rng.standard_normal((80, 5))
    a_train, (a_q,) = partition(train, [queries], 7, seed=2, n_init=10)
    b_train, (b_q,) = partition(train, [queries], 7, seed=2, n_init=10)
    np.testing.assert_array_equal(a_train, b_train)
    np.testing.assert_array_equal(a_q, b_q)
    assert np.unique(a_train).size == 7

    def inertia(labels):
        return sum(((train[labels == c] - train[labels == c].mean(0)) ** 2).sum()
                   for c in np.unique(labels))

    # Best of 10 restarts against one, over 5 seeds: strictly lower on average
    # (equal only if the restarts were ignored).
    best = np.mean([inertia(partition(train, [], 7, s, n_init=10)[0]) for s in range(5)])
    single = np.mean([inertia(partition(train, [], 7, s, n_init=1)[0]) for s in range(5)])
    assert best < single


def test_partition_repeats_report_the_spread_over_seeds():
    train, held, gen = model("copying", 400, 400, 400, seed=5)
    res = audit(train, gen, held, n_cells=4, partition_repeats=3, seed=7)
    spread = res.partition_spread
    assert spread["seeds"] == [7, 8, 9]
    for name in ("train", "cell"):
        assert spread[name]["z"][0] == res.c_t_by_distance[name].z
        other = audit(train, gen, held, n_cells=4, seed=8).c_t_by_distance[name]
        assert spread[name]["statistic"][1] == other.statistic
