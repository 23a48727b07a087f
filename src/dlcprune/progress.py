"""Progress for the slow passes: a rich bar on a terminal; when stderr is a file or a pipe (nohup,
SLURM, CI), one ``logging`` line every 10% or minute with counts, rate and ETA; silent when disabled."""
from __future__ import annotations

import contextlib
import logging
import time
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)  # progress and status
stdout = Console()  # results: tables, listings


@contextlib.contextmanager
def bar(description: str, total: int, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """``with bar("level 3/20", n) as advance: advance(batch)``."""
    if not enabled:
        yield lambda n=1: None
        return
    if not console.is_terminal:
        yield _log_lines(description, total)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


log = logging.getLogger("dlcprune")


def _log_lines(description: str, total: int, *, every_s: float = 60.0) -> Callable[[int], None]:
    """advance(n) that logs a line at each further 10% of ``total`` or after ``every_s`` seconds."""
    start, state = time.perf_counter(), {"done": 0, "next": 0.1, "last": time.perf_counter()}

    def advance(n: int = 1) -> None:
        state["done"] += n
        now, done = time.perf_counter(), state["done"]
        if done / max(total, 1) >= state["next"] or now - state["last"] >= every_s or done >= total:
            rate = done / max(now - start, 1e-9)
            eta = (total - done) / rate if rate > 0 else float("inf")
            log.info("%s: %s/%s (%.0f%%), %.1f/s, elapsed %s, ETA %s", description, f"{done:,}", f"{total:,}",
                     100 * done / max(total, 1), rate, _clock(now - start), _clock(eta))
            state["last"], state["next"] = now, (int(10 * done / max(total, 1)) + 1) / 10

    return advance


def _clock(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"
