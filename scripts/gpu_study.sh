#!/usr/bin/env bash
# Run studies at the `gpu` profile on a machine with a GPU and pack what they produced into one
# archive per study: result tables + provenance + unit records (small JSON), never checkpoints.
#
#   scripts/gpu_study.sh testbed merging      # archives land in $OUT (or _build/gpu-out)
#
# Resuming on a fresh machine: put earlier archives in .gpu/ (git-ignored; carry it), and the unit
# records in them are restored first, so finished units are not redone (units whose product is a
# checkpoint, e.g. base models, are retrained: checkpoints never travel). With your own GPU, just run
# `make reproduce STUDY=all PROFILE=gpu`. PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 STUDY [STUDY ...]" >&2; exit 2; }
out=${OUT:-_build/gpu-out}
profile=${PROFILE:-gpu}   # PROFILE=smoke checks the script on a CPU
mkdir -p "$out"
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
for study in "$@"; do
  if [ -f ".gpu/$study.tar.gz" ]; then tar -xzf ".gpu/$study.tar.gz"; fi
  start=$(date +%s)
  # run() directly: the device machine has no papermill; validation happens before any compute
  "${PYTHON:-python3}" -m scalinglaws reproduce "$study" --profile "$profile" --no-notebook 2>&1 | tee "$out/$study.log"
  echo "$study: $(( $(date +%s) - start )) s wall" | tee -a "$out/$study.log"
  tar -czf "$out/$study.tar.gz" "data/results/$study/$profile" $(ls -d "${SCALINGLAWS_WORK:-.work}/units/$study/$profile" 2>/dev/null)
done
