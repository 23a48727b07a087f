"""From indices to data: each export against its input, the fingerprint refusals, Selection.subset."""
import json
import os

import numpy as np
import pytest

from dlcprune import DlcpruneError
from dlcprune.cli import main
from tests.conftest import write_image_folder


def kept(folder, keep="keep_0.5"):
    return np.load(folder / keep / "keep_indices.npy")


@pytest.fixture(scope="module")
def scored_images(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    data = write_image_folder(tmp / "data", {"cat": 4, "dog": 6}, size=32)
    assert main(["score", "--data", str(data), "--levels", "2", "--step", "0.1", "--output", str(tmp / "s"),
                 "--quiet"]) == 0
    ids = [line.split(",")[1] for line in (tmp / "s" / "scores.csv").read_text().splitlines()[1:]]
    return data, tmp / "s", ids


@pytest.mark.parametrize("link", [False, True])
def test_imagefolder_export_holds_exactly_the_kept_files(scored_images, tmp_path, link):
    data, scores, ids = scored_images
    out = tmp_path / "sel"
    assert main(["select", "--scores", str(scores), "--policy", "random", "--keep", "0.5", "--export", "imagefolder",
                 *(["--link"] if link else []), "--output", str(out)]) == 0
    root = out / "keep_0.5" / "kept"
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*.png"))
    assert written == sorted(ids[i] for i in kept(out))
    for rel in written:
        assert (root / rel).read_bytes() == (data / rel).read_bytes()
        assert (root / rel).is_symlink() == link


def test_filelist_export(scored_images, tmp_path):
    data, scores, ids = scored_images
    out = tmp_path / "sel"
    assert main(["select", "--scores", str(scores), "--policy", "easy", "--keep", "0.5", "--export", "filelist",
                 "--output", str(out)]) == 0
    lines = (out / "keep_0.5" / "kept.txt").read_text().splitlines()
    assert lines == [str((data / ids[i]).resolve()) for i in kept(out)]


def test_export_refuses_data_that_was_not_scored(scored_images, tmp_path, capsys):
    _, scores, _ = scored_images
    other = write_image_folder(tmp_path / "other", {"cat": 4, "dog": 6}, size=32, seed=9)
    out = tmp_path / "sel"
    assert main(["select", "--scores", str(scores), "--policy", "random", "--keep", "0.5", "--export", "filelist",
                 "--data", str(other), "--output", str(out)]) == 2
    assert "were made on another dataset" in capsys.readouterr().err and not out.exists()


def test_hf_export_of_an_image_folder_says_what_to_use(scored_images, tmp_path, capsys):
    _, scores, _ = scored_images
    out = tmp_path / "sel"
    assert main(["select", "--scores", str(scores), "--policy", "random", "--keep", "0.5", "--export", "hf",
                 "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is not one; for an image folder use imagefolder or filelist" in err and not out.exists()


def test_finetune_refuses_indices_made_on_another_dataset(scored_images, tmp_path, capsys):
    _, scores, _ = scored_images
    assert main(["select", "--scores", str(scores), "--policy", "random", "--keep", "0.5", "--output",
                 str(tmp_path / "sel")]) == 0
    other = write_image_folder(tmp_path / "other", {"cat": 4, "dog": 6}, size=32, seed=9)
    assert main(["finetune", "--data", str(other), "--test-data", str(other), "--indices",
                 str(tmp_path / "sel" / "keep_0.5" / "keep_indices.npy"), "--output", str(tmp_path / "ft"),
                 "--quiet"]) == 2
    assert "--indices were made on another dataset" in capsys.readouterr().err


CSV = ('text,label\r\n"a fine, warm film",pos\r\n\r\nflat and dull,neg\r\n"two\nlines",pos\r\n'
       'more of the same,neg\r\nbright,pos\r\nbleak,neg\r\nlovely,pos\r\nawful,neg\r\nso good,pos\r\nbad,neg\r\n')
JSONL = "\n".join(json.dumps({"text": f"review {i} {'good' if i % 2 else 'bad'}", "label": i % 2}) + ("  " if i == 3 else "")
                  for i in range(10)).replace("\n", "\n\n", 1) + "\n"


@pytest.mark.parametrize("name, content", [("reviews.csv", CSV), ("reviews.jsonl", JSONL)])
def test_text_rows_are_exported_byte_identical(tmp_path, name, content):
    from dlcprune.export import csv_rows, jsonl_rows

    path = tmp_path / name
    path.write_bytes(content.encode())
    fmt = path.suffix[1:]
    assert main(["score", "--model", "minilm", "--data", str(path), "--levels", "2", "--step", "0.1",
                 "--output", str(tmp_path / "s"), "--quiet"]) == 0
    assert main(["select", "--scores", str(tmp_path / "s"), "--policy", "hard", "--keep", "0.5", "--export", fmt,
                 "--output", str(tmp_path / "sel")]) == 0
    rows = csv_rows(path) if fmt == "csv" else jsonl_rows(path)
    header, body = (rows[0], rows[1:]) if fmt == "csv" else ("", rows)
    assert len(body) == 10
    expected = header + "".join(body[i] for i in kept(tmp_path / "sel"))
    if not expected.endswith("\n"):
        expected += "\n"
    assert (tmp_path / "sel" / "keep_0.5" / f"kept.{fmt}").read_bytes() == expected.encode()
    if fmt == "csv":
        assert rows[1] == '"a fine, warm film",pos\r\n' and rows[3] == '"two\nlines",pos\r\n'


def test_hf_export_and_selection_subset(tmp_path):
    import torch
    from datasets import Dataset, load_from_disk

    from dlcprune import select

    texts = [f"sample {i} {'great' if i % 2 else 'poor'}" for i in range(12)]
    Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(12)]}).save_to_disk(str(tmp_path / "hf"))
    assert main(["score", "--model", "minilm", "--data", str(tmp_path / "hf"), "--levels", "2", "--step", "0.1",
                 "--output", str(tmp_path / "s"), "--quiet"]) == 0
    assert main(["select", "--scores", str(tmp_path / "s"), "--policy", "easy", "--keep", "0.5", "--export", "hf",
                 "--output", str(tmp_path / "sel")]) == 0
    idx = kept(tmp_path / "sel")
    assert load_from_disk(str(tmp_path / "sel" / "keep_0.5" / "kept"))["text"] == [texts[i] for i in idx]
    # the same selection from Python, applied to the objects a user holds
    sel = select(tmp_path / "s", method="easy", keep=0.5)
    assert np.array_equal(sel.indices(), idx)
    tensors = torch.utils.data.TensorDataset(torch.arange(12))
    assert [int(x[0]) for x in sel.subset(tensors)] == idx.tolist()
    assert sel.subset(Dataset.from_dict({"text": texts}))["text"] == [texts[i] for i in idx]
    assert sel.subset(texts) == [texts[i] for i in idx]
    with pytest.raises(Exception, match="the selection was made on 12"):
        sel.subset(texts[:5])


