"""``dlcprune report``: one self-contained HTML page (PNGs embedded) about a scores folder.

Shows the score histogram per class, the easiest and hardest examples of each class (thumbnails
for images, snippets for texts), how many samples of each class every keep fraction keeps, and,
for a benchmark folder, its accuracy table and the gap-to-random plot. The PNGs are also written
beside the page.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
from PIL import Image

from . import files
from .results import markdown_table, read_rows
from .data import Dataset, ImageDataset, InstructionSet
from .errors import DlcpruneError
from .artifacts import Scores, read_scores
from .selection import class_counts

KEEPS = [round(0.1 * i, 1) for i in range(1, 10)]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _img_tag(png: bytes, alt: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}"{size} src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def score_histograms(scores: Scores, class_names: list[str]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(class_names)
    cols = min(n, 5)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.0 * rows), squeeze=False, sharex=True)
    bins = np.linspace(scores.scores.min(), scores.scores.max(), 30)
    for c, ax in enumerate(axes.flat):
        if c >= n:
            ax.axis("off")
            continue
        ax.hist(scores.scores[scores.labels == c], bins=bins, color="tab:blue")
        ax.set_title(class_names[c], fontsize=9)
        ax.tick_params(labelsize=7)
    fig.supxlabel("DLC score (higher = harder)", fontsize=9)
    fig.tight_layout()
    png = _png(fig)
    plt.close(fig)
    return png


def _example(data: Dataset, i: int, score: float) -> str:
    """A thumbnail (images) or a snippet (texts) captioned with the sample's id and score."""
    caption = f"{data.ids[i]} · {score:.3f}"
    if isinstance(data, ImageDataset):
        arr = data.items([i])[0]
        im = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).resize((64, 64), Image.NEAREST)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return f"<figure>{_img_tag(buf.getvalue(), data.ids[i])}<figcaption>{html.escape(caption)}</figcaption></figure>"
    if isinstance(data, InstructionSet):
        turns, response = data.messages(i)
        text = f"{turns[-1]['content'] if turns else ''} → {response}"
    else:
        text = data.items([i])[0]
    return (f'<span class="snippet">{html.escape(text[:160] + ("…" if len(text) > 160 else ""))} '
            f'<i>({html.escape(caption)})</i></span>')


