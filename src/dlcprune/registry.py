"""Name -> factory registries (as timm's ``@register_model``), so ``dlcprune list`` can show
every model, scorer, selection policy and built-in dataset."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, Generic, Iterator, TypeVar

from .errors import DlcpruneError

T = TypeVar("T", bound=Callable)


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: T
    summary: str


class Registry(Generic[T]):
    """A named collection of factories of one kind ("model", "policy", ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, *, summary: str = "") -> Callable[[T], T]:
        """Decorator: ``@POLICIES.register("random", summary="...")``."""

        def add(factory: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            doc = (factory.__doc__ or "").strip().splitlines()
            self._entries[name] = Entry(name, factory, summary or (doc[0] if doc else ""))
            return factory

        return add

    def get(self, name: str) -> T:
        """The factory registered as ``name``; an unknown name raises with close matches."""
        try:
            return self._entries[name].factory
        except KeyError:
            raise DlcpruneError(unknown_name_message(self.kind, name, list(self._entries))) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """One line: the unknown name, its closest known names (or all of them when few)."""
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    if close:
        return f"unknown {kind} {name!r}; did you mean: {', '.join(close)}?"
    shown = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "")
    return f"unknown {kind} {name!r}; known: {shown}"
