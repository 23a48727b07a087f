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


def build_report(folder: str | Path, *, data: Dataset | None = None, examples: int = 5) -> Path:
    """Write ``folder/report.html`` (+ PNGs) for a scores folder or a ``dlcprune bench`` folder."""
    folder = Path(folder)
    scores_dir = folder / "scores" if (folder / "scores" / "scores.csv").exists() else folder
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
