#!/usr/bin/env bash
# B1 training at 2 threads, fp32 and bf16, alternating in each round: ours (performer-bench), the twin
# before 2026-12-07 (git d2250f8's bench/torch_twin.py), the twin now, the twin with performer-pytorch's
# single key stabilizer (--key-shift global), and bench/torch_plain.py with B1's tanh GELU and with
# nn.GELU()'s erf. One JSON line per run in OUT (BENCHMARKS.md, "An honest twin (2026-12-07)").
#   bash bench/honest_twin.sh [ROUNDS] [OUT]      environment: STEPS (default "--steps 8 --warmup 2"),
#   SIDES (default all six: "ours before after global plain plainerf"),
#   OMP_WAIT_POLICY (default PASSIVE: on a loaded machine spinning OpenMP threads wait for descheduled
#   ones; on a quiet machine use "default", which leaves it unset so that each side runs as a user
#   would start it: libgomp's spinning for the twin, performer's GOMP_SPINCOUNT=1000), BENCH_BIN,
#   TWIN_PYTHON.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
ROOT=$(dirname "$HERE")
ROUNDS=${1:-3}
OUT=${2:-/tmp/honest-twin-$(date +%s).jsonl}
BENCH_BIN=${BENCH_BIN:-$ROOT/build/bench/performer-bench}
PY=${TWIN_PYTHON:-/usr/bin/python3}
ST=${STEPS:---steps 8 --warmup 2}
SIDES=${SIDES:-ours before after global plain plainerf}  # e.g. SIDES="ours after": ours against the twin only
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
WAIT=$OMP_WAIT_POLICY
if [ "$WAIT" = default ]; then unset OMP_WAIT_POLICY; else export OMP_WAIT_POLICY; fi
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
BEFORE=$(mktemp /tmp/torch_twin_before-XXXXXX.py)
trap 'rm -f "$BEFORE"' EXIT
git -C "$ROOT" show d2250f8:bench/torch_twin.py >"$BEFORE" || exit 1
echo "results: $OUT" >&2
for r in $(seq 1 "$ROUNDS"); do
  for p in bf16 fp32; do
    for side in $SIDES; do
      case $side in
        ours) cmd=("$BENCH_BIN" train --preset b1 --attention favor --threads 2 $ST --precision "$p") ;;
        before) cmd=("$PY" "$BEFORE" train --preset b1 --attention favor --threads 2 $ST --precision "$p") ;;
        after) cmd=("$PY" "$HERE/torch_twin.py" train --preset b1 --attention favor --threads 2 $ST --precision "$p") ;;
        global) cmd=("$PY" "$HERE/torch_twin.py" train --preset b1 --attention favor --threads 2 $ST --precision "$p"
                     --key-shift global) ;;
        plain) cmd=("$PY" "$HERE/torch_plain.py" --threads 2 $ST --precision "$p") ;;
        plainerf) cmd=("$PY" "$HERE/torch_plain.py" --threads 2 $ST --precision "$p" --gelu none) ;;
      esac
      record_run "$OUT" "\"round\": $r, \"side\": \"$side\", \"precision\": \"$p\", \"omp_wait\": \"$WAIT\"" \
        "round $r $p $side" "${cmd[@]}"
    done
  done
done
"${TWIN_PYTHON:-/usr/bin/python3}" - "$OUT" <<'PYEOF'
import collections, json, statistics, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "tokens_per_s" in r["result"]:
        d[(r["precision"], r["side"])].append(r["result"]["tokens_per_s"])
for p in ("bf16", "fp32"):
    for side in ("ours", "before", "after", "global", "plain", "plainerf"):
        t = d.get((p, side))
        if t:
            print(f"{p} {side:8s} n={len(t)} median {statistics.median(t):7.0f} range {min(t):7.0f}-{max(t):7.0f}")
PYEOF
