#!/usr/bin/env bash
# Data parallel on one machine: 1 process x T threads against N ranks x T/N threads of
# `performer-train --preset b1` (B1: dim 256, depth 4, heads 4, ff 1024, 128 features, seq 1024, global
# batch 4), alternating for R rounds. Per run: the median step time over steps 3..STEPS (from
# metrics.jsonl's elapsed_s), tokens/s = 4096 / that, the median comm_ms (allreduce of gradients and
# losses, gather of generator states) and its share of the step, and each process's peak RSS.
#   bash bench/data_parallel.sh [--rounds R] [--steps S] [--ranks N] [--threads T] [--precision P] [--build DIR]
set -euo pipefail
ROUNDS=3; STEPS=12; RANKS=2; THREADS=2; PRECISION=fp32; BUILD=build
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;; --steps) STEPS=$2; shift 2 ;; --ranks) RANKS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;; --precision) PRECISION=$2; shift 2 ;; --build) BUILD=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
TRAIN=$(realpath "$BUILD/train/performer-train")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK/corpus.txt" <<'PY'
import random, sys
random.seed(3)
words = "the of and to in a is that for it as was with be by on not he this are or his from at which".split()
with open(sys.argv[1], "w") as f:
    for _ in range(60000): f.write(" ".join(random.choice(words) for _ in range(12)) + "\n")
PY
FLAGS=(--data "$WORK/corpus.txt" --preset b1 --precision "$PRECISION" --steps "$STEPS" --log-every 1
       --eval-every 0 --eval-batches 1 --sample-tokens 0 --save-every 0 --overwrite)
summary() {  # run dir, label, rss files...
  python3 - "$@" <<'PY'
import json, statistics, sys
run, label, *rss = sys.argv[1:]
lines = [json.loads(l) for l in open(run + "/metrics.jsonl") if '"train"' in l]
el = [l["elapsed_s"] for l in lines]
steps = [b - a for a, b in zip(el[1:], el[2:])]  # steps 3..S
step = statistics.median(steps)
comm = statistics.median([l.get("comm_ms", 0.0) for l in lines[2:]]) / 1000.0
mem = [int(open(f).read().split()[-1]) / 1024 for f in rss]
print(json.dumps({"config": label, "step_s": round(step, 4), "tokens_per_s": round(4096 / step),
                  "comm_s": round(comm, 4), "comm_share": round(comm / step, 3),
                  "peak_rss_mb": [round(m) for m in mem], "final_loss": lines[-1]["loss"]}))
PY
}
for round in $(seq 1 "$ROUNDS"); do
  /usr/bin/time -f "%M" -o "$WORK/rss1" "$TRAIN" "${FLAGS[@]}" --threads "$THREADS" --out "$WORK/one" 2>/dev/null >/dev/null
  summary "$WORK/one" "1 process x $THREADS threads" "$WORK/rss1"
  mpirun -np "$RANKS" --oversubscribe sh -c '/usr/bin/time -f "%M" -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$WORK/rssN" \
    "$TRAIN" "${FLAGS[@]}" --threads $((THREADS / RANKS)) --out "$WORK/many" 2>/dev/null >/dev/null
  summary "$WORK/many" "$RANKS ranks x $((THREADS / RANKS)) threads" $(ls "$WORK"/rssN.*)
done
