#!/usr/bin/env bash
# Side-by-side benchmark: ours (performer-bench) against the PyTorch twin (bench/torch_twin.py), same
# CLI, same JSON. Each configuration runs ALTERNATELY (ours, twin, ours, twin, ...) for R rounds so
# that slow drifts of the machine hit both sides alike; the table shows the median per side.
#
#   bench/compare.sh [--quick] [--only b1|b2|gen[,...]] [--match ERE] [--recompute] [--rounds R]
#                    [--timeout SECONDS] [--out FILE]
#
# --match keeps the configurations whose name matches the extended regular expression (e.g. 'favor').
# --recompute adds, after each B2 FAVOR+ row, a row where ours runs with --recompute-blocks
# (activation recomputation; the twin runs unchanged, as it has no such option).
# Environment: BENCH_BIN (default build/bench/performer-bench), TWIN_PYTHON (default /usr/bin/python3,
# Debian's python3-torch), MEM_LIMIT_GB (address-space cap per run, default 16: a run past it fails
# fast and is reported OOM instead of pushing the machine into swap or the OOM killer).
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for both sides (they pin OpenBLAS to slow kernels).
# Notes: bench/README_twin.md.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BENCH_BIN=${BENCH_BIN:-$ROOT/build/bench/performer-bench}
PY=${TWIN_PYTHON:-/usr/bin/python3}
PYJ=/usr/bin/python3  # parses the JSON lines (standard library only)
command -v "$PYJ" >/dev/null || PYJ=python3
TWIN=("$PY" "$HERE/torch_twin.py")
MEM_LIMIT_GB=${MEM_LIMIT_GB:-16}
ROUNDS=3
QUICK=0
ONLY=b1,b2,gen
TIMEOUT=900
OUT=""
MATCH=""
RECOMPUTE=0

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --only) ONLY=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --timeout) TIMEOUT=$2; shift ;;
    --out) OUT=$2; shift ;;
    --match) MATCH=$2; shift ;;
    --recompute) RECOMPUTE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for g in ${ONLY//,/ }; do
  case "$g" in b1|b2|gen) ;; *) echo "compare.sh: --only takes b1, b2, gen (comma-separated), not '$g'" >&2; exit 2 ;; esac
done
if [ "$QUICK" = 1 ]; then
  [ "$ROUNDS" = 3 ] && ROUNDS=1
  B1_STEPS="--steps 3 --warmup 1"; GEN_TOKENS=32
else
  B1_STEPS="--steps 10 --warmup 2"; GEN_TOKENS=128
fi
b2_steps() {  # fewer steps at long lengths: one step of exact attention at 16384 takes a while
  if [ "$QUICK" = 1 ]; then echo "--steps 2 --warmup 1"; return; fi
  case "$1" in 1024) echo "--steps 10 --warmup 2" ;; 4096) echo "--steps 5 --warmup 1" ;;
    16384) echo "--steps 3 --warmup 1" ;; *) echo "--steps 2 --warmup 1" ;; esac
}
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

