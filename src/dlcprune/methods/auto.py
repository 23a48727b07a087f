"""``auto``: choose, per keep fraction, among candidate methods on a validation split, and keep
random unless a candidate is shown to beat it; ``flexrand-auto``: FlexRand's gamma chosen the same way.

The rule (``auto``). For keep fraction b, every candidate selects from the selection pool (seeded
candidates ``trials`` times, seeds 0..trials-1; deterministic ones once), a linear probe
(``ProbeJudge``) is trained on each subset and scored on the validation split, and random does the
same. The candidate with the best mean validation accuracy replaces random only if its gain over
random stays above zero at the simultaneous one-sided level 1 - ``alpha`` (default 90%) over all
candidates (a max-type paired bootstrap over validation samples and draws: it accounts for the
winner being the best of k); otherwise the choice is random. The verdict states the chosen method's
gain over random with its simultaneous 95% interval (``judge.verdict_line``: "beats random" only
when the whole interval is above zero) and its distance to the probe trained on the whole pool.

Where the final selection is drawn from: ``SelectionInputs.validation`` given (the bench), the
validation split is external and the selection stays within the pool; otherwise a stratified
``val_fraction`` of each class is held out only to choose and judge, and the chosen method then
selects from the WHOLE set.

Candidates: any registered method name; ``flexrand`` stands for its gamma grid {b/2, 0.5, 1 - b/2},
whose limits are DLC top-K ``easy`` (all of the budget from the easiest) and ``hard``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..errors import DlcpruneError
from ..registry import unknown_name_message
from ..selection import FlexRand, check_keep
from .base import METHODS, Method, SelectionInputs, make_method
from .dlc import DlcMethod
from .judge import Estimate, ProbeJudge, estimate, signed_points, simultaneous, verdict_line

DEFAULT_CANDIDATES = ("easy", "flexrand", "hard", "herding", "flexrand-herding", "margin")
NOT_CANDIDATES = ("random", "auto", "flexrand-auto")


def gamma_grid(keep: float) -> list[float]:
    """FlexRand's gammas tried at keep b: {b/2, 0.5, 1 - b/2} inside (0, 1), sorted."""
    return sorted({round(g, 6) for g in (keep / 2, 0.5, 1 - keep / 2) if 0.0 < round(g, 6) < 1.0})


def check_candidates(names: list[str] | tuple[str, ...]) -> list[str]:
    """Registered method names other than random/auto, without repeats; raises on anything else."""
    if not names:
        raise DlcpruneError("candidates must name at least one method (random is always compared)")
    for name in names:
        if name in NOT_CANDIDATES:
            raise DlcpruneError(f"{name!r} cannot be a candidate of auto (" + (
                "random is always the reference)" if name == "random" else "it is itself a choice among methods)"))
        if name not in METHODS:
            raise DlcpruneError(unknown_name_message("candidate method", name,
                                                     [m for m in METHODS.names() if m not in NOT_CANDIDATES]))
    return list(dict.fromkeys(names))


@dataclass
class Decision:
    """What auto decided for one keep fraction, with the figures behind it (accuracies are fractions)."""

    keep: float
    chosen: str
    best: str
    validation_accuracy: dict[str, float]
    accuracy: dict[str, Estimate]  # "chosen", "random", "full pool": mean validation accuracy, 95% interval
    gain: Estimate  # chosen - random
    below_full: Estimate  # chosen - full pool
    best_gain_bound: float  # the rule's one-sided lower bound of (best - random)
    verdict: str
    seconds: float
    probe_fits: int = 0

    def as_dict(self) -> dict:
        return {"keep": self.keep, "chosen": self.chosen, "best_candidate": self.best, "verdict": self.verdict,
                "gain_vs_random_points": self.gain.points(), "vs_full_pool_points": self.below_full.points(),
                "validation_accuracy_points": {k: v.points() for k, v in self.accuracy.items()},
                "candidates_validation_accuracy": {k: round(100 * v, 3) for k, v in self.validation_accuracy.items()},
                "rule_lower_bound_points": round(100 * self.best_gain_bound, 3),
                "seconds": round(self.seconds, 3), "probe_fits": self.probe_fits}


