"""`dlcprune report`: a self-contained page with histograms, examples, counts and bench results."""
import json
import re
import shutil
import subprocess

import pytest

from dlcprune.cli import main
from tests.conftest import write_image_folder


@pytest.fixture(scope="module")
def bench_folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    data = write_image_folder(tmp / "d", {"ant": 10, "bee": 10}, size=32)
    assert main(["bench", "--data", str(data), "--levels", "2", "--step", "0.1", "--keep", "0.5", "--seeds", "1",
                 "--methods", "random,flexrand", "--output", str(tmp / "b"), "--quiet"]) == 0
    assert main(["report", str(tmp / "b"), "--data", str(data), "--output", str(tmp / "page")]) == 0
    return tmp / "b"


def test_report_page_holds_every_section(bench_folder):
    page = (bench_folder.parent / "page" / "report.html").read_text()
    assert not (bench_folder / "report.html").exists()  # never written into the folder it reads
    assert "Score distribution per class" in page and "Easiest and hardest" in page
    assert "Samples kept per class" in page and "Benchmark: test accuracy" in page
    images = re.findall(r'src="data:image/png;base64,', page)
    assert len(images) == 1 + 2 * 2 * 5 + 1  # histograms, 5 easiest + 5 hardest per class, gap plot
    assert (bench_folder.parent / "page" / "score_histograms.png").read_bytes()[:4] == b"\x89PNG"
    assert "<figcaption>ant/img_000.png · " in page or "<figcaption>ant/" in page  # thumbnails say name and score
    assert "<h2>Parameters</h2>" in page and "<th>levels</th><td>2</td>" in page


def test_report_refuses_the_wrong_dataset(bench_folder, tmp_path, capsys):
    other = write_image_folder(tmp_path / "o", {"ant": 3, "bee": 3}, size=32)
    shutil.copytree(bench_folder / "scores", tmp_path / "s")
    assert main(["report", str(tmp_path / "s"), "--data", str(other)]) == 2
    assert "does not match the scored dataset" in capsys.readouterr().err


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(bench_folder, tmp_path):
    """Chromium draws the page; the screenshot is far from blank where the images are."""
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1600",
                    (bench_folder.parent / "page" / "report.html").as_uri()], check=True, capture_output=True, timeout=120)
    from PIL import Image
    import numpy as np

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20  # a blank or error page is nearly uniform
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom",
                          (bench_folder.parent / "page" / "report.html").as_uri()], check=True, capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<img") == 22


def test_report_of_a_selection_draws_the_verdict(bench_folder, tmp_path):
    sel = tmp_path / "sel"
    assert main(["select", "--scores", str(bench_folder / "scores"), "--policy", "auto", "--keep", "0.3,0.6",
                 "--output", str(sel)]) == 0
    assert main(["report", str(sel)]) == 0
    page = (tmp_path / "sel-report" / "report.html").read_text()
    assert "Verdict against random" in page and page.count("<td>30%</td>") == 1 and "full pool" in page
    assert (tmp_path / "sel-report" / "verdict_auto.png").read_bytes()[:4] == b"\x89PNG"
    assert "Score distribution per class" in page  # read from the scores folder the selection names
    assert "kept per class by this selection (auto)" in page and "Scores of the kept and the pruned samples" in page
    assert (tmp_path / "sel-report" / "kept_vs_pruned.png").exists()
    assert main(["report", str(sel), "--output", str(sel / "inside")]) == 2
    none = tmp_path / "none"  # what --target-drop writes where no fraction qualifies: no keep_* folder
    assert main(["select", "--scores", str(bench_folder / "scores"), "--policy", "auto", "--target-drop", "0",
                 "--output", str(none), "--quiet"]) == 0
    manifest = json.loads((none / "manifest.json").read_text())
    manifest.update(keeps=[], fractions={}, advice={**manifest["advice"], "keep": None, "advice": "keep everything"})
    (none / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(next(none.glob("keep_*")))
    assert main(["report", str(none)]) == 0
    page = (tmp_path / "none-report" / "report.html").read_text()
    assert "<p>keep everything</p>" in page and "kept_vs_pruned" not in page


def test_report_never_writes_into_a_folder_that_holds_something_else(bench_folder, tmp_path, capsys):
    data = write_image_folder(tmp_path / "d", {"ant": 2}, size=32)
    before = sorted(p.name for p in (data / "ant").iterdir())
    assert main(["report", str(bench_folder), "--output", str(data / "ant")]) == 2
    assert "holds no earlier report" in capsys.readouterr().err
    assert sorted(p.name for p in (data / "ant").iterdir()) == before
    assert main(["report", str(bench_folder), "--output", str(tmp_path / "page")]) == 0
    assert main(["report", str(bench_folder), "--output", str(tmp_path / "page")]) == 0  # an earlier report: redrawn


def test_report_of_a_bench_stopped_before_its_scoring_says_so(bench_folder, tmp_path, capsys):
    early = tmp_path / "early"  # what a bench killed while scoring holds: its settings, a checkpoint
    (early / "scores" / ".partial").mkdir(parents=True)
    shutil.copy(bench_folder / "bench.json", early / "bench.json")
    assert main(["report", str(early), "--output", str(tmp_path / "page")]) == 2
    assert "is a bench that stopped before its scoring finished" in capsys.readouterr().err
    assert not (tmp_path / "page").exists()
