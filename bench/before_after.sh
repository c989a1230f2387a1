#!/usr/bin/env bash
# Run the benchmarks on two commits, one after the other on this machine, to show that a change
# which should not change behaviour did not: results (trades, decisions, verdicts, readings)
# must match; timings are compared as ratios to each run's own anchors.
#   bash bench/before_after.sh BEFORE [AFTER=HEAD] [OUT=var/bench-before-after]
# Each commit is cloned into OUT, so bench/results/ of this checkout is not written over.
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:?usage: bash bench/before_after.sh BEFORE [AFTER] [OUT]}
after=${2:-HEAD}
out=${3:-var/bench-before-after}
py=$PWD/.venv/bin/python
mkdir -p "$out"
for side in before after; do
  commit=$([ "$side" = before ] && echo "$before" || echo "$after")
  rm -rf "$out/$side"
  git clone --quiet . "$out/$side"
  git -C "$out/$side" checkout --quiet -B main "$(git rev-parse "$commit")"  # benchmarks clone it and want a main branch
done
run() {
  local name=$1; shift
  for side in before after; do
    echo "== $name on $side ($(git -C "$out/$side" rev-parse --short HEAD)) $(date -u +%T)"
    (cd "$out/$side" && "$py" "bench/$name.py" "$@") > "$out/$name.$side.log" 2>&1 || echo "   exit $?"
    tail -n 3 "$out/$name.$side.log" | sed 's/^/   /'
  done
}
run decision_latency
run backtest_vs_backtestingpy
run edit_plan --runs 10
run validation --runs 3 --sandbox docker
run agent_run --runs 3
run commander
run interpret --part both --no-model
echo "logs in $out/"
