"""Which statistic should ``auto``'s rule test: validation accuracy (0/1 per sample) or the
probe's log-likelihood of the true class (continuous, so a paired comparison has more power)?

On one dataset, per keep fraction, every candidate of ``auto`` is judged on the validation split
by both statistics (same subsets, same draws, same max-type bootstrap), and trained on for the
test split (the bench's exact probe, seeds 0..seeds-1). It prints what each rule chooses and the
test accuracy of that choice against random's. The test split never takes part in a choice.

    python benchmarks/auto_rule.py --data animal-mnist --output /tmp/rule-am           # the demo's data
    python benchmarks/auto_rule.py --data mnist --train-per-class 1000 --output /tmp/rule-mnist
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from dlcprune.bench import bench_data
from dlcprune.data import holdout_split, load_dataset
from dlcprune.demo import demo_split
from dlcprune.methods import SelectionInputs
from dlcprune.methods.auto import Auto
from dlcprune.methods.judge import simultaneous
from dlcprune.methods.select import KEEP_GRID
from dlcprune.models import load_encoder
from dlcprune.scoring import extract_features, score_dlc
from dlcprune.training import train_linear_probe
from dlcprune.training.probe import fit_softmax


def judged(judge, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M,) correctness and (M,) log-likelihood of the true class of the judge's probe on ``kept``."""
    judge.fits += 1
    w, b = fit_softmax(judge.x[kept], judge.labels[kept], num_classes=judge.num_classes, l2=judge.l2,
                       max_iter=judge.max_iter, init=judge._start)
    logits = judge.v @ w.T + b
    loglik = torch.log_softmax(logits.double(), 1)[torch.arange(len(judge.val_labels)), torch.as_tensor(judge.val_labels)]
    return (logits.argmax(1).numpy() == judge.val_labels), loglik.numpy()


def rule(stat: dict[str, np.ndarray], *, alpha: float = 0.1, studentized: bool = False) -> tuple[str, float]:
    """auto's rule on any per-sample statistic: the best candidate if its simultaneous lower bound > 0.
    ``studentized``: each candidate's bootstrap error in units of its own spread (max-type, as in
    Romano-Wolf / Hansen's SPA), and the best of those whose bound is above zero."""
    gains, errors = simultaneous(stat, "random", rounds=2000, seed=0)
    labels = list(gains)
    if not studentized:
        best = max(gains, key=gains.get)
        bound = gains[best] - float(np.quantile(errors.max(0), 1 - alpha))
        return (best if bound > 0 else "random"), bound
    sd = errors.std(1).clip(1e-12)
    q = float(np.quantile((errors / sd[:, None]).max(0), 1 - alpha))
    bounds = {label: gains[label] - q * sd[i] for i, label in enumerate(labels)}
    proven = [label for label in labels if bounds[label] > 0]
    if not proven:
        best = max(bounds, key=bounds.get)
        return "random", bounds[best]
    best = max(proven, key=gains.get)
    return best, bounds[best]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="animal-mnist", choices=["animal-mnist", "mnist"])
    p.add_argument("--train-per-class", type=int, default=None, help="default: 300 (the demo's) / 1000 (MNIST)")
    p.add_argument("--test-per-class", type=int, default=200)
    p.add_argument("--levels", type=int, default=20)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--keep", default=",".join(f"{k:g}" for k in KEEP_GRID))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--output", required=True)
    return p.parse_args()


