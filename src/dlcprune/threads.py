"""How many CPU threads to use.

The default is ``OMP_NUM_THREADS`` when the user set it (a whole number >= 1, read once, when this
module is first imported), else the physical cores this process may use: fixed for a machine, because float32 sums
(convolutions) come out differently with another thread count, and the same command must give the
same bytes — also when a killed run is resumed. ``auto`` takes the physical cores less those other
processes keep busy right now (CPU time over 0.1 s from /proc/stat), at least 1: on a busy machine
torch's threads then do not spin waiting for a core another process holds (several times faster),
at the price of last-bit differences from a run with another count.

With the default count, a machine that other processes already keep busy when the command starts
gets passive OpenMP waiting (``OMP_WAIT_POLICY=PASSIVE``): threads that wait for a core sleep
instead of spinning against the other processes' work. How a thread waits does not change what it
computes, so the bytes are those of an idle run; on an idle machine waiting stays active, because
passive waiting made idle runs 1.5x slower (benchmarks/busy_machine.py).
"""
from __future__ import annotations

import os

# the user's own count, read before set_threads overwrites the variable (an earlier command in the
# same process must not become the next one's default)
_USER_THREADS = os.environ.get("OMP_NUM_THREADS", "").strip()


def user_threads() -> int | None:
    """The ``OMP_NUM_THREADS`` the process started with, when it is a whole number >= 1, else None."""
    return int(_USER_THREADS) if _USER_THREADS.isascii() and _USER_THREADS.isdigit() and int(_USER_THREADS) >= 1 else None


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (hyper-threads counted once)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/core_id") as f:
                core = f.read().strip()
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id") as f:
                cores.add((f.read().strip(), core))
        except OSError:
            cores.add(("?", cpu))
    return max(1, len(cores))


def busy_cpus(interval: float = 0.1) -> float:
    """How many CPUs the machine kept busy over ``interval`` seconds (0 where /proc/stat is missing)."""
    import time

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values) - idle, sum(values)

    try:
        (b0, t0), _, (b1, t1) = sample(), time.sleep(interval), sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return (b1 - b0) / max(t1 - t0, 1) * (os.cpu_count() or 1)


def default_threads() -> int:
    """Physical cores less the ones other processes keep busy right now, at least 1."""
    return max(1, physical_cores() - round(busy_cpus()))


def set_threads(threads: int | str | None = None) -> int:
    """Use ``threads`` CPU threads (None: the user's ``OMP_NUM_THREADS``, else the physical cores;
    "auto": ``default_threads()``, measured now) in torch and BLAS;
    returns the number. Before torch / numpy are imported this sets their environment variables
    (nothing is imported here) and, with None on a machine that is busy now and no wait policy of the
    user's, ``OMP_WAIT_POLICY=PASSIVE``; after, only ``torch.set_num_threads``."""
    import sys

    n = (user_threads() or physical_cores()) if threads is None else default_threads() if threads == "auto" else threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        from .errors import DlcpruneError

        raise DlcpruneError(f"threads must be a whole number >= 1, \"auto\" or None, got {threads!r}")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    # OpenMP reads its wait policy once, when torch loads it: only then is it worth measuring the load
    if threads is None and n > 1 and "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ \
            and round(busy_cpus()) >= 1:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n


def runtime() -> dict:
    """The thread settings in force, for manifests."""
    import sys

    torch = sys.modules.get("torch")
    return {"threads": torch.get_num_threads() if torch else int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default").lower()}
