#!/usr/bin/env bash
# Issue 27's benchmark: prepared datasets at real scale (bench/README_data.md says what each number
# means). Generates the corpora with make-corpus if missing, then measures performer-prepare and
# performer-train with /usr/bin/time -v (wall time, peak RSS) and a timestamp on every stderr line
# (time to the first training step), each in a fresh cache directory, and prints a Markdown table
# (also written to WORK_DIR/data_scale-<date>.md).
#
#   bench/data_scale.sh [BUILD_DIR] [WORK_DIR] [--only a,b,c,d] [--smoke] [--cold] [--keep-caches]
#
# BUILD_DIR: default <repo>/build (needs train/performer-train and bench/make-corpus; performer-prepare
#            is looked for anywhere in it, and what needs it is skipped, saying so, when it is absent).
# WORK_DIR:  default /work/corpora (created): corpora, runs/, cache/, logs/ and the results.
# --only:    a = 1 GB text, SentencePiece (first run, second run, --resume)
#            b = 3 GB FASTA (prepare; first and second run; training RSS against the 11 MB seed FASTA)
#            c = 10 GB FASTA (prepare, disk used, a short training run)
#            d = 1 GB text, bytes (first and second run)
# --smoke:   16 MiB text, 48 MiB and 96 MiB FASTA instead of 1, 3 and 10 GiB (tests the plumbing
#            in a few minutes; the numbers mean nothing).
# --cold:    before every command, drop its corpus and its cache directory's files from the page
#            cache (dd iflag=nocache: those files only), so that first and later runs read from the
#            disk (default: warm, as make-corpus and the earlier runs left them).
# --keep-caches: keep each measurement's cache directory (default: deleted after it is measured).
# Environment: PF_TRAIN_EXTRA = extra flags for every performer-train command (e.g. "--preset tiny").
set -euo pipefail
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=""
WORK=""
ONLY="a,b,c,d"
SMOKE=0
KEEP_CACHES=0
COLD=0
while (($#)); do
  case "$1" in
    --only) ONLY=${2:?--only needs a list such as a,b}; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --keep-caches) KEEP_CACHES=1; shift ;;
    --cold) COLD=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "data_scale.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) if [[ -z $BUILD ]]; then BUILD=$1; elif [[ -z $WORK ]]; then WORK=$1; else
         echo "data_scale.sh: too many arguments: $1" >&2; exit 2; fi; shift ;;
  esac
done
BUILD=$(cd "${BUILD:-$REPO/build}" 2>/dev/null && pwd) || { echo "data_scale.sh: no build directory ${BUILD:-$REPO/build}" >&2; exit 1; }
WORK=${WORK:-/work/corpora}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
read -r -a EXTRA <<<"${PF_TRAIN_EXTRA:-}"

SEEDS=/work/shared/data
TEXT_SEEDS=("$SEEDS/text/tinyshakespeare.txt" "$SEEDS/text/gutenberg/moby_dick_melville.txt"
            "$SEEDS/text/gutenberg/pride_and_prejudice_austen.txt" "$SEEDS/text/gutenberg/war_and_peace_tolstoy.txt")
SMALL_FASTA=$SEEDS/proteins/uniprotkb_mmseqs2_db_20k.fasta  # the 11 MB FASTA: the seed file itself
if ((SMOKE)); then TEXT_SIZE=16M; MID_SIZE=48M; BIG_SIZE=96M; else TEXT_SIZE=1G; MID_SIZE=3G; BIG_SIZE=10G; fi
TEXT=$WORK/text-$TEXT_SIZE.txt
MID=$WORK/fasta-$MID_SIZE.fasta
BIG=$WORK/fasta-$BIG_SIZE.fasta

die() { echo "data_scale.sh: $*" >&2; exit 1; }
note() { echo "data_scale.sh: $*" >&2; NOTES+=("$*"); }
NOTES=()

# ------------------------------------------------------------------ binaries
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
TRAIN=$BUILD/train/performer-train
MAKE_CORPUS=$BUILD/bench/make-corpus
[[ -x $TRAIN ]] || die "$TRAIN is missing: cmake --build $BUILD -j2 --target performer-train"
[[ -x $MAKE_CORPUS ]] || die "$MAKE_CORPUS is missing: cmake --build $BUILD -j2 --target make-corpus"
PREPARE=$(find "$BUILD" -maxdepth 3 -type f -name performer-prepare -perm -u+x 2>/dev/null | head -n 1 || true)
if [[ -z $PREPARE ]]; then
  note "performer-prepare not found in $BUILD: its measurements (b: prepare, c: all of it) are skipped; performer-train is measured as it is"
