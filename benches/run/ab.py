#!/usr/bin/env python3
"""Interleaved wall times of commands, each run with a new COX_HOME.

    benches/run/ab.py N LABEL=COMMAND [LABEL=COMMAND ...]

Runs every command once per round (a first round is not counted), N rounds, so that two
builds compared meet the same moments of a shared machine; prints the median, first
quartile and minimum of each. Each run gets a new directory under $OUT/homes (default
/var/tmp/cox-run-bench) as COX_HOME, none deleted (see bench.sh, fresh_home).
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

rounds = int(sys.argv[1])
commands = [arg.split("=", 1) for arg in sys.argv[2:]]
homes = os.path.join(os.environ.get("OUT", "/var/tmp/cox-run-bench"), "homes")
os.makedirs(homes, exist_ok=True)
times = {label: [] for label, _ in commands}
for round_ in range(rounds + 1):
    for label, command in commands:
        env = dict(os.environ, COX_HOME=tempfile.mkdtemp(dir=homes))
        start = time.perf_counter()
        subprocess.run(command, shell=True, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if round_:
            times[label].append((time.perf_counter() - start) * 1000)
for label, ts in times.items():
    ts.sort()
    print(f"{label:>12}: median {statistics.median(ts):6.1f} ms  q1 {ts[len(ts) // 4]:6.1f}"
          f"  min {ts[0]:6.1f}  (n={len(ts)})")
