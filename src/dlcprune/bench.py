"""The benchmark runner: methods x keep fractions x seeds on one dataset and encoder.

Protocol (as the paper, with a linear probe as the trainer): 20% of the training set (stratified,
seeded) is the validation split, held out from selection and training and used only by the
methods that choose on it (``auto``, ``flexrand-auto``); every method selects from the same remaining pool; a
logistic-regression probe is trained on the frozen unmasked features of the kept samples and
scored on the test set. Each finished cell is saved at once, so a killed run resumes where it
stopped; a results folder made with other settings is refused.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import files
from .data import Dataset, holdout_split
from .errors import DlcpruneError
from .models import Encoder
from .artifacts import write_scores
from .progress import bar, console
from .scoring import score_dlc
from .scoring.dlc import extract_features
from .methods import METHODS, Method, SelectionInputs, make_method
from .methods.auto import Auto, check_candidates
from .methods.select import KEEP_GRID
from .registry import unknown_name_message
from .results import FULL, markdown_table, plot_gap_to_random, read_rows, write_rows
from .training import DynamicsRecorder, Trajectory, finetune, record_head_dynamics, train_linear_probe



@dataclass
class BenchConfig:
    methods: list[str] = field(default_factory=lambda: ["random", "easy", "hard", "flexrand", "flexrand-auto", "auto"])
    keeps: list[float] = field(default_factory=lambda: list(KEEP_GRID))
    seeds: int = 3
    levels: int | str = 50  # or "auto" (adaptive, at most 50)
    step: float = 0.02
    val_fraction: float = 0.2
    batch_size: int = 64
    dynamics: str = "head"  # who records training dynamics: "head" (linear head on features) or "full"
    dynamics_epochs: int = 20
    candidates: list[str] | None = None  # auto's candidates (None: its defaults)


def run_bench(encoder: Encoder, train: Dataset, test: Dataset, *, config: BenchConfig,
              output: Path, progress: bool = True) -> list[dict]:
    """Run (or resume) every cell; returns the result rows. Writes ``output/results.csv``,
    ``results.md`` and ``gap_to_random.png`` (plus the scores in ``output/scores``).

    Times per cell: ``model_s`` is what the method's model cost (DLC scoring; the plain feature
    pass; a probe; the training run that recorded the dynamics), ``select_s`` the selection itself.
    """
    for m in config.methods:
        if m not in METHODS:
            raise DlcpruneError(unknown_name_message("method", m, METHODS.names()))
    if config.candidates is not None:
        check_candidates(config.candidates)
    if config.dynamics not in ("head", "full"):
        raise DlcpruneError(f"dynamics must be head or full, got {config.dynamics!r}")
    cells_only = {"methods", "keeps", "seeds"}  # adding cells to a finished run is fine
    identity = {**{k: v for k, v in asdict(config).items() if k not in cells_only}, "model": encoder.name,
                "weights_sha256": encoder.weights_sha256, **encoder.preprocessing(),
                "train": train.fingerprint(), "test": test.fingerprint()}
    _check_identity(output, identity)

    auto = config.levels == "auto"
    result = score_dlc(encoder, train, levels=50 if auto else config.levels, step=config.step, adaptive=auto,
                       batch_size=config.batch_size,
                       checkpoint_dir=output / "scores" / ".partial", progress=progress)
    write_scores(output / "scores", result, dataset=train, encoder=encoder, total_s=_dlc_seconds(result.timings))
    test_z = _cached(output / "test_features.npy", lambda: extract_features(
        encoder, test, batch_size=config.batch_size, description="test features", progress=progress).numpy())
    pool, val = holdout_split(train.labels, fraction=config.val_fraction, seed=0)
    inputs = SelectionInputs(labels=train.labels[pool], features=result.features[pool], dlc_scores=result.scores[pool],
                             validation=(result.features[val], train.labels[val]))
    upstream = {"dlc_scores": _dlc_seconds(result.timings), "features": result.timings["plain_pass_s"]}

    rows = read_rows(output / "results.csv")
    record = lambda: _dynamics(encoder, train, pool, inputs, config, output, progress)
    cells = _plan(config, rows, inputs, upstream, record)
    if not any(r["method"] == FULL for r in rows):  # the reference every method is measured against
        t = time.perf_counter()
        probe = train_linear_probe(inputs.features, inputs.labels, num_classes=train.num_classes)
        rows.append({"method": FULL, "keep": 1.0, "seed": 0, "accuracy": probe.accuracy(test_z, test.labels),
                     "kept": len(inputs.labels), "choice": "", "model_s": round(upstream["features"], 3),
                     "select_s": 0.0, "train_s": round(time.perf_counter() - t, 4)})
        write_rows(output / "results.csv", rows)
    with bar("benchmark cells", len(cells), enabled=progress) as advance:
        for cell in cells:
            t = time.perf_counter()
            kept = cell.method.select(keep=cell.keep, seed=cell.seed)
            select_s = time.perf_counter() - t
            t = time.perf_counter()
            probe = train_linear_probe(inputs.features[kept], inputs.labels[kept], num_classes=train.num_classes)
            auto = isinstance(cell.method, Auto)
            rows.append({"method": cell.name, "keep": cell.keep, "seed": cell.seed,
                         "accuracy": probe.accuracy(test_z, test.labels), "kept": len(kept),
                         "choice": cell.method.decide(cell.keep).chosen if auto else "",
                         "model_s": round(cell.model_s, 3), "select_s": round(select_s, 4),
                         "train_s": round(time.perf_counter() - t, 4)})
            write_rows(output / "results.csv", rows)
            if auto:
                _record_decision(output, cell.name, cell.method.decide(cell.keep))
            advance()
    choice = {c.name: round(c.method.setup_seconds_ + sum(d.seconds for d in c.method.decisions_.values()), 3)
              for c in cells if isinstance(c.method, Auto)}
    _summarise_run(output, rows, upstream, result.timings, config, choice)
    return rows


def _record_decision(output: Path, method: str, decision) -> None:
    """``verdicts.json``: per auto method and keep fraction, what it chose on validation and why."""
    path = output / "verdicts.json"
    verdicts = files.read_json(path) if path.exists() else {}
    verdicts.setdefault(method, {})[f"{decision.keep:g}"] = decision.as_dict()
    files.write_json(path, verdicts)


@dataclass
class _Cell:
    name: str
    method: Method
    keep: float
    seed: int
    model_s: float


def _plan(config: BenchConfig, rows: list[dict], inputs: SelectionInputs, upstream: dict[str, float],
          record_dynamics) -> list[_Cell]:
    """The cells still to run, with each method fitted once (its fit time + what it reads = model_s).
    A method whose selection ignores the seed runs seed 0 only."""
    done = {(r["method"], float(r["keep"]), int(r["seed"])) for r in rows}
    cells = []
    for name in config.methods:
        method = Auto(config.candidates) if name == "auto" and config.candidates else make_method(name)
        todo = [(k, seed) for k in config.keeps for seed in range(config.seeds)
                if (name, k, seed) not in done and (seed == 0 or method.seeded)]
        if not todo:
            continue
        if "dynamics" in method.uses and inputs.dynamics is None:
            inputs.dynamics = record_dynamics()
            upstream["dynamics"] = inputs.dynamics.seconds + (upstream["features"] if config.dynamics == "head" else 0.0)
        t = time.perf_counter()
        method.fit(inputs)
        model_s = time.perf_counter() - t + sum(upstream[u] for u in method.uses)
        cells += [_Cell(name, method, k, seed, model_s) for k, seed in todo]
    return cells


def _summarise_run(output: Path, rows: list[dict], upstream: dict[str, float], dlc_timings: dict,
                   config: BenchConfig, choice: dict[str, float]) -> None:
    path = output / "timings.json"
    choice = {**(files.read_json(path).get("choice_s", {}) if path.exists() else {}), **choice}
    files.write_json(path, {"dlc_score_s": upstream["dlc_scores"], **dlc_timings,
                            **({"dynamics_s": upstream["dynamics"]} if "dynamics" in upstream else {}),
                            **({"choice_s": choice} if choice else {})})
    files.write_text(output / "results.md", markdown_table(rows))
    plot_gap_to_random(rows, output / "gap_to_random.png")
    console.print(f"benchmark results in {output}/ (results.csv, results.md, gap_to_random.png)")
    if "dynamics" in upstream:
        console.print(f"training-based score time / DLC score time = {upstream['dynamics'] / upstream['dlc_scores']:.2f} "
                      f"({upstream['dynamics']:.1f} s for {config.dynamics_epochs} epochs of {config.dynamics} training "
                      f"vs {upstream['dlc_scores']:.1f} s for {config.levels} DLC levels)")
    for name, seconds in choice.items():
        console.print(f"{name}: choosing on the validation split took {seconds:.1f} s = "
                      f"{seconds / upstream['dlc_scores']:.2f} x the DLC scoring time")


def _dlc_seconds(timings: dict) -> float:
    """DLC's own time (plain pass, thresholds, masked levels), also when resumed from a checkpoint."""
    return float(timings.get("plain_pass_s", 0) + timings.get("thresholds_s", 0) + timings.get("masking_loop_s", 0))


