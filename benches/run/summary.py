#!/usr/bin/env python3
"""min / median of each command of a hyperfine --export-json file."""
import json, statistics, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = r["times"]
    print(f"{r['command']:45s} min {min(t)*1e3:8.1f} ms  median {statistics.median(t)*1e3:8.1f} ms  runs {len(t)}")
