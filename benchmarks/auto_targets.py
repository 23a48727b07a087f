"""auto against its targets, from finished `dlcprune bench` folders (results.csv, verdicts.json,
timings.json): the gain over random, the distance to the best single method, safety per keep
fraction, the calibration of "beats random", and the choice cost.
Usage: python benchmarks/auto_targets.py BENCH_FOLDER [BENCH_FOLDER ...]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

NOT_SINGLE = {"auto", "flexrand-auto", "full pool"}  # choosers and the reference are not "single methods"


def summary(folder: Path) -> tuple[list[str], list[tuple]]:
    from dlcprune.results import read_rows, summarise

    acc = summarise(read_rows(folder / "results.csv"))
    verdicts = json.loads((folder / "verdicts.json").read_text())["auto"]
    timings = json.loads((folder / "timings.json").read_text())
    keeps = sorted(acc["auto"])
    mean = lambda m: 100 * float(np.mean([np.mean(acc[m][k]) for k in keeps]))
    singles = {m: mean(m) for m in acc if m not in NOT_SINGLE and all(k in acc[m] for k in keeps)}
    best = max(singles, key=singles.get)
    gaps = {k: 100 * (np.mean(acc["auto"][k]) - np.mean(acc["random"][k])) for k in keeps}
    cells = []
    for k in keeps:
        v = verdicts[f"{k:g}"]
        cells.append((folder.name, k, v["chosen"], v["verdict"].split(" (")[0].split(" by ")[0], gaps[k]))
    choice = timings.get("choice_s", {}).get("auto")
    lines = [f"{folder.name}: auto {mean('auto'):.2f}, random {mean('random'):.2f} -> auto - random = "
             f"{mean('auto') - mean('random'):+.2f} points; best single method {best} {singles[best]:.2f} -> auto - best = "
             f"{mean('auto') - singles[best]:+.2f}; worst keep fraction auto - random = {min(gaps.values()):+.2f} "
             f"(at {min(gaps, key=gaps.get):g})" + (f"; choice / DLC scoring = {choice / timings['dlc_score_s']:.3f}"
                                                   if choice else "")]
    return lines, cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    args = ap.parse_args()
    all_cells = []
    for folder in args.folders:
        lines, cells = summary(folder)
        print("\n".join(lines))
        all_cells += cells
    print("\n| data | keep | auto chose | verdict | test: auto - random (points) |\n|---|---:|---|---|---:|")
    for data, keep, chosen, verdict, gap in all_cells:
        print(f"| {data} | {keep:g} | {chosen} | {verdict} | {gap:+.2f} |")
    beats = [gap for *_, verdict, gap in all_cells if verdict == "beats random"]
    right = sum(g > 0 for g in beats)
    print(f"\ncalibration: the verdict said 'beats random' in {len(beats)} of {len(all_cells)} cells; the test split agreed "
          f"in {right} of them" + (f" ({100 * right / len(beats):.0f}%)" if beats else ""))


if __name__ == "__main__":
    main()
