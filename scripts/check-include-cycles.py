#!/usr/bin/env python3
"""Fails (exit 1) when project modules include each other in a cycle, or when an example includes a
project header other than the umbrella header pf.h.

A module is a .h and its .cpp (the same path without the extension); module A depends on module B
when any file of A includes B's header. Cycles are printed as "a -> b -> a". Usage:
    check-include-cycles.py [ROOT]   (default: the repository this script lives in)
"""
import os
import re
import sys

FOLDERS = ["base", "autograd", "nn", "data", "performer", "distributed", "train", "bench", "examples"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def modules(root):
    deps = {}
    for folder in FOLDERS:
        for dirpath, _, files in os.walk(os.path.join(root, folder)):
            for name in files:
                if not name.endswith((".h", ".cpp")):
                    continue
                path = os.path.join(dirpath, name)
                module = os.path.relpath(path, root).rsplit(".", 1)[0]
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                for inc in INCLUDE.findall(text):
                    target = inc.rsplit(".", 1)[0]
                    if target != module and os.path.exists(os.path.join(root, inc)):
                        deps.setdefault(module, set()).add(target)
                deps.setdefault(module, set())
    return deps


def cycles(deps):
    found, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(deps.get(m, ())):
            if state.get(d) == 1:
                found.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(deps):
        if m not in state:
            visit(m)
    return found


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.setrecursionlimit(10000)
    found = cycles(modules(root))
    for c in found:
        print("include cycle: " + " -> ".join(c))
    print(f"{len(found)} include cycles" if found else "no include cycles")
    stray = []
    examples = os.path.join(root, "examples")
    for name in sorted(os.listdir(examples)):
        if name.endswith(".cpp"):
            with open(os.path.join(examples, name), encoding="utf-8") as f:
                for inc in INCLUDE.findall(f.read()):
                    if inc != "pf.h":
                        stray.append(f"examples/{name} includes {inc} (use pf.h alone)")
    for line in stray:
        print(line)
    return 1 if found or stray else 0


if __name__ == "__main__":
    sys.exit(main())
