"""Offline lm-eval: a multiple-choice task over local JSONL, defined by a YAML file we write.

Built from held-out instruction records whose responses come from a small label set (e.g. the
sentiment set's "positive" / "negative"): each document holds the record's prompt, the choices
(the sorted label set) and the index of its label. The choice follows the prompt directly (no
delimiter), as the response does in scoring and fine-tuning. ``lm_eval`` scores the log-likelihood of each
choice after the prompt and reports accuracy (``acc``) and length-normalised accuracy
(``acc_norm``). With network access, any registered lm-eval task (MMLU, ...) can be named instead.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from .. import files
from ..errors import DlcpruneError
from ..data.instructions import InstructionSet
from ..models.causal import CausalLM

TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{prompt}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: target
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def write_choice_task(data: InstructionSet, folder: str | Path, *, name: str = "dlcprune_heldout",
                      template: str = "alpaca", tokenizer=None) -> str:
    """Write ``folder/<name>.yaml`` and ``folder/<name>.jsonl``; returns the task name."""
    labels = sorted({data.messages(i)[1] for i in range(len(data))})
    if not 2 <= len(labels) <= 20:
        raise DlcpruneError(f"a multiple-choice task needs 2..20 distinct responses, {data.source} has {len(labels)}")
    folder = Path(folder)
    docs = [{"prompt": data.prompt(i, template=template, tokenizer=tokenizer), "choices": labels,
             "target": labels.index(data.messages(i)[1])} for i in range(len(data))]
    files.write_text(folder / f"{name}.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
    files.write_text(folder / f"{name}.yaml", TASK_YAML.format(name=name, data=(folder / f"{name}.jsonl").resolve()))
    return name


def task_manager(task_folder: str | Path, tasks: list[str]):
    """lm-eval's TaskManager over ``task_folder``; lm-eval's own registry (thousands of YAML files,
    seconds to index) is added only when a task is not a YAML file of the folder. Limitation: a
    local YAML that only groups registered tasks does not find them."""
    from lm_eval.tasks import TaskManager

    local = all((Path(task_folder) / f"{t}.yaml").is_file() for t in tasks)
    return TaskManager(include_path=str(task_folder), include_defaults=not local)


def check_tasks(task_folder: str | Path, tasks: list[str]) -> None:
    """Fail before any training if a task is neither in ``task_folder`` nor registered in lm-eval."""
    known = task_manager(task_folder, tasks).all_tasks
    missing = [t for t in tasks if t not in known]
    if missing:
        raise DlcpruneError(f"unknown lm-eval task(s) {', '.join(missing)}; use 'local' or a name from `lm-eval ls tasks`")


def lm_eval_scores(lm: CausalLM, task_folder: str | Path, task: str, *, batch_size: int = 8,
                   progress: bool = True) -> dict:
    """Run lm-eval's ``simple_evaluate`` on the task (a local one from ``task_folder``, or any
    registered name); returns {metric: value}. A PEFT model is evaluated as it is (the adapter is
    not merged, so the model is left untouched). ``progress=False``: lm-eval's own bars and notices
    are muted too."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    tok = lm.tokenizer
    prefix = next((t for t in (tok.bos_token_id, tok.eos_token_id, tok.cls_token_id, tok.pad_token_id) if t is not None), None)
    with contextlib.nullcontext() if progress else _stderr_muted():
        model = HFLM(pretrained=lm.module, tokenizer=tok, batch_size=batch_size, device=str(lm.device),
                     prefix_token_id=prefix)
        out = simple_evaluate(model=model, tasks=[task], task_manager=task_manager(task_folder, [task]),
                              log_samples=False, verbosity="ERROR")
    metrics = out["results"][task]
    return {k.split(",")[0]: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and "stderr" not in k and k != "sample_len"}  # a count, no metric


@contextlib.contextmanager
def _stderr_muted(*, tail_lines: int = 20):
    """lm-eval's bars (tqdm with an explicit ``disable=False``), its notices and the ``git describe``
    it runs for its provenance record all write to stderr, whatever TQDM_DISABLE or verbosity say:
    capture stderr, Python's and file descriptor 2, for the call. If the call fails, the last
    ``tail_lines`` lines it wrote (a bar's redraws count once) are replayed to stderr (lm-eval's own
    account of the failure), and the error propagates."""
    from lm_eval.utils import setup_logging

    setup_logging("ERROR")  # lm-eval binds its log handler once, to sys.stderr: the real one, not our capture
    sys.stderr.flush()
    with tempfile.TemporaryFile() as log, open(log.fileno(), "w", encoding="utf-8", errors="replace",
                                                buffering=1, closefd=False) as text:
        saved = os.dup(2)
        try:
            with contextlib.redirect_stderr(text):
                os.dup2(log.fileno(), 2)
                yield
        except BaseException:
            text.flush()  # a last line without its newline
            _restore_stderr(saved)
            log.seek(0)
            lines = _last_lines(log.read().decode("utf-8", "replace"), tail_lines)
            if lines:
                print("lm-eval's last output:", *lines, sep="\n", file=sys.stderr, flush=True)
            raise
        _restore_stderr(saved)


def _last_lines(output: str, count: int) -> list[str]:
    """The last ``count`` non-empty lines of ``output``; of a line redrawn with carriage returns (a
    progress bar), its last state."""
    lines = [line.rsplit("\r", 1)[-1] for line in output.split("\n")]
    lines = [line for line in lines if line.strip()]
    return lines[-count:] if count > 0 else []


def _restore_stderr(saved: int) -> None:
    sys.stderr.flush()  # what a handler buffered meanwhile goes to the captured log too
    os.dup2(saved, 2)
    os.close(saved)