fi
for f in "${TEXT_SEEDS[@]}" "$SMALL_FASTA"; do [[ -r $f ]] || die "seed file $f is missing"; done

# ------------------------------------------------------------------ corpora
bytes_of() { stat -c %s "$1"; }
evict() {  # --cold: drop FILE's pages, or every file's under DIR, from the page cache (posix_fadvise DONTNEED through dd)
  ((COLD)) || return 0
  local f
  while IFS= read -r -d '' f; do
    dd if="$f" iflag=nocache count=0 status=none 2>/dev/null || note "could not evict $f from the page cache"
  done < <(find "$1" -type f -print0)
}

# make_corpus KIND FILE SIZE: generate FILE unless it exists (make-corpus writes FILE.tmp.PID and
# renames it at the end, so an existing FILE is complete).
make_corpus() {
  local kind=$1 file=$2 size=$3 seeds
  if [[ -f $file ]]; then echo "corpus: $file exists ($(bytes_of "$file") bytes)" >&2; return; fi
  if [[ $kind == text ]]; then seeds=("${TEXT_SEEDS[@]}"); else seeds=("$SMALL_FASTA"); fi
  echo "corpus: generating $file ($size)" >&2
  "$MAKE_CORPUS" "$kind" --seed-files "${seeds[@]}" --bytes "$size" --seed 1 --out "$file" 2> "$file.make-corpus.log" \
    || { cat "$file.make-corpus.log" >&2; die "make-corpus failed for $file"; }
  tail -n 2 "$file.make-corpus.log" >&2
}

need_space() {  # need_space GIB: refuse to start a measurement that would fill the disk
  local avail_kb
  avail_kb=$(df -Pk "$WORK" | awk 'NR == 2 {print $4}')
  if ((avail_kb < $1 * 1024 * 1024)); then
    die "only $((avail_kb / 1024 / 1024)) GiB free in $WORK; this step needs about $1 GiB"
  fi
}

# ------------------------------------------------------------------ measurement plumbing
LOGS=$WORK/logs/$(date -u +%Y%m%dT%H%M%SZ)
RUNS=$WORK/runs
CACHES=$WORK/cache
mkdir -p "$LOGS" "$RUNS" "$CACHES"
ROWS=()      # Markdown table rows
COMMANDS=()  # "id: command"

fresh_dir() {  # fresh_dir PARENT NAME: an empty directory PARENT/NAME (only under our own WORK dirs)
  local d=$1/$2
  [[ $1 == "$RUNS" || $1 == "$CACHES" ]] || die "refusing to clear $d"
  rm -rf -- "$d"
  mkdir -p "$d"
  echo "$d"
}
drop_cache() { ((KEEP_CACHES)) || rm -rf -- "$1"; }

stamp() {  # prefix every line with the wall clock in seconds (bash's EPOCHREALTIME)
  local line
  while IFS= read -r line || [[ -n $line ]]; do printf '%s\t%s\n' "$EPOCHREALTIME" "$line"; done
}

# sample_mem TIME_PID: the peak RssAnon and RssFile (MiB) of the program /usr/bin/time runs, read
# from /proc every 0.1 s until it ends: "anon file". RSS = anonymous memory (heap: grows if the
# corpus is held in RAM) + file pages mapped into the process (memory-mapped shards and the
# binary: page cache, reclaimable; how much is mapped depends on the page cache, not only on the
# program).
sample_mem() {
  local tpid=$1 child="" anon=0 file=0 k v rest state
  while :; do
    state=Z
    { read -r _ _ state _ < "/proc/$tpid/stat"; } 2>/dev/null || true
    [[ $state == Z ]] && break
    if [[ -z $child ]]; then child=$(pgrep -P "$tpid" | head -n 1 || true); fi
    if [[ -n $child ]]; then
      while read -r k v rest; do
        if [[ $k == RssAnon: ]] && ((v > anon)); then anon=$v; fi
        if [[ $k == RssFile: ]] && ((v > file)); then file=$v; fi
      done < <(cat "/proc/$child/status" 2>/dev/null || true)
    fi
    sleep 0.1
  done
  echo "$((anon / 1024)) $((file / 1024))"
}

