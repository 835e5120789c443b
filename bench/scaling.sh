#!/usr/bin/env bash
# The scaling table of issue 28 (BENCHMARKS.md, "Scaling"): B1 and B3 training, 1 and 2 threads, fp32
# and bf16, ours (performer-bench) and the twin (bench/torch_twin.py) alternating within each
# configuration; one JSON line per run (with the 1-minute load) in OUT, then medians per side.
#   bash bench/scaling.sh [ROUNDS] [OUT]     environment: B1_STEPS (default "--steps 5 --warmup 2"),
#   B3_STEPS (default "--steps 2 --warmup 1"), PRESETS (default "b1 b3"), OMP_WAIT_POLICY (default
#   PASSIVE, for a loaded machine; it slows the twin, so on a quiet machine use ACTIVE or "default",
#   which leaves it unset: BENCHMARKS.md, "B1 training against the PyTorch twin"), BENCH_BIN, TWIN_PYTHON.
# MFU: bench_ops's GEMM peak on the same shapes (see BENCHMARKS.md for the FLOP counts per token).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
ROOT=$(dirname "$HERE")
ROUNDS=${1:-1}
OUT=${2:-/tmp/scaling-$(date +%s).jsonl}
BENCH_BIN=${BENCH_BIN:-$ROOT/build/bench/performer-bench}
PY=${TWIN_PYTHON:-/usr/bin/python3}
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
if [ "$OMP_WAIT_POLICY" = default ]; then unset OMP_WAIT_POLICY; else export OMP_WAIT_POLICY; fi
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
echo "results: $OUT" >&2
for r in $(seq 1 "$ROUNDS"); do
  for preset in ${PRESETS:-b1 b3}; do
    st=${B1_STEPS:---steps 5 --warmup 2}
    [ "$preset" = b3 ] && st=${B3_STEPS:---steps 2 --warmup 1}
    for t in 2 1; do
      for p in bf16 fp32; do
        for side in ours twin; do
          args=(train --preset "$preset" --attention favor --threads "$t" $st --precision "$p")
          if [ "$side" = ours ]; then cmd=("$BENCH_BIN" "${args[@]}"); else cmd=("$PY" "$HERE/torch_twin.py" "${args[@]}"); fi
          record_run "$OUT" "\"round\": $r, \"preset\": \"$preset\", \"threads\": $t, \"side\": \"$side\", \"precision\": \"$p\"" \
            "round $r $preset ${t}t $p $side" "${cmd[@]}"
        done
      done
    done
  done
done
"$PY" - "$OUT" <<'PYEOF'
import collections, json, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "tokens_per_s" in r["result"]:
        d[(r["preset"], r["threads"], r["precision"], r["side"])].append((r["result"]["tokens_per_s"], r["result"].get("peak_rss_mb", 0), r["load1"]))
for k in sorted(d):
    t = [x[0] for x in d[k]]
    print(*k, f"n={len(t)} median {statistics.median(t):.0f} tok/s, RSS {statistics.median(x[1] for x in d[k]):.0f} MB, "
          f"load {min(x[2] for x in d[k]):.1f}-{max(x[2] for x in d[k]):.1f}")
PYEOF
