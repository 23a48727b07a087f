"""The checkpoint of an unfinished scoring run: features, finished levels and finished blocks of
the level loop, valid only for the same key (arguments + data + weights)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import files


class Checkpoint:
    """Files in ``folder`` (None: nothing is kept). A folder holding another key is emptied."""

    def __init__(self, folder: str | Path | None, *, key: dict) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.timings: dict = {}
        if self.folder is None:
            return
        key_file = self.folder / "key.json"
        if key_file.exists() and files.read_json(key_file) == key:
            if (self.folder / "timings.json").exists():
                self.timings = files.read_json(self.folder / "timings.json")
        else:
            for stale in [*self.folder.glob("*.npy"), *self.folder.glob("*.npz")]:
                stale.unlink()
            files.write_json(key_file, key)

    @property
    def features_path(self) -> Path | None:
        """Where the plain pass streams its features (None: kept in memory)."""
        return self.folder / "features.npy" if self.folder else None

    def load_features(self) -> np.ndarray | None:
        """The finished plain pass's features, memory-mapped, or None."""
        f = self.features_path
        return np.load(f, mmap_mode="r") if f and f.exists() else None

    def save_features(self, z: np.ndarray) -> None:
        if self.folder:
            files.save_npy(self.features_path, z)
        self.save_timings()

    def save_timings(self) -> None:
        if self.folder:
            files.write_json(self.folder / "timings.json", self.timings)

    def load_level(self, k: int) -> np.ndarray | None:
        f = self.folder / f"level_{k:04d}.npy" if self.folder else None
        return np.load(f) if f and f.exists() else None

    def save_level(self, k: int, losses: np.ndarray) -> None:
        if self.folder:
            files.save_npy(self.folder / f"level_{k:04d}.npy", losses)
            self.save_timings()

    def save_block(self, levels: list[int], start: int, losses: np.ndarray) -> None:
        """Losses (len(levels), n) of samples start..start+n-1 at ``levels``: a block of the level loop."""
        if self.folder:
            if start == 0:  # a new loop: blocks of an earlier one must not be read as its own
                self.drop_blocks()
            files.save_npy(self.folder / f"block_{start:012d}.npy", losses)
            files.write_json(self.folder / "blocks.json", {"levels": levels})
            self.save_timings()

    def load_blocks(self, levels: list[int]) -> list[np.ndarray]:
        """The finished blocks of a loop over exactly ``levels``, contiguous from sample 0."""
        if not self.folder or not (self.folder / "blocks.json").exists() \
                or files.read_json(self.folder / "blocks.json")["levels"] != levels:
            return []
        found, start = [], 0
        while (f := self.folder / f"block_{start:012d}.npy").exists():
            found.append(np.load(f))
            start += found[-1].shape[1]
        return found

    def drop_blocks(self) -> None:
        if self.folder:
            for f in self.folder.glob("block_*.npy"):
                f.unlink()
