#!/usr/bin/env python3
"""Admission under load: N concurrent workflow creates against `cox server` on loopback.

Usage: python3 benches/server/submit_bench.py PATH_TO_COX [--count 1000] [--server-arg ARG]...

Starts `cox server --no-sandbox` on a free loopback port with a fresh COX_HOME, opens
COUNT connections at once, each sending one `POST /api/v1/workflows/argo` (a one-step
workflow, `true`), and times each from connect to the full answer. Then it lists the
stored workflows and checks that every acknowledged (200) create is stored and that no
refused one (429/503, which must carry Retry-After) is. Prints the latency percentiles
of the acknowledged creates and the wall time. Exits 1 if anything was lost, answered
otherwise, or refused without Retry-After.
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body(name):
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "container": {"image": "alpine", "command": ["true"]}}],
        },
    }
    return json.dumps({"workflow": workflow}).encode()


async def create(port, name):
    payload = body(name)
    head = (
        f"POST /api/v1/workflows/argo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + payload)
    await writer.drain()
    answer = await reader.read()
    elapsed = time.perf_counter() - started
    writer.close()
    head, _, rest = answer.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return name, status, headers, elapsed


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def fire(port, count):
    return await asyncio.gather(*(create(port, f"bench-{i}") for i in range(count)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cox")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--server-arg", action="append", default=[], help="passed to cox server")
    args = parser.parse_args()

    home = tempfile.TemporaryDirectory()
    port = free_port()
    log = open(os.path.join(home.name, "server.log"), "w+")
    server = subprocess.Popen(
        [args.cox, "server", "--addr", f"127.0.0.1:{port}", "--no-sandbox", *args.server_arg],
        env=dict(os.environ, COX_HOME=home.name),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/version", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    sys.exit("cox server did not start:\n" + log.read())
                time.sleep(0.1)

        started = time.perf_counter()
        results = asyncio.run(fire(port, args.count))
        wall = time.perf_counter() - started

        acknowledged = {name for name, status, _, _ in results if status == 200}
        refused = [(name, headers) for name, status, headers, _ in results if status in (429, 503)]
        other = [(name, status) for name, status, _, _ in results if status not in (200, 429, 503)]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/workflows/argo", timeout=120) as r:
            stored = {w["metadata"]["name"] for w in json.load(r)["items"]}
        latencies = sorted(elapsed for _, status, _, elapsed in results if status == 200)

        print(f"creates: {args.count} concurrent, wall {wall:.2f} s")
        print(f"acknowledged (200): {len(acknowledged)}, refused (429/503): {len(refused)}, other: {len(other)}")
        print(f"stored: {len(stored)}; acknowledged but not stored: {len(acknowledged - stored)}; "
              f"stored but not acknowledged: {len(stored - acknowledged)}")
        ms = lambda s: f"{s * 1000:.0f} ms"
        print("submit latency of acknowledged creates: "
              f"min {ms(latencies[0])}, p50 {ms(percentile(latencies, 50))}, "
              f"p90 {ms(percentile(latencies, 90))}, p99 {ms(percentile(latencies, 99))}, "
              f"max {ms(latencies[-1])}" if latencies else "no create acknowledged")
        failed = (
            acknowledged != stored
            or other
            or any("retry-after" not in headers for _, headers in refused)
        )
        if other:
            print(f"unexpected answers: {other[:10]}")
        sys.exit(1 if failed else 0)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        home.cleanup()


if __name__ == "__main__":
    main()
