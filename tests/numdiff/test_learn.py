"""numdiff.learn: loss gradient, homogeneity, the wrapper against a numpy reference,
derivatives against finite differences, determinism, the weights file, input checks.

The network under test has random gains (the noise-level MLP's output layer is
drawn, not left at its zero start), so that the conditioning path is exercised.
Float64 checks run the network under ``jax.enable_x64`` only inside a context.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp

import numdiff as nd
from numdiff.learn import (
    NetConfig,
    NetworkScore,
    TrainConfig,
    TrainedNet,
    load,
    network,
    train,
)
from numdiff.learn.training import denoising_loss, draw_log_levels


def random_net(config, seed=0):
    """A :class:`TrainedNet` with random weights and random, non-constant gains."""
    params = network.init_params(config, seed)
    rng = np.random.default_rng(seed + 100)
    cond = params["cond"]
    cond["w2"] = (0.3 * rng.standard_normal(cond["w2"].shape)).astype(np.float32)
    cond["b2"] = (0.2 * rng.standard_normal(cond["b2"].shape)).astype(np.float32)
    cond["b1"] = (0.5 * rng.standard_normal(cond["b1"].shape)).astype(np.float32)
    mean = (rng.uniform(size=config.image_shape).astype(np.float32) if config.center else None)
    return TrainedNet(config, TrainConfig(), params, params, mean, {}, 0.0)


# -- an independent numpy forward pass (explicit loops over the 3x3 taps) --------------
def ref_conv(x, w, padding):
    mode = "wrap" if padding == "circular" else "constant"
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode=mode)
    b, h, wd, _ = x.shape
    out = np.zeros((b, h, wd, w.shape[3]))
    for di in range(3):
        for dj in range(3):
            out += np.einsum("bijc,co->bijo", xp[:, di:di + h, dj:dj + wd, :], w[di, dj])
    return out


def ref_denoise(net, y, s):
    """``D(y, s)`` of the architecture in docs/learn.md, in float64 numpy."""
    cfg = net.net
    p = net.ema_params
    convs = [np.asarray(w, np.float64) for w in p["convs"]]
    c = {k: np.asarray(v, np.float64) for k, v in p["cond"].items()}
    log_s = np.log(s)
    arg = log_s[:, None] * np.asarray(network._COND_FREQUENCIES)[None, :]
    feats = np.concatenate([log_s[:, None] / 4, np.sin(arg), np.cos(arg)], axis=1)
    gains = 1 + np.maximum(feats @ c["w1"] + c["b1"], 0) @ c["w2"] + c["b2"]
    state = {"layer": 0, "off": 0}

    def hidden(h):
        w = convs[state["layer"]]
        g = gains[:, state["off"]:state["off"] + w.shape[3]]
        state["layer"] += 1
        state["off"] += w.shape[3]
        return np.maximum(ref_conv(h, w, cfg.padding) * g[:, None, None, :], 0)

    sd = cfg.data_scale
    mean = 0.0 if net.mean is None else np.asarray(net.mean, np.float64)
    u = y - mean
    c_in = (1 / np.sqrt(s**2 + sd**2))[:, None, None, None]
    h = hidden(c_in * u)
    skips = []
    for level in range(len(cfg.channels)):
        if level:
            b, hh, ww, ch = h.shape
            h = h.reshape(b, hh // 2, 2, ww // 2, 2, ch).mean(axis=(2, 4))
        for _ in range(cfg.blocks):
            h = hidden(h)
        skips.append(h)
    for level in range(len(cfg.channels) - 2, -1, -1):
        up = h.repeat(2, axis=1).repeat(2, axis=2)
        h = np.concatenate([up, skips[level]], axis=-1)
        for _ in range(cfg.blocks):
            h = hidden(h)
    f = ref_conv(h, convs[state["layer"]], cfg.padding)
    c_skip = (sd**2 / (s**2 + sd**2))[:, None, None, None]
    c_out = (s * sd / np.sqrt(s**2 + sd**2))[:, None, None, None]
    return mean + c_skip * u + c_out * f


UNET = NetConfig(image_shape=(4, 4, 2), channels=(3, 5), blocks=2, padding="zero",
                 cond_width=6, data_scale=0.4)


def test_import_numdiff_does_not_import_jax():
    code = "import sys, numdiff; assert 'jax' not in sys.modules, 'jax imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_loss_gradient_matches_finite_differences():
    """jax.grad of the training loss against central differences, in float64."""
    cfg = NetConfig(image_shape=(4, 4, 1), channels=(2, 3), blocks=1, cond_width=4)
    params = random_net(cfg).params
    rng = np.random.default_rng(3)
    x0 = rng.uniform(size=(5, 4, 4, 1))
    s = np.exp(rng.uniform(np.log(0.02), np.log(5.0), 5))
    z = rng.standard_normal((5, 4, 4, 1))
    with jax.enable_x64(True):
        p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
        loss = jax.jit(lambda p: denoising_loss(p, cfg, x0, s, z))
        grad = jax.grad(lambda p: denoising_loss(p, cfg, x0, s, z))(p64)
        leaves, tree = jax.tree_util.tree_flatten(p64)
        g_leaves = jax.tree_util.tree_leaves(grad)
        for k in range(3):
            dirs = [rng.standard_normal(a.shape) for a in leaves]
            analytic = sum(float(jnp.vdot(g, d)) for g, d in zip(g_leaves, dirs))
            h = 1e-6

            def shifted(sign, dirs=dirs, h=h):
                return jax.tree_util.tree_unflatten(
                    tree, [a + sign * h * d for a, d in zip(leaves, dirs)])

            numeric = (float(loss(shifted(1))) - float(loss(shifted(-1)))) / (2 * h)
            # Central differences: error O(h^2 f''') + O(eps f / h) ~ 1e-9 relative here.
            assert abs(numeric - analytic) <= 1e-6 * abs(analytic), (k, numeric, analytic)


@pytest.mark.parametrize("padding", ["zero", "circular"])
def test_denoiser_is_homogeneous(padding):
    """``D(c y, s) = c D(y, s)`` for ``c > 0``: no additive constant anywhere."""
    cfg = NetConfig(image_shape=(4, 4, 2), channels=(3, 5), blocks=2, padding=padding)
    params = random_net(cfg).params
    rng = np.random.default_rng(4)
    y = rng.standard_normal((6, 4, 4, 2)).astype(np.float32)
    s = np.full(6, 0.7, np.float32)
    base = np.asarray(network.denoise_images(params, cfg, y, s))
    for c in (0.01, 0.37, 3.0, 250.0):
        scaled = np.asarray(network.denoise_images(params, cfg, c * y, s))
        # float32: a few ulps of the activations, relative to the output's size.
        assert np.abs(scaled - c * base).max() <= 2e-5 * c * np.abs(base).max(), c


def test_homogeneity_test_catches_a_bias(monkeypatch):
    """Negative control: one convolution with a bias breaks the check above."""
    cfg = NetConfig(image_shape=(4, 4, 1), channels=(3,), blocks=2)
    params = random_net(cfg).params
    original = network._conv
    calls = {"n": 0}

    def biased(x, w, padding):
        calls["n"] += 1
        return original(x, w, padding) + (0.05 if calls["n"] == 2 else 0.0)

    monkeypatch.setattr(network, "_conv", biased)
    y = np.random.default_rng(5).standard_normal((4, 4, 4, 1)).astype(np.float32)
    s = np.full(4, 0.7, np.float32)
    base = np.asarray(network.denoise_images(params, cfg, y, s))
    calls["n"] = 0
    scaled = np.asarray(network.denoise_images(params, cfg, 3.0 * y, s))
    assert np.abs(scaled - 3.0 * base).max() > 1e-3 * np.abs(base).max()


@pytest.mark.parametrize("padding,center", [("zero", False), ("circular", True)])
def test_wrapper_matches_numpy_reference(padding, center):
    """``NetworkScore.denoise`` / ``score`` on flattened rows against the numpy forward pass."""
    cfg = NetConfig(image_shape=(4, 4, 2), channels=(3, 5), blocks=2, padding=padding,
                    cond_width=6, data_scale=0.4, center=center)
    net = random_net(cfg, seed=1)
    schedule = nd.VPCosine()
    rng = np.random.default_rng(6)
    x = rng.standard_normal((7, 32))
    t = rng.uniform(0.05, 0.9, 7)
    alpha, sigma2 = schedule.alpha_sigma2(t)
    s = np.sqrt(sigma2) / alpha
    expect = ref_denoise(net, (x / alpha[:, None]).reshape(7, 4, 4, 2), s).reshape(7, 32)
    for dtype, tol in (("float32", 1e-5), ("float64", 1e-12)):
        model = NetworkScore(net, schedule, dtype=dtype)
        got = model.denoise(t, x)
        assert got.dtype == np.float64 and got.shape == (7, 32)
        assert np.abs(got - expect).max() <= tol * np.abs(expect).max(), dtype
    score = model.score(t, x)
    expect_score = (alpha[:, None] * expect - x) / sigma2[:, None]
    assert np.abs(score - expect_score).max() <= 1e-10 * np.abs(expect_score).max()
    one_t = model.denoise(0.3, x)
    assert np.allclose(one_t, model.denoise(np.full(7, 0.3), x), rtol=0, atol=0)


def test_wrapper_derivatives_match_finite_differences():
    """jacobian, jvp, divergence and jacobian_eigs (float64) against central differences."""
    net = random_net(UNET, seed=2)
    schedule = nd.OU()
    model = NetworkScore(net, schedule, dtype="float64")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 32))
    t = np.array([0.1, 0.5, 2.0])
    alpha, sigma2 = schedule.alpha_sigma2(t)
    h = 1e-6
    fd = np.empty((3, 32, 32))
    for j in range(32):
        e = np.zeros(32)
        e[j] = h
        fd[:, :, j] = (model.denoise(t, x + e) - model.denoise(t, x - e)) / (2 * h)
    jac = model.jacobian(t, x)
    scale = np.abs(fd).max()
    assert np.abs(jac - fd).max() <= 1e-6 * scale
    v = rng.standard_normal((3, 32))
    assert np.allclose(model.jvp(t, x, v), np.einsum("mij,mj->mi", fd, v), atol=1e-6 * scale)
    jac_s = model.jacobian(t, x, of="score")
    expect_s = (alpha[:, None, None] * fd - np.eye(32)) / sigma2[:, None, None]
    assert np.abs(jac_s - expect_s).max() <= 1e-6 * np.abs(expect_s).max()
    assert np.allclose(model.jvp(t, x, v, of="score"), np.einsum("mij,mj->mi", expect_s, v),
                       atol=1e-6 * np.abs(expect_s).max() * 6)
    div = model.divergence(t, x)
    expect_div = np.trace(expect_s, axis1=1, axis2=2)
    assert np.abs(div - expect_div).max() <= 1e-6 * np.abs(expect_div).max()
    eig = model.jacobian_eigs(t[1], x[1], k=4)
    sym = 0.5 * (fd[1] + fd[1].T)
    ref = np.linalg.eigvalsh(sym)[::-1][:4]
    assert np.allclose(eig.eigenvalues, ref, atol=1e-6 * scale)
    resid = sym @ eig.eigenvectors - eig.eigenvectors * eig.eigenvalues
    assert np.abs(resid).max() <= 1e-5 * scale
    # Euler's identity of a homogeneous net: D(t, x) = grad D(t, x) x.
    assert np.allclose(np.einsum("mij,mj->mi", jac, x), model.denoise(t, x),
                       atol=1e-10 * np.abs(jac).max())


def test_fixed_seed_gives_identical_weights_and_file_round_trip(tmp_path):
    data = np.random.default_rng(8).uniform(size=(40, 16))
    cfg = NetConfig(image_shape=(4, 4, 1), channels=(2, 3), blocks=1, cond_width=4)
    tcfg = TrainConfig(steps=6, batch=8, warmup=2, eval_every=3, eval_levels=3, eval_size=8)
    first = train(data, cfg, tcfg, holdout=data[:10])
    again = train(data, cfg, tcfg, holdout=data[:10])
    other = train(data, cfg, TrainConfig(**{**tcfg.__dict__, "seed": 1}), holdout=data[:10])
    for a, b, c in zip(first.params["convs"], again.params["convs"], other.params["convs"]):
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)
    assert np.array_equal(first.history["loss"], again.history["loss"])
    assert first.history["train_mse"].shape == (2, 3)
    assert first.history["holdout_mse"].shape == (2, 3)
    path = tmp_path / "net.npz"
    first.save(path)
    back = load(path)
    assert back.net == cfg and back.train == tcfg
    for tree_a, tree_b in ((first.params, back.params), (first.ema_params, back.ema_params)):
        for a, b in zip(jax.tree_util.tree_leaves(tree_a), jax.tree_util.tree_leaves(tree_b)):
            assert np.array_equal(a, b)
    for key, value in first.history.items():
        assert np.array_equal(value, back.history[key])
    x = np.random.default_rng(9).standard_normal((3, 16))
    assert np.array_equal(NetworkScore(first, nd.OU()).denoise(0.4, x),
                          NetworkScore(back, nd.OU()).denoise(0.4, x))


def test_sample_and_metrics_run_on_a_network():
    net = random_net(NetConfig(image_shape=(4, 4, 1), channels=(2,), blocks=1, cond_width=4))
    data = np.random.default_rng(10).uniform(size=(30, 16))
    model = NetworkScore(net, nd.OU(), data=data)
    res = nd.sample(model, 8, T=2.0, delta=0.01, steps=6, process="ode", solver="heun",
                    grid="uniform_lambda", rng=0)
    assert res.success and res.x.shape == (8, 16)
    idx, _ = nd.nearest_neighbors(data, res.x, 1)
    assert np.array_equal(res.nearest_index, idx[:, 0])
    ratio = nd.metrics.nearest_ratio(res.x, model)
    assert np.allclose(ratio, nd.metrics.nearest_ratio(res.x, data))


@pytest.mark.parametrize("law", ["log_uniform", "log_normal"])
def test_training_levels_follow_their_law(law):
    # Kolmogorov-Smirnov against scipy's law of log s (the normal clipped to
    # [log s_min, log s_max]; its atoms at the ends carry about 5e-4 of the mass);
    # 20000 draws, seed 3: log_std 10% too large gives p = 8e-17, the other law p = 0.
    from scipy import stats

    cfg = TrainConfig(batch=20000, level_law=law, log_mean=-1.0, log_std=1.3)
    x = np.asarray(draw_log_levels(jax.random.PRNGKey(3), cfg), dtype=float)
    lo, hi = np.log(cfg.s_min), np.log(cfg.s_max)
    assert x.min() >= lo - 1e-6 and x.max() <= hi + 1e-6
    if law == "log_uniform":
        cdf = stats.uniform(lo, hi - lo).cdf
    else:
        normal = stats.norm(cfg.log_mean, cfg.log_std)
        cdf = lambda v: np.where(v >= hi, 1.0, np.where(v < lo, 0.0, normal.cdf(v)))
    assert stats.kstest(x, cdf).pvalue > 1e-3


def test_bad_input_raises_naming_the_argument():
    with pytest.raises(ValueError, match="padding"):
        NetConfig(padding="reflect")
    with pytest.raises(ValueError, match="image_shape"):
        NetConfig(image_shape=(6, 6, 1), channels=(2, 3, 4))
    with pytest.raises(ValueError, match="s_min"):
        TrainConfig(s_min=2.0, s_max=1.0)
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)
    with pytest.raises(TypeError, match="steps"):
        TrainConfig(steps=1.5)
    with pytest.raises(ValueError, match="level_law"):
        TrainConfig(level_law="normal")
    with pytest.raises(ValueError, match="log_std"):
        TrainConfig(log_std=0.0)
    with pytest.raises(ValueError, match="log_mean"):
        TrainConfig(log_mean=float("nan"))
    with pytest.raises(TypeError, match="log_mean"):
        TrainConfig(log_mean="-1.2")
    cfg = NetConfig(image_shape=(4, 4, 1), channels=(2,), blocks=1)
    with pytest.raises(ValueError, match="data"):
        train(np.full((3, 16), np.nan), cfg)
    with pytest.raises(ValueError, match="data"):
        train(np.zeros((3, 15)), cfg)
    model = NetworkScore(random_net(cfg), nd.OU())
    with pytest.raises(ValueError, match="x"):
        model.denoise(0.5, np.zeros((2, 15)))
    with pytest.raises(ValueError, match="t"):
        model.denoise(-1.0, np.zeros((2, 16)))
    with pytest.raises(ValueError, match="t"):
        model.denoise(np.ones(3), np.zeros((2, 16)))
    with pytest.raises(ValueError, match="v"):
        model.jvp(0.5, np.zeros((2, 16)), np.zeros(15))
    with pytest.raises(ValueError, match="nearest"):
        model.nearest(np.zeros((2, 16)))
    with pytest.raises(TypeError, match="net"):
        NetworkScore("weights.npz", nd.OU())
    with pytest.raises(ValueError, match="dtype"):
        NetworkScore(random_net(cfg), nd.OU(), dtype="float16")
