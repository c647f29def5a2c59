#!/usr/bin/env bash
# The compose `search` service: join the Ray cluster as a node without CPUs or GPUs (so
# the driver runs here and every trial runs on the head and the workers), then run the
# search. Arguments are those of `nasfcn search`; the database comes from $NASFCN_DB.
set -euo pipefail
address="${RAY_ADDRESS:-ray-head:6379}"
ray start --address="$address" --num-cpus=0 --num-gpus=0 --disable-usage-stats >/dev/null
trap 'ray stop --force >/dev/null 2>&1 || true' EXIT
nasfcn search --ray-address "$address" "$@"