# measure ID CMD...: run CMD under /usr/bin/time -v; sets WALL (s), RSS_MB, ANON_MB and FILE_MB
# (sample_mem), FIRST_STEP (s from the start to the first "step N/M" line, or "-"), LOAD (the
# "loaded in X s" of the banner, or "-"), DATASET (prepared / reused and how long, as the program
# reports it, or "-"), RC. stdout goes to LOGS/ID.out, stderr (timestamped) to LOGS/ID.err.
measure() {
  local id=$1; shift
  local log=$LOGS/$id t0 tpid spid
  COMMANDS+=("$id: $*")
  echo "[$id] $*" >&2
  rm -f "$log.fifo"
  mkfifo "$log.fifo"
  stamp < "$log.fifo" > "$log.err" &
  spid=$!
  t0=$EPOCHREALTIME
  /usr/bin/time -v -o "$log.time" "$@" > "$log.out" 2> "$log.fifo" &
  tpid=$!
  sample_mem "$tpid" > "$log.mem"
  set +e
  wait "$tpid"
  RC=$?
  wait "$spid"
  set -e
  rm -f "$log.fifo"
  read -r ANON_MB FILE_MB < "$log.mem"
  WALL=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s}' "$log.time")
  RSS_MB=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$log.time")
  FIRST_STEP=$(awk -F'\t' -v t0="$t0" '$2 ~ /^step [0-9]+\// {printf "%.2f", $1 - t0; exit}' "$log.err")
  FIRST_STEP=${FIRST_STEP:--}
  LOAD=$(sed -n 's/.*(loaded in \([0-9.]*\) s).*/\1/p' "$log.err" | head -n 1)
  LOAD=${LOAD:--}
  # Issue 27's banner line "dataset: prepared|reused in X s: DIR (...)", or performer-prepare's
  # "prepared|reused DIR: ..." and "  N MB of input in X s (R MB/s)" on stdout.
  DATASET=$(cut -f2- "$log.err" | sed -n 's/^dataset: \(prepared\|reused\) in \([0-9.]*\) s.*/\1 in \2 s/p' | head -n 1)
  if [[ -z $DATASET ]]; then
    DATASET=$(awk '/^(prepared|reused) / {w = $1} / of input in / {sub(/^ +/, ""); r = $0; sub(/, fingerprint.*/, "", r)}
                   END {if (w != "") print w (r != "" ? ": " r : "")}' "$log.out")
  fi
  DATASET=${DATASET:--}
  if ((RC != 0)); then
    note "$id exited with status $RC; the last lines of its stderr ($log.err):"
    tail -n 5 "$log.err" | cut -f2- | sed 's/^/    /' >&2
  fi
  echo "[$id] wall ${WALL} s, peak RSS ${RSS_MB} MB (anon ${ANON_MB}, file ${FILE_MB}), first step ${FIRST_STEP} s, data loaded in ${LOAD} s, dataset ${DATASET}, exit ${RC}" >&2
}

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", b / s / 1e6; else print "-" }'; }
human_bytes() { awk -v b="$1" 'BEGIN { if (b >= 0.99 * 2^30) printf "%.2f GiB", b / 2^30; else printf "%.1f MiB", b / 2^20 }'; }
du_h() { du -sh -- "$1" 2>/dev/null | cut -f1; }

# row ID CORPUS WHAT TARGET [MBPS] [DISK]
row() {
  local status=ok
  ((RC == 0)) || status="exit $RC"
  ROWS+=("| $1 | $2 | $3 | $WALL | $FIRST_STEP | $LOAD | $DATASET | $RSS_MB | $ANON_MB | $FILE_MB | ${5:--} | ${6:--} | $4 | $status |")
}

# The training command of every run, in CMD: STEPS steps, no evaluation but the one before a fresh
# run's first step, a progress line per step, no sample, two threads, PF_TRAIN_EXTRA.
train_cmd() {  # train_cmd DATA OUT CACHE STEPS [flags...]
  local data=$1 out=$2 cache=$3 steps=$4; shift 4
  CMD=("$TRAIN" --data "$data" --steps "$steps" --eval-every 0 --sample-tokens 0 --threads 2 --log-every 1
       --out "$out" --cache-dir "$cache" "$@" "${EXTRA[@]}")
}
run_dir() {  # run_dir NAME: RUNS/NAME, removed (performer-train creates it)
  [[ -n $1 ]] || die "run_dir: no name"
  rm -rf -- "${RUNS:?}/$1"
  echo "$RUNS/$1"
}

