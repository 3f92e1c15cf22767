"""Configurations of a trained denoiser: the network's shape and its training run.

Both are frozen dataclasses of plain numbers and strings, so that they serialise
to JSON (stored inside the weights' ``.npz``) and key a cache on their values.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass

__all__ = ["NetConfig", "TrainConfig"]

PADDINGS = ("zero", "circular")
LEVEL_LAWS = ("log_uniform", "log_normal")


def _int(value, name, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value!r}")
    return int(value)


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be finite and > 0; got {value!r}")
    return float(value)


@dataclass(frozen=True)
class NetConfig:
    """Shape of a bias-free, noise-conditioned convolutional denoiser.

    Parameters
    ----------
    image_shape : tuple of int, (H, W, C)
        Images the network takes; a point of numdiff's ``(M, d)`` arrays is one
        image flattened in C order, ``d = H W C``.
    channels : tuple of int
        Channels per resolution level. One level is a plain BF-CNN (DnCNN-like
        stack); ``L`` levels make a UNet that halves the resolution ``L - 1``
        times by average pooling (``H`` and ``W`` divisible by ``2^(L-1)``).
    blocks : int
        3x3 convolutions per level on each side of the UNet (per stack for one level).
    padding : {"zero", "circular"}
        Boundary of every convolution.
    cond_width : int
        Width of the hidden layer of the noise-level MLP that sets the per-channel
        gains. That MLP has biases: it never sees the image, so the image path
        stays homogeneous.
    data_scale : float
        ``s_data`` of the preconditioning (the data's RMS about ``mean``).
    center : bool
        Subtract the training mean image before the network and add it back
        after (homogeneity then holds about ``alpha * mean``). Default False:
        ``D(t, c x) = c D(t, x)`` exactly.
    """

    image_shape: tuple = (8, 8, 1)
    channels: tuple = (32, 64)
    blocks: int = 2
    padding: str = "zero"
    cond_width: int = 64
    data_scale: float = 0.5
    center: bool = False

    def __post_init__(self):
        shape = tuple(self.image_shape)
        if len(shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C); got {self.image_shape!r}")
        shape = tuple(_int(v, "image_shape", 1) for v in shape)
        chans = tuple(_int(v, "channels", 1) for v in tuple(self.channels))
        if not chans:
            raise ValueError("channels must hold at least one level")
        step = 2 ** (len(chans) - 1)
        if shape[0] % step or shape[1] % step:
            raise ValueError(
                f"image_shape: H and W must be divisible by 2^(levels - 1) = {step} for "
                f"channels = {chans}; got {shape}"
            )
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be 'zero' or 'circular'; got {self.padding!r}")
        if not isinstance(self.center, bool):
            raise TypeError(f"center must be a bool; got {self.center!r}")
        object.__setattr__(self, "image_shape", shape)
        object.__setattr__(self, "channels", chans)
        object.__setattr__(self, "blocks", _int(self.blocks, "blocks", 1))
        object.__setattr__(self, "cond_width", _int(self.cond_width, "cond_width", 1))
        object.__setattr__(self, "data_scale", _positive(self.data_scale, "data_scale"))

    @property
    def dim(self):
        """``d = H W C``."""
        h, w, c = self.image_shape
        return h * w * c


@dataclass(frozen=True)
class TrainConfig:
    """One training run on the denoising objective (docs/learn.md#training).

    Parameters
    ----------
    steps : int
        Adam updates.
    batch : int
        Images per update (drawn with replacement).
    lr : float
        Peak learning rate (linear warm-up, then cosine decay to ``lr / 10``).
    warmup : int
        Warm-up updates.
    ema_decay : float
        Decay of the exponential moving average of the weights, in ``[0, 1)``.
    s_min, s_max : float
        Noise levels ``s = sigma / alpha`` are drawn in ``[s_min, s_max]``; cover the
        whole range the sampler visits.
    level_law : {"log_uniform", "log_normal"}
        Law of ``log s``: uniform on ``[log s_min, log s_max]``, or normal with
        ``log_mean`` and ``log_std`` clipped to that interval (Karras et al. 2022's
        training law, which spends the updates on the middle levels where a sample's
        shape is decided; docs/learn.md measures what it gives).
    log_mean, log_std : float
        Mean and standard deviation of ``log s`` for ``"log_normal"``.
    seed : int
        Seeds the initial weights, the batches and the noise.
    eval_every : int
        Updates between two evaluations of the per-level loss.
    eval_levels : int
        Noise levels of that evaluation, log-spaced in ``[s_min, s_max]``.
    eval_size : int
        Images of the evaluation (the first ones of the training set).
    clip : float
        Global gradient-norm clip.
    """

    steps: int = 2000
    batch: int = 128
    lr: float = 2e-3
    warmup: int = 200
    ema_decay: float = 0.999
    s_min: float = 0.005
    s_max: float = 20.0
    level_law: str = "log_uniform"
    log_mean: float = -1.2
    log_std: float = 1.2
    seed: int = 0
    eval_every: int = 500
    eval_levels: int = 12
    eval_size: int = 256
    clip: float = 1.0

    def __post_init__(self):
        for name in ("steps", "batch", "eval_every", "eval_levels", "eval_size"):
            object.__setattr__(self, name, _int(getattr(self, name), name, 1))
        object.__setattr__(self, "warmup", _int(self.warmup, "warmup", 0))
        object.__setattr__(self, "seed", _int(self.seed, "seed", 0))
        for name in ("lr", "s_min", "s_max", "clip", "log_std"):
            object.__setattr__(self, name, _positive(getattr(self, name), name))
        if self.level_law not in LEVEL_LAWS:
            raise ValueError(f"level_law must be one of {LEVEL_LAWS}; got {self.level_law!r}")
        mean = self.log_mean
        if isinstance(mean, bool) or not isinstance(mean, numbers.Real):
            raise TypeError(f"log_mean must be a real number; got {mean!r}")
        if not math.isfinite(mean):
            raise ValueError(f"log_mean must be finite; got {mean!r}")
        object.__setattr__(self, "log_mean", float(mean))
        if self.s_min > self.s_max:
            raise ValueError(f"s_min must be <= s_max; got {self.s_min} > {self.s_max}")
        decay = self.ema_decay
        if isinstance(decay, bool) or not isinstance(decay, numbers.Real):
            raise TypeError(f"ema_decay must be a real number; got {decay!r}")
        if not 0 <= decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1); got {decay!r}")
        object.__setattr__(self, "ema_decay", float(decay))


def to_json(net, train):
    """The two configurations as one JSON string (sorted keys: a stable cache key)."""
    return json.dumps({"net": asdict(net), "train": asdict(train)}, sort_keys=True)


def from_json(text):
    """Inverse of :func:`to_json`: ``(NetConfig, TrainConfig)``."""
    raw = json.loads(text)
    return NetConfig(**raw["net"]), TrainConfig(**raw["train"])
