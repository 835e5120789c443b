#!/usr/bin/env bash
# The protein recipe (QUALITY.md, "Proteins at sequence 512"): a B1-sized model (d256 x 4 layers,
# 4 heads, ff 1024, 128 features) at sequence 512, batch 8, on a FASTA corpus (one record per row,
# 5% of the records held out), for each objective (masked LM, causal) and attention kind (favor,
# favor-local, softmax), all at equal wall clock. Held-out loss and perplexity over every held-out
# token at the end, against the unigram entropy performer-train prints.
#
#   bash bench/protein_recipe.sh FASTA OUTDIR [MINUTES] [SEED]      (MINUTES default 20, SEED 1)
#   e.g. bash bench/protein_recipe.sh ../shared/data/proteins/uniprotkb_mmseqs2_db_20k.fasta /tmp/prot 20
#
# Runs go two at a time with one thread each (a 2-core machine; nothing else should run). Each run's
# --steps, the length of its cosine schedule, comes from a 30-step probe of its own speed under the
# same load, so that every schedule ends at the time limit (--time-limit stops it there in any case).
# Environment: PT (performer-train binary, default build/train/performer-train), OBJECTIVES, KINDS.
set -eu
FASTA=$1 OUT=$2 MIN=${3:-20} SEED=${4:-1}
PT=${PT:-build/train/performer-train}
OBJECTIVES=${OBJECTIVES:-"mlm causal"}
KINDS=${KINDS:-"favor favor-local softmax"}
SECS=$((MIN * 60))
mkdir -p "$OUT"
COMMON=(--data "$FASTA" --preset b1 --seq-len 512 --batch-size 8 --threads 1 --sample-tokens 0 --seed "$SEED"
  --log-every 10)

# seconds per step between steps 10 and 30 of a short run
probe() {  # OBJ KIND
  local dir="$OUT/probe-$1-$2"
  rm -rf "$dir"
  "$PT" "${COMMON[@]}" --objective "$1" --attention "$2" --steps 30 --eval-every 0 --eval-batches 1 --out "$dir" \
    >"$dir.log" 2>&1
  /usr/bin/python3 - "$dir/metrics.jsonl" <<'PY'
import json, sys
t = {r["step"]: r["elapsed_s"] for r in map(json.loads, open(sys.argv[1])) if r.get("type") == "train"}
print((t[30] - t[10]) / 20)
PY
}

run_pairs() {  # FUNCTION, then the jobs as OBJ:KIND, run two at a time
  local fn=$1
  shift
  local jobs=("$@") i
  for ((i = 0; i < ${#jobs[@]}; i += 2)); do
    "$fn" "${jobs[i]}" &
    if ((i + 1 < ${#jobs[@]})); then "$fn" "${jobs[i + 1]}" & fi
    wait
  done
}

probe_job() { probe "${1%%:*}" "${1#*:}" >"$OUT/probe-${1%%:*}-${1#*:}.s"; }
train_job() {
  local obj=${1%%:*} kind=${1#*:}
  local per_step steps
  per_step=$(cat "$OUT/probe-$obj-$kind.s")
  steps=$(/usr/bin/python3 -c "print(int($SECS / $per_step))")
  echo "$obj $kind: $per_step s/step in the probe -> --steps $steps" >&2
  rm -rf "$OUT/$obj-$kind"
  "$PT" "${COMMON[@]}" --objective "$obj" --attention "$kind" --steps "$steps" --time-limit "$SECS" --eval-every 0 \
    --eval-batches 0 --out "$OUT/$obj-$kind" >"$OUT/$obj-$kind.log" 2>&1
}

JOBS=()
for obj in $OBJECTIVES; do for kind in $KINDS; do JOBS+=("$obj:$kind"); done; done
run_pairs probe_job "${JOBS[@]}"
run_pairs train_job "${JOBS[@]}"

/usr/bin/python3 - "$OUT" "${JOBS[@]}" <<'PY'
import json, math, re, sys
out, jobs = sys.argv[1], sys.argv[2:]
print("| objective | attention | steps | seconds | held-out loss (nats) | perplexity | accuracy | unigram (nats) |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for job in jobs:
    obj, kind = job.split(":")
    rows = [json.loads(l) for l in open(f"{out}/{obj}-{kind}/metrics.jsonl")]
    ev = [r for r in rows if r.get("type") == "eval"][-1]
    log = open(f"{out}/{obj}-{kind}.log").read()
    m = re.search(r"unigram[^0-9]*([0-9.]+)", log)
    print(f"| {obj} | {kind} | {ev['step']} | {ev['elapsed_s']:.0f} | {ev['val_loss']:.4f} | "
          f"{math.exp(ev['val_loss']):.2f} | {100 * ev.get('val_accuracy', float('nan')):.1f}% | "
          f"{m.group(1) if m else '?'} |")
PY
