#!/usr/bin/env bash
# The GPU checks of the speed issue, as one script for a machine with CUDA (at most 9.5 minutes:
# each step has its own time limit, so that one slow step cannot eat the rest).
#
#   SEARCH_DATA_DIR=/path/to/data bash benchmarks/gpu_check.sh [WORKERS_PER_GPU] [GRID_SAMPLE]
#
# Prints: the GPU tests, the baseline trial's time against the classic loop, the ofat study's
# wall time with 1 and N workers, and the full 3^7 grid (timed on GRID_SAMPLE random grid
# points and extrapolated, or measured whole with GRID_SAMPLE=0), with peak memory per worker.
set -uo pipefail
cd "$(dirname "$0")/.."
workers=${1:-8}
sample=${2:-200}
py=$(command -v "${PYTHON:-python}")
case $py in /*) ;; *) py="$PWD/$py" ;; esac  # the benchmarks run from benchmarks/
data=$(realpath "${SEARCH_DATA_DIR:-data}")
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
echo "== GPU tests"
timeout 150 $py -m pytest -q -rs tests/test_gpu.py
echo "== baseline trial"
timeout 90 $py benchmarks/trainer_vs_dataloader.py --device cuda --epochs 2 --data-dir "$data"
echo "== ofat study"
(cd benchmarks && timeout 150 $py study_wall.py --workers "1,$workers" --data-dir "$data" --extra "--device cuda")
echo "== full grid"
(cd benchmarks && timeout 180 $py full_grid.py --device cuda --workers "$workers" --sample "$sample" --data-dir "$data")
