"""Class-stratified, seeded splits of sample indices (pure numpy)."""
from __future__ import annotations

import numpy as np

from ..errors import DlcpruneError


def stratified_split(labels: np.ndarray, sizes: dict[str, int], *, seed: int) -> dict[str, np.ndarray]:
    """Disjoint class-stratified parts, e.g. ``{"train": 300, "test": 200}`` samples PER CLASS.

    Returns sorted index arrays. Each class is shuffled once with ``seed`` and cut in the order
    of ``sizes``.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in sizes}
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        if len(members) < sum(sizes.values()):
            raise DlcpruneError(f"class {c} has {len(members)} samples, fewer than the "
                                f"{sum(sizes.values())} per class the split asks for")
        start = 0
        for name, n in sizes.items():
            parts[name].append(members[start:start + n])
            start += n
    return {name: np.sort(np.concatenate(p)) for name, p in parts.items()}


def holdout_split(labels: np.ndarray, *, fraction: float = 0.2, seed: int = 0,
                  option: str = "--val-fraction") -> tuple[np.ndarray, np.ndarray]:
    """(rest, held_out): sorted indices; each class puts round(n_c * fraction) samples, drawn with
    ``seed``, in the held-out part (a validation or test split). Refuses a split that would leave a
    class without samples on either side; ``option``: the flag that sets ``fraction``, for that message."""
    if not 0.0 < fraction < 1.0:
        raise DlcpruneError(f"the validation fraction must lie in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_val = round(len(members) * fraction)
        if n_val == 0 or n_val == len(members):
            raise DlcpruneError(f"class {c} has {len(members)} sample(s): a {fraction:.0%} held-out split would "
                                f"leave it with {'no held-out' if n_val == 0 else 'no remaining'} samples; "
                                f"add samples to it, remove the class or choose another {option}")
        val.append(rng.choice(members, size=n_val, replace=False))
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(labels)), val_idx), val_idx