def main() -> None:
    a = parse_args()
    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    if a.data == "animal-mnist":
        train, test = demo_split(train_per_class=a.train_per_class or 300, test_per_class=a.test_per_class)
    else:
        train, test, _ = bench_data(load_dataset("mnist"), load_dataset("mnist-test"),
                                    train_per_class=a.train_per_class or 1000, test_per_class=a.test_per_class)
    encoder = load_encoder("efficientnet_lite0", image_size=a.image_size)
    result = score_dlc(encoder, train, levels=a.levels, step=0.05, checkpoint_dir=out / "partial")
    test_z = extract_features(encoder, test, description="test features")
    pool, val = holdout_split(train.labels, fraction=0.2, seed=0)
    inputs = SelectionInputs(labels=train.labels[pool], features=result.features[pool], dlc_scores=result.scores[pool],
                             validation=(result.features[val], train.labels[val]))
    auto = Auto().fit(inputs)
    c = train.num_classes
    test_acc = lambda kept: train_linear_probe(inputs.features[kept], inputs.labels[kept],
                                               num_classes=c).accuracy(test_z, test.labels)
    rows = []
    for keep in [float(k) for k in a.keep.split(",")]:
        correct, loglik, tested = {}, {}, {}
        for label in ["random", *auto._labels(keep)]:
            method = auto._candidate(label, "pool")
            draws = range(auto.trials) if method.seeded else range(1)
            subsets = [method.select(keep=keep, seed=d) for d in draws]
            judged_draws = [judged(auto.judge_, s) for s in subsets]
            correct[label] = np.stack([j[0] for j in judged_draws])
            loglik[label] = np.stack([j[1] for j in judged_draws])
            tested[label] = float(np.mean([test_acc(s) for s in subsets[:a.seeds]]))
        np.savez(out / f"judged_{keep:g}.npz", **{f"correct:{k}": v for k, v in correct.items()},
                 **{f"loglik:{k}": v for k, v in loglik.items()})
        by_acc, acc_bound = rule(correct)
        by_ll, ll_bound = rule(loglik)
        by_sacc, sacc_bound = rule(correct, studentized=True)
        by_sll, sll_bound = rule(loglik, studentized=True)
        greedy = max(correct, key=lambda k: correct[k].mean())
        row = {"keep": keep, "accuracy_rule": by_acc, "accuracy_bound": acc_bound, "loglik_rule": by_ll,
               "loglik_bound": ll_bound, "studentized_accuracy_rule": by_sacc,
               "studentized_accuracy_bound": sacc_bound, "studentized_loglik_rule": by_sll,
               "studentized_loglik_bound": sll_bound, "greedy": greedy, "auto_now": auto.decide(keep).chosen,
               "validation_accuracy": {k: float(v.mean()) for k, v in correct.items()},
               "validation_loglik": {k: float(v.mean()) for k, v in loglik.items()}, "test_accuracy": tested}
        rows.append(row)
        print(f"keep {keep:.0%}: accuracy rule {by_acc} ({tested[by_acc] - tested['random']:+.4f} test), "
              f"log-lik rule {by_ll} ({tested[by_ll] - tested['random']:+.4f} test), "
              f"studentized: accuracy {by_sacc} ({tested[by_sacc] - tested['random']:+.4f}), "
              f"log-lik {by_sll} ({tested[by_sll] - tested['random']:+.4f}), greedy {greedy} "
              f"({tested[greedy] - tested['random']:+.4f}); auto today {row['auto_now']}", flush=True)
    (out / "rule.json").write_text(json.dumps(rows, indent=1))
    mean_gain = lambda key: 100 * np.mean([r["test_accuracy"][r[key]] - r["test_accuracy"]["random"] for r in rows])
    worst = lambda key: 100 * min(r["test_accuracy"][r[key]] - r["test_accuracy"]["random"] for r in rows)
    for key in ("accuracy_rule", "loglik_rule", "studentized_accuracy_rule", "studentized_loglik_rule", "greedy"):
        print(f"{key}: test gain over random, mean over {len(rows)} keep fractions {mean_gain(key):+.2f} points, "
              f"worst {worst(key):+.2f}")
    always = [m for m in rows[0]["test_accuracy"] if all(m in r["test_accuracy"] for r in rows)]
    for label in always:
        print(f"always {label}: {mean_gain_label(rows, label):+.2f} points over random on test")


def mean_gain_label(rows: list[dict], label: str) -> float:
    return 100 * float(np.mean([r["test_accuracy"][label] - r["test_accuracy"]["random"] for r in rows]))


if __name__ == "__main__":
    main()
