"""Atomic file writes, output-folder rules and the run manifest.

Every file is written to a temporary name in its folder and renamed into place, so a run that
dies leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import json
import mmap
import os
import platform
import resource
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    import numpy as np

from .errors import DlcpruneError


_UMASK = os.umask(0)
os.umask(_UMASK)


def file_kind(path: str | Path) -> str:
    """A data file's suffix, lower-cased: ``data.JSON`` is read as ``.json`` (Windows tools write upper case)."""
    return Path(path).suffix.lower()


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str) -> Iterator[Any]:
    """An open file that appears at ``path`` only when the block ends without an error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _atomic(path: Path, write: Callable[[Any], None], mode: str) -> None:
    with atomic_file(path, mode) as f:
        write(f)


def write_text(path: str | Path, text: str) -> None:
    _atomic(Path(path), lambda f: f.write(text), "w")


def write_bytes(path: str | Path, data: bytes) -> None:
    _atomic(Path(path), lambda f: f.write(data), "wb")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


CHUNK_BYTES = 64 << 20  # rows of a large array read or written at once


def save_npy(path: str | Path, array: "np.ndarray") -> None:
    """``np.save``'s bytes; a memory-mapped array is written a chunk of rows at a time (never read whole).
    An array that ``np.load(f, mmap_mode="r")`` mapped whole is hard-linked from ``f`` when the two
    paths share a file system (the same bytes, with no read or write: the scores folder takes the
    checkpoint's features that way)."""
    import numpy as np

    if _link_whole_npy(array, Path(path)):
        return

    def write_chunks(f) -> None:
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(array))
        for _, chunk in row_chunks(array):
            f.write(np.ascontiguousarray(chunk).tobytes())

    if isinstance(array.base, mmap.mmap):
        _atomic(Path(path), write_chunks, "wb")
    else:
        _atomic(Path(path), lambda f: np.save(f, array, allow_pickle=False), "wb")


def _link_whole_npy(array: "np.ndarray", path: Path) -> bool:
    import numpy as np

    source = getattr(array, "filename", None)
    if not isinstance(array, np.memmap) or source is None or array.offset != _npy_data_offset(source):
        return False
    with open(source, "rb") as f:  # the file holds exactly this array: same header, nothing after it
        np.lib.format.read_magic(f)
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    if (shape, fortran, dtype) != (array.shape, False, array.dtype) or not array.flags.c_contiguous:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.link")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, path)  # atomic, as every write here
        return True
    except OSError:  # another file system, or links not allowed: copy instead
        tmp.unlink(missing_ok=True)
        return False


def _npy_data_offset(path: str) -> int:
    import numpy as np

    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        return f.tell()


def row_chunks(array: "np.ndarray") -> Iterator[tuple[int, "np.ndarray"]]:
    """(start, rows start:stop) of an array in chunks of about 64 MiB, in order. An array that
    ``np.load(..., mmap_mode="r")`` returned is mapped one chunk at a time and each chunk copied, so
    reading it whole never keeps more than one chunk resident (peak memory stays bounded)."""
    import numpy as np

    n = len(array)
    row_bytes = max(1, array[:1].nbytes)
    step = max(1, CHUNK_BYTES // row_bytes)
    if not isinstance(array.base, mmap.mmap):
        for start in range(0, n, step):
            yield start, array[start:start + step]
        return
    for start in range(0, n, step):
        stop = min(n, start + step)
        part = np.memmap(array.filename, dtype=array.dtype, mode="r", offset=array.offset + start * row_bytes,
                         shape=(stop - start, *array.shape[1:]))
        yield start, np.array(part)
        del part  # unmapped: its pages leave this process


class NpyRows:
    """Rows written one batch at a time into a ``.npy`` file of known length (the row width is
    taken from the first batch); the file appears only when every row is written."""

    def __init__(self, path: str | Path, rows: int) -> None:
        self.path, self.rows, self.written = Path(path), rows, 0
        self._file = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "NpyRows":
        return self

    def append(self, batch: "np.ndarray") -> None:
        import numpy as np

        if self._file is None:
            self._file = self._stack.enter_context(atomic_file(self.path, "wb"))
            header = {"descr": np.lib.format.dtype_to_descr(batch.dtype), "fortran_order": False,
                      "shape": (self.rows, *batch.shape[1:])}
            np.lib.format.write_array_header_1_0(self._file, header)
        self._file.write(np.ascontiguousarray(batch).tobytes())
        self.written += len(batch)

    def __exit__(self, kind, err, tb) -> None:
        if kind is None and self.written != self.rows:
            err = RuntimeError(f"{self.path}: {self.written} of {self.rows} rows written")
            self._stack.__exit__(type(err), err, None)
            raise err
        self._stack.__exit__(kind, err, tb)


def _jsonable(x: Any) -> Any:
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (np.ndarray,)):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_json(path: str | Path) -> Any:
    """A JSON file this tool wrote; one line saying so if it was edited or cut short."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DlcpruneError(f"{path} is not valid JSON ({err}); was it edited or cut short? "
                            "Re-run the command that wrote it") from None


LOCK = ".dlcprune.lock"  # in an output folder while a run writes it: the owner's PID


def check_output_dir(path: str | Path, *, force: bool | None, resumable: Callable[[Path], bool] = lambda p: False,
                     inputs: tuple[str | Path | None, ...] = ()) -> Path:
    """Check, without creating anything, that ``path`` can take a run's outputs.

    Refuses a folder that another live run is writing (its lock); a folder that is, lies inside or
    holds one of ``inputs`` (the data, model and scores the command reads: never written, ``--force``
    or not); a folder that exists and is not empty unless ``force`` is set or ``resumable(path)``
    says it holds an interrupted run of the same job; and a path whose nearest existing parent is
    not writable.
    ``force=None``: the command has no --force (the message does not offer it).
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise DlcpruneError(f"output {out} exists and is not a folder; choose another --output")
    for source in (Path(s) for s in inputs if s is not None):
        if source.is_dir() and is_within(out, source):
            raise DlcpruneError(f"output {out} is inside the input folder {source}; dlcprune never writes into "
                                "the data it reads: choose an --output outside it")
        if source.exists() and is_within(source, out):  # a --force run would write over it (a kept.jsonl scored again)
            raise DlcpruneError(f"output {out} holds the input {source}; dlcprune never writes over the data it "
                                "reads: choose an --output that does not contain it")
    check_unlocked(out)
    entries = {p.name for p in out.iterdir()} - {LOCK} if out.is_dir() else set()
    if entries and not force and not resumable(out):
        raise DlcpruneError(f"output folder {out} exists and is not empty; choose another --output" +
                            (" or pass --force to overwrite its dlcprune files" if force is not None else ""))
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise DlcpruneError(f"cannot write to output folder {out}: {parent} is not a writable folder")
    return out


