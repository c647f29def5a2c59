#!/usr/bin/env bash
# Build (or, run again, continue) the shipped fcn_bench tables and export them here.
#
#   bash benchmarks/tables/build.sh            # from the repository root, after `make demo`
#   TABLES_DIR=/data/tables bash benchmarks/tables/build.sh
#
# The regime is the one measured in benchmarks/RESULTS.md ("Tabular benchmark regime"):
# 32x32 images, 1,024 generated training images, lr 0.01 and batch 8 (fixed in
# search_spaces/fcn_bench.yaml); 10 epochs x 3 seeds on shapes, 14 epochs x 2 seeds on photos
# (photos needs the longer training to separate architectures from seeds). One CPU per run,
# as many runs at once as there are cores. A killed build loses nothing: run the script again.
set -euo pipefail

PYTHON=${PYTHON:-.venv/bin/python}
NASFCN=("$PYTHON" -m nasfcn.cli)
TABLES_DIR=${TABLES_DIR:-runs/tables}   # the database and checkpoints (not committed)
OUT=${OUT:-benchmarks/tables}           # the exported .parquet files (committed)
DB="sqlite:///$(realpath -m "$TABLES_DIR")/fcn_bench.db"
mkdir -p "$TABLES_DIR" "$OUT"

STORED='import sys
from nasfcn.store import get_search, open_store
print("yes" if get_search(open_store(sys.argv[1]), sys.argv[2]) else "no")'

build() {  # name, data, seeds, epochs
    local name=$1 data=$2 seeds=$3 epochs=$4 resume=()
    if [ "$("$PYTHON" -c "$STORED" "$DB" "$name")" = yes ]; then
        resume=(--resume)
    fi
    "${NASFCN[@]}" tabulate --space fcn_bench --data "$data" --seeds "$seeds" --epochs "$epochs" \
        --image-size 32 --train-samples 1024 --cpus-per-trial 1 --name "$name" --db "$DB" \
        --storage-path "$TABLES_DIR/runs/$name" "${resume[@]}"
    "${NASFCN[@]}" tabulate export "$name" --db "$DB" --out "$OUT/$name.parquet"
    "${NASFCN[@]}" tabulate report "$OUT/$name.parquet" --out "$OUT/$name.html"
}

build fcn_bench_shapes shapes 3 10
build fcn_bench_photos photos 2 14