RESULTS=${OUT:-$(mktemp /tmp/compare-XXXXXX.jsonl)}
: >"$RESULTS"
WORK=$(mktemp -d /tmp/compare-runs-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- the configurations
# name|group|arguments (the same for both sides)|extra arguments for ours only (optional)
CONFIGS=()
if want b1; then
  CONFIGS+=("B1 train favor 2t|b1|train --preset b1 --attention favor --threads 2 $B1_STEPS")
  CONFIGS+=("B1 train favor 1t|b1|train --preset b1 --attention favor --threads 1 $B1_STEPS")
  CONFIGS+=("B1 train relu 2t|b1|train --preset b1 --attention relu --threads 2 $B1_STEPS")
  CONFIGS+=("B1 train softmax 2t|b1|train --preset b1 --attention softmax --threads 2 $B1_STEPS")
fi
if want b2; then
  for seq in 1024 4096 16384 65536; do
    for att in favor softmax; do
      CONFIGS+=("B2 train $att seq $seq|b2|train --preset b2 --seq $seq --attention $att --threads 2 $(b2_steps $seq)")
      if [ "$RECOMPUTE" = 1 ] && [ "$att" = favor ]; then
        CONFIGS+=("B2 train favor seq $seq recompute|b2|train --preset b2 --seq $seq --attention favor --threads 2 $(b2_steps $seq)|--recompute-blocks")
      fi
    done
  done
fi
if want gen; then
  for ctx in 256 4096 32768; do
    CONFIGS+=("gen favor ctx $ctx|gen|generate --preset b1 --attention favor --context $ctx --tokens $GEN_TOKENS --threads 2")
  done
fi

# ---------------------------------------------------------------- one run -> one JSONL record
# run_one CONFIG SIDE ROUND ARGS... ; prints the status; appends {"config","side","round","status",...}.
run_one() {
  local config=$1 side=$2 round=$3
  shift 3
  local out="$WORK/out" err="$WORK/err" rc t0 elapsed
  t0=$(date +%s%N)
  (
    ulimit -v $((MEM_LIMIT_GB * 1024 * 1024))
    exec timeout --kill-after=15 "$TIMEOUT" env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"
  ) >"$out" 2>"$err" </dev/null
  rc=$?
  elapsed=$((($(date +%s%N) - t0) / 1000000))  # ms
  "$PYJ" - "$out" "$err" "$rc" "$elapsed" "$TIMEOUT" "$config" "$side" "$round" "$*" >>"$RESULTS" <<'EOF'
import json, sys
out, err, rc, elapsed, timeout, config, side, rnd, cmd = sys.argv[1:]
rc, elapsed = int(rc), int(elapsed) / 1000.0
rec = dict(config=config, side=side, round=int(rnd), rc=rc, elapsed_s=round(elapsed, 1), cmd=cmd)
data = None
for line in reversed(open(out, errors="replace").read().splitlines()):
    if line.strip().startswith("{"):
        try:
            data = json.loads(line)
        except ValueError:
            pass
        break
errtxt = open(err, errors="replace").read()
oom_words = ("bad_alloc", "can't allocate", "cannot allocate", "out of memory", "memoryerror")
if rc in (124, 137) and elapsed >= float(timeout) - 1:
    status = "timeout"
elif data and data.get("error"):
    status = str(data["error"])
elif any(w in errtxt.lower() for w in oom_words) or (rc == 137 and not data):
    status = "OOM"
elif rc == 0 and data and ("tokens_per_s" in data or "ms_median" in data):
    status = "ok"
else:
    last = [l for l in errtxt.splitlines() if l.strip()][-1:] or [""]
    status = f"fail(rc={rc})"
    rec["stderr_tail"] = last[0][:300]
rec["status"] = status
if data:
    rec["result"] = data
print(json.dumps(rec))
EOF
  tail -n 1 "$RESULTS" | "$PYJ" -c '
import json, sys
r = json.loads(sys.stdin.read()); d = r.get("result", {})
extra = "  %.1f tok/s, %.0f MB" % (d["tokens_per_s"], d.get("peak_rss_mb", 0)) if r["status"] == "ok" else ""
print("  [%s] round %d %-4s %s (%.0f s)%s" % (r["config"], r["round"], r["side"], r["status"], r["elapsed_s"], extra))
' >&2
}

# ---------------------------------------------------------------- header
TORCH_VERSION=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "not found")
CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "?")
{
  echo "date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "machine:   nproc $(nproc), CPU ${CPU_MODEL:-?}, $(awk '/MemTotal/ {printf "%.1f GB RAM", $2 / 1048576}' /proc/meminfo)"
  echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"
  echo "ours:      $BENCH_BIN (git $REV)$([ -x "$BENCH_BIN" ] || echo '  -- NOT FOUND, twin only')"
  echo "twin:      $PY bench/torch_twin.py, torch $TORCH_VERSION"
  echo "runs:      $ROUNDS round(s) alternating ours/twin, timeout ${TIMEOUT}s, address space cap ${MEM_LIMIT_GB} GB"
  echo "results:   $RESULTS"
} | tee "$WORK/header" >&2