def _dynamics(encoder: Encoder, train: Dataset, pool: np.ndarray, inputs: SelectionInputs, config: BenchConfig,
              output: Path, progress: bool) -> Trajectory:
    """Training dynamics on the pool, recorded once and cached in ``output/dynamics.npz``."""
    path = output / "dynamics.npz"
    if path.exists():
        return Trajectory.load(path)
    if config.dynamics == "head":
        t = record_head_dynamics(inputs.features, inputs.labels, num_classes=train.num_classes,
                                 epochs=config.dynamics_epochs)
    else:
        recorder = DynamicsRecorder(inputs.labels, config.dynamics_epochs)
        r = finetune(encoder, train, train.subset(pool[:1]), indices=pool, epochs=config.dynamics_epochs, lr=0.01,
                     recorder=recorder, progress=progress)
        t = recorder.trajectory(seconds=r.seconds, trainer="full fine-tuning", parameters=r.parameters)
    t.save(path)
    return t


def _check_identity(output: Path, identity: dict) -> None:
    path = output / "bench.json"
    if path.exists():
        old = files.read_json(path)
        for key in sorted(set(old) & set(identity)):
            if old.get(key) != identity.get(key):
                raise DlcpruneError(f"{output} holds a benchmark with {key} = {old.get(key)!r}, not {identity.get(key)!r}; "
                                    "use another --output to keep results apart")
        if set(identity) - set(old):  # settings that a newer dlcprune added: record them
            files.write_json(path, {**old, **identity})
    else:
        files.write_json(path, identity)


def _cached(path: Path, compute) -> np.ndarray:
    if path.exists():
        return np.load(path)
    value = compute()
    files.save_npy(path, value)
    return value
