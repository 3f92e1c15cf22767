"""Trained denoisers: bias-free convolutional nets in JAX, in the score-model protocol.

Imported only on demand (``import numdiff.learn``): ``import numdiff`` never
imports JAX. See docs/learn.md.
"""

from numdiff.learn.config import NetConfig, TrainConfig
from numdiff.learn.training import TrainedNet, load, train
from numdiff.learn.wrapper import NetworkScore

__all__ = ["NetConfig", "NetworkScore", "TrainConfig", "TrainedNet", "load", "train"]