def verdict_plot(decisions: list[dict], title: str) -> bytes:
    """Validation accuracy against the keep fraction: the chosen selection and random with their 95%
    bands, and the full pool's accuracy as a line with its band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keeps = [100 * d["keep"] for d in decisions]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for key, label, colour in (("chosen", "auto's choice", "tab:blue"), ("random", "random", "tab:grey")):
        v = np.array([d["validation_accuracy_points"][key] for d in decisions])
        ax.plot(keeps, v[:, 0], marker="o", color=colour, label=label)
        ax.fill_between(keeps, v[:, 1], v[:, 2], color=colour, alpha=0.2)
    full = decisions[0]["validation_accuracy_points"]["full pool"]
    ax.axhline(full[0], color="black", lw=1, ls="--", label="full pool")
    ax.axhspan(full[1], full[2], color="black", alpha=0.08)
    ax.set_xlabel("keep (% of the samples)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png = _png(fig)
    plt.close(fig)
    return png


def verdict_section(folder: Path, pngs: dict[str, bytes]) -> list[str]:
    """HTML for the verdicts of a selection folder (verdict.json) or a bench folder (verdicts.json)."""
    if (folder / "verdict.json").exists():
        found = {files.read_json(folder / "verdict.json")["method"]: files.read_json(folder / "verdict.json")["verdicts"]}
    elif (folder / "verdicts.json").exists():
        found = {m: list(per.values()) for m, per in files.read_json(folder / "verdicts.json").items()}
    else:
        return []
    parts = ["<h2>Verdict against random (validation split, linear probe on frozen features)</h2>"]
    for method, decisions in found.items():
        decisions = sorted(decisions, key=lambda d: d["keep"])
        png = verdict_plot(decisions, f"{method}: validation accuracy, 95% intervals")
        pngs[f"verdict_{method}.png"] = png
        parts.append(_img_tag(png, f"{method} verdict"))
        parts.append("<table><tr><th>keep</th><th>chosen</th><th>verdict</th><th>chosen − full pool (points)</th></tr>"
                     + "".join(f"<tr><td>{d['keep']:.0%}</td><td>{html.escape(d['chosen'])}</td>"
                               f"<td>{html.escape(d['verdict'])}</td><td>{d['vs_full_pool_points'][0]:+.2f} "
                               f"[{d['vs_full_pool_points'][1]:+.2f}, {d['vs_full_pool_points'][2]:+.2f}]</td></tr>"
                               for d in decisions) + "</table>")
    return parts


def time_to_accuracy_section(folder: Path) -> list[str]:
    """A full fine-tuning bench: the learning curve beside the probe, and what each (method, keep)
    cost end to end against the full run, headline first."""
    if not (folder / "time_to_accuracy.json").exists():
        return []
    summary, curves = files.read_json(folder / "time_to_accuracy.json"), files.read_json(folder / "curves.json")
    full = summary["full"]
    parts = ["<h2>Full fine-tuning: time to accuracy</h2>",
             f"<p><b>{html.escape(summary['headline'])}.</b></p>",
             f"<p>Full pool: {100 * full['accuracy']:.2f}% after {len(curves['fine-tuning'])} epochs in {full['seconds']:.0f} s "
             f"(linear probe on the same samples: {100 * curves['probe']:.2f}%). Time = scoring + selection + fine-tuning.</p>"]
    for name, alt in (("learning_curve.png", "learning curve"), ("time_to_accuracy.png", "accuracy against wall time")):
        if (folder / name).exists():
            parts.append(_img_tag((folder / name).read_bytes(), alt))
    parts.append("<table><tr><th>method</th><th>keep</th><th>accuracy (%)</th><th>− full (points)</th><th>seconds</th>"
                 "<th>share of the full run's time</th></tr>"
                 + "".join(f"<tr><td>{html.escape(c['method'])}</td><td>{c['keep']:.0%}</td><td>{100 * c['accuracy']:.2f}</td>"
                           f"<td>{100 * (c['accuracy'] - full['accuracy']):+.2f}</td><td>{c['seconds']:.0f}</td>"
                           f"<td>{100 * c['time_share']:.0f}%</td></tr>" for c in summary["cells"]) + "</table>")
    return parts


def build_report(folder: str | Path, *, data: Dataset | None = None, output: str | Path | None = None,
                 examples: int = 5) -> Path:
    """Write ``report.html`` (+ its PNGs) about a scores folder, a ``dlcprune bench`` folder or a
    selection folder of ``dlcprune select`` into ``output`` (default: ``<folder>-report`` beside it;
    never into the folder read). ``data``: the scored dataset for the example thumbnails (default:
    the one the scores folder records, when it is still there)."""
    folder = Path(folder)
    out = Path(output) if output is not None else folder.parent / f"{folder.name}-report"
    if files.is_within(out, folder):
        raise DlcpruneError(f"the report would be written inside {folder}, which it reads; choose another --output")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.html").is_file():  # never into the user's data
        raise DlcpruneError(f"output folder {out} exists, is not empty and holds no earlier report; choose an empty "
                            "or new --output")
    manifest = files.read_json(folder / "manifest.json") if (folder / "manifest.json").is_file() else None
    selection = manifest if isinstance(manifest, dict) and ("fractions" in manifest or (folder / "verdict.json").exists()) \
        else None  # a selection folder; else the scores folder (its manifest is checked as it is read)
    scores_dir = folder / "scores" if (folder / "scores" / "scores.csv").exists() else folder
    if (folder / "bench.json").is_file() and scores_dir == folder:
        raise DlcpruneError(f"{folder} is a bench that stopped before its scoring finished (no scores/scores.csv yet); "
                            "run the same bench command again to finish it, then report it")
    if selection is not None:
        scores_dir = Path(selection.get("scores", {}).get("folder", folder))
    scores = read_scores(scores_dir)
    data = _scored_data(folder, scores, data)
    names = scores.manifest.get("dataset", {}).get("class_names") or [str(c) for c in range(scores.labels.max() + 1)]
    pngs = {"score_histograms.png": score_histograms(scores, names)}
    parts = [f"<h1>dlcprune report</h1><p>{len(scores.scores):,} samples, {len(names)} classes; "
             f"method {html.escape(str(scores.manifest.get('method', '?')))}, model "
             f"{html.escape(str(scores.manifest.get('model', {}).get('name', '?')))}. Scores: higher = harder.</p>",
             _parameters_table(scores.manifest, selection),
             "<h2>Score distribution per class</h2>", _img_tag(pngs["score_histograms.png"], "score histograms")]
    if data is not None:
        parts += _examples_section(data, scores, names, examples)
    parts += _kept_section(scores, names, selection, folder, pngs)
    parts += verdict_section(folder, pngs)
    if (folder / "results.csv").exists():
        rows = read_rows(folder / "results.csv")
        parts.append("<h2>Benchmark: test accuracy (%)</h2>" + _markdown_to_html(markdown_table(rows)))
        if (folder / "gap_to_random.png").exists():
            parts.append(_img_tag((folder / "gap_to_random.png").read_bytes(), "accuracy gap to random"))
    parts += time_to_accuracy_section(folder)
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px;vertical-align:top}img{margin:1px;max-width:100%}"
             "figure{display:inline-block;margin:2px;font-size:10px;text-align:center}"
             ".snippet{display:block;font-size:12px;margin:2px 0}")
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>dlcprune report</title><style>{style}</style></head><body>" \
           + "\n".join(parts) + "</body></html>\n"
    with files.output_dir(out, keep=lambda err: False):
        for name, png in pngs.items():
            files.write_bytes(out / name, png)
        files.write_text(out / "report.html", page)
    return out / "report.html"


def _scored_data(folder: Path, scores: Scores, data: Dataset | None) -> Dataset | None:
    """The scored samples in score order: ``data`` as given, else what the scores manifest names."""
    from .data import load_dataset

    spec = scores.manifest.get("data") or {}
    given = data is not None
    if data is None and spec.get("data") and (Path(spec["data"]).exists() or "/" not in spec["data"]):
        data = load_dataset(spec["data"], text_column=spec.get("text_column", "text"),
                            label_column=spec.get("label_column", "label"), hf_split=spec.get("hf_split"))
    if data is not None and (folder / "train_indices.npy").exists():  # a bench that held out its test set
        data = data.subset(np.load(folder / "train_indices.npy"))
    # Sizes, labels and ids (cheap; files moved between classes change the ids): else wrong thumbnails.
    if data is not None and (len(data) != len(scores.scores) or not np.array_equal(data.labels, scores.labels)
                             or [str(i) for i in data.ids] != list(scores.ids)):
        if given:
            raise DlcpruneError("--data does not match the scored dataset (different size, labels or sample ids); "
                                "pass the dataset that was scored")
        raise DlcpruneError(f"{spec['data']}, the data this scores folder records, no longer matches its scores.csv "
                            "(different size, labels or sample ids); pass the scored dataset with --data or score it again")
    return data


def _parameters_table(manifest: dict, selection: dict | None) -> str:
    """The run's parameters, read from the manifests."""
    rows = {"dataset": manifest.get("dataset", {}).get("source"), "samples": manifest.get("dataset", {}).get("samples"),
            **{k: v for k, v in manifest.get("parameters", {}).items() if not isinstance(v, (list, dict))},
            "seed": manifest.get("seed"), "created": manifest.get("created")}
    if selection is not None:
        rows.update({"selection method": selection.get("method"), "selection seed": selection.get("seed"),
                     "keep fractions": ", ".join(f"{k:g}" for k in selection.get("keeps", []))})
    return "<h2>Parameters</h2><table>" + "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items()
        if v is not None) + "</table>"


