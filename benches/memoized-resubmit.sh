#!/usr/bin/env bash
# Memoized resubmit of a failed N-step workflow: the time from the start of
# `cox resubmit NAME --memoized --no-sandbox` until the failed step is launched again (the
# failing step appends its start time to a marker file; its second line is the relaunch), and
# until the resubmitted run has ended. The workflow is a DAG chain t0 -> t1 -> ... of `true`
# steps whose last task fails (KIND=chain), or N independent `true` tasks and a last task that
# depends on them all and fails (KIND=fan). Every node before the failed one is reused.
# Usage: benches/memoized-resubmit.sh [N] [KIND]   (default 1000 chain); COX=path/to/cox
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
kind="${2:-chain}"
cox="${COX:-${CARGO_TARGET_DIR:-target}/debug/cox}"
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
export COX_HOME="$work/home"
marker="$work/marker"
python3 - "$n" "$kind" "$marker" >"$work/wf.yaml" <<'PY'
import sys
n, kind, marker = int(sys.argv[1]), sys.argv[2], sys.argv[3]
out = [
    "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  name: failing\n"
    "spec:\n  entrypoint: main\n  templates:\n"
    "  - name: t\n    container:\n      image: busybox\n      command: [\"true\"]\n"
    "  - name: fail\n    container:\n      image: busybox\n"
    f"      command: [sh, -c, 'date +%s.%N >> {marker}; exit 1']\n"
    "  - name: main\n    dag:\n      tasks:\n"
]
last = f"t{n - 1}"
for i in range(n - 1):
    deps = f", dependencies: [t{i - 1}]" if kind == "chain" and i > 0 else ""
    out.append(f"      - {{name: t{i}, template: t{deps}}}\n")
if kind == "chain":
    deps = f"t{n - 2}"
elif kind == "fan":
    deps = ", ".join(f"t{i}" for i in range(n - 1))
else:
    sys.exit(f"unknown kind {kind} (chain or fan)")
out.append(f"      - {{name: {last}, template: fail, dependencies: [{deps}]}}\n")
sys.stdout.write("".join(out))
PY
t0=$(date +%s.%N)
"$cox" run --no-sandbox "$work/wf.yaml" >"$work/first.txt" 2>&1 || true
t1=$(date +%s.%N)
grep -q Failed "$work/first.txt" || { cat "$work/first.txt"; exit 1; }
t2=$(date +%s.%N)
"$cox" resubmit failing --memoized --no-sandbox >"$work/second.txt" 2>&1 || true
t3=$(date +%s.%N)
grep -q Failed "$work/second.txt" || { cat "$work/second.txt"; exit 1; }
[ "$(wc -l <"$marker")" -eq 2 ] || { echo "the failing step ran $(wc -l <"$marker") times"; exit 1; }
relaunch=$(sed -n 2p "$marker")
reused=$(grep -c "─○ .*original pod" "$work/second.txt" || true)
python3 - <<PY
print(f"steps: $n ($kind), last fails; first run to Failed: {$t1 - $t0:.2f} s")
print(f"resubmit --memoized: to the failed step launched again {$relaunch - $t2:.3f} s; "
      f"to the run ended {$t3 - $t2:.3f} s; nodes reused (original pod): $reused")
PY