# ---------------------------------------------------------------- the runs, alternating
for entry in "${CONFIGS[@]}"; do
  IFS="|" read -r name _group args ours_extra <<<"$entry"
  if [ -n "$MATCH" ] && ! [[ $name =~ $MATCH ]]; then continue; fi
  echo "== $name: $args${ours_extra:+ (ours also: $ours_extra)}" >&2
  ours_dead=""; twin_dead=""
  for ((r = 1; r <= ROUNDS; r++)); do
    if [ ! -x "$BENCH_BIN" ]; then
      echo "{\"config\": \"$name\", \"side\": \"ours\", \"round\": $r, \"status\": \"missing\"}" >>"$RESULTS"
    elif [ -n "$ours_dead" ]; then
      :  # OOM or timeout in an earlier round: do not wait for it again
    else
      # shellcheck disable=SC2086
      run_one "$name" ours "$r" "$BENCH_BIN" $args $ours_extra
      st=$(tail -n 1 "$RESULTS" | "$PYJ" -c 'import json,sys; print(json.load(sys.stdin)["status"])')
      case "$st" in OOM|timeout) ours_dead=1 ;; esac
    fi
    if [ -z "$twin_dead" ]; then
      # shellcheck disable=SC2086
      run_one "$name" twin "$r" "${TWIN[@]}" $args
      st=$(tail -n 1 "$RESULTS" | "$PYJ" -c 'import json,sys; print(json.load(sys.stdin)["status"])')
      case "$st" in OOM|timeout) twin_dead=1 ;; esac
    fi
  done
done

# ---------------------------------------------------------------- the table
echo
cat "$WORK/header"
"$PYJ" - "$RESULTS" <<'EOF'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
order = []
for r in recs:
    if r["config"] not in order:
        order.append(r["config"])

def side(config, s):
    """median of the ok runs, else the first failure status"""
    rs = [r for r in recs if r["config"] == config and r["side"] == s]
    ok = [r["result"] for r in rs if r["status"] == "ok"]
    if not ok:
        return None, (rs[0]["status"] if rs else "-")
    med = {k: statistics.median(d[k] for d in ok) for k in ("tokens_per_s", "step_ms_median", "peak_rss_mb", "params",
                                                              "initial_loss", "prompt_s") if all(k in d for d in ok)}
    med["n"] = len(ok)
    return med, "ok"

def fmt(v, f):
    return f.format(v) if v is not None else "-"

rows = [("configuration", "ours tok/s", "twin tok/s", "ours/twin", "ours ms/step", "twin ms/step", "ours MB",
         "twin MB", "twin/ours MB", "note")]
for c in order:
    o, os_ = side(c, "ours")
    t, ts = side(c, "twin")
    gen = c.startswith("gen")
    def cell(m, st, key, f):
        return fmt(m.get(key), f) if m else st
    ratio = fmt(o["tokens_per_s"] / t["tokens_per_s"], "{:.2f}x") if o and t else "-"
    mem = fmt(t["peak_rss_mb"] / o["peak_rss_mb"], "{:.2f}x") if o and t and o.get("peak_rss_mb") else "-"
    note = []
    if o and t and "params" in o and "params" in t and o["params"] != t["params"]:
        note.append(f"PARAMS DIFFER {o['params']:.0f} vs {t['params']:.0f}")
    for m, who in ((o, "ours"), (t, "twin")):
        if m and "initial_loss" in m:
            note.append(f"{who} loss0 {m['initial_loss']:.3f}")
        if m and m.get("n", 0) < max(1, max(r["round"] for r in recs)):
            note.append(f"{who} n={m['n']}")
    rows.append((c, cell(o, os_, "tokens_per_s", "{:.1f}"), cell(t, ts, "tokens_per_s", "{:.1f}"), ratio,
                 "-" if gen else cell(o, os_, "step_ms_median", "{:.1f}"),
                 "-" if gen else cell(t, ts, "step_ms_median", "{:.1f}"),
                 cell(o, os_, "peak_rss_mb", "{:.0f}"), cell(t, ts, "peak_rss_mb", "{:.0f}"), mem, "; ".join(note)))
w = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
print()
for i, r in enumerate(rows):
    print("| " + " | ".join(str(x).ljust(w[j]) for j, x in enumerate(r)) + " |")
    if i == 0:
        print("|" + "|".join("-" * (w[j] + 2) for j in range(len(r))) + "|")
print()
print("tok/s: training tokens per second (batch x seq / median step time; step = forward + backward + AdamW)")
print("       or generated tokens per second after the prompt (gen); ours/twin > 1: ours is faster.")
print("MB: peak resident set of the process (ru_maxrss); twin/ours > 1: ours uses less memory.")
print("OOM: allocation failed (address space cap or memory); timeout: exceeded --timeout; missing: no binary.")
EOF
