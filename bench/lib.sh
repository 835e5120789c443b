# Shared by the benchmark scripts (sourced, not run).
#
# record_run OUT FIELDS LABEL CMD...: runs CMD, keeps the last line of its stdout if it is a JSON
# object ({"error": "no JSON"} otherwise), appends {FIELDS, "load1": <1-minute load>, "time": <UTC>,
# "result": <that JSON>} as one line to OUT, and prints LABEL with the load and the result on stderr.
# FIELDS is JSON members without braces, e.g. '"round": 1, "side": "ours"'.
record_run() {
  local out=$1 fields=$2 label=$3
  shift 3
  local load res
  load=$(cut -d' ' -f1 /proc/loadavg)
  res=$("$@" 2>/dev/null | tail -n 1)
  case "$res" in "{"*) ;; *) res='{"error": "no JSON"}' ;; esac
  echo "{$fields, \"load1\": $load, \"time\": \"$(date -u +%H:%M:%S)\", \"result\": $res}" >>"$out"
  echo "$label load $load: $res" | cut -c1-200 >&2
}
