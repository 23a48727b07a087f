"""Instruction data: Alpaca, ShareGPT and chat-``messages`` records from JSONL / JSON / a ``save_to_disk`` folder.

A record's identity is its position. JSONL records keep their exact bytes, so the kept records
are written back byte-identical, in their original order; records from a JSON array or a
Hugging Face folder are written as one ``json.dumps`` line each. A malformed line stops the run,
naming the line, before anything is written.

Prompt and response: Alpaca records (``instruction``, optional ``input``, ``output``) use the
Alpaca template by default; ShareGPT records (``conversations``: [{from, value}, ...]) answer
with their last assistant turn (from ``gpt`` / ``assistant``), conditioned on the turns before
it; so do chat records in the OpenAI / TRL form (``messages``: [{role, content}, ...], text content).
``template="chat"`` renders the prompt with the tokenizer's chat template instead.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import DlcpruneError
from ..files import file_kind
from .text import is_hf_folder, pick_split, read_json_array

ALPACA = ("Below is an instruction that describes a task, paired with an input that provides further context. "
          "Write a response that appropriately completes the request.\n\n"
          "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
ALPACA_NO_INPUT = ("Below is an instruction that describes a task. "
                   "Write a response that appropriately completes the request.\n\n"
                   "### Instruction:\n{instruction}\n\n### Response:\n")
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
TURNS = {"sharegpt": ("conversations", "from", "value"), "messages": ("messages", "role", "content")}  # form: key, role, text
NAMES = {"alpaca": "Alpaca", "sharegpt": "ShareGPT", "messages": "chat ('messages')"}


@dataclass
class InstructionSet:
    """records: parsed dicts; raw: each record's bytes as written back (no newline); form: alpaca | sharegpt | messages;
    ids: where each record was ("line 3", "record 0", "row 0").

    A dataset like the others, with no classes: every record has label 0 of the one class
    ``records``, so class-stratified selection is global selection."""

    records: list[dict]
    raw: list[bytes]
    source: str
    form: str
    ids: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=lambda: ["records"])

    def __post_init__(self) -> None:
        self.ids = self.ids or [f"record {i}" for i in range(len(self.records))]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> np.ndarray:
        return np.zeros(len(self.records), dtype=np.int64)

    @property
    def num_classes(self) -> int:
        return 1

    def subset(self, indices, *, source: str | None = None) -> "InstructionSet":
        idx = [int(i) for i in indices]
        return InstructionSet(records=[self.records[i] for i in idx], raw=[self.raw[i] for i in idx],
                              source=source or f"{self.source}[subset of {len(idx)}]", form=self.form,
                              ids=[self.ids[i] for i in idx])

    def fingerprint(self) -> str:
        """sha256 over the records' bytes, in order."""
        h = hashlib.sha256(self.form.encode())
        for r in self.raw:
            h.update(hashlib.sha256(r).digest())
        return h.hexdigest()

    def messages(self, i: int) -> tuple[list[dict], str]:
        """(conversation before the response as [{role, content}], response text) of record i."""
        r = self.records[i]
        if self.form == "alpaca":
            return [{"role": "user", "content": r["instruction"], "input": r.get("input") or ""}], r["output"]
        key, role, text = TURNS[self.form]
        turns = [{"role": ROLES[t[role]], "content": t[text]} for t in r[key]]
        last = max(k for k, t in enumerate(turns) if t["role"] == "assistant")
        return turns[:last], turns[last]["content"]

    def prompt(self, i: int, *, template: str = "alpaca", tokenizer=None) -> str:
        history, _ = self.messages(i)
        if template == "chat":
            if getattr(tokenizer, "chat_template", None) is None:
                raise DlcpruneError("--template chat needs a tokenizer with a chat template; use --template alpaca")
            plain = [{"role": m["role"], "content": _with_input(m)} for m in history]
            if not plain:
                raise DlcpruneError(f"{self.source}, {self.ids[i]}: the assistant's turn comes first, and a chat "
                                    "template needs a turn before it; add the user's turn or use --template alpaca")
            try:
                return tokenizer.apply_chat_template(plain, add_generation_prompt=True, tokenize=False)
            except Exception as err:  # jinja2's TemplateError (a template's raise_exception) or transformers' ValueError
                reason = " ".join(str(err).split())[:300] or type(err).__name__  # one line, whatever jinja wrote
                raise DlcpruneError(f"{self.source}, {self.ids[i]}: the tokenizer's chat template refuses this "
                                    f"conversation ({reason}); edit it in a copy of the file or use --template alpaca") from None
        if self.form == "alpaca":
            m = history[0]
            return (ALPACA if m["input"] else ALPACA_NO_INPUT).format(instruction=m["content"], input=m["input"])
        text = history[0]["content"] if len(history) == 1 else "\n".join(f"{m['role']}: {m['content']}" for m in history)
        return ALPACA_NO_INPUT.format(instruction=text)

    def write_jsonl(self, path: Path, indices) -> None:
        from .. import files

        files.write_bytes(path, b"".join(self.raw[i] + b"\n" for i in indices))


