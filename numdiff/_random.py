"""Random-number arguments: every ``rng`` a user passes becomes a Generator here,
with one error message naming ``rng``, and a run split in chunks gets one
independent child stream per chunk."""

import numbers

import numpy as np


def as_generator(rng):
    """``rng`` as a :class:`numpy.random.Generator`, or an error naming ``rng``.

    Accepted: None, a non-negative int or a sequence of them, a SeedSequence,
    a BitGenerator, a Generator, or a legacy :class:`numpy.random.RandomState`.
    A RandomState seeds a new Generator from four 32-bit words drawn from it:
    its own bit generator has no seed sequence, so the per-chunk noise streams
    could not be spawned from it, and drawing advances it as a user of a
    stateful generator expects.
    """
    if isinstance(rng, np.random.RandomState):
        return np.random.default_rng(rng.randint(0, 2**32, size=4, dtype=np.uint64))
    if isinstance(rng, (list, tuple, np.ndarray)):
        seeds = np.asarray(rng) if len(rng) else np.zeros(0, dtype=bool)
        if seeds.ndim != 1 or seeds.dtype.kind not in "iu" or (seeds < 0).any():
            raise ValueError(f"rng as a sequence must hold non-negative ints; got {rng!r}")
        return np.random.default_rng(seeds)
    if isinstance(rng, bool) or not (
        rng is None
        or isinstance(rng, (numbers.Integral, np.random.Generator, np.random.BitGenerator,
                            np.random.SeedSequence))
    ):
        raise TypeError(
            "rng must be None, a non-negative int (or a sequence of them), a numpy "
            f"Generator, BitGenerator, SeedSequence or RandomState; got {rng!r}"
        )
    if isinstance(rng, numbers.Integral) and rng < 0:
        raise ValueError(f"rng must be a non-negative int seed; got {rng!r}")
    return np.random.default_rng(rng)


def spawn_streams(rng, count):
    """``count`` independent child generators of ``rng`` (one noise stream per chunk)."""
    try:
        return rng.spawn(count)
    except TypeError:
        # A bit generator without a seed sequence (e.g. one taken from a
        # RandomState) cannot spawn: seed a sequence from the generator itself.
        seq = np.random.SeedSequence(rng.integers(0, 2**32, size=4, dtype=np.uint64).tolist())
        return [np.random.default_rng(child) for child in seq.spawn(count)]
