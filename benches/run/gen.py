#!/usr/bin/env python3
"""Workflow and Makefile generators for the run benchmarks (benches/run/README.md).

  gen.py dag N      -> DAG: start, N tasks in parallel (depend on start), join (depends on all)
  gen.py make N     -> Makefile with the same shape, every recipe `true`
  gen.py make-bwrap N DIR
                    -> the same Makefile, every recipe `true` in the sandbox `cox run` gives a
                       step (bubblewrap, the same arguments but the bind of the step directory,
                       which costs nothing measurable), its working directory DIR/<target>
                       (which must exist): the floor of a scheduler sandboxing each step so
  gen.py loop N     -> steps: one step with withSequence count N (N `true` steps)
  gen.py chain N    -> DAG chain t0 -> t1 -> ... -> t{N-1}
  gen.py wide N     -> DAG: N independent tasks (no edges)
  gen.py steps N    -> steps: N groups of one step, one after another
Optional: --parallelism P (default 2).
"""
import sys

def header(name, par):
    return (f"apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  name: {name}\n"
            f"spec:\n  entrypoint: main\n  parallelism: {par}\n  templates:\n"
            "  - name: t\n    container:\n      image: busybox\n      command: [\"true\"]\n")

def main():
    kind, n = sys.argv[1], int(sys.argv[2])
    par = 2
    if "--parallelism" in sys.argv:
        par = int(sys.argv[sys.argv.index("--parallelism") + 1])
    out = []
    if kind in ("make", "make-bwrap"):
        if kind == "make":
            recipe = lambda target: "true"
        else:
            # As the executor runs a step without files to place (see BENCHMARKS.md).
            workdirs = sys.argv[3]
            recipe = lambda target: (
                "bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp "
                f"--bind {workdirs}/{target} /tmp/work --chdir /tmp/work "
                "--unshare-pid --die-with-parent --new-session -- true")
        out.append(".PHONY: all start join " + " ".join(f"p{i}" for i in range(n)) + "\n")
        out.append(f"all: join\nstart:\n\t{recipe('start')}\n")
        for i in range(n):
            out.append(f"p{i}: start\n\t{recipe(f'p{i}')}\n")
        out.append("join: " + " ".join(f"p{i}" for i in range(n)) + f"\n\t{recipe('join')}\n")
    elif kind == "dag":
        out.append(header(f"dag{n}", par))
        out.append("  - name: main\n    dag:\n      tasks:\n      - {name: start, template: t}\n")
        for i in range(n):
            out.append(f"      - {{name: p{i}, template: t, dependencies: [start]}}\n")
        deps = ", ".join(f"p{i}" for i in range(n))
        out.append(f"      - {{name: join, template: t, dependencies: [{deps}]}}\n")
    elif kind == "loop":
        out.append(header(f"loop{n}", par))
        out.append("  - name: main\n    steps:\n"
                   f"    - - {{name: each, template: t, withSequence: {{count: \"{n}\"}}}}\n")
    elif kind == "chain":
        out.append(header(f"chain{n}", par))
        out.append("  - name: main\n    dag:\n      tasks:\n      - {name: t0, template: t}\n")
        for i in range(1, n):
            out.append(f"      - {{name: t{i}, template: t, dependencies: [t{i-1}]}}\n")
    elif kind == "wide":
        out.append(header(f"wide{n}", par))
        out.append("  - name: main\n    dag:\n      tasks:\n")
        for i in range(n):
            out.append(f"      - {{name: t{i}, template: t}}\n")
    elif kind == "steps":
        out.append(header(f"steps{n}", par))
        out.append("  - name: main\n    steps:\n")
        for i in range(n):
            out.append(f"    - - {{name: s{i}, template: t}}\n")
    else:
        sys.exit(__doc__)
    sys.stdout.write("".join(out))

main()
