#!/usr/bin/env python3
"""Loss curves of performer-train runs: training and validation loss against step (left panel) and
against training wall-clock time (right panel), several runs on one figure, labelled by run name.

    scripts/plot-metrics.py RUN_DIR [RUN_DIR ...] [--out PREFIX] [--title TEXT] [--smooth N]

Reads RUN_DIR/metrics.jsonl (train/metrics.h): lines {"type":"train","step","loss","elapsed_s",...}
and {"type":"eval","step","val_loss","elapsed_s",...}; "skip" lines and unknown types are ignored, as
are non-finite losses (written null) and a last line cut short by a crash. Writes PREFIX.png and
PREFIX.svg (default PREFIX: loss). Needs matplotlib (Debian: apt-get install python3-matplotlib).
Exit codes: 0 ok, 2 bad arguments or a run without metrics.
"""
import argparse
import json
import os
import sys


def read_run(run_dir):
    """(train [(step, elapsed_s, loss)], eval [(step, elapsed_s, val_loss)]) of one run directory."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise ValueError(f"{run_dir}: no metrics.jsonl (is it a performer-train output directory?)")
    train, evals = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash (performer-train drops it on resume)
            kind = rec.get("type")
            if kind == "train" and rec.get("loss") is not None:
                train.append((rec["step"], rec.get("elapsed_s"), rec["loss"]))
            elif kind == "eval" and rec.get("val_loss") is not None:
                evals.append((rec["step"], rec.get("elapsed_s"), rec["val_loss"]))
    if not train and not evals:
        raise ValueError(f"{path}: no training or validation losses in it")
    return train, evals


def moving_average(values, n):
    if n <= 1:
        return values
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= n:
            total -= values[i - n]
        out.append(total / min(i + 1, n))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="performer-train output directories")
    p.add_argument("--out", default="loss", help="output prefix: writes PREFIX.png and PREFIX.svg (default: loss)")
    p.add_argument("--title", default=None, help="figure title (default: none)")
    p.add_argument("--smooth", type=int, default=1, help="moving average over N training points (default 1: raw)")
    p.add_argument("--dpi", type=int, default=80, help="PNG resolution (default 80)")
    args = p.parse_args()
    if args.smooth < 1:
        p.error("--smooth must be >= 1")

    runs = []
    for d in args.runs:
        try:
            runs.append((os.path.basename(os.path.normpath(d)) or d, *read_run(d)))
        except (OSError, ValueError) as e:
            print(f"plot-metrics: error: {e}", file=sys.stderr)
            return 2
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot-metrics: error: matplotlib is not installed (Debian: apt-get install python3-matplotlib)",
              file=sys.stderr)
        return 2

    fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, train, evals) in enumerate(runs):
        c = colors[i % len(colors)]
        if train:
            steps, times, losses = zip(*train)
            losses = moving_average(list(losses), args.smooth)
            by_step.plot(steps, losses, color=c, lw=1.0, alpha=0.8, label=f"{name} train")
            if all(t is not None for t in times):
                by_time.plot(times, losses, color=c, lw=1.0, alpha=0.8, label=f"{name} train")
        if evals:
            steps, times, losses = zip(*evals)
            by_step.plot(steps, losses, color=c, lw=1.6, ls="--", marker="o", ms=3, label=f"{name} validation")
            if all(t is not None for t in times):
                by_time.plot(times, losses, color=c, lw=1.6, ls="--", marker="o", ms=3, label=f"{name} validation")
    by_step.set_xlabel("optimizer step")
    by_step.set_ylabel("loss (nats / token)")
    by_time.set_xlabel("training wall-clock time (s)")
    for ax in (by_step, by_time):
        ax.grid(True, alpha=0.3)
    by_step.legend(fontsize=7)
    if args.title:
        fig.suptitle(args.title, fontsize=10)
    fig.tight_layout()
    out_dir = os.path.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    written = []
    for ext in ("png", "svg"):
        path = f"{args.out}.{ext}"
        fig.savefig(path, dpi=args.dpi, **({"metadata": {"Date": None}} if ext == "svg" else {}))
        written.append(path)
    print("wrote " + " and ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