def test_a_file_list_refuses_a_name_with_a_line_break(tmp_path):
    from dlcprune.export import export_subset
    from tests.conftest import write_image_folder

    data = write_image_folder(tmp_path / "data", {"a": 2, "b": 2}, size=16)
    (data / "a").joinpath(sorted(p.name for p in (data / "a").iterdir())[0]).rename(data / "a" / "two\nlines.png")
    with pytest.raises(DlcpruneError, match=r"'a/two\\nlines.png' has a line break in its name, which a file list"):
        export_subset(data, np.arange(4), tmp_path / "out", format="filelist")
    assert not (tmp_path / "out").exists()
    assert export_subset(data, np.array([2, 3]), tmp_path / "out", format="filelist").read_text().count("\n") == 2


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_json_array_export_holds_the_kept_elements_in_order(tmp_path, capsys, bom):
    """A JSON array in, a JSON array out: the kept elements (unicode, extra keys) in their order;
    a UTF-8 BOM (as Windows editors write) read alike by the loader and the export."""
    rows = [{"text": f"r\u00e9view {i} {'good' if i % 2 else 'bad'}", "label": i % 2, "meta": {"i": i}} for i in range(8)]
    path = tmp_path / "reviews.json"
    path.write_bytes(bom + json.dumps(rows).encode())
    assert main(["score", "--model", "minilm", "--data", str(path), "--levels", "2", "--step", "0.1",
                 "--output", str(tmp_path / "s"), "--quiet"]) == 0
    assert main(["select", "--scores", str(tmp_path / "s"), "--policy", "easy", "--keep", "0.5", "--export", "json",
                 "--output", str(tmp_path / "sel")]) == 0
    idx = kept(tmp_path / "sel")
    assert len(idx) == 4 and list(idx) == sorted(idx)
    assert json.loads((tmp_path / "sel" / "keep_0.5" / "kept.json").read_text(encoding="utf-8")) == [rows[i] for i in idx]
    capsys.readouterr()
    assert main(["select", "--scores", str(tmp_path / "s"), "--policy", "easy", "--keep", "0.5", "--export", "jsonl",
                 "--output", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert "export jsonl writes rows of a .jsonl file, and " in err and err.rstrip().endswith("; use --export json")
    assert not (tmp_path / "other").exists()
    (tmp_path / "one.json").write_text(json.dumps(rows[0]))
    assert main(["score", "--model", "minilm", "--data", str(tmp_path / "one.json"), "--output", str(tmp_path / "o")]) == 2
    assert "one.json: expected a JSON array of records ([{...}, ...]), not a single object" in capsys.readouterr().err