def is_within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (after resolving links)."""
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_unlocked(out: Path) -> None:
    """Refuse a folder that a live dlcprune process is writing (a stale lock is ignored)."""
    try:
        pid = int((out / LOCK).read_text().strip() or 0)
    except (OSError, ValueError):
        return
    if pid and pid != os.getpid() and _alive(pid):
        raise DlcpruneError(f"another dlcprune run (process {pid}) is writing {out}; wait for it to finish "
                            "or choose another --output")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Hold ``path/.dlcprune.lock`` (created atomically with this PID) while the block runs."""
    lock, mine = path / LOCK, path / f"{LOCK}.{os.getpid()}"
    mine.write_text(str(os.getpid()))  # the lock appears whole: a hard link of a file that holds the PID
    try:
        for _ in range(2):
            try:
                os.link(mine, lock)
                break
            except FileExistsError:
                stale = lock.read_text().strip()
                check_unlocked(path)  # a live owner: refuse; a stale one: take the lock over
                if lock.read_text().strip() == stale:  # nobody took it over meanwhile
                    with contextlib.suppress(OSError):
                        lock.unlink()
        else:
            raise DlcpruneError(f"cannot lock {path}: another run keeps taking it; choose another --output")
    finally:
        mine.unlink()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()


def remove_new(path: Path, before: set[Path] | None) -> None:
    """Remove what appeared in ``path`` since its entries were ``before`` (None: it did not exist,
    so an emptied folder goes too)."""
    for p in set(path.iterdir()) - (before or set()):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    if before is None:
        path.rmdir()


@contextlib.contextmanager
def output_dir(path: Path, *, keep: Callable[[BaseException], bool], replaces: tuple[str, ...] = ()) -> Iterator[Path]:
    """Create and lock ``path`` for a run; if the run fails and ``keep(error)`` is false, remove
    what the run created (the folder if it did not exist, else the files that appeared in it).
    Another live run's lock is refused before anything is written or removed. ``replaces``: the
    names of the files this run writes, removed first (a --force rerun), so that a run that fails
    leaves none of an earlier run's beside what it wrote."""
    existed = path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DlcpruneError(f"cannot write to output folder {path}: {err.strerror or err}") from None
    lock = _lock(path)
    try:
        lock.__enter__()
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                path.rmdir()  # only if still empty: a concurrent run may be filling it
        raise
    for name in replaces:
        (path / name).unlink(missing_ok=True)
    before = set(path.iterdir())  # a new folder: only the lock
    try:
        yield path
    except BaseException as err:
        if not keep(err):
            remove_new(path, before)
        raise
    finally:
        lock.__exit__(None, None, None)
        if not existed and not any(path.iterdir()):
            path.rmdir()


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the results."""
    found = {"python": platform.python_version()}
    for pkg in ("dlcprune", "torch", "timm", "numpy", "efficientnet-lite-pytorch"):
        try:
            found[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return found


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process so far (and peak CUDA allocation when used), in MiB."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    peak = {"rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20}
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