# ------------------------------------------------------------------ a. 1 GB text, SentencePiece
bench_a() {
  make_corpus text "$TEXT" "$TEXT_SIZE"
  local c r1 r2 name spm=(--tokenizer sentencepiece --vocab-size 2000)
  name="text $(human_bytes "$(bytes_of "$TEXT")")"
  need_space $((($(bytes_of "$TEXT") >> 30) * 2 + 2))
  c=$(fresh_dir "$CACHES" a)
  r1=$(run_dir a-first)
  r2=$(run_dir a-second)
  train_cmd "$TEXT" "$r1" "$c" 1 "${spm[@]}"
  evict "$TEXT"
  measure a1 "${CMD[@]}"
  row a1 "$name" "SentencePiece 2000, first run (prepares)" "<= 180 s, <= 1.5 GB" "$(mbps "$(bytes_of "$TEXT")" "$WALL")"
  train_cmd "$TEXT" "$r2" "$c" 1 "${spm[@]}"
  evict "$c"; evict "$TEXT"
  measure a2 "${CMD[@]}"
  row a2 "$name" "SentencePiece 2000, second run (reuses)" "<= 5 s to the first step, <= 0.5 GB"
  evict "$c"; evict "$TEXT"
  measure a3 "$TRAIN" --resume "$r1" --steps 2 --eval-every 0 --sample-tokens 0 --threads 2 --log-every 1 \
    --cache-dir "$c" "${EXTRA[@]}"
  row a3 "$name" "SentencePiece 2000, --resume of a1 to step 2" "<= 5 s to the first step, <= 0.5 GB" "-" "$(du_h "$c")"
  drop_cache "$c"
}

# ------------------------------------------------------------------ b. 3 GB FASTA
bench_b() {
  make_corpus fasta "$MID" "$MID_SIZE"
  local in_bytes c name small_name big_rss big_anon
  in_bytes=$(bytes_of "$MID")
  name="FASTA $(human_bytes "$in_bytes")"
  need_space $(((in_bytes >> 30) * 2 + 2))
  if [[ -n $PREPARE ]]; then
    c=$(fresh_dir "$CACHES" b-prepare)
    evict "$MID"
    measure b1 "$PREPARE" --data "$MID" --threads 2 --cache-dir "$c"
    row b1 "$name" "performer-prepare, 2 threads" ">= 100 MB/s" "$(mbps "$in_bytes" "$WALL")" "$(du_h "$c")"
    drop_cache "$c"
  fi
  c=$(fresh_dir "$CACHES" b)
  train_cmd "$MID" "$(run_dir b-first)" "$c" 1
  evict "$MID"
  measure b2 "${CMD[@]}"
  row b2 "$name" "first run (prepares)" "<= 45 s to the first step" "$(mbps "$in_bytes" "$WALL")" "$(du_h "$c")"
  train_cmd "$MID" "$(run_dir b-second)" "$c" 1
  evict "$c"; evict "$MID"
  measure b3 "${CMD[@]}"
  row b3 "$name" "second run (reuses)" "<= 5 s to the first step"
  train_cmd "$MID" "$(run_dir b-rss-big)" "$c" 20
  evict "$c"; evict "$MID"
  measure b4 "${CMD[@]}"
  row b4 "$name" "20 steps (reuses): training RSS" "RSS within 100 MB of b6"
  big_rss=$RSS_MB big_anon=$ANON_MB
  drop_cache "$c"
  # The 11 MB seed FASTA, the same flags: once to prepare, then the 20-step run that reuses it.
  small_name="FASTA $(human_bytes "$(bytes_of "$SMALL_FASTA")") (seed)"
  c=$(fresh_dir "$CACHES" b-small)
  train_cmd "$SMALL_FASTA" "$(run_dir b-small-first)" "$c" 20
  evict "$SMALL_FASTA"
  measure b5 "${CMD[@]}"
  row b5 "$small_name" "20 steps, first run (prepares)" "-"
  train_cmd "$SMALL_FASTA" "$(run_dir b-rss-small)" "$c" 20
  evict "$c"; evict "$SMALL_FASTA"
  measure b6 "${CMD[@]}"
  row b6 "$small_name" "20 steps (reuses): training RSS" "-"
  if [[ $big_rss =~ ^[0-9]+$ && $RSS_MB =~ ^[0-9]+$ ]]; then
    note "b: training RSS on the $name file (b4) minus on the 11 MB FASTA (b6): $((big_rss - RSS_MB)) MB (target: at most 100 MB); anonymous memory alone: $((big_anon - ANON_MB)) MB"
  fi
  drop_cache "$c"
}

