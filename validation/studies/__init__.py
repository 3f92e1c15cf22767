"""The registry of studies, in report order: name -> :class:`validation.study.Study`."""

# The orders study lives with the measurements it wraps, in the package validation.orders.
from ..orders import study as orders
from . import (
    audit,
    denoiser_geometry,
    early_stopping,
    exact_reference,
    figures,
    generalisation,
    memorization,
    no_early_stopping,
    scale,
    score_matching,
    stable_minima,
    step_size_memorization,
    trained_denoisers,
)

STUDIES = {
    s.name: s
    for s in (
        early_stopping.STUDY,
        no_early_stopping.STUDY,
        memorization.STUDY,
        figures.STUDY,
        orders.STUDY,
        exact_reference.STUDY,
        score_matching.STUDY,
        denoiser_geometry.STUDY,
        stable_minima.STUDY,
        step_size_memorization.STUDY,
        scale.STUDY,
        generalisation.STUDY,
        trained_denoisers.STUDY,
        audit.STUDY,
    )
}
