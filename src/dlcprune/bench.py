"""The benchmark runner: methods x keep fractions x seeds on one dataset and encoder.

Protocol (as the paper): 20% of the training set (stratified, seeded) is the validation split,
held out from selection and training and used only by the methods that choose on it (``auto``,
``flexrand-auto``); every method selects from the same remaining pool; a model is trained on the
kept samples and scored on the test set. The trainer is a logistic-regression probe on the frozen
unmasked features (``trainer="probe"``, cheap) or full fine-tuning of the encoder (``"full"``, the
paper's protocol; a fine-tuning recipe from ``training.RECIPES``), where the seed also seeds the
training, so every method runs every seed, the full pool is fine-tuned once per seed, and its seed-0
run records the training dynamics that forgetting / EL2N / ... read (its time charged to them).
Each finished cell is saved at once and a fine-tuning cell checkpoints every epoch, so a killed run
resumes where it stopped with the same numbers; a results folder made with other settings is refused.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from . import files
from .data import Dataset, holdout_split, stratified_split
from .errors import DlcpruneError
from .models import Encoder, ImageEncoder
from .artifacts import write_scores
from .progress import bar, console
from .scoring import extract_features, score_dlc
from .methods import METHODS, Method, SelectionInputs, make_method
from .methods.auto import Auto, check_candidates
from .methods.select import KEEP_GRID
from .registry import unknown_name_message
from .results import (FULL, gaps_to_random, markdown_table, plot_gap_to_random, plot_learning_curve, plot_time_to_accuracy, read_rows,
                      time_to_accuracy, write_rows)
from .training import RECIPES, DynamicsRecorder, FinetuneResult, Recipe, Trajectory, finetune, record_head_dynamics, train_linear_probe
from .training import recipe as named_recipe



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
    dynamics_epochs: int = 20  # of the head / of a separate fine-tuning run (probe trainer only)
    candidates: list[str] | None = None  # auto's candidates (None: its defaults)
    trainer: str = "probe"  # "probe" or "full" (fine-tuning with ``recipe``)
    recipe: Recipe | None = None  # with trainer "full"; None: RECIPES["cpu"]


FULL_DYNAMICS = "the seed-0 full-pool fine-tuning run"


def bench_data(data: Dataset, test: Dataset | None = None, *, test_fraction: float = 0.2,
               train_per_class: int | None = None, test_per_class: int | None = None
               ) -> tuple[Dataset, Dataset, np.ndarray | None]:
    """(train, test, positions of train in ``data`` or None when train is ``data`` itself).

    Without ``test``, ``test_fraction`` of each class of ``data`` is held out (seed 0). ``*_per_class``:
    a class-stratified subset of that many samples per class (seed 0) of each side.
    """
    if test is not None and test.class_names != data.class_names:
        raise DlcpruneError(f"the test set has classes {test.class_names[:5]}..., the training set "
                            f"{data.class_names[:5]}...; they must be the same classes")
    positions = None
    if test is None:
        positions, held = holdout_split(data.labels, fraction=test_fraction, seed=0, option="--test-fraction")
        test = data.subset(held, source=f"{data.source} test")
    if train_per_class is not None:
        base = np.arange(len(data)) if positions is None else positions
        positions = base[stratified_split(data.labels[base], {"train": train_per_class}, seed=0)["train"]]
    if test_per_class is not None:
        test = test.subset(stratified_split(test.labels, {"test": test_per_class}, seed=0)["test"],
                           source=f"{test.source} ({test_per_class} per class)")
    if positions is None:
        return data, test, None
    what = f"{train_per_class} per class" if train_per_class is not None else "train"
    return data.subset(positions, source=f"{data.source} {what}"), test, positions


def run_bench(encoder: Encoder, train: Dataset, test: Dataset, *, config: BenchConfig,
              output: Path, progress: bool = True) -> list[dict]:
    """Run (or resume) every cell; returns the result rows. Writes ``output/results.csv``,
    ``results.md`` and ``gap_to_random.png`` (plus the scores in ``output/scores``; with the full
    trainer also ``curves.json``, ``learning_curve.png``, ``time_to_accuracy.png/.json``).

    Times per cell: ``model_s`` is what the method's model cost (DLC scoring; the plain feature
    pass; a probe; the training run that recorded the dynamics), ``select_s`` the selection itself,
    ``train_s`` the training on the kept samples (fine-tuning: the epochs, not the test passes).
    """
    config = _checked(config, encoder)
    cells_only = {"methods", "keeps", "seeds"}  # adding cells to a finished run is fine
    settings = {k: v for k, v in asdict(config).items() if k not in cells_only and not (k == "recipe" and v is None)}
    if config.trainer == "full" and config.dynamics == "full":
        settings.pop("dynamics_epochs")  # the full-pool run's epochs are the recipe's
    identity = {**settings, "model": encoder.name, "weights_sha256": encoder.weights_sha256, **encoder.preprocessing(),
                "train": train.fingerprint(), "test": test.fingerprint()}
    _check_identity(output, identity)

    auto = config.levels == "auto"
    result = score_dlc(encoder, train, levels=50 if auto else config.levels, step=config.step, adaptive=auto,
                       batch_size=config.batch_size,
                       checkpoint_dir=output / "scores" / ".partial", progress=progress)
    write_scores(output / "scores", result, dataset=train, encoder=encoder, total_s=_dlc_seconds(result.timings))
    test_z = _cached(output / "test_features.npy", lambda: extract_features(
        encoder, test, batch_size=config.batch_size, description="test features", progress=progress))
    pool, val = holdout_split(train.labels, fraction=config.val_fraction, seed=0)
    inputs = SelectionInputs(labels=train.labels[pool], features=result.features[pool], dlc_scores=result.scores[pool],
                             validation=(result.features[val], train.labels[val]))
    upstream = {"dlc_scores": _dlc_seconds(result.timings), "features": result.timings["plain_pass_s"]}
    probe = _Probe(inputs, test_z, test.labels, train.num_classes)
    trainer = _FineTuning(encoder, train, test, pool, probe, config, output, progress) if config.trainer == "full" else probe

    rows = read_rows(output / "results.csv")
    trainer.reference(rows, upstream)  # the full pool: what every method is measured against
    write_rows(output / "results.csv", rows)
    cells = _plan(config, rows, inputs, upstream, lambda: _dynamics(encoder, train, pool, inputs, config, output, progress))
    with bar("benchmark cells", len(cells), enabled=progress) as advance:
        for cell in cells:
            t = time.perf_counter()
            kept = cell.method.select(keep=cell.keep, seed=cell.seed)
            select_s = time.perf_counter() - t
            accuracy, train_s = trainer.train(kept, seed=cell.seed, tag=f"{cell.name}-{cell.keep:g}-{cell.seed}")
            auto = isinstance(cell.method, Auto)
            rows.append({"method": cell.name, "keep": cell.keep, "seed": cell.seed, "accuracy": accuracy,
                         "kept": len(kept), "choice": cell.method.decide(cell.keep).chosen if auto else "",
                         "model_s": round(cell.model_s, 3), "select_s": round(select_s, 4),
                         "train_s": round(train_s, 4)})
            write_rows(output / "results.csv", rows)
            if auto:
                _record_decision(output, cell.name, cell.method.decide(cell.keep))
            advance()
    choice = {c.name: round(c.method.setup_seconds_ + sum(d.seconds for d in c.method.decisions_.values()), 3)
              for c in cells if isinstance(c.method, Auto)}
    _summarise_run(output, rows, upstream, result.timings, config, choice, samples=len(train))
    return rows


def _checked(config: BenchConfig, encoder: Encoder) -> BenchConfig:
    """The configuration, refused in one line where it cannot run; the full trainer's recipe filled in."""
    for m in config.methods:
        if m not in METHODS:
            raise DlcpruneError(unknown_name_message("method", m, METHODS.names()))
    twice = sorted({m for m in config.methods if config.methods.count(m) > 1})
    if twice:  # its cells would run twice and count twice in the table's spread
        raise DlcpruneError(f"methods names {', '.join(twice)} more than once; name each method once")
    if config.candidates is not None:
        check_candidates(config.candidates)
    if config.dynamics not in ("head", "full"):
        raise DlcpruneError(f"dynamics must be head or full, got {config.dynamics!r}")
    if config.trainer not in ("probe", "full"):
        raise DlcpruneError(f"trainer must be probe or full, got {config.trainer!r}")
    if config.trainer == "full" and not isinstance(encoder, ImageEncoder):
        raise DlcpruneError(f"trainer 'full' fine-tunes an image encoder, not {encoder.name}; use trainer 'probe'")
    if config.trainer == "full" and config.recipe is None:
        return replace(config, recipe=RECIPES["cpu"])
    return config