class Auto(Method):
    """Per keep fraction, the candidate that beats random on the validation split, else random."""

    name = "auto"

    def __init__(self, candidates: list[str] | tuple[str, ...] = DEFAULT_CANDIDATES, *, fallback: bool = True,
                 trials: int = 6, val_fraction: float = 0.2, alpha: float = 0.1, rounds: int = 2000,
                 seed: int = 0) -> None:
        self.candidates = check_candidates(candidates)
        if trials < 1:
            raise DlcpruneError(f"trials must be at least 1, got {trials}")
        self.fallback, self.trials, self.val_fraction = fallback, trials, val_fraction
        self.alpha, self.rounds, self.seed = alpha, rounds, seed
        self.uses = tuple(dict.fromkeys(["features", *(u for n in self.candidates for u in _uses(n))]))

    def params(self) -> dict:
        return {"candidates": self.candidates, "fallback_to_random": self.fallback, "trials": self.trials,
                "validation_fraction": self.val_fraction, "alpha": self.alpha, "judge": "linear probe"}

    def fit(self, inputs: SelectionInputs) -> "Auto":
        inputs.require("features", self.name)  # its judge, a linear probe, reads them
        if inputs.num_classes < 2:
            raise DlcpruneError(f"{self.name!r} judges each subset by a linear probe's accuracy on the classes, and "
                                "these data have one class: choose the method flexrand, easy, hard or random")
        for name in self.candidates:  # a missing input is named after the candidate that reads it
            for what in _uses(name):
                inputs.require(what, name)
        super().fit(inputs)
        t0 = time.perf_counter()
        if inputs.validation is None:  # hold out a split to choose on, then select from everything
            from ..data.splits import holdout_split

            pool, val = holdout_split(inputs.labels, fraction=self.val_fraction, seed=self.seed)
            self.pool_inputs_ = inputs.subset(pool)
            val_features, val_labels = inputs.features[val], inputs.labels[val]
            self.validation_indices_ = val
        else:
            self.pool_inputs_ = inputs
            val_features, val_labels = inputs.validation
            self.validation_indices_ = None
        self.judge_ = ProbeJudge(self.pool_inputs_.features, self.pool_inputs_.labels, val_features, val_labels,
                                 num_classes=inputs.num_classes)
        self.full_ = self.judge_.correct()[None]
        self._fitted: dict[tuple[str, str], Method] = {}  # (where, label) -> fitted candidate
        self.decisions_: dict[float, Decision] = {}
        self.setup_seconds_ = time.perf_counter() - t0
        return self

    def _candidate(self, label: str, where: str) -> Method:
        """The candidate called ``label`` fitted on the pool (``where="pool"``) or the final set."""
        if self.validation_indices_ is None:  # external validation: the pool is the final set
            where = "pool"
        key = (where, label)
        if key not in self._fitted:
            name, _, gamma = label.partition(" gamma=")
            method = DlcMethod(FlexRand(float(gamma)), "flexrand") if gamma else make_method(name)
            self._fitted[key] = method.fit(self.pool_inputs_ if where == "pool" else self.inputs_)
        return self._fitted[key]

    def _labels(self, keep: float) -> list[str]:
        labels = []
        for name in self.candidates:
            labels += [f"flexrand gamma={g:g}" for g in gamma_grid(keep)] if name == "flexrand" else [name]
        return labels

    def decide(self, keep: float) -> Decision:
        """Choose for ``keep`` (cached): every candidate's validation accuracy, the rule, the verdict."""
        keep = check_keep(keep)
        if keep in self.decisions_:
            return self.decisions_[keep]
        t0, fits0 = time.perf_counter(), self.judge_.fits
        correct = {label: self._correctness(label, keep) for label in ["random", *self._labels(keep)]}
        means = {lab: float(c.mean()) for lab, c in correct.items()}
        gains, errors = simultaneous(correct, "random", rounds=self.rounds, seed=self.seed)
        best = max(gains, key=gains.get)  # ties: the first in candidate order
        worst_error = errors.max(0)
        bound = gains[best] - float(np.quantile(worst_error, 1 - self.alpha))
        chosen = best if (bound > 0 or not self.fallback) else "random"
        e = lambda a, b=None: estimate(a, b, rounds=self.rounds, seed=self.seed)
        gain = Estimate(0.0, 0.0, 0.0) if chosen == "random" else Estimate(
            gains[chosen], gains[chosen] - float(np.quantile(worst_error, 0.975)),
            gains[chosen] + float(np.quantile((-errors).max(0), 0.975)))
        verdict = verdict_line(gain) if chosen != "random" else (
            f"level with random: no candidate's gain over random was proven (best, {best}: "
            f"{signed_points(means[best] - means['random'])} validation points, the rule's lower bound "
            f"{signed_points(bound)}); the selection is random")
        decision = Decision(keep=keep, chosen=chosen, best=best, validation_accuracy=means,
                            accuracy={"chosen": e(correct[chosen]), "random": e(correct["random"]),
                                      "full pool": e(self.full_)},
                            gain=gain, below_full=e(correct[chosen], self.full_), best_gain_bound=bound,
                            verdict=verdict, seconds=time.perf_counter() - t0, probe_fits=self.judge_.fits - fits0)
        self.decisions_[keep] = decision
        return decision

    def _correctness(self, label: str, keep: float) -> np.ndarray:
        """(draws, M) bool: validation correctness of the probes trained on the candidate's subsets."""
        method = self._candidate(label, "pool")
        draws = range(self.trials) if method.seeded else range(1)
        return np.stack([self.judge_.correct(method.select(keep=keep, seed=self.seed + d)) for d in draws])

    def select(self, *, keep: float, seed: int = 0) -> np.ndarray:
        chosen = self.decide(keep).chosen
        return self._candidate(chosen, "final").select(keep=keep, seed=seed)


def _uses(name: str) -> tuple[str, ...]:
    return ("dlc_scores",) if name == "flexrand" else make_method(name).uses


METHODS.register("auto", summary="per keep fraction, the candidate (DLC policies, herding, ...) that beats random on a "
                                  "validation split, else random; with a verdict (recommended)")(Auto)
METHODS.register("flexrand-auto", summary="DLC + FlexRand with gamma chosen per keep fraction on a validation split")(
    lambda: _flexrand_auto())


def _flexrand_auto() -> Auto:
    method = Auto(["flexrand"], fallback=False)
    method.name = "flexrand-auto"
    return method
