"""A bias-free convolutional denoiser conditioned on the noise level by gains only.

The image path has no additive constant anywhere (Mohan et al. 2020, "Robust and
interpretable blind image denoising via bias-free CNNs"; Kadkhodaie et al. 2024):
3x3 convolutions without bias, ReLU, average pooling, nearest upsampling,
concatenation. Each hidden convolution's output is multiplied per channel by a
gain ``g(s)`` computed from the noise level ``s = sigma / alpha`` by a small MLP.
A product by a number that does not depend on the image keeps the network
positively homogeneous of degree 1 in the image for each fixed ``s``:
``F(c y, s) = c F(y, s)`` for ``c > 0``, and ReLU nets that are so are linear on
rays, hence ``F(y, s) = J_y F(y, s) y`` (Euler's identity, the basis of the
Jacobian analysis of Kadkhodaie et al.). With ``c < 0`` it does not hold for
ReLU nets, bias-free or not.

The preconditioning of Karras et al. (2022, "EDM", Table 1) wraps the network,
again by factors that depend on ``s`` only::

    D(y, s) = m + c_skip(s) (y - m) + c_out(s) F(c_in(s) (y - m), s)
    c_skip = s_d^2 / (s^2 + s_d^2), c_out = s s_d / sqrt(s^2 + s_d^2),
    c_in = 1 / sqrt(s^2 + s_d^2),

with ``m`` the training mean image when ``NetConfig.center`` is set and 0
otherwise, so that ``D(c y, s) = c D(y, s)`` for ``c > 0`` when ``m = 0``.
Images are ``(B, H, W, C)`` (NHWC); the dtype follows the parameters.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["conv_plan", "denoise_images", "init_params", "n_gains"]

# Frequencies of the Fourier features of log(s): log s spans about [-6, 4] in use,
# and these periods (25 down to 1.6) resolve it without aliasing over that span.
_COND_FREQUENCIES = (0.25, 0.5, 1.0, 2.0, 4.0)
KERNEL = 3


def conv_plan(config):
    """Input and output channels of every convolution, in forward order.

    Parameters
    ----------
    config : NetConfig

    Returns
    -------
    list of (int, int)
        The last entry is the output convolution (no gain, no ReLU).
    """
    chans, img_c, blocks = config.channels, config.image_shape[2], config.blocks
    plan = [(img_c, chans[0])]
    for level, width in enumerate(chans):
        first = chans[0] if level == 0 else chans[level - 1]
        plan += [(first, width)] + [(width, width)] * (blocks - 1)
    for level in range(len(chans) - 2, -1, -1):
        width = chans[level]
        plan += [(chans[level + 1] + width, width)] + [(width, width)] * (blocks - 1)
    return plan + [(chans[0], img_c)]


def n_gains(config):
    """Number of per-channel gains: the output channels of the hidden convolutions."""
    return sum(cout for _, cout in conv_plan(config)[:-1])


def init_params(config, seed):
    """He-normal convolution weights; the gain MLP starts at gains of exactly 1.

    Drawn with numpy (eager JAX random calls each compile a small program, which
    cost tens of seconds on a loaded machine).

    Parameters
    ----------
    config : NetConfig
    seed : int or numpy.random.Generator

    Returns
    -------
    dict
        ``{"convs": [w (3, 3, C_in, C_out), ...], "cond": {"w1", "b1", "w2", "b2"}}``,
        float32 numpy arrays.
    """
    rng = np.random.default_rng(seed)
    plan = conv_plan(config)
    convs = []
    for i, (cin, cout) in enumerate(plan):
        # He (2015) for ReLU layers; the linear output layer gets half that variance.
        gain = 2.0 if i < len(plan) - 1 else 1.0
        std = math.sqrt(gain / (KERNEL * KERNEL * cin))
        convs.append((std * rng.standard_normal((KERNEL, KERNEL, cin, cout))).astype(np.float32))
    n_feat = 2 * len(_COND_FREQUENCIES) + 1
    width, n_g = config.cond_width, n_gains(config)
    cond = {
        "w1": (rng.standard_normal((n_feat, width)) / math.sqrt(n_feat)).astype(np.float32),
        "b1": np.zeros(width, np.float32),
        "w2": np.zeros((width, n_g), np.float32),
        "b2": np.zeros(n_g, np.float32),
    }
    return {"convs": convs, "cond": cond}


def _conv(x, w, padding):
    if padding == "circular":
        k = w.shape[0] // 2
        x = jnp.pad(x, ((0, 0), (k, k), (k, k), (0, 0)), mode="wrap")
        mode = "VALID"
    else:
        mode = "SAME"
    return jax.lax.conv_general_dilated(
        x, w, (1, 1), mode, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def _pool(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _upsample(x):
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _gains(cond, log_s):
    """Per-channel gains of every hidden convolution, shape (B, n_gains)."""
    freqs = jnp.asarray(_COND_FREQUENCIES, log_s.dtype)
    arg = log_s[:, None] * freqs[None, :]
    feats = jnp.concatenate([log_s[:, None] / 4.0, jnp.sin(arg), jnp.cos(arg)], axis=1)
    hidden = jax.nn.relu(feats @ cond["w1"] + cond["b1"])
    return 1.0 + hidden @ cond["w2"] + cond["b2"]


def _network(params, config, u, log_s):
    """The homogeneous core ``F(u, s)``, shape of ``u`` (B, H, W, C)."""
    convs, pad = params["convs"], config.padding
    gains = _gains(params["cond"], log_s)
    layer, offset = 0, 0

    def hidden(h):
        nonlocal layer, offset
        w = convs[layer]
        g = gains[:, offset:offset + w.shape[3]]
        layer, offset = layer + 1, offset + w.shape[3]
        return jax.nn.relu(_conv(h, w, pad) * g[:, None, None, :])

    h = hidden(u)
    skips = []
    for level in range(len(config.channels)):
        if level > 0:
            h = _pool(h)
        for _ in range(config.blocks):
            h = hidden(h)
        skips.append(h)
    for level in range(len(config.channels) - 2, -1, -1):
        h = jnp.concatenate([_upsample(h), skips[level]], axis=-1)
        for _ in range(config.blocks):
            h = hidden(h)
    return _conv(h, convs[layer], pad)


def denoise_images(params, config, y, s, mean=None):
    """Denoised images ``D(y, s)`` from ``y = x_0 + s z`` (the preconditioned network).

    Parameters
    ----------
    params : dict
        From :func:`init_params` (or training).
    config : NetConfig
    y : jax.Array, shape (B, H, W, C)
        Noisy images at the data's scale (``x_t / alpha_t``).
    s : jax.Array, shape (B,)
        Noise levels ``sigma_t / alpha_t > 0``.
    mean : jax.Array, shape (H, W, C), optional
        The centre ``m`` (only when ``config.center``); default 0.

    Returns
    -------
    jax.Array, shape (B, H, W, C)
    """
    sd2 = config.data_scale**2
    s2 = s * s
    c_skip = (sd2 / (s2 + sd2))[:, None, None, None]
    c_out = (s * math.sqrt(sd2) / jnp.sqrt(s2 + sd2))[:, None, None, None]
    c_in = (1.0 / jnp.sqrt(s2 + sd2))[:, None, None, None]
    u = y if mean is None else y - mean
    out = c_skip * u + c_out * _network(params, config, c_in * u, jnp.log(s))
    return out if mean is None else out + mean


def to_numpy(params):
    """A parameter tree as numpy arrays (for saving and for tests)."""
    return jax.tree_util.tree_map(np.asarray, params)
