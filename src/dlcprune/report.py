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
from .bench import markdown_table, read_rows
from .data import Dataset, ImageDataset
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


def _example(data: Dataset, i: int) -> str:
    if isinstance(data, ImageDataset):
        arr = data.items([i])[0]
        im = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).resize((64, 64), Image.NEAREST)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return _img_tag(buf.getvalue(), data.ids[i])
    text = data.items([i])[0]
    return f'<span class="snippet">{html.escape(text[:160] + ("…" if len(text) > 160 else ""))}</span>'


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


def verdict_section(folder: Path) -> list[str]:
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
        files.write_bytes(folder / f"verdict_{method}.png", png)
        parts.append(_img_tag(png, f"{method} verdict"))
        parts.append("<table><tr><th>keep</th><th>chosen</th><th>verdict</th><th>chosen − full pool (points)</th></tr>"
                     + "".join(f"<tr><td>{d['keep']:.0%}</td><td>{html.escape(d['chosen'])}</td>"
                               f"<td>{html.escape(d['verdict'])}</td><td>{d['vs_full_pool_points'][0]:+.2f} "
                               f"[{d['vs_full_pool_points'][1]:+.2f}, {d['vs_full_pool_points'][2]:+.2f}]</td></tr>"
                               for d in decisions) + "</table>")
    return parts


def build_report(folder: str | Path, *, data: Dataset | None = None, examples: int = 5) -> Path:
    """Write ``folder/report.html`` (+ PNGs) for a scores folder, a ``dlcprune bench`` folder, or a
    selection folder of ``dlcprune select`` (its verdict, and its scores when they are still there)."""
    folder = Path(folder)
    scores_dir = folder / "scores" if (folder / "scores" / "scores.csv").exists() else folder
    if not (scores_dir / "scores.csv").exists() and (folder / "manifest.json").exists():  # a selection folder
        scores_dir = Path(files.read_json(folder / "manifest.json").get("scores", {}).get("folder", folder))
    scores = read_scores(scores_dir)
    if data is not None and (folder / "train_indices.npy").exists():  # a bench that held out its test set
        data = data.subset(np.load(folder / "train_indices.npy"))
    names = scores.manifest.get("dataset", {}).get("class_names") or [str(c) for c in range(scores.labels.max() + 1)]
    if data is not None and (len(data) != len(scores.scores) or not np.array_equal(data.labels, scores.labels)):
        raise DlcpruneError("--data does not match the scored dataset (different size or labels); "
                            "pass the dataset that was scored")
    hist = score_histograms(scores, names)
    files.write_bytes(folder / "score_histograms.png", hist)
    parts = [f"<h1>dlcprune report</h1><p>{len(scores.scores):,} samples, {len(names)} classes; "
             f"method {html.escape(str(scores.manifest.get('method', '?')))}, model "
             f"{html.escape(str(scores.manifest.get('model', {}).get('name', '?')))}. Scores: higher = harder.</p>",
             "<h2>Score distribution per class</h2>", _img_tag(hist, "score histograms")]
    if data is not None:
        parts.append(f"<h2>Easiest and hardest {examples} examples per class</h2><table><tr><th>class</th>"
                     "<th>easiest (lowest score)</th><th>hardest (highest score)</th></tr>")
        for c, name in enumerate(names):
            members = np.flatnonzero(scores.labels == c)
            order = members[np.argsort(scores.scores[members], kind="stable")]
            cells = ["".join(_example(data, int(i)) for i in part) for part in (order[:examples], order[::-1][:examples])]
            parts.append(f"<tr><td>{html.escape(name)}</td><td>{cells[0]}</td><td>{cells[1]}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Samples kept per class (class-stratified policies)</h2><table><tr><th>class</th><th>total</th>"
                 + "".join(f"<th>keep {k:.0%}</th>" for k in KEEPS) + "</tr>")
    counts = [class_counts(scores.labels, k) for k in KEEPS]
    for c, name in enumerate(names):
        parts.append(f"<tr><td>{html.escape(name)}</td><td>{int((scores.labels == c).sum())}</td>"
                     + "".join(f"<td>{cc[c]}</td>" for cc in counts) + "</tr>")
    parts.append("</table>")
    parts += verdict_section(folder)
    if (folder / "results.csv").exists():
        rows = read_rows(folder / "results.csv")
        parts.append("<h2>Benchmark: test accuracy (%)</h2>" + _markdown_to_html(markdown_table(rows)))
        if (folder / "gap_to_random.png").exists():
            parts.append(_img_tag((folder / "gap_to_random.png").read_bytes(), "accuracy gap to random"))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px;vertical-align:top}img{margin:1px;max-width:100%}"
             ".snippet{display:block;font-size:12px;margin:2px 0}")
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>dlcprune report</title><style>{style}</style></head><body>" \
           + "\n".join(parts) + "</body></html>\n"
    files.write_text(folder / "report.html", page)
    return folder / "report.html"


def _markdown_to_html(table: str) -> str:
    lines = [l for l in table.strip().splitlines() if not set(l) <= set("|-: ")]
    cells = [[c.strip().strip("*") for c in l.strip("|").split("|")] for l in lines]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells[1:])
    return f"<table><tr>{head}</tr>{body}</table>"