class _Probe:
    """The linear probe on the frozen features of the kept samples; the full pool's probe as the reference."""

    def __init__(self, inputs: SelectionInputs, test_z: np.ndarray, test_labels: np.ndarray, num_classes: int) -> None:
        self.inputs, self.test_z, self.test_labels, self.num_classes = inputs, test_z, test_labels, num_classes

    def train(self, kept: np.ndarray, *, seed: int, tag: str) -> tuple[float, float]:
        t = time.perf_counter()
        probe = train_linear_probe(self.inputs.features[kept], self.inputs.labels[kept], num_classes=self.num_classes)
        return probe.accuracy(self.test_z, self.test_labels), time.perf_counter() - t

    def reference(self, rows: list[dict], upstream: dict[str, float]) -> None:
        if not any(r["method"] == FULL for r in rows):
            accuracy, train_s = self.train(np.arange(len(self.inputs.labels)), seed=0, tag=FULL)
            rows.append({"method": FULL, "keep": 1.0, "seed": 0, "accuracy": accuracy, "kept": len(self.inputs.labels),
                         "choice": "", "model_s": round(upstream["features"], 3), "select_s": 0.0,
                         "train_s": round(train_s, 4)})


class _FineTuning:
    """Full fine-tuning of the encoder on the kept samples (``config.recipe``), checkpointed per epoch
    under ``output/checkpoints``; the full pool once per seed, seed 0 also recording the dynamics
    (``dynamics.npz``) and the learning curve (``curves.json``)."""

    def __init__(self, encoder: Encoder, train: Dataset, test: Dataset, pool: np.ndarray, probe: _Probe,
                 config: BenchConfig, output: Path, progress: bool) -> None:
        self.encoder, self.train_set, self.test, self.pool, self.probe = encoder, train, test, pool, probe
        self.inputs = probe.inputs
        self.config, self.output, self.progress = config, output, progress

    def train(self, kept: np.ndarray, *, seed: int, tag: str) -> tuple[float, float]:
        r = self._run(kept, seed=seed, tag=tag)
        return r.accuracy, r.seconds

    def _run(self, kept: np.ndarray, *, seed: int, tag: str, recorder: DynamicsRecorder | None = None,
             curve: bool = False) -> FinetuneResult:
        return finetune(self.encoder, self.train_set, self.test, indices=self.pool[kept], recipe=self.config.recipe,
                        seed=seed, features=self.inputs.features[kept], recorder=recorder, curve=curve,
                        checkpoint=self.output / "checkpoints" / f"{tag.replace(' ', '_')}.pt", progress=self.progress)

    def reference(self, rows: list[dict], upstream: dict[str, float]) -> None:
        everything = np.arange(len(self.pool))
        for seed in range(self.config.seeds):
            if any(r["method"] == FULL and r["seed"] == seed for r in rows):
                continue
            record = seed == 0 and self.config.dynamics == "full"
            recorder = DynamicsRecorder(self.inputs.labels, self.config.recipe.epochs) if record else None
            probe = self.probe.train(everything, seed=0, tag=FULL)[0] if seed == 0 else None  # before: nothing slow
            r = self._run(everything, seed=seed, tag=f"{FULL}-{seed}", recorder=recorder, curve=seed == 0)  # after the run
            if recorder is not None:
                recorder.trajectory(seconds=r.seconds, trainer=f"full fine-tuning ({FULL_DYNAMICS})",
                                    parameters=r.parameters).save(self.output / "dynamics.npz")
            if seed == 0:  # the learning curve beside the probe on the same samples
                files.write_json(self.output / "curves.json", {"fine-tuning": r.curve, "train_loss": r.train_loss,
                                                             "probe": probe})
            rows.append({"method": FULL, "keep": 1.0, "seed": seed, "accuracy": r.accuracy, "kept": len(self.pool),
                         "choice": "", "model_s": 0.0, "select_s": 0.0, "train_s": round(r.seconds, 4)})
            write_rows(self.output / "results.csv", rows)


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
    A method whose selection ignores the seed runs seed 0 only, unless the seed also seeds training."""
    done = {(r["method"], float(r["keep"]), int(r["seed"])) for r in rows}
    cells = []
    for name in config.methods:
        method = Auto(config.candidates) if name == "auto" and config.candidates else make_method(name)
        todo = [(k, seed) for k in config.keeps for seed in range(config.seeds)
                if (name, k, seed) not in done and (seed == 0 or method.seeded or config.trainer == "full")]
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
                   config: BenchConfig, choice: dict[str, float], *, samples: int) -> None:
    path = output / "timings.json"
    before = files.read_json(path) if path.exists() else {}  # what a resumed run did not redo is kept
    choice = {**before.get("choice_s", {}), **choice}
    if "dynamics" not in upstream and "dynamics_s" in before:
        upstream["dynamics"] = before["dynamics_s"]
    files.write_json(path, {"dlc_score_s": upstream["dlc_scores"], **dlc_timings,
                            **({"dynamics_s": upstream["dynamics"]} if "dynamics" in upstream else {}),
                            **({"choice_s": choice} if choice else {})})
    files.write_text(output / "results.md", markdown_table(rows))
    plot_gap_to_random(rows, output / "gap_to_random.png")
    console.print(f"benchmark results in {output}/ (results.csv, results.md, gap_to_random.png)")
    gaps = gaps_to_random(rows)
    if gaps:
        console.print("vs random, test accuracy, mean over the keep fractions: "
                      + ", ".join(f"{m} {g:+.2f} points" for m, g in sorted(gaps.items(), key=lambda kv: -kv[1])))
    if config.trainer == "full":
        curves = files.read_json(output / "curves.json")
        plot_learning_curve(curves, output / "learning_curve.png")
        # the probe-started head needs the trained samples' features: random and the full pool pay that pass
        per_sample = upstream["features"] / samples if config.recipe.head_init == "probe" else 0.0
        summary = time_to_accuracy(rows, feature_s_per_sample=per_sample)
        files.write_json(output / "time_to_accuracy.json", summary)
        plot_time_to_accuracy(summary, output / "time_to_accuracy.png")
        full = summary["full"]["accuracy"]
        console.print(f"full fine-tuning on the full pool: {100 * full:.2f}% (linear probe on the same samples "
                      f"{100 * curves['probe']:.2f}%, {100 * (full - curves['probe']):+.2f} points)")
        console.print(f"time to accuracy: {summary['headline']}")
    if "dynamics" in upstream:
        epochs = config.recipe.epochs if config.trainer == "full" and config.dynamics == "full" else config.dynamics_epochs
        levels = len(dlc_timings["level_s"]) + 1 if "level_s" in dlc_timings else config.levels
        console.print(f"training-based score time / DLC score time = {upstream['dynamics'] / upstream['dlc_scores']:.2f} "
                      f"({upstream['dynamics']:.1f} s for {epochs} epochs of {config.dynamics} training "
                      f"vs {upstream['dlc_scores']:.1f} s for {levels} DLC levels)")
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
        if config.trainer == "full":  # the full-pool run wrote it, unless someone removed it since
            raise DlcpruneError(f"{path} is missing: the full-pool fine-tuning run records it; remove the "
                                "'full pool' rows from results.csv to run them again, or use a new output folder")
        recorder = DynamicsRecorder(inputs.labels, config.dynamics_epochs)
        r = finetune(encoder, train, train.subset(pool[:1]), indices=pool, recipe=named_recipe(
            "paper", epochs=config.dynamics_epochs, lr=0.01), recorder=recorder, progress=progress)
        t = recorder.trajectory(seconds=r.seconds, trainer="full fine-tuning", parameters=r.parameters)
    t.save(path)
    return t


def is_bench_folder(out: Path) -> bool:
    """An earlier or interrupted bench (one resumes there): its bench.json, or only what it writes first."""
    return (out / "bench.json").is_file() or {p.name for p in out.iterdir()} <= {"train_indices.npy", files.LOCK}


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