def _examples_section(data: Dataset, scores: Scores, names: list[str], examples: int) -> list[str]:
    parts = [f"<h2>Easiest and hardest {examples} examples per class</h2><table><tr><th>class</th>"
             "<th>easiest (lowest score)</th><th>hardest (highest score)</th></tr>"]
    for c, name in enumerate(names):
        members = np.flatnonzero(scores.labels == c)
        order = members[np.argsort(scores.scores[members], kind="stable")]
        cells = ["".join(_example(data, int(i), scores.scores[i]) for i in part)
                 for part in (order[:examples], order[::-1][:examples])]
        parts.append(f"<tr><td>{html.escape(name)}</td><td>{cells[0]}</td><td>{cells[1]}</td></tr>")
    return parts + ["</table>"]


def _kept_section(scores: Scores, names: list[str], selection: dict | None, folder: Path,
                  pngs: dict[str, bytes]) -> list[str]:
    """Samples kept per class: what the selection kept (its manifest) and the scores of kept vs
    pruned; without a selection, the counts every class-stratified method keeps."""
    if selection is None:
        keeps, counts = KEEPS, [class_counts(scores.labels, k) for k in KEEPS]
        title = "Samples kept per class (every class-stratified method)"
    else:
        fractions = sorted(selection["fractions"].values(), key=lambda f: f["keep"])
        keeps, counts = [f["keep"] for f in fractions], [dict(enumerate(f["kept_per_class"])) for f in fractions]
        title = f"Samples kept per class by this selection ({html.escape(selection['method'])})"
    parts = [f"<h2>{title}</h2><table><tr><th>class</th><th>total</th>"
             + "".join(f"<th>keep {k:.0%}</th>" for k in keeps) + "</tr>"]
    for c, name in enumerate(names):
        parts.append(f"<tr><td>{html.escape(name)}</td><td>{int((scores.labels == c).sum())}</td>"
                     + "".join(f"<td>{cc.get(c, 0)}</td>" for cc in counts) + "</tr>")
    parts.append("</table>")
    if selection is not None and not keeps:  # --target-drop found no fraction: nothing was kept
        advice = (selection.get("advice") or {}).get("advice") or "no keep fraction was written"
        parts.append(f"<p>{html.escape(str(advice))}</p>")
    elif selection is not None:
        pngs["kept_vs_pruned.png"] = kept_vs_pruned(scores, folder, keeps)
        parts += ["<h2>Scores of the kept and the pruned samples</h2>",
                  _img_tag(pngs["kept_vs_pruned.png"], "kept vs pruned score histograms")]
    return parts


