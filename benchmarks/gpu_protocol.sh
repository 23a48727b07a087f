#!/usr/bin/env bash
# The full fine-tuning protocol (`dlcprune bench --trainer full`) on one GPU at 224 px with bf16
# autocast: Animal-MNIST and MNIST, 200 train / 100 test images per class (class-stratified, seed 0),
# DLC with --levels auto, methods random, auto, flexrand (gamma 0.5), herding, forgetting and EL2N
# (dynamics from the full-pool run), keep 10/30/50% + the full pool, 3 seeds, the `cpu` recipe
# (8 epochs, BatchNorm frozen, probe-started head). Every figure lands under one folder:
# OUT/<dataset>/ (results.md, gap_to_random.png, learning_curve.png, time_to_accuracy.png/.json, ...)
# and OUT/summary.md. A rerun resumes.
#
#   bash benchmarks/gpu_protocol.sh [--dry-run] [--threads N] [OUT]     (default OUT: gpu-protocol)
#
# --dry-run: the same commands on the CPU with a few 32 px images and one epoch (the test suite runs it).
# --threads N: CPU threads of each bench (default: dlcprune's). PYTHON names the interpreter that has
# dlcprune (default: the checkout's .venv/bin/python when there is one, else python3).
set -euo pipefail
usage="usage: bash benchmarks/gpu_protocol.sh [--dry-run] [--threads N] [OUT]"
dry=0 out="" threads=()
while (( $# )); do
  case "$1" in
    --dry-run) dry=1 ;;
    --threads) [[ $# -ge 2 ]] || { echo "error: --threads needs a number; $usage" >&2; exit 2; }
               threads=(--threads "$2"); shift ;;
    -h|--help) echo "$usage"; exit 0 ;;
    -*) echo "error: unknown option $1; $usage" >&2; exit 2 ;;
    *) [[ -z $out ]] || { echo "error: one output folder, got $out and $1; $usage" >&2; exit 2; }
       out=$1 ;;
  esac
  shift
done
out=${out:-gpu-protocol}
here=$(cd "$(dirname "$0")/.." && pwd)
default_py=python3; [[ -x $here/.venv/bin/python ]] && default_py=$here/.venv/bin/python
py=${PYTHON:-$default_py}
methods=random,auto,flexrand,herding,forgetting,el2n
if (( dry )); then
  run=(--device cpu --image-size 32 --train-per-class 5 --test-per-class 2 --levels 2 --step 0.1 --epochs 1
       --keep 0.5 --seeds 1 --quiet)
else
  "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible: run with --dry-run on the CPU')"
  run=(--device cuda --image-size 224 --train-per-class 200 --test-per-class 100 --levels auto --batch-size 256
       --keep 0.1,0.3,0.5 --seeds 3)
fi
mkdir -p "$out"
start=$(date +%s)
for data in animal-mnist mnist; do
  test_args=()
  [[ $data == mnist ]] && test_args=(--test-data mnist-test)
  "$py" -m dlcprune bench --data "$data" "${test_args[@]}" --trainer full --methods "$methods" "${run[@]}" \
    "${threads[@]}" --output "$out/$data"
done
"$py" - "$out" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
from pathlib import Path
out, seconds = Path(sys.argv[1]), int(sys.argv[2])
lines = [f"# Full fine-tuning protocol ({seconds} s in all)", ""]
for data in ("animal-mnist", "mnist"):
    d = out / data
    curves, tta = json.loads((d / "curves.json").read_text()), json.loads((d / "time_to_accuracy.json").read_text())
    lines += [f"## {data}", "", (d / "results.md").read_text(),
              f"full fine-tuning {100 * tta['full']['accuracy']:.2f}% vs linear probe {100 * curves['probe']:.2f}%; "
              f"learning curve {', '.join(f'{100 * a:.1f}' for a in curves['fine-tuning'])}", "",
              f"time to accuracy: {tta['headline']}", ""]
(out / "summary.md").write_text("\n".join(lines))
print("\n".join(lines))
PY
