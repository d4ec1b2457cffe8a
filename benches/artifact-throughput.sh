#!/usr/bin/env bash
# The artifact throughput benchmark (benches/artifact_throughput.rs) against moto's S3
# server on loopback, started here unless COX_TEST_S3_ENDPOINT names a running server.
# Usage: benches/artifact-throughput.sh [--mib N] [--runs N]   (default 1024 MiB, 3 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${COX_TEST_S3_ENDPOINT:-}" ]; then
  python3 -c 'import moto' 2>/dev/null || python3 -m pip install --quiet 'moto[server]'
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 -m moto.server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
  export COX_TEST_S3_ENDPOINT="http://127.0.0.1:$port" COX_TEST_S3_BUCKET=cox-bench COX_TEST_S3_REGION=us-east-1
  export COX_TEST_S3_ACCESS_KEY=bench-access-key COX_TEST_S3_SECRET_KEY=bench-secret-key
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$COX_TEST_S3_ENDPOINT/" 2>/dev/null && break; sleep 0.2; done
  curl -fsS -o /dev/null -X PUT "$COX_TEST_S3_ENDPOINT/$COX_TEST_S3_BUCKET"
fi
exec cargo bench --bench artifact_throughput -- "$@"
