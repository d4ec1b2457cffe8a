#!/usr/bin/env bash
# Recovery time after a SIGKILL of `cox server` with N runs in flight: the time from the
# restart until the server listens again, which it does once every unfinished run's actor
# is started again (steps adopted). KIND=step: each run's step is a live local process
# (blocked opening a FIFO, no CPU); KIND=suspend: each run waits in a suspend node (no process).
# With KIND=step it then checks the steps were adopted, not launched again (the attempt
# directories are the same before and after), releases them and times until every run has
# Succeeded (adopted steps report their outcome to the new server).
# Usage: benches/recovery.sh [N] [KIND]   (default 1000 suspend); COX=path/to/cox
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
kind="${2:-suspend}"
cox="${COX:-${CARGO_TARGET_DIR:-target}/debug/cox}"
work=$(mktemp -d)
export COX_HOME="$work/home"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export COX_SERVER="http://127.0.0.1:$port"
server=""
cleanup() {
  [ -n "$server" ] && kill -9 "$server" 2>/dev/null || true
  [ -p "$work/gate" ] && timeout 5 sh -c ": > '$work/gate'" 2>/dev/null || true
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT
start() {
  "$cox" server --addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
  server=$!
  until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.05)" 2>/dev/null; do sleep 0.01; done
}
if [ "$kind" = step ]; then
  # Each step blocks opening a FIFO (no polling: a thousand waiting steps cost no CPU); the
  # release opens it for writing, and closing it ends every step.
  mkfifo "$work/gate"
  body="container: {image: busybox, command: [sh, -c, 'cat /w/gate >/dev/null'], volumeMounts: [{name: w, mountPath: /w}]}"
else
  body="suspend: {}"
fi
cat >"$work/wf.yaml" <<YAML
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: inflight-}
spec:
  entrypoint: main
  volumes: [{name: w, hostPath: {path: $work}}]
  templates:
  - name: main
    $body
YAML
start
for _ in $(seq "$n"); do "$cox" submit "$work/wf.yaml" >/dev/null; done
until [ "$("$cox" list | grep -c Running)" -ge "$n" ]; do sleep 0.2; done
if [ "$kind" = step ]; then
  until [ "$(ls "$COX_HOME"/runs/*/*/supervisor.pid 2>/dev/null | wc -l)" -ge "$n" ]; do sleep 0.2; done
fi
attempts_before=$( (ls -d "$COX_HOME"/runs/*/*/ 2>/dev/null || true) | wc -l)
kill -9 "$server"; wait "$server" 2>/dev/null || true
t0=$(date +%s.%N)
start
t1=$(date +%s.%N)
running=$("$cox" list | grep -c Running || true)
echo "runs in flight: $n ($kind); restart to all resumed and listening: $(python3 -c "print(f'{$t1 - $t0:.2f}')") s; Running after restart: $running"
if [ "$kind" = step ]; then
  attempts_after=$( (ls -d "$COX_HOME"/runs/*/*/ 2>/dev/null || true) | wc -l)
  echo "attempt directories before the kill: $attempts_before, after the restart: $attempts_after (equal: adopted, none launched again)"
  t2=$(date +%s.%N)
  : >"$work/gate"
  until [ "$("$cox" list | grep -c Succeeded)" -ge "$n" ]; do sleep 0.2; done
  t3=$(date +%s.%N)
  echo "released: all $n Succeeded $(python3 -c "print(f'{$t3 - $t2:.2f}')") s later"
fi
