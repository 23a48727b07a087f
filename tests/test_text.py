"""Text: CSV / JSONL / Hugging Face folders, string labels, MiniLM mean pooling, DLC on texts."""
import json

import numpy as np
import pytest
import torch

from dlcprune import DlcpruneError, load_dataset, load_encoder, score_dlc
from dlcprune.cli import main

TEXTS = ["a wonderful, moving film", "great acting and a sharp script", "i loved every minute",
         "dull and far too long", "a mess from start to finish", "boring, predictable, flat"]
LABELS = ["pos", "pos", "pos", "neg", "neg", "neg"]


@pytest.fixture(scope="module")
def minilm():
    return load_encoder("minilm", device="cpu")


def test_csv_and_jsonl_with_string_labels(tmp_path):
    import csv

    with open(tmp_path / "d.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerows(zip(TEXTS, LABELS))
    a = load_dataset(str(tmp_path / "d.csv"), text_column="review", label_column="sentiment")
    assert a.class_names == ["neg", "pos"] and a.labels.tolist() == [1, 1, 1, 0, 0, 0]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps({"text": t, "label": int(y == "pos")}) for t, y in zip(TEXTS, LABELS)))
    b = load_dataset(str(tmp_path / "d.jsonl"))
    assert b.class_names == ["0", "1"] and b.items([1]) == [TEXTS[1]] and len(b) == 6


def test_upper_case_suffixes_are_read_as_their_kind(tmp_path):
    (tmp_path / "T.CSV").write_text("text,label\n" + "".join(f"\"{t}\",{y}\n" for t, y in zip(TEXTS, LABELS)))
    (tmp_path / "T.JSON").write_text(json.dumps([{"text": t, "label": y} for t, y in zip(TEXTS, LABELS)]))
    (tmp_path / "I.JSONL").write_text(json.dumps({"instruction": "Say hi", "output": "hi"}) + "\n")
    for name in ("T.CSV", "T.JSON"):
        data = load_dataset(str(tmp_path / name))
        assert data.class_names == ["neg", "pos"] and data.items([0]) == [TEXTS[0]], name
    assert load_dataset(str(tmp_path / "I.JSONL")).form == "alpaca"


def test_missing_text_column_and_bad_json_line(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"body": "x", "label": 1}\n')
    with pytest.raises(DlcpruneError, match="no column 'text'.*--text-column"):
        load_dataset(str(tmp_path / "d.jsonl"))
    (tmp_path / "e.jsonl").write_text('{"text": "x", "label": 1}\n{oops\n')
    with pytest.raises(DlcpruneError, match="e.jsonl:2: not valid JSON"):
        load_dataset(str(tmp_path / "e.jsonl"))


def test_hugging_face_folder(tmp_path):
    from datasets import Dataset

    Dataset.from_dict({"text": TEXTS, "label": LABELS}).save_to_disk(str(tmp_path / "hf"))
    data = load_dataset(str(tmp_path / "hf"))
    assert data.texts == TEXTS and data.class_names == ["neg", "pos"]


def test_mean_pooling_equals_a_manual_computation(minilm):
    texts = ["short", "a much longer sentence with many more tokens in it"]
    z = minilm.features(texts)
    for i, t in enumerate(texts):  # one at a time: no padding at all
        batch = minilm.tokenizer([t], return_tensors="pt")
        with torch.no_grad():
            hidden = minilm.module(**batch).last_hidden_state[0]
        assert torch.allclose(z[i], hidden.mean(0), atol=1e-5)
    assert z.shape == (2, 384)


def test_minilm_masks_only_transformer_layer_linears(minilm):
    names = [n for n, _ in minilm.maskable]
    assert len(names) == 6 * 6 and all(n.startswith("encoder.layer.") for n in names)


def test_dlc_on_texts_and_the_built_in_rotten_tomatoes(minilm, tmp_path):
    rt = load_dataset("rotten-tomatoes")
    assert len(rt) == 8530 and rt.class_names == ["negative", "positive"]
    small = rt.subset(np.r_[0:6, 5000:5006])
    result = score_dlc(minilm, small, levels=3, step=0.2, batch_size=4, progress=False)
    assert result.scores.shape == (12,) and np.isfinite(result.scores).all()
    with pytest.raises(DlcpruneError, match="holds texts but efficientnet_lite0 is not a text encoder"):
        score_dlc(load_encoder("efficientnet_lite0", device="cpu"), small, levels=2, step=0.1, progress=False)


def test_cli_score_on_a_jsonl_records_the_label_mapping(tmp_path):
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in zip(TEXTS, LABELS)))
    assert main(["score", "--model", "minilm", "--data", str(tmp_path / "d.jsonl"), "--levels", "2", "--step", "0.1",
                 "--output", str(tmp_path / "o"), "--quiet"]) == 0
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert manifest["dataset"]["class_names"] == ["neg", "pos"] and manifest["parameters"]["max_length"] == 128