def kept_vs_pruned(scores: Scores, folder: Path, keeps: list[float]) -> bytes:
    """Per keep fraction of a selection folder, histograms of the kept and the pruned samples' scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .artifacts import keep_folder_name

    fig, axes = plt.subplots(1, len(keeps), figsize=(3.0 * len(keeps), 2.4), squeeze=False, sharey=True)
    bins = np.linspace(scores.scores.min(), scores.scores.max(), 30)
    for ax, keep in zip(axes[0], keeps):
        kept = np.zeros(len(scores.scores), dtype=bool)
        kept[np.load(folder / keep_folder_name(keep) / "keep_indices.npy")] = True
        ax.hist(scores.scores[~kept], bins=bins, color="tab:grey", alpha=0.6, label="pruned")
        ax.hist(scores.scores[kept], bins=bins, color="tab:blue", alpha=0.7, label="kept")
        ax.set_title(f"keep {keep:.0%}", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.supxlabel("DLC score (higher = harder)", fontsize=9)
    fig.tight_layout()
    png = _png(fig)
    plt.close(fig)
    return png


def _markdown_to_html(table: str) -> str:
    lines = [l for l in table.strip().splitlines() if not set(l) <= set("|-: ")]
    cells = [[c.strip().strip("*") for c in l.strip("|").split("|")] for l in lines]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells[1:])
    return f"<table><tr>{head}</tr>{body}</table>"