# ------------------------------------------------------------------ c. 10 GB FASTA
bench_c() {
  if [[ -z $PREPARE ]]; then
    note "c skipped: no performer-prepare (the loader before issue 27 holds the whole FASTA in RAM, about 2 GB per GB of input: a 10 GB FASTA does not fit this machine)"
    return
  fi
  make_corpus fasta "$BIG" "$BIG_SIZE"
  local in_bytes c name
  in_bytes=$(bytes_of "$BIG")
  name="FASTA $(human_bytes "$in_bytes")"
  need_space $(((in_bytes >> 30) * 2 + 2))
  c=$(fresh_dir "$CACHES" c)
  evict "$BIG"
  measure c1 "$PREPARE" --data "$BIG" --threads 2 --cache-dir "$c"
  row c1 "$name" "performer-prepare, 2 threads" "prepares on this machine" "$(mbps "$in_bytes" "$WALL")" "$(du_h "$c")"
  train_cmd "$BIG" "$(run_dir c-train)" "$c" 20
  evict "$c"; evict "$BIG"
  measure c2 "${CMD[@]}"
  row c2 "$name" "20 steps (reuses c1)" "trains on this machine" "-" "$(du_h "$c")"
  drop_cache "$c"
}

# ------------------------------------------------------------------ d. 1 GB text, bytes
bench_d() {
  make_corpus text "$TEXT" "$TEXT_SIZE"
  local c name
  name="text $(human_bytes "$(bytes_of "$TEXT")")"
  need_space $((($(bytes_of "$TEXT") >> 30) * 2 + 2))
  c=$(fresh_dir "$CACHES" d)
  train_cmd "$TEXT" "$(run_dir d-first)" "$c" 1
  evict "$TEXT"
  measure d1 "${CMD[@]}"
  row d1 "$name" "bytes, first run" "~2 s to the first step (today's)" "-" "$(du_h "$c")"
  train_cmd "$TEXT" "$(run_dir d-second)" "$c" 1
  evict "$c"; evict "$TEXT"
  measure d2 "${CMD[@]}"
  row d2 "$name" "bytes, second run" "~2 s to the first step"
  drop_cache "$c"
}

# ------------------------------------------------------------------ run and report
START=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
IFS=, read -r -a PARTS <<<"$ONLY"
for p in "${PARTS[@]}"; do
  case "$p" in a|b|c|d) ;; *) die "--only: unknown part '$p' (a, b, c or d)" ;; esac
done
for p in a b c d; do
  if [[ ,$ONLY, == *,$p,* ]]; then "bench_$p"; fi
done

RESULT=$WORK/data_scale-$(date -u +%Y%m%dT%H%M%SZ).md
{
  echo "# Prepared datasets at scale (issue 27): bench/data_scale.sh"
  echo
  echo "- date: $START"
  echo "- machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
  echo "- build: $BUILD ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')); performer-prepare: ${PREPARE:-absent}"
  echo "- work dir: $WORK; logs: $LOGS"
  if ((COLD)); then echo "- page cache: --cold (the corpus and the cache directory dropped from the page cache before every command)"
  else echo "- page cache: warm (corpora as make-corpus or earlier runs left them; --cold to drop them first)"; fi
  ((SMOKE)) && echo "- **--smoke: small corpora, the numbers mean nothing**"
  echo
  echo "| id | corpus | what | wall s | first step s | data loaded s | dataset | peak RSS MB | anon MB | file MB | MB/s | cache | target | status |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "wall: /usr/bin/time -v; first step: from the launch to the first \"step N/M\" progress line;"
  echo "data loaded: performer-train's banner; dataset: prepared or reused, as the program says; MB/s: input bytes / wall time, 10^6 bytes; cache: du -sh of the"
  echo "measurement's --cache-dir afterwards; anon / file: the peak RssAnon / RssFile (file pages mapped, e.g. the"
  echo "memory-mapped shards: page cache) sampled every 0.1 s. MB here = MiB. Corpus sizes in GiB (make-corpus:"
  echo "1G = 2^30 bytes)."
  if ((${#NOTES[@]})); then
    echo
    echo "Notes:"
    printf -- '- %s\n' "${NOTES[@]}"
  fi
  echo
  echo "Commands:"
  echo
  echo '```'
  printf '%s\n' "${COMMANDS[@]}"
  echo '```'
} > "$RESULT"
cat "$RESULT"
echo "data_scale.sh: written to $RESULT" >&2
