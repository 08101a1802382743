#!/usr/bin/env bash
# Run lease parts of studies at the `gpu` profile and pack what they produced into one archive per
# part: result tables + provenance + unit records (small JSON), never checkpoints.
#
#   scripts/gpu_study.sh testbed:small        # one part (one device lease: predicted <= 8 min)
#   scripts/gpu_study.sh testbed              # every part of the study, in order
#   python -m scalinglaws plan gpu all        # the parts, their budgets and predicted minutes
#
# A part is the study's gpu profile with the overrides `plan gpu STUDY --part P` prints (refused, exit 2,
# when predicted above its limit). Its tables land in data/results/<study>/<profile>/parts/<part>/, so
# parts accumulate in the repository across leases; a part whose provenance.json is stored there is
# skipped, and the study's tables in data/results/<study>/<profile>/ are recombined from every stored
# part (`plan gpu STUDY --combine`: the study's run replayed on the union of the parts' unit records, which
# each part stores in parts/<part>/units/, so fits across sizes are those of one uninterrupted run). Routing's parts record their units under data/results/routing/<profile>/units/ (branch
# regime's parts/part) and its last part, `tables`, writes the study's tables from them.
# Archives land in $OUT (or _build/gpu-out). Earlier archives in .gpu/ (git-ignored; carry it) are
# unpacked first. PROFILE (default gpu) and PYTHON (default python3) may be set; the CPU rehearsal
# (tests/test_gpu_rehearsal.py) runs this script with PROFILE=gpu and budgets divided on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 STUDY[:PART] [STUDY[:PART] ...]" >&2; exit 2; }
out=${OUT:-_build/gpu-out}
profile=${PROFILE:-gpu}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
results=${SCALINGLAWS_RESULTS:-data/results}
work=${SCALINGLAWS_WORK:-.work}
for a in .gpu/*.tar.gz; do [ -f "$a" ] && tar -xzf "$a"; done
targets=()
for arg in "$@"; do
  if [[ "$arg" == *:* ]]; then targets+=("$arg"); else
    mapfile -t names < <("$py" -m scalinglaws plan gpu "$arg" --names)
    for n in "${names[@]}"; do targets+=("$arg:$n"); done
  fi
done
for target in "${targets[@]}"; do
  study=${target%%:*}; part=${target#*:}
  overrides=$("$py" -m scalinglaws plan gpu "$study" --part "$part" --params)  # validated, refused over its limit
  dest="$results/$study/$profile/parts/$part"
  if [ -f "$dest/provenance.json" ]; then echo "$target: stored in $dest, skipped"; continue; fi
  start=$(date +%s)
  if [ "$study" = routing ] && [[ "$overrides" == *"unit_records="* ]]; then  # unit records committed beside the tables; the `tables` part writes them
    read -r -a params <<< "$overrides"
    "$py" -m scalinglaws reproduce "$study" --profile "$profile" --no-notebook -p "${params[@]}" 2>&1 | tee "$out/$study-$part.log"
    packed=("$results/$study/$profile")
  else  # the part's tables in a staging root that sees every stored study (the testbed's rates)
    stage=$(mktemp -d); cp -r "$results/." "$stage/"; rm -rf "${stage:?}/$study/$profile"
    read -r -a params <<< "$overrides"
    SCALINGLAWS_RESULTS="$stage" "$py" -m scalinglaws reproduce "$study" --profile "$profile" --no-notebook \
      -p "${params[@]}" 2>&1 | tee "$out/$study-$part.log"
    mkdir -p "$(dirname "$dest")"; rm -rf "$dest"; mv "$stage/$study/$profile" "$dest"; rm -rf "$stage"
    # the part's unit records (every study's at this profile: a merging part trains its testbed bases), so
    # that combining replays them into the tables of one run over every part (fits across sizes refitted)
    for d in "$work"/units/*/"$profile"; do
      [ -d "$d" ] || continue
      s=$(basename "$(dirname "$d")"); mkdir -p "$dest/units/$s/$profile"
      (cd "$d" && find . -name '*.json' ! -name '*.failed.json' ! -name 'run.failed.json' -print0 |
        xargs -0 -r cp --parents -t "$dest/units/$s/$profile")
    done
    packed=("$dest")
    # the parts so far: the study's tables; a combination that fails (e.g. parts whose union asks for a unit
    # no part recorded) must not lose the part just run: it is stored and packed, and combined later
    SCALINGLAWS_RESULTS="$results" "$py" -m scalinglaws plan gpu "$study" --combine 2>&1 | tee -a "$out/$study-$part.log" \
      || echo "$target: stored in $dest; combining the parts failed (above), rerun: python -m scalinglaws plan gpu $study --combine" \
      | tee -a "$out/$study-$part.log"
    packed=("$results/$study/$profile")
  fi
  echo "$target: $(( $(date +%s) - start )) s wall" | tee -a "$out/$study-$part.log"
  tar -czf "$out/$study-$part.tar.gz" "${packed[@]}" $(ls -d "$work/units/$study/$profile" 2>/dev/null)
done
