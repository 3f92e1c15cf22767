"""ShardedScore against the in-process EmpiricalScore and the exact mixture, on local
Dask clusters (threads where possible; real processes for the fault test).

Agreement is measured in the normalisations of docs/numerics.md#accuracy:
``|dD| / max|x_k|``, ``|ds| sigma2 / (|x| + alpha max|x_k|)`` and ``|d log p| / (1 +
|log p|)``. Where the softmax is well conditioned the sharded merge matches the
in-process model to ``1e-15``; on the hard cases both are held to the exact mixture
with the in-process model's own bounds (``exact_mixture.achieved_bounds``, 64 eps),
because there two float64 evaluations that group the data differently legitimately
differ by the problem's conditioning (docs/sharded.md#accuracy).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import signal
import subprocess
import sys

import exact_mixture
import numpy as np
import pytest

import numdiff as nd
from numdiff.sharded import ShardedScore, traffic

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

# Dask logs every worker start and stop at INFO; failures still show.
logging.getLogger("distributed").setLevel(logging.ERROR)
OU = nd.OU()


def local_client(workers, processes=False, protocol=None):
    """A client on a LocalCluster of ``workers`` single-threaded workers."""
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=processes,
        dashboard_address=":0", protocol=protocol,
    )
    return distributed.Client(cluster)


def shut(client):
    cluster = client.cluster
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def client():
    """Two thread workers over TCP (so that Dask counts bytes)."""
    c = local_client(2, protocol="tcp://")
    yield c
    shut(c)


def diffused_queries(rng, data, t, n):
    """``alpha x_k + sigma z``: queries where a sampler goes."""
    alpha, sigma = float(OU.alpha(t)), math.sqrt(float(OU.sigma2(t)))
    pick = rng.integers(data.shape[0], size=n)
    return alpha * data[pick] + sigma * rng.standard_normal((n, data.shape[1]))


def split(data, sizes):
    """``data`` cut into consecutive shards of the given sizes."""
    return np.split(data, np.cumsum(sizes)[:-1])


def normalised_errors(reference, model, t, x):
    """Largest error of ``model`` against ``reference`` per quantity, normalised."""
    data_top = np.abs(reference.data).max()
    alpha, sigma2 = float(OU.alpha(t)), float(OU.sigma2(t))
    d_ref, d_mod = reference.denoise(t, x), model.denoise(t, x)
    s_ref, s_mod = reference.score(t, x), model.score(t, x)
    l_ref, l_mod = reference.log_density(t, x), model.log_density(t, x)
    score_scale = (np.abs(x).max(axis=1) + alpha * data_top) / sigma2
    return {
        "denoise": float(np.abs(d_mod - d_ref).max() / data_top),
        "score": float((np.abs(s_mod - s_ref).max(axis=1) / score_scale).max()),
        "log_density": float((np.abs(l_mod - l_ref) / (1 + np.abs(l_ref))).max()),
    }


def oracle_ratios(data, t, x, model, c=64):
    """Worst ``error / bound`` per quantity against the exact mixture, with the bounds
    the in-process kernels are tested to (tests/numdiff/test_score_oracle.py)."""
    alpha, sigma2 = float(OU.alpha(t)), float(OU.sigma2(t))
    values = (model.denoise(t, x), model.score(t, x), model.log_density(t, x))
    worst = dict.fromkeys(["denoise", "score", "log_density"], 0.0)
    for m in range(x.shape[0]):
        ref = exact_mixture.reference(data, alpha, sigma2, x[m])
        bounds = exact_mixture.achieved_bounds(ref, c)
        for key, value, exact, bound in [
            ("denoise", values[0][m], ref.denoise, bounds.denoise),
            ("score", values[1][m], ref.score, bounds.score),
            ("log_density", values[2][m], ref.log_density, bounds.log_density),
        ]:
            ratio = exact_mixture.error_ratio(value, exact, bound)
            worst[key] = max(worst[key], ratio if np.isfinite(value).all() else math.inf)
    return worst


def s2_time(sigma2):
    """OU time with ``sigma2_t = sigma2``."""
    return -0.5 * math.log1p(-sigma2)


# -- agreement with the in-process model -------------------------------------------------


@pytest.mark.parametrize("dim", [2, 5])
def test_equals_in_process_where_well_conditioned(client, dim):
    """Measured: at most 4.3e-16 (denoise), 2.1e-16 (score), 5.4e-16 (log p)."""
    rng = np.random.default_rng(dim)
    data = rng.standard_normal((900, dim))
    # Uneven shards, one of a single point.
    model = ShardedScore(split(data, [400, 1, 300, 199]), OU, client=client)
    reference = nd.EmpiricalScore(data, OU)
    try:
        for t in [0.05, 0.3, 2.0]:
            x = np.concatenate([diffused_queries(rng, data, t, 200),
                                rng.standard_normal((50, dim))])
            errors = normalised_errors(reference, model, t, x)
            assert all(v <= 1e-15 for v in errors.values()), (t, errors)
        # One time per query.
        t = rng.uniform(0.05, 2.0, size=100)
        x = rng.standard_normal((100, dim))
        assert np.abs(model.denoise(t, x) - reference.denoise(t, x)).max() <= 1e-15 * 5
    finally:
        model.close()


def test_blas_dimension_agrees_within_the_in_process_tolerance(client):
    """``d = 32``: rows near the data merge absolute per-shard log-sums, whose rounding
    is kept below the in-process BLAS path's own ``LOGIT_TOL`` (1e-12 nats); far rows
    take the relative merge. Measured: 3.2e-14 (denoise, the far rows at t = 1),
    1.9e-15 (score), 5.0e-15 (log p)."""
    rng = np.random.default_rng(32)
    data = rng.standard_normal((600, 32))
    model = ShardedScore(split(data, [250, 250, 100]), OU, client=client)
    reference = nd.EmpiricalScore(data, OU)
    try:
        for t in [0.1, 1.0]:
            x = np.concatenate([diffused_queries(rng, data, t, 100),
                                10.0 * rng.standard_normal((20, 32))])
            errors = normalised_errors(reference, model, t, x)
            assert all(v <= 1e-12 for v in errors.values()), (t, errors)
    finally:
        model.close()


def test_worker_count_changes_no_bit():
    """A shard's statistics do not depend on where it runs: 1, 2 and 4 workers give
    the same bits."""
    rng = np.random.default_rng(7)
    data = rng.standard_normal((500, 3))
    x = diffused_queries(rng, data, 0.2, 64)
    outputs = []
    for workers in (1, 2, 4):
        c = local_client(workers)
        try:
            model = ShardedScore(split(data, [100, 150, 50, 200]), OU, client=c)
            outputs.append([model.denoise(0.2, x), model.score(0.2, x),
                            model.log_density(0.2, x), *model.nearest(x, 3)])
            model.close()
        finally:
            shut(c)
    for other in outputs[1:]:
        for a, b in zip(outputs[0], other):
            assert np.array_equal(a, b)


# -- hard cases against the exact mixture ------------------------------------------------


def check_oracle(client, data, shard_sizes, t, x):
    model = ShardedScore(split(data, shard_sizes), OU, client=client)
    try:
        worst = oracle_ratios(data, t, x, model)
    finally:
        model.close()
    assert all(v <= 1.0 for v in worst.values()), f"error / bound: {worst}"


@pytest.mark.parametrize("dim", [2, 40])
def test_tiny_sigma2_with_the_close_neighbour_in_another_shard(client, dim):
    rng = np.random.default_rng(dim)
    data = rng.standard_normal((12, dim))
    data[5] = data[0] + 2e-5
    t = s2_time(1e-10)
    x = math.exp(-t) * data[:4] + 1e-5 * rng.standard_normal((4, dim))
    check_oracle(client, data, [4, 4, 4], t, x)


@pytest.mark.parametrize("dim", [2, 40])
def test_far_queries(client, dim):
    rng = np.random.default_rng(10 + dim)
    data = rng.standard_normal((15, dim))
    x = 1e4 * rng.standard_normal((3, dim)) / np.sqrt(dim)
    for t in [0.05, 1.0, 8.0]:
        check_oracle(client, data, [5, 5, 5], t, x)


@pytest.mark.parametrize("dim", [2, 40])
def test_duplicates_across_shards(client, dim):
    rng = np.random.default_rng(20 + dim)
    base = rng.standard_normal((4, dim))
    data = np.concatenate([base, base, base[:1]])
    x = rng.standard_normal((4, dim))
    for t in [s2_time(1e-6), 0.3, 3.0]:
        check_oracle(client, data, [4, 4, 1], t, x)


@pytest.mark.parametrize("dim", [2, 40])
def test_a_shard_far_from_every_query(client, dim):
    """The far shard's log-sum is about -1e6 / sigma2: its weight must be exactly 0,
    not a NaN from ``-inf - -inf`` or an overflow."""
    rng = np.random.default_rng(30 + dim)
    data = np.concatenate([rng.standard_normal((8, dim)), 1e3 + rng.standard_normal((4, dim))])
    for t in [s2_time(1e-8), 0.5]:
        x = diffused_queries(rng, data[:8], t, 4)
        check_oracle(client, data, [8, 4], t, x)


@pytest.mark.parametrize("dim", [1, 40])
def test_single_point(client, dim):
    rng = np.random.default_rng(40 + dim)
    data = rng.standard_normal((1, dim))
    x = rng.standard_normal((3, dim))
    for t in [s2_time(1e-10), 0.5]:
        check_oracle(client, data, [1], t, x)


def test_off_centre_data(client):
    rng = np.random.default_rng(50)
    data = 50.0 + rng.standard_normal((10, 3))
    for t in [s2_time(1e-10), 0.2]:
        x = diffused_queries(rng, data, t, 3)
        check_oracle(client, data, [3, 7], t, x)


def test_no_queries(client):
    model = ShardedScore([np.ones((2, 3))], OU, client=client)
    try:
        assert model.denoise(0.5, np.zeros((0, 3))).shape == (0, 3)
        assert model.log_density(0.5, np.zeros((0, 3))).shape == (0,)
        assert model.nearest(np.zeros((0, 3)), 2)[0].shape == (0, 2)
    finally:
        model.close()


# -- nearest, rows, sampling ---------------------------------------------------------------


@pytest.mark.parametrize("dim", [2, 40])
def test_nearest_gives_global_indices_ties_to_the_lower(client, dim):
    rng = np.random.default_rng(60 + dim)
    base = rng.standard_normal((30, dim))
    data = np.concatenate([base, base[:10]])  # duplicates in the last shard
    model = ShardedScore(split(data, [12, 1, 17, 10]), OU, client=client)
    try:
        reference = nd.EmpiricalScore(data, OU)
        x = np.concatenate([base[:5], rng.standard_normal((20, dim))])
        for k in [1, 3, 40]:
            idx, dist = model.nearest(x, k)
            ref_idx, ref_dist = reference.nearest(x, k)
            assert np.array_equal(idx, ref_idx)
            assert np.array_equal(dist, ref_dist)
        assert (model.nearest(base[:10], 1)[0][:, 0] == np.arange(10)).all()
    finally:
        model.close()


def test_rows_by_global_index(client):
    rng = np.random.default_rng(70)
    data = rng.standard_normal((20, 2))
    model = ShardedScore(split(data, [5, 1, 14]), OU, client=client)
    try:
        rows = model.data
        assert rows.shape == (20, 2) and len(rows) == 20
        idx = np.array([[19, 0], [5, -1]])
        assert np.array_equal(rows[idx], data[idx])
        assert np.array_equal(rows[3], data[3])
        assert np.array_equal(rows[4:9:2], data[4:9:2])
        with pytest.raises(IndexError):
            rows[20]
        with pytest.raises(TypeError, match="rows"):
            rows[1.5]
    finally:
        model.close()


@pytest.mark.parametrize(
    "process, solver, init",
    [("sde", "euler", "normal"), ("ode", "dpmpp_2m", "normal"), ("sde", "exp_em", "exact")],
)
def test_sample_equals_in_process(client, process, solver, init):
    rng = np.random.default_rng(80)
    data = rng.standard_normal((300, 2))
    model = ShardedScore(split(data, [120, 180]), OU, client=client)
    try:
        kwargs = {"T": 2.0, "delta": 1e-3, "steps": 25, "process": process, "solver": solver,
                  "grid": "uniform_lambda", "init": init, "rng": 5, "progress": False}
        got = nd.sample(model, 64, **kwargs)
        want = nd.sample(nd.EmpiricalScore(data, OU), 64, **kwargs)
    finally:
        model.close()
    assert got.success and np.abs(got.x - want.x).max() <= 1e-12
    assert np.array_equal(got.nearest_index, want.nearest_index)


# -- inputs --------------------------------------------------------------------------------


def test_every_kind_of_source_gives_the_same_model(client):
    rng = np.random.default_rng(90)
    data = rng.standard_normal((60, 3))
    shards = split(data, [20, 25, 15])
    x = rng.standard_normal((10, 3))
    sources = {
        "arrays": shards,
        "tuple": tuple(shards),
        "callables": [lambda s=s: s for s in shards],
        "delayed": [dask.delayed(np.array)(s) for s in shards],
        "dask array": da.from_array(data, chunks=(20, 3)).rechunk(((20, 25, 15), (3,))),
        "chunked along d": da.from_array(data, chunks=((20, 25, 15), (2, 1))),
    }
    outputs = {}
    for name, source in sources.items():
        model = ShardedScore(source, OU, client=client)
        assert model.n_shards == 3 and model.n_data == 60 and model.dim == 3, name
        outputs[name] = model.denoise(0.3, x)
        model.close()
    for name, out in outputs.items():
        assert np.array_equal(out, outputs["arrays"]), name


@pytest.mark.parametrize(
    "data, error, match",
    [
        (np.ones((4, 2)), TypeError, "data must be a dask array"),
        ([], ValueError, "at least one shard"),
        ([np.ones((3, 2)), np.ones((0, 2))], ValueError, r"data\[1\] must be non-empty"),
        ([np.ones((3, 2)), np.ones((3, 4))], ValueError, r"data\[1\] has d = 4"),
        ([np.array([[0.0, np.nan]])], ValueError, r"data\[0\] contains NaN"),
        ([np.ones(3)], ValueError, r"data\[0\] must be 2-D"),
        ([np.ones((2, 2)) * 1j], TypeError, r"data\[0\] must be real"),
        ([np.full((2, 2), 1e301)], ValueError, r"data\[0\]: coordinates beyond"),
    ],
)
def test_bad_arrays_are_named(client, data, error, match):
    with pytest.raises(error, match=match):
        ShardedScore(data, OU, client=client)


def test_bad_loaded_shards_are_named_from_the_workers(client):
    good = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"data\[1\] contains NaN"):
        ShardedScore([good, lambda: np.full((2, 2), np.nan)], OU, client=client)
    with pytest.raises(ValueError, match=r"shard 1 of data has d = 3"):
        ShardedScore([good, lambda: np.ones((2, 3))], OU, client=client)
    with pytest.raises(ValueError, match=r"data \(chunk 1\) contains NaN"):
        bad = np.ones((4, 2))
        bad[3, 0] = np.nan
        ShardedScore(da.from_array(bad, chunks=(2, 2)), OU, client=client)


@pytest.mark.parametrize(
    "data, error, match",
    [
        (np.ones((2, 2, 2)), ValueError, "2-D"),
        (np.ones((2, 2)) * 1j, TypeError, "real"),
        (np.ones((0, 2)), ValueError, "non-empty"),
    ],
)
def test_bad_dask_arrays_are_named(client, data, error, match):
    with pytest.raises(error, match=match):
        ShardedScore(da.from_array(data), OU, client=client)


def test_bad_arguments_are_named(client):
    with pytest.raises(TypeError, match="client must be a dask.distributed.Client"):
        ShardedScore([np.ones((2, 2))], OU)
    with pytest.raises(TypeError, match="schedule"):
        ShardedScore([np.ones((2, 2))], "OU", client=client)
    model = ShardedScore([np.ones((2, 2))], OU, client=client)
    with pytest.raises(ValueError, match="x must have d = 2"):
        model.denoise(0.5, np.ones((3, 3)))
    with pytest.raises(ValueError, match="t must be > 0"):
        model.score(0.0, np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"k must be in \[1, 2\]"):
        model.nearest(np.ones((3, 2)), 3)
    model.close()
    with pytest.raises(RuntimeError, match="closed"):
        model.denoise(0.5, np.ones((3, 2)))


def test_import_needs_no_dask_and_building_says_how_to_install(client, monkeypatch):
    code = "import sys, numdiff, numdiff.sharded; assert 'dask' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'numdiff\[dask\]'"):
        ShardedScore([np.ones((2, 2))], OU, client=client)


# -- traffic and faults --------------------------------------------------------------------


def test_a_call_moves_queries_and_statistics_never_data(client, tmp_path):
    """Bytes of one ``denoise`` call, from Dask's counters: below ``10 M (d + 2) 8 S``
    plus 8 KiB of messages per task, and far below the data. The shards come from
    files, the way to large data: the graph then holds loaders, not arrays."""
    rng = np.random.default_rng(100)
    n_query, dim, shards = 64, 2, 4
    data = rng.standard_normal((1_000_000, dim))
    loaders = []
    for i, part in enumerate(np.array_split(data, shards)):
        np.save(tmp_path / f"{i}.npy", part)
        loaders.append(functools.partial(np.load, tmp_path / f"{i}.npy"))
    model = ShardedScore(loaders, OU, client=client)
    try:
        x = rng.standard_normal((n_query, dim))
        model.denoise(0.5, x)  # warm-up: compilation, connections
        placed = client.who_has(model._shards)
        before = traffic(client)
        model.denoise(0.5, x)
        moved = traffic(client) - before
        assert client.who_has(model._shards) == placed
    finally:
        model.close()
    results = n_query * (2 * dim + 1) * 8 * shards
    assert results <= moved.worker_data_out <= 2 * results
    assert moved.total <= 10 * n_query * (dim + 2) * 8 * shards + 8192 * shards
    assert moved.total <= data.nbytes / 100


class KillsAWorker:
    """Proxy of a model that kills the worker holding shard 0 after ``after`` denoiser
    calls (SIGKILL: no goodbye to the scheduler), then carries on."""

    def __init__(self, model, after):
        self.model, self.after, self.calls, self.killed = model, after, 0, None
        self.schedule, self.dim, self.data = model.schedule, model.dim, model.data

    def denoise(self, t, x):
        self.calls += 1
        if self.calls == self.after:
            client = self.model.client
            holder = client.who_has(self.model._shards[:1])[self.model._shards[0].key][0]
            self.killed = client.run(os.getpid, workers=[holder])[holder]
            os.kill(self.killed, signal.SIGKILL)
        return self.model.denoise(t, x)

    def nearest(self, x, k=1):
        return self.model.nearest(x, k)


def test_a_worker_killed_mid_run_changes_nothing():
    """Real worker processes; after 4 of 20 steps the worker holding shard 0 is killed.
    Dask rebuilds the lost shards from their sources on the surviving or restarted
    worker and reruns the lost tasks: the samples equal the in-process ones."""
    rng = np.random.default_rng(110)
    data = rng.standard_normal((400, 2))
    kwargs = {"T": 1.0, "delta": 1e-2, "steps": 20, "process": "sde", "solver": "exp_em",
              "grid": "uniform_lambda", "rng": 3, "progress": False}
    want = nd.sample(nd.EmpiricalScore(data, OU), 32, **kwargs)
    c = local_client(2, processes=True)
    try:
        model = ShardedScore(np.array_split(data, 4), OU, client=c)
        proxy = KillsAWorker(model, after=4)
        got = nd.sample(proxy, 32, **kwargs)
        assert proxy.killed is not None
        assert proxy.killed not in c.run(os.getpid).values()
        model.close()
    finally:
        shut(c)
    assert got.success and np.abs(got.x - want.x).max() <= 1e-12
    assert np.array_equal(got.nearest_index, want.nearest_index)
