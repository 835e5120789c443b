#!/usr/bin/env bash
# fp32 against bf16, ours against the PyTorch twin (torch.autocast for bf16), on one configuration:
# the four runs alternate (ours fp32, ours bf16, twin fp32, twin bf16, then again) for R rounds so that
# drifts of a shared machine hit all four alike; prints the medians and the ratios the targets use.
#
#   bench/precision.sh [--rounds R] [--threads T] [--attention favor|relu|softmax] [--preset b1|b2]
#                      [--seq N] [--steps N] [--warmup N] [--out FILE]
#
# Environment: BENCH_BIN (default build/bench/performer-bench), TWIN_PYTHON (default /usr/bin/python3).
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for both sides (they pin OpenBLAS to slow kernels).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BENCH_BIN=${BENCH_BIN:-$ROOT/build/bench/performer-bench}
PY=${TWIN_PYTHON:-/usr/bin/python3}
ROUNDS=5 THREADS=2 ATT=favor PRESET=b1 SEQ="" STEPS=10 WARMUP=2 OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --attention) ATT=$2; shift ;;
    --preset) PRESET=$2; shift ;;
    --seq) SEQ="--seq $2"; shift ;;
    --steps) STEPS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "precision.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
RESULTS=${OUT:-$(mktemp /tmp/precision-XXXXXX.jsonl)}
: >"$RESULTS"
ARGS="train --preset $PRESET $SEQ --attention $ATT --threads $THREADS --steps $STEPS --warmup $WARMUP"
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); load $(cut -d' ' -f1-3 /proc/loadavg); git $(git -C "$ROOT" rev-parse --short HEAD)" >&2
echo "args: $ARGS; $ROUNDS rounds; results $RESULTS" >&2
for ((r = 1; r <= ROUNDS; r++)); do
  for side in ours twin; do
    for p in fp32 bf16; do
      if [ $side = ours ]; then cmd=("$BENCH_BIN"); else cmd=("$PY" "$HERE/torch_twin.py"); fi
      # shellcheck disable=SC2086
      line=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${cmd[@]}" $ARGS --precision $p 2>/dev/null | grep '^{' | tail -n 1)
      echo "{\"side\":\"$side\",\"precision\":\"$p\",\"round\":$r,\"result\":${line:-null}}" >>"$RESULTS"
      echo "  round $r $side $p: $(echo "$line" | sed -n 's/.*"tokens_per_s": *\([0-9.]*\).*/\1 tok\/s/p')" >&2
    done
  done
done
/usr/bin/python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = {}
for side in ("ours", "twin"):
    for p in ("fp32", "bf16"):
        ok = [r["result"] for r in recs if r["side"] == side and r["precision"] == p and r["result"]]
        if ok:
            med[side, p] = (statistics.median(d["tokens_per_s"] for d in ok),
                            statistics.median(d["peak_rss_mb"] for d in ok), len(ok),
                            min(d["tokens_per_s"] for d in ok), max(d["tokens_per_s"] for d in ok))
print("| side | precision | tok/s (median) | min - max | peak MB | runs |")
print("|---|---|---:|---:|---:|---:|")
for (side, p), (t, m, n, lo, hi) in med.items():
    print(f"| {side} | {p} | {t:.0f} | {lo:.0f} - {hi:.0f} | {m:.0f} | {n} |")
def ratio(a, b):
    return f"{med[a][0] / med[b][0]:.2f}x" if a in med and b in med else "-"
print()
print("ours fp32 / twin fp32:", ratio(("ours", "fp32"), ("twin", "fp32")))
print("ours bf16 / twin bf16:", ratio(("ours", "bf16"), ("twin", "bf16")))
print("ours bf16 / ours fp32:", ratio(("ours", "bf16"), ("ours", "fp32")))
print("twin bf16 / twin fp32:", ratio(("twin", "bf16"), ("twin", "fp32")))
EOF
