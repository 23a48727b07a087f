"""Progress bars (rich) for the slow passes; silent when disabled."""
from __future__ import annotations

import contextlib
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
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
