"""Name -> factory registries (as timm's ``@register_model``), so ``dlcprune list`` can show
every model, scorer, selection policy and built-in dataset."""
from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Callable, Generic, Iterator, TypeVar

from .errors import DlcpruneError

T = TypeVar("T", bound=Callable)


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: T
    summary: str
    kind: str = ""  # a sub-kind shown by `dlcprune list`, e.g. "image encoder" or "causal LM"


class Registry(Generic[T]):
    """A named collection of factories of one kind ("model", "policy", ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, *, summary: str = "", kind: str = "") -> Callable[[T], T]:
        """Decorator: ``@METHODS.register("random", summary="...")``. A name ending in ``:`` is a
        prefix: ``timm:`` stands for every ``timm:<name>``, and its factory gets ``<name>`` first."""

        def add(factory: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            doc = (factory.__doc__ or "").strip().splitlines()
            self._entries[name] = Entry(name, factory, summary or (doc[0] if doc else ""), kind)
            return factory

        return add

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name`` (for ``timm:<name>``, the ``timm:`` prefix's entry, its factory bound
        to ``<name>``); an unknown name raises with close matches."""
        if name in self._entries:
            return self._entries[name]
        prefix, sep, rest = name.partition(":")
        if sep and rest and f"{prefix}:" in self._entries:
            e = self._entries[f"{prefix}:"]
            return Entry(name, functools.partial(e.factory, rest), e.summary, e.kind)
        raise DlcpruneError(unknown_name_message(self.kind, name, self.names()))

    def get(self, name: str) -> T:
        """The factory registered as ``name`` (see ``entry``)."""
        return self.entry(name).factory

    def __contains__(self, name: object) -> bool:
        try:
            self.entry(str(name))
        except DlcpruneError:
            return False
        return True

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        """Registered names; a prefix shows as ``timm:<name>``."""
        return [n + "<name>" if n.endswith(":") else n for n in self._entries]


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """One line: the unknown name, its closest known names (or all of them when few)."""
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    if close:
        return f"unknown {kind} {name!r}; did you mean: {', '.join(close)}?"
    shown = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "")
    return f"unknown {kind} {name!r}; known: {shown}"
