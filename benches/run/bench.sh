#!/usr/bin/env bash
# Run benchmarks of `cox run` (see benches/run/README.md and BENCHMARKS.md).
#
#   benches/run/bench.sh parity   # 202 `true` steps: make -j2 (plain, each recipe in bubblewrap)
#                                 # vs cox run (--no-sandbox, sandboxed)
#   benches/run/bench.sh steps    # per-step components: true, bwrap true, cox __step, bwrap cox __step
#   benches/run/bench.sh big      # 10,000-node workflows, --no-sandbox, /usr/bin/time -v, time-boxed
#
# Environment: COX (the cox binary, default $CARGO_TARGET_DIR/release/cox), OUT (scratch dir,
# default /var/tmp/cox-run-bench, on disk), RUNS (hyperfine runs, default 5), BIG_SECS (time box per
# 10,000-node run, default 240), BIG_N (default 10000).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
COX=${COX:-${CARGO_TARGET_DIR:-$here/../../target}/release/cox}
OUT=${OUT:-/var/tmp/cox-run-bench}
RUNS=${RUNS:-5}
BIG_SECS=${BIG_SECS:-240}
BIG_N=${BIG_N:-10000}
SHM=/dev/shm/cox-run-bench-home
mkdir -p "$OUT"

machine() {
  echo "nproc: $(nproc)"; grep -m1 "model name" /proc/cpuinfo; free -h | sed -n 2p
  date -u; rustc --version; "$COX" --version 2>/dev/null || true
}

# Each run gets a new, empty COX_HOME ($OUT/home links to it), and none is deleted: on ext4,
# creating an inode skips every inode of its group deleted in the last minute (five while the
# group's inode table is not yet written back; `recently_deleted`), so deleting runs' files
# before a run made inode creation most of its CPU (see BENCHMARKS.md, "fifth pass"). The
# homes of each series stay under $OUT/homes/ until you delete them (about 1 MB a run).
fresh_home() {
  echo "d=\$(mktemp -d -p $1/homes) && ln -sfn \$d $1/home"
}

parity() {
  python3 "$here/gen.py" dag 200 > "$OUT/dag202.yaml"
  python3 "$here/gen.py" make 200 > "$OUT/Makefile"
  # Each recipe in the sandbox a step gets: what bubblewrap alone costs, with make as the
  # scheduler (no store, no logs, no records).
  mkdir -p "$OUT/bwrap-work/start" "$OUT/bwrap-work/join"
  for i in $(seq 0 199); do mkdir -p "$OUT/bwrap-work/p$i"; done
  python3 "$here/gen.py" make-bwrap 200 "$OUT/bwrap-work" > "$OUT/Makefile.bwrap"
  mkdir -p "$OUT/homes" "$SHM/homes"
  hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/parity.json" --export-markdown "$OUT/parity.md" \
    --prepare 'true' -n 'make -j2' "make -s -j2 -f $OUT/Makefile" \
    --prepare 'true' -n 'make -j2, each recipe in bubblewrap' "make -s -j2 -f $OUT/Makefile.bwrap" \
    --prepare "$(fresh_home "$OUT")" -n 'cox run --no-sandbox' \
      "COX_HOME=$OUT/home $COX run --no-sandbox $OUT/dag202.yaml" \
    --prepare "$(fresh_home "$OUT")" -n 'cox run (sandboxed)' \
      "COX_HOME=$OUT/home $COX run $OUT/dag202.yaml" \
    --prepare "$(fresh_home "$SHM")" -n 'cox run --no-sandbox, COX_HOME on tmpfs' \
      "COX_HOME=$SHM/home $COX run --no-sandbox $OUT/dag202.yaml"
  # (Sandboxed runs refuse a COX_HOME under /dev: "must not be under /proc or /dev".)
  rm -rf "$SHM"  # tmpfs: no such effect
  echo "COX_HOMEs of the runs left in $OUT/homes ($(du -sh "$OUT/homes" | cut -f1)); see the comment on fresh_home" >&2
  python3 "$here/summary.py" "$OUT/parity.json"
}

# One step's processes alone: reuses the step directory of a one-step run.
steps() {
  python3 "$here/gen.py" wide 1 > "$OUT/one.yaml"
  rm -rf "$OUT/one-home"
  COX_HOME="$OUT/one-home" strace -f -qq -s 4096 -e trace=execve -o "$OUT/one.strace" \
    "$COX" run "$OUT/one.yaml" > /dev/null 2>&1
  local dir; dir=$(dirname "$(find "$OUT/one-home/runs" -name spec.json | head -1)")
  # The bwrap command line the executor used (from the execve trace), replayed as is.
  python3 - "$OUT/one.strace" > "$OUT/bwrap-step.sh" <<'PY'
import re, sys, shlex
for line in open(sys.argv[1]):
    m = re.search(r'execve\("([^"]*bwrap)", \[(.*?)\], ', line)
    if m and "__step" in line:
        args = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))
        print(" ".join(shlex.quote(a.encode().decode("unicode_escape")) for a in args))
        break
PY
  hyperfine -N --warmup 3 --runs 50 --export-json "$OUT/steps.json" \
    -n 'true' 'true' \
    -n 'bwrap --ro-bind / / true' 'bwrap --ro-bind / / true' \
    -n 'cox --version' "$COX --version" \
    -n 'cox __step (no sandbox)' "$COX __step $dir/spec.json --artifacts $OUT/one-home/artifacts --images $dir/images.json" \
    -n 'bwrap ... cox __step (as the executor runs it)' "bash $OUT/bwrap-step.sh"
  python3 "$here/summary.py" "$OUT/steps.json"
}

big() {
  for kind in loop chain wide; do
    python3 "$here/gen.py" "$kind" "$BIG_N" > "$OUT/$kind$BIG_N.yaml"
    rm -rf "$OUT/home-big"
    echo "== $kind $BIG_N (time box ${BIG_SECS}s)"
    # Progress lines on stderr count the steps done so far.
    # time -v outside timeout: the peak RSS is the largest waited-for descendant (cox).
    COX_HOME="$OUT/home-big" /usr/bin/time -v -o "$OUT/$kind.time" timeout -s INT "$BIG_SECS" \
      "$COX" run --no-sandbox "$OUT/$kind$BIG_N.yaml" > /dev/null 2> "$OUT/$kind.progress" || true
    grep -E "Elapsed|Maximum resident|Exit status" "$OUT/$kind.time" || true
    echo "steps succeeded: $(grep -c ': Succeeded' "$OUT/$kind.progress" || true)"
    du -sh "$OUT/home-big/store" 2>/dev/null || true
  done
}

machine
for what in "${@:-parity steps big}"; do "$what"; done
