"""Histogram thresholds and bimodality tests shared by products that split a scene in two.

Otsu (1979, IEEE SMC 9:62) maximises the between-class variance; Kittler & Illingworth
(1986, Pattern Recognition 19:41) minimise the error of a two-Gaussian fit, which follows
unequal class sizes and spreads better than Otsu. A threshold is only meaningful when the
histogram really has two modes, so the module also fits a two-Gaussian mixture (EM on the
histogram) and reports Ashman's D (Ashman et al. 1994, J. Quant. Anthropol.; used for SAR
water tiles by Chini et al. 2017, IEEE TGRS 55:6975) and whether the fitted mixture has a
valley between its peaks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_EPS = 1e-12


@dataclass(frozen=True)
class GaussianPair:
    """Two-Gaussian mixture fitted to a 1-D sample; component 0 has the lower mean."""

    mean: tuple[float, float]
    std: tuple[float, float]
    weight: tuple[float, float]

    @property
    def ashman_d(self) -> float:
        """Separation of the modes in pooled standard deviations; > 2 means clean separation."""
        return ashman_d(self.mean[0], self.std[0], self.mean[1], self.std[1])

    def valley_ratio(self, *, samples: int = 256) -> float:
        """Lowest mixture density between the two means over the lower of the two peak heights.

        Below 1 the mixture is bimodal; near 0 the modes are cleanly apart.
        """
        x = np.linspace(self.mean[0], self.mean[1], samples)
        pdf = self.pdf(x)
        lower_peak = min(pdf[0], pdf[-1])
        return float(pdf.min() / max(lower_peak, _EPS))

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Mixture density at ``x``."""
        return sum(self.component_pdf(x, k) for k in (0, 1))

    def component_pdf(self, x: np.ndarray, k: int) -> np.ndarray:
        """Weighted density of component ``k`` at ``x``."""
        return self.weight[k] * _normal_pdf(x, self.mean[k], self.std[k])

    def posterior_low(self, x: np.ndarray) -> np.ndarray:
        """Probability that ``x`` belongs to the low component, made monotone in ``x``.

        Outside the two means a Gaussian posterior turns back when the spreads differ;
        clipping ``x`` to the means keeps "darker" from ever meaning "less likely low".
        """
        xc = np.clip(x, self.mean[0], self.mean[1])
        low = self.component_pdf(xc, 0)
        high = self.component_pdf(xc, 1)
        return low / np.maximum(low + high, _EPS)

    def decision_threshold(self) -> float:
        """Value between the means where both weighted components are equally likely."""
        x = np.linspace(self.mean[0], self.mean[1], 2048)
        p = self.posterior_low(x)
        idx = int(np.argmin(np.abs(p - 0.5)))
        return float(x[idx])


def ashman_d(mean1: float, std1: float, mean2: float, std2: float) -> float:
    """Ashman's D = sqrt(2) |m1 - m2| / sqrt(s1^2 + s2^2)."""
    return float(np.sqrt(2.0) * abs(mean1 - mean2) / np.sqrt(std1**2 + std2**2 + _EPS))