def _with_input(m: dict) -> str:
    return f"{m['content']}\n\n{m['input']}" if m.get("input") else m["content"]


def load_instructions(path: str | Path, *, split: str | None = None) -> InstructionSet:
    """JSONL (one record per line; blank lines skipped), a JSON array, or a ``save_to_disk`` folder
    (of a DatasetDict: its ``split``, default train)."""
    p = Path(path)
    if split is not None and not p.is_dir():
        raise DlcpruneError(f"a split ({split!r}) is read from a Hugging Face save_to_disk folder; {p} is a file: "
                            "leave out --hf-split")
    records, raw, source = _read_records(p, split)
    if not records:
        raise DlcpruneError(f"{p} holds no records")
    form = _form(records[0][1])
    for where, rec in records:
        _check(rec, form, f"{p}, {where}")
    data = InstructionSet(records=[r for _, r in records], raw=raw, source=source, form=form,
                          ids=[where for where, _ in records])
    empty = [data.ids[i] for i in range(len(data)) if not data.messages(i)[1].strip()]
    if empty:  # their loss would be the end-of-text token's alone: no measure of the record
        shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise DlcpruneError(f"{p}: {len(empty)} record(s) have an empty response ({shown}): nothing to score; "
                            "fill them in or remove them from a copy of the file")
    return data


