#!/usr/bin/env bash
# A/B of training steps between two commits, with PyTorch measured in every round.
#
#   bash benchmarks/ab-steps.sh OLD NEW [IMPLEMENTATION] [ROUNDS] [STEPS] > results.jsonl
#
# OLD and NEW are commits of this repository; each is checked out as a git worktree
# under a temporary folder (removed at the end), with ../shared linked beside it so
# that real MNIST is used where this checkout has it. Each round runs
# `python -m benchmarks._steps_worker steps mnist IMPLEMENTATION 10 STEPS` (default
# xconv, 6 rounds, 100 steps) in each tree, old first in odd rounds and new first in
# even ones (so that a host drifting within the run favours neither), then PyTorch's
# mirror of the network once. Every run is its own process, from the interpreter
# $PYTHON (default python3), with PYTHONPATH set to its tree. One JSON line per run:
# {"round", "tree", "commit", "impl", "result"}; uptime goes to stderr before and after.
# For benchmarks only, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset (they slow a
# current NumPy on these hosts).
set -euo pipefail
old=$1 new=$2 impl=${3:-xconv} rounds=${4:-6} steps=${5:-100}
python=${PYTHON:-python3}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$work/old" 2>/dev/null || true;
      git -C "$repo" worktree remove --force "$work/new" 2>/dev/null || true; rm -rf "$work"' EXIT
git -C "$repo" worktree add --quiet --detach "$work/old" "$old"
git -C "$repo" worktree add --quiet --detach "$work/new" "$new"
if [ -d "$repo/../shared" ]; then ln -s "$(cd "$repo/../shared" && pwd)" "$work/shared"; fi
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

run() {  # tree implementation round
  local commit result
  commit=$(git -C "$work/$1" rev-parse --short HEAD)
  result=$(cd "$work/$1" && PYTHONPATH="$work/$1" "$python" -m benchmarks._steps_worker \
    steps mnist "$2" 10 "$steps" | tail -n 1)
  printf '{"round": %d, "tree": "%s", "commit": "%s", "impl": "%s", "result": %s}\n' \
    "$3" "$1" "$commit" "$2" "$result"
}

uptime >&2
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="old new"; else order="new old"; fi
  for tree in $order; do run "$tree" "$impl" "$round"; done
  run new torch "$round"
done
uptime >&2
