"""Per-pixel prior probability of water from the cube's own history, and Bayes' rule with it.

Method: a scene-wide two-Gaussian split (`flood_sar`) weighs water by its share of the
scene, which is a few percent; a 2-3 px river, blurred towards land by speckle filtering,
then falls on the land side of a threshold placed next to the water mode. Bayesian flood
mapping replaces the scene share by a per-pixel prior from what is known about the pixel
(Giustarini et al. 2016, IEEE TGRS 54:2417, "Probabilistic flood mapping using synthetic
aperture radar data"; GFM, Salamon et al. 2021, uses a reference water layer the same way),
here the water occurrence over the cube's clear history (Pekel et al. 2016, Nature 540:418)
with a Beta(1, 1) (Laplace) estimate so that few looks give a modest prior. Floods add
water to land, so the prior is only ever *raised* above the scene share, never lowered:
a pixel with no water history keeps exactly the split's behaviour, and the detection of
new (flood) water is unchanged. The posterior is P(w | x) = pi f_w(x) / (pi f_w(x) +
(1 - pi) f_l(x)) with the fitted class densities f, evaluated between the two means so
that darker never means less likely water.
"""

from __future__ import annotations

import numpy as np

from geoproc.products.thresholds import GaussianPair

_EPS = 1e-12
MAX_PRIOR = 0.95
"""A history never makes water certain: a permanent lake may still freeze, dry or drain."""


def occurrence_prior(
    water: np.ndarray, *, min_observations: int = 2, max_prior: float = MAX_PRIOR
) -> np.ndarray:
    """Prior water probability per pixel from a (time, y, x) stack of 0/1/NaN decisions.

    ``(hits + 1) / (n + 2)`` (Laplace's rule of succession), capped at ``max_prior``; NaN
    where fewer than ``min_observations`` valid looks exist (no history: no prior).
    """
    w = np.asarray(water, dtype=np.float32)
    if w.ndim == 2:
        w = w[None]
    n = np.isfinite(w).sum(axis=0)
    hits = np.nansum(w, axis=0)
    prior = np.minimum((hits + 1.0) / (n + 2.0), max_prior)
    return np.where(n >= max(min_observations, 1), prior, np.nan).astype(np.float32)


def posterior_with_prior(db: np.ndarray, fit: GaussianPair, prior: np.ndarray | None) -> np.ndarray:
    """Water posterior of each pixel from the fitted class densities and its own prior.

    Where ``prior`` is NaN or below the fit's water share, the fit's share is used, so this
    equals ``fit.posterior_low`` there. NaN ``db`` stays NaN.
    """
    x = np.asarray(db, dtype=np.float64)
    scene = float(fit.weight[0])
    if prior is None:
        pi = np.full(x.shape, scene)
    else:
        p = np.asarray(prior, dtype=np.float64)
        pi = np.where(np.isfinite(p), np.maximum(p, scene), scene)
    xc = np.clip(x, fit.mean[0], fit.mean[1])
    low = pi * _normal_pdf(xc, fit.mean[0], fit.std[0])
    high = (1.0 - pi) * _normal_pdf(xc, fit.mean[1], fit.std[1])
    post = low / np.maximum(low + high, _EPS)
    return np.where(np.isfinite(x), post, np.nan).astype(np.float32)


def _normal_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    s = max(float(std), 1e-9)
    return np.exp(-0.5 * ((x - mean) / s) ** 2) / s
