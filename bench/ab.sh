#!/usr/bin/env bash
# A/B of two performer-bench binaries on one configuration: alternating runs (A, B, A, B, ...), then
# the median tokens/s of each side, the median of the per-round ratios B/A and the range, with the
# 1-minute load average at each run, and the same for the CPU time of a step (step_cpu_ms_median, all
# threads: less sensitive to the other processes on shared cores). For measuring one change against the binary before it.
#
#   bash bench/ab.sh OLD_BIN NEW_BIN ROUNDS [performer-bench arguments...]
#   e.g. bash bench/ab.sh /tmp/pb-old build/bench/performer-bench 5 train --preset b1 --threads 2 --precision bf16
#
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset; OMP_WAIT_POLICY defaults to PASSIVE (shared cores).
set -u
A=$1 B=$2 R=$3
shift 3
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
OUT=$(mktemp /tmp/ab-XXXXXX.txt)
for r in $(seq 1 "$R"); do
  for side in A B; do
    bin=$A
    [ "$side" = B ] && bin=$B
    load=$(cut -d' ' -f1 /proc/loadavg)
    res=$("$bin" "$@" 2>/dev/null | tail -n 1)
    tps=$(echo "$res" | sed -n 's/.*"tokens_per_s":\([0-9.]*\).*/\1/p')
    rss=$(echo "$res" | sed -n 's/.*"peak_rss_mb":\([0-9.]*\).*/\1/p')
    cpu=$(echo "$res" | sed -n 's/.*"step_cpu_ms_median":\([0-9.]*\).*/\1/p')
    echo "$r $side ${tps:-nan} ${rss:-nan} $load ${cpu:-nan}" | tee -a "$OUT" >&2
  done
done
/usr/bin/python3 - "$OUT" <<'PYEOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
t = {s: [float(r[2]) for r in rows if r[1] == s] for s in "AB"}
m = {s: [float(r[3]) for r in rows if r[1] == s] for s in "AB"}
ratios = [b / a for a, b in zip(t["A"], t["B"])]
loads = [float(r[4]) for r in rows]
c = {s: [float(r[5]) for r in rows if r[1] == s] for s in "AB"}
cr = [a / b for a, b in zip(c["A"], c["B"])]
print(f"A median {statistics.median(t['A']):.0f} tok/s, RSS {statistics.median(m['A']):.0f} MB; "
      f"B median {statistics.median(t['B']):.0f} tok/s, RSS {statistics.median(m['B']):.0f} MB; "
      f"B/A median {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}, n={len(ratios)}); "
      f"load {min(loads):.1f}-{max(loads):.1f}")
print(f"CPU ms per step (all threads): A median {statistics.median(c['A']):.0f}, B median {statistics.median(c['B']):.0f}; "
      f"A/B median {statistics.median(cr):.3f} (range {min(cr):.3f}-{max(cr):.3f}) (> 1: B does less work)")
PYEOF
