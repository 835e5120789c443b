#!/usr/bin/env bash
# bench_smoke.sh ours BENCH          : every performer-bench mode runs tiny and ends with its JSON line
# bench_smoke.sh twin BENCH TWIN.py  : the twin runs the same configuration and starts from the same
#                                      loss as ours (exit 77 = skipped when torch is not installed)
set -u
mode=$1 bench=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

# last_json CMD...: runs CMD, prints its last stdout line, which must be a JSON object
last_json() {
  local out
  out=$("$@" 2>/dev/null) || fail "exit $? from: $*"
  out=$(printf '%s\n' "$out" | tail -n 1)
  case "$out" in "{"*"}") printf '%s\n' "$out" ;; *) fail "last line is not JSON: '$out' from: $*" ;; esac
}
# has_keys JSON KEY...: each key present
has_keys() {
  local j=$1; shift
  for k in "$@"; do case "$j" in *"\"$k\":"*) ;; *) fail "key '$k' missing in $j" ;; esac; done
}
# number JSON KEY
number() { printf '%s\n' "$1" | sed -n "s/.*\"$2\": *\([-0-9.e+]*\).*/\1/p"; }
# near A B TOL: |A - B| <= TOL
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }

train_args=(train --preset b2 --seq 64 --attention favor --threads 1 --steps 2 --warmup 1)
if [ "$mode" = ours ]; then
  j=$(last_json "$bench" "${train_args[@]}") || exit 1
  has_keys "$j" mode preset attention seq batch threads params tokens_per_s step_ms_median peak_rss_mb initial_loss
  l0=$(number "$j" initial_loss)
  near "$l0" 5.545 0.2 || fail "initial loss $l0 on random bytes is not near ln 256 = 5.545"
  jr=$(last_json "$bench" "${train_args[@]}" --recompute-blocks) || exit 1
  [ "$(number "$jr" initial_loss)" = "$l0" ] || fail "--recompute-blocks changed the initial loss: $jr vs $j"
  j=$(last_json "$bench" attention --seq 64 --kind favor --causal --threads 1) || exit 1
  has_keys "$j" mode kind seq ms_median peak_rss_mb
  j=$(last_json "$bench" attention --seq 64 --kind softmax --bidirectional --threads 1) || exit 1
  has_keys "$j" mode kind seq ms_median peak_rss_mb
  j=$(last_json "$bench" generate --preset b2 --context 16 --tokens 4 --threads 1) || exit 1
  has_keys "$j" mode context tokens_per_s
  # favor-local in every mode, its window reported
  j=$(last_json "$bench" train --preset b2 --seq 64 --attention favor-local --local-window 16 --threads 1 --steps 2 \
    --warmup 1) || exit 1
  [ "$(number "$j" local_window)" = 16 ] || fail "favor-local train: window not reported as 16: $j"
  near "$(number "$j" initial_loss)" 5.545 0.2 || fail "favor-local initial loss is not near ln 256: $j"
  j=$(last_json "$bench" attention --seq 64 --kind favor-local --local-window 8 --threads 1) || exit 1
  [ "$(number "$j" local_window)" = 8 ] || fail "favor-local attention: window not reported as 8: $j"
  j=$(last_json "$bench" generate --preset b2 --attention favor-local --local-window 4 --context 16 --tokens 4 \
    --threads 1) || exit 1
  has_keys "$j" mode context tokens_per_s local_window
  j=$(last_json "$bench" attention --seq 64 --kind favor-local --local-window 8 --bidirectional --threads 1) || exit 1
  [ "$(number "$j" local_window)" = 8 ] || fail "bidirectional favor-local attention: window not reported as 8: $j"
  if "$bench" train --preset b9 >/dev/null 2>&1; then fail "--preset b9 was accepted"; fi
  if "$bench" train --seq 0 >/dev/null 2>&1; then fail "--seq 0 was accepted"; fi
  echo "performer-bench: all modes ok (initial loss $l0)"
  exit 0
fi

twin=$3
PY=${TWIN_PYTHON:-/usr/bin/python3}  # Debian's python3-torch, as bench/compare.sh
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "python3-torch not installed (scripts/install-deps.sh --bench): twin check skipped"
  exit 77
fi
jo=$(last_json "$bench" "${train_args[@]}") || exit 1
jt=$(last_json "$PY" "$twin" "${train_args[@]}") || exit 1
has_keys "$jt" mode preset attention seq batch threads params tokens_per_s step_ms_median peak_rss_mb initial_loss
[ "$(number "$jt" params)" = "$(number "$jo" params)" ] || fail "parameter counts differ: ours $jo, twin $jt"
near "$(number "$jt" initial_loss)" "$(number "$jo" initial_loss)" 0.1 ||
  fail "initial losses differ: ours $(number "$jo" initial_loss), twin $(number "$jt" initial_loss)"
echo "twin agrees: params $(number "$jt" params), initial loss ours $(number "$jo" initial_loss) twin $(number "$jt" initial_loss)"