def histogram(values: np.ndarray, *, bins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin centres of the finite values (empty arrays when there are none)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.zeros(0), np.zeros(0)
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo + 1e-6
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    return counts.astype(np.float64), 0.5 * (edges[:-1] + edges[1:])


def otsu_threshold(values: np.ndarray, *, bins: int = 256) -> float:
    """Otsu's threshold of the finite values (NaN when fewer than two distinct values)."""
    counts, centres = histogram(values, bins=bins)
    return _otsu_from_hist(counts, centres)


def kittler_illingworth_threshold(values: np.ndarray, *, bins: int = 256) -> float:
    """Kittler-Illingworth minimum-error threshold of the finite values (NaN if undefined)."""
    counts, centres = histogram(values, bins=bins)
    if counts.size < 2 or counts.sum() == 0:
        return float("nan")
    p = counts / counts.sum()
    w0 = np.cumsum(p)
    w1 = 1.0 - w0
    m0 = np.cumsum(p * centres)
    s0 = np.cumsum(p * centres**2)
    mu0 = m0 / np.maximum(w0, _EPS)
    mu1 = (m0[-1] - m0) / np.maximum(w1, _EPS)
    var0 = s0 / np.maximum(w0, _EPS) - mu0**2
    var1 = (s0[-1] - s0) / np.maximum(w1, _EPS) - mu1**2
    floor = (centres[1] - centres[0]) ** 2 / 12.0  # quantisation variance of one bin
    ok = (w0 > _EPS) & (w1 > _EPS) & (var0 > floor) & (var1 > floor)
    if not ok.any():
        return float("nan")
    j = np.full(p.shape, np.inf)
    j[ok] = (
        w0[ok] * np.log(var0[ok])
        + w1[ok] * np.log(var1[ok])
        - 2.0 * (w0[ok] * np.log(w0[ok]) + w1[ok] * np.log(w1[ok]))
    )
    k = int(np.argmin(j))
    return float(0.5 * (centres[k] + centres[min(k + 1, centres.size - 1)]))


def fit_gaussian_pair(
    values: np.ndarray, *, bins: int = 256, iterations: int = 100
) -> GaussianPair | None:
    """Fit two Gaussians to the finite values by EM on their histogram, started from Otsu.

    Returns None when the sample is too small or constant. Working on the histogram keeps
    the cost independent of the number of pixels.
    """
    counts, centres = histogram(values, bins=bins)
    if counts.sum() < 16:
        return None
    t = _otsu_from_hist(counts, centres)
    if not np.isfinite(t):
        return None
    width = centres[1] - centres[0]
    var_floor = max(width**2 / 12.0, 1e-6)
    low = centres <= t
    means, vars_, weights = [], [], []
    total = counts.sum()
    for sel in (low, ~low):
        n = counts[sel].sum()
        if n <= 0:
            return None
        m = float((counts[sel] * centres[sel]).sum() / n)
        means.append(m)
        vars_.append(max(float((counts[sel] * (centres[sel] - m) ** 2).sum() / n), var_floor))
        weights.append(n / total)
    mu, var, w = np.array(means), np.array(vars_), np.array(weights)
    for _ in range(iterations):
        sd = np.sqrt(var)
        z = (centres[None, :] - mu[:, None]) / sd[:, None]
        dens = (w / sd)[:, None] * np.exp(-0.5 * z * z)
        resp = dens / np.maximum(dens.sum(axis=0), _EPS)
        rc = resp * counts
        nk = rc.sum(axis=1)
        if nk.min() <= 0:
            break
        new_mu = (rc * centres).sum(axis=1) / nk
        new_var = np.maximum(
            (rc * (centres[None, :] - new_mu[:, None]) ** 2).sum(axis=1) / nk, var_floor
        )
        shift = float(np.abs(new_mu - mu).max())
        mu, var, w = new_mu, new_var, nk / total
        if shift < 1e-4 * width:
            break
    order = np.argsort(mu)
    mu, var, w = mu[order], var[order], w[order]
    return GaussianPair(
        mean=(float(mu[0]), float(mu[1])),
        std=(float(np.sqrt(var[0])), float(np.sqrt(var[1]))),
        weight=(float(w[0]), float(w[1])),
    )


def refit_to_scene(
    fit: GaussianPair, values: np.ndarray, *, bins: int = 256, iterations: int = 50
) -> GaussianPair:
    """Keep the low (water) component; re-estimate the class shares and the high (land) one.

    A fit borrowed from other dates knows what water looks like, but each date has its own
    land (harvest, soil moisture) and its own share of water. EM with the low component
    held fixed adapts both, so the decision threshold follows this scene's land instead of
    cutting into its dark tail.
    """
    counts, centres = histogram(values, bins=bins)
    if counts.sum() == 0:
        return fit
    width = centres[1] - centres[0] if centres.size > 1 else 1.0
    var_floor = max(width**2 / 12.0, 1e-6)
    w = np.array(fit.weight, dtype=np.float64)
    mu1, var1 = fit.mean[1], fit.std[1] ** 2
    low = _normal_pdf(centres, fit.mean[0], fit.std[0])
    for _ in range(iterations):
        dens = np.stack([w[0] * low, w[1] * _normal_pdf(centres, mu1, np.sqrt(var1))])
        resp = dens / np.maximum(dens.sum(axis=0), _EPS)
        rc = resp * counts
        nk = rc.sum(axis=1)
        if nk[1] <= 0:
            break
        new_mu1 = float((rc[1] * centres).sum() / nk[1])
        var1 = max(float((rc[1] * (centres - new_mu1) ** 2).sum() / nk[1]), var_floor)
        new_w = np.clip(nk / counts.sum(), 1e-4, 1.0)
        done = abs(new_mu1 - mu1) < 1e-4 * width and np.abs(new_w - w).max() < 1e-6
        mu1, w = new_mu1, new_w / new_w.sum()
        if done:
            break
    if mu1 <= fit.mean[0]:
        return fit
    return GaussianPair(
        mean=(fit.mean[0], float(mu1)),
        std=(fit.std[0], float(np.sqrt(var1))),
        weight=(float(w[0]), float(w[1])),
    )


def _otsu_from_hist(counts: np.ndarray, centres: np.ndarray) -> float:
    if counts.size < 2 or counts.sum() == 0:
        return float("nan")
    p = counts / counts.sum()
    w0 = np.cumsum(p)
    w1 = 1.0 - w0
    m0 = np.cumsum(p * centres)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1.0
    between[-1] = -1.0
    k = int(np.argmax(between))
    if between[k] <= 0:
        return float("nan")
    return float(0.5 * (centres[k] + centres[k + 1]))


def _normal_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    std = max(float(std), 1e-9)
    return np.exp(-0.5 * ((np.asarray(x) - mean) / std) ** 2) / (std * np.sqrt(2.0 * np.pi))
