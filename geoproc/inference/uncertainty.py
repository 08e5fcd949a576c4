"""Uncertainty kernels: MC dropout and model ensembles, giving a mean and a spread per pixel.

Why: a single pass hides how sure a model is. MC dropout (Gal & Ghahramani 2016,
"Dropout as a Bayesian approximation", ICML) keeps dropout active for ``passes``
stochastic forward passes; a deep ensemble (Lakshminarayanan et al. 2017, NeurIPS) runs
several independently trained models. Both report, for every regression output, the
mean (``NAME_mean``) and standard deviation (``NAME_std``) across passes, and for every
class output the class of the mean class probabilities (``NAME``) and the standard
deviation of that class's probability (``NAME_std``). Passes are seeded from the batch
seed, so a rerun writes the same bytes.
"""

from __future__ import annotations

import numpy as np

from geoproc.errors import ModelError, UsageError
from geoproc.inference.kernel import ModelKernel, Temporal, fill_masked, valid_mask
from geoproc.products.base import VariableSpec


class _SpreadKernel:
    """Shared reduction: many raw channel stacks -> mean and spread variables."""

    members: list[ModelKernel]

    def _setup(self, first: ModelKernel, label: str) -> None:
        self.card = first.card
        self.name = f"{first.name}-{label}"
        self.version = first.version
        self.inputs = first.inputs
        self.halo = max(m.halo for m in self.members)
        self.temporal: Temporal = first.temporal
        self.bytes_per_pixel = first.bytes_per_pixel
        outputs: list[VariableSpec] = []
        for out, spec in zip(first.card.outputs, first.outputs, strict=True):
            spread = VariableSpec(
                name=f"{out.name}_std",
                dtype="float32",
                units=out.units if out.kind == "regression" else "1",
                long_name=f"standard deviation across passes of {out.long_name}"
                if out.kind == "regression"
                else f"standard deviation across passes of the probability of the {out.name}",
                fill_value=float("nan"),
            )
            if out.kind == "regression":
                mean = VariableSpec(
                    name=f"{out.name}_mean",
                    dtype="float32",
                    units=out.units,
                    long_name=f"mean across passes of {out.long_name}",
                    fill_value=float("nan"),
                )
                outputs += [mean, spread]
            else:
                outputs += [spec, spread]
        self.outputs = tuple(outputs)

    def _reduce(self, stacks: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
        """``stacks``: (passes, B, K, H, W) raw channels."""
        specs = {s.name: s for s in self.outputs}
        result = {}
        for out in self.card.outputs:
            ch = stacks[:, :, list(out.channels)]
            if out.kind == "regression":
                values = ch[:, :, 0]
                mean, std = values.mean(axis=0), values.std(axis=0)
                result[f"{out.name}_mean"] = fill_masked(mean, valid, specs[f"{out.name}_mean"])
            else:
                prob = np.exp(ch - ch.max(axis=2, keepdims=True))
                prob /= prob.sum(axis=2, keepdims=True)
                winner = prob.mean(axis=0).argmax(axis=1)
                classes = np.asarray([v for v, _ in out.classes])
                picked = np.take_along_axis(prob, winner[None, :, None], axis=2)[:, :, 0]
                std = picked.std(axis=0)
                result[out.name] = fill_masked(classes[winner], valid, specs[out.name])
            result[f"{out.name}_std"] = fill_masked(std, valid, specs[f"{out.name}_std"])
        return result

    def provenance(self) -> dict[str, str]:
        prov = self.members[0].provenance()
        prov["uncertainty"] = self.name.rsplit("-", 1)[-1]
        prov["ensemble_sha256"] = " ".join(m.card.sha256 for m in self.members)
        return prov


class MCDropoutKernel(_SpreadKernel):
    """``passes`` stochastic forward passes of one model with dropout active."""

    def __init__(self, model: ModelKernel, *, passes: int = 8) -> None:
        if passes < 2:
            raise UsageError(f"MC dropout needs at least 2 passes, got {passes}; raise --passes")
        self.members = [model]
        self.passes = passes
        self._setup(model, "mcdropout")
        self.bytes_per_pixel = model.bytes_per_pixel + 4 * passes * 4

    def __call__(self, batch: np.ndarray, *, seed: int) -> dict[str, np.ndarray]:
        model = self.members[0]
        stacks = np.stack(
            [model.forward(batch, stochastic=True, seed=seed + p) for p in range(self.passes)]
        )
        return self._reduce(stacks, valid_mask(batch, self.temporal))


class EnsembleKernel(_SpreadKernel):
    """Several models with the same inputs and outputs, one deterministic pass each."""

    def __init__(self, models: list[ModelKernel]) -> None:
        if len(models) < 2:
            raise UsageError("an ensemble needs at least 2 models; name more models")
        first = models[0]
        for m in models[1:]:
            if m.inputs != first.inputs or [o.name for o in m.card.outputs] != [
                o.name for o in first.card.outputs
            ]:
                raise ModelError(
                    f"model {m.card.key} has other inputs or outputs than {first.card.key}; "
                    "an ensemble needs models with the same inputs and outputs"
                )
        self.members = list(models)
        self._setup(first, "ensemble")

    def __call__(self, batch: np.ndarray, *, seed: int) -> dict[str, np.ndarray]:
        stacks = np.stack([m.forward(batch) for m in self.members])
        return self._reduce(stacks, valid_mask(batch, self.temporal))
