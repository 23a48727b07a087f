"""The checkpoint of an unfinished scoring run, valid only for the same key (arguments + data +
weights): ``features.npy`` (the plain pass), ``levels.npy`` (K, N) per-level losses with
``progress.json`` saying how many samples of each level's row are written, ``timings.json``."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .. import files
from ..errors import DlcpruneError


OWN_FILES = ("progress.json", "blocks.json", "levels.npy", "features.npy", "timings.json")  # progress first


class Checkpoint:
    """Files in ``folder`` (None: nothing is kept). A checkpoint of another key loses its files
    (only those, ``OWN_FILES``); a folder that is not empty and holds no checkpoint is refused."""

    def __init__(self, folder: str | Path | None, *, key: dict) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.timings: dict = {}
        self.progress: dict[str, int] = {}
        self._rows: LevelRows | None = None
        if self.folder is None:
            return
        key_file = self.folder / "key.json"
        if self.folder.exists() and not self.folder.is_dir():
            raise DlcpruneError(f"checkpoint folder {self.folder} is a file; give a new or empty folder")
        if not key_file.exists() and self.folder.is_dir() and any(self.folder.iterdir()):
            raise DlcpruneError(f"checkpoint folder {self.folder} holds files and no dlcprune checkpoint (key.json); "
                                "give a new or empty folder: a checkpoint of another run replaces its files")
        if key_file.exists() and files.read_json(key_file) == key:
            for name in ("timings", "progress"):
                if (self.folder / f"{name}.json").exists():
                    setattr(self, name, files.read_json(self.folder / f"{name}.json"))
        else:
            for name in OWN_FILES:
                (self.folder / name).unlink(missing_ok=True)
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

    def level_rows(self, levels: int, n: int) -> LevelRows:
        """The (levels, n) per-level losses of this run: in ``levels.npy`` of the folder (rows read
        back as far as :meth:`done` says), or in memory without a folder. The same object per run."""
        if self._rows is None:
            path = self.folder / "levels.npy" if self.folder else None
            if path and not LevelRows.holds(path, levels, n):  # a new file: nothing of it is written yet
                (self.folder / "progress.json").unlink(missing_ok=True)  # before the file: never one without the other
                self.progress = {}
            self._rows = LevelRows(path, levels, n)
        return self._rows

    def done(self, k: int) -> int:
        """How many samples, from sample 0 on, level ``k``'s row holds."""
        return int(self.progress.get(str(k), 0))

    def record(self, k: int, done: int) -> None:
        """Level ``k``'s row now holds samples 0..done-1 (written before this is recorded)."""
        if self.folder:
            self.progress[str(k)] = done
            files.write_json(self.folder / "progress.json", self.progress)
            self.save_timings()


class LevelRows:
    """(K, N) float64 losses, one row per level. With a file, rows are written with positioned
    writes and read with plain reads, never through a writable map: K x N never counts in this
    process's memory, and the finished file is a ``.npy`` that :meth:`array` maps whole (the
    scores folder hard-links it). Without a file, an array in memory."""

    def __init__(self, path: Path | None, levels: int, n: int) -> None:
        self.path, self.shape = path, (levels, n)
        self._memory = np.zeros(self.shape) if path is None else None
        if path is None:
            return
        header = _header(levels, n)
        self.offset = len(header)
        if not LevelRows.holds(path, levels, n):
            with files.atomic_file(path, "wb") as f:  # zeros where nothing is written yet (a sparse file)
                f.write(header)
                f.truncate(len(header) + 8 * levels * n)

    @staticmethod
    def holds(path: Path, levels: int, n: int) -> bool:
        """Whether ``path`` is already the file of (levels, n) rows (its header and its size)."""
        header = _header(levels, n)
        if not path.exists() or path.stat().st_size != len(header) + 8 * levels * n:
            return False
        with open(path, "rb") as f:
            return f.read(len(header)) == header

    def write(self, k: int, start: int, values: np.ndarray) -> None:
        """Level ``k``'s losses of samples start..start+len(values)-1."""
        if self._memory is not None:
            self._memory[k, start:start + len(values)] = values
            return
        with open(self.path, "r+b") as f:
            f.seek(self.offset + 8 * (k * self.shape[1] + start))
            f.write(np.ascontiguousarray(values, dtype="<f8").tobytes())

    def row(self, k: int) -> np.ndarray:
        """(N,) level ``k``'s losses, a copy in memory."""
        if self._memory is not None:
            return self._memory[k].copy()
        return np.fromfile(self.path, dtype="<f8", count=self.shape[1], offset=self.offset + 8 * k * self.shape[1])

    def array(self) -> np.ndarray:
        """(K, N) every row: mapped read-only from the file (not read), or the array in memory."""
        return self._memory if self._memory is not None else np.load(self.path, mmap_mode="r")

    def mean(self) -> np.ndarray:
        """(N,) the mean over levels, bit-identical to ``array().mean(0)``, a chunk of samples at a time."""
        if self._memory is not None:
            return self._memory.mean(0)
        levels, n = self.shape
        step = max(2, files.CHUNK_BYTES // (8 * levels))
        bounds = list(range(0, n, step)) + [n]
        if len(bounds) > 2 and n - bounds[-2] == 1:
            del bounds[-2]  # a chunk one sample wide would be summed pairwise, not level by level: other bits
        out = np.empty(n)
        with open(self.path, "rb") as f:
            for start, stop in zip(bounds, bounds[1:]):
                width = stop - start
                chunk = np.empty((levels, width))
                for k in range(levels):
                    f.seek(self.offset + 8 * (k * n + start))
                    chunk[k] = np.fromfile(f, dtype="<f8", count=width)
                out[start:start + width] = chunk.mean(0)
        return out


def _header(levels: int, n: int) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (levels, n)})
    return header.getvalue()