def _read_records(p: Path, split: str | None) -> tuple[list[tuple[str, object]], list[bytes], str]:
    """(where, record) pairs, each record's bytes as ``write_jsonl`` writes it back, and the source's name."""
    if p.is_dir():
        from datasets import load_from_disk

        if not is_hf_folder(p):
            raise DlcpruneError(f"{p} is a folder but no Hugging Face save_to_disk folder; instruction records "
                                "come as a .jsonl or .json file (Alpaca, ShareGPT or chat messages) or such a folder")
        try:
            ds = load_from_disk(str(p))
        except Exception as err:  # datasets raises several types for a folder it cannot read
            raise DlcpruneError(f"{p}: not a Hugging Face save_to_disk folder ({err})") from None
        ds, split = pick_split(ds, split, p)
        records = [(f"row {i}", r) for i, r in enumerate(ds)]
        source = f"{p} [{split}]" if split else str(p)
        return records, [json.dumps(r, ensure_ascii=False).encode() for _, r in records], source
    if file_kind(p) == ".jsonl":
        records, raw = [], []
        for n, line in enumerate(_read(p).split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except UnicodeDecodeError as err:
                raise DlcpruneError(f"{p}, line {n}, byte {err.start}: not UTF-8 text; save the file as UTF-8") from None
            except json.JSONDecodeError as err:
                raise DlcpruneError(f"{p}, line {n}: not valid JSON ({err.msg}); fix or remove the line") from None
            records.append((f"line {n}", rec))
            raw.append(line)  # with its "\r" in a CRLF file: kept records come out byte-identical
        return records, raw, str(p)
    if file_kind(p) == ".json":
        records = [(f"record {i}", r) for i, r in enumerate(read_json_array(p))]
        return records, [json.dumps(r, ensure_ascii=False).encode() for _, r in records], str(p)
    raise DlcpruneError(f"{p}: expected a .jsonl or .json file or a save_to_disk folder")


def is_instructions(columns: Iterable[str], *, label_column: str = "label") -> bool:
    """Whether records with these keys are instruction data (Alpaca, ShareGPT or chat messages) rather
    than a labelled text table: a label column makes them a table."""
    keys = set(columns)
    return label_column not in keys and ("conversations" in keys or "messages" in keys
                                         or {"instruction", "output"} <= keys)


def peek_columns(path: Path) -> list[str]:
    """The keys of the first record of a .jsonl / .json file ([] when it cannot tell)."""
    try:
        if file_kind(path) == ".jsonl":
            with open(path, "rb") as f:
                first = next((line for line in f if line.strip()), b"")
            rec = json.loads(first) if first else {}
        else:
            rows = json.loads(path.read_bytes())
            rec = rows[0] if isinstance(rows, list) and rows else {}
    except (OSError, ValueError):
        return []  # the loader that follows says what is wrong with the file
    return list(rec) if isinstance(rec, dict) else []


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError as err:
        raise DlcpruneError(f"cannot read {p}: {err.strerror}") from None


def _form(rec) -> str:
    """alpaca, sharegpt or messages: which of the forms a record is written in (by its keys)."""
    keys = set(rec) if isinstance(rec, dict) else set()
    return next((f for f, (key, _, _) in TURNS.items() if key in keys), "alpaca")


def _check(rec, form: str, where: str) -> None:
    """One line naming what is wrong with a record of a file whose first record is in ``form``."""
    if not isinstance(rec, dict):
        raise DlcpruneError(f"{where}: expected a JSON object")
    if {"messages", "conversations"} <= set(rec):
        raise DlcpruneError(f"{where}: the record holds both 'messages' and 'conversations': keep one of them "
                            "(in a copy of the file)")
    if _form(rec) != form:
        raise DlcpruneError(f"{where}: written as {NAMES[_form(rec)]} while the file's first record is "
                            f"{NAMES[form]}; one form per file: convert the records or split the file")
    if form == "alpaca":
        for key in ("instruction", "output"):
            if not isinstance(rec.get(key), str):
                raise DlcpruneError(f"{where}: an Alpaca record needs a string {key!r} (and optionally 'input')")
        return
    key, role, text = TURNS[form]
    turns = rec.get(key)
    shape = "{'from': human|gpt|system, 'value': str}" if form == "sharegpt" else "{'role': system|user|assistant, 'content': str}"
    if not isinstance(turns, list):
        raise DlcpruneError(f"{where}: a {NAMES[form]} record needs {key!r}: a list of turns {shape}")
    roles = set(ROLES) if form == "sharegpt" else {"system", "user", "assistant"}
    for k, t in enumerate(turns, start=1):
        if not isinstance(t, dict):
            raise DlcpruneError(f"{where}: turn {k} is not an object; each turn is {shape}")
        if t.get(role) not in roles:
            raise DlcpruneError(f"{where}: turn {k} has {role} {t.get(role)!r}; only {', '.join(sorted(roles))} "
                                "turns are read: drop the others (tool calls, ...) from a copy of the file")
        if not isinstance(t.get(text), str):
            raise DlcpruneError(f"{where}: turn {k}'s {text!r} is not text (a string); multimodal or tool content "
                                "is not scored: keep the text turns in a copy of the file")
    if not any(ROLES[t[role]] == "assistant" for t in turns):
        raise DlcpruneError(f"{where}: the conversation has no assistant turn to score")
