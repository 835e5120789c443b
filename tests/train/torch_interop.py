#!/usr/bin/env python3
"""The PyTorch side of tests/train/test_interop.cpp: safetensors files read and written with json and
NumPy only (bench/torch_twin.py: read_safetensors, write_safetensors), the model is the PyTorch twin.

    torch_interop.py logits --weights F.safetensors --ids IDS.txt --out LOGITS.f32
        load a performer-export file into the twin, run it on the ids (one row of space-separated
        token ids per line), write the logits (B, T, V) as raw little-endian float32
    torch_interop.py write --like F.safetensors --out G.safetensors --ids IDS.txt --logits-out LOGITS.f32 [--seed S]
        a twin model of the same config as F (from F's metadata), its own random initialization with
        every parameter then perturbed (so biases and LayerNorm gains are not their defaults) and its own
        random projections, written to G; its logits on the ids to LOGITS

Prints one JSON line. Exit 0 ok, 1 error (message on stderr).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import torch_twin as twin  # noqa: E402


def read_ids(path):
    rows = [[int(x) for x in line.split()] for line in open(path) if line.strip()]
    if not rows or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError(f"{path}: expected rows of equal length")
    return torch.tensor(rows, dtype=torch.long)


def write_logits(model, ids, path):
    with torch.no_grad():
        logits = model(ids).contiguous().numpy().astype("<f4")
    logits.tofile(path)
    return logits.shape


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    lg = sub.add_parser("logits")
    lg.add_argument("--weights", required=True)
    lg.add_argument("--ids", required=True)
    lg.add_argument("--out", required=True)
    wr = sub.add_parser("write")
    wr.add_argument("--like", required=True)
    wr.add_argument("--out", required=True)
    wr.add_argument("--ids", required=True)
    wr.add_argument("--logits-out", required=True)
    wr.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(1)
    ids = read_ids(args.ids)
    if args.mode == "logits":
        model, meta = twin.load_safetensors(args.weights)
        shape = write_logits(model, ids, args.out)
        print(json.dumps(dict(mode="logits", shape=list(shape), attention=model.cfg["attention"],
                              producer=meta.get("producer"))))
    else:
        _, meta = twin.read_safetensors(args.like)
        cfg = twin.config_from_metadata(meta)
        model = twin.PerformerLM(cfg, args.seed).eval()
        gen = torch.Generator().manual_seed(args.seed + 100)
        with torch.no_grad():
            for _, prm in model.named_parameters():
                prm.add_(0.05 * torch.randn(prm.shape, generator=gen))
        twin.save_safetensors(model, args.out, {"vocab": meta["vocab"]} if "vocab" in meta else {})
        shape = write_logits(model, ids, args.logits_out)
        print(json.dumps(dict(mode="write", shape=list(shape), tensors=len(model.state_dict()))))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - reported to the C++ test
        print(f"torch_interop.py: error: {e}", file=sys.stderr)
        sys.exit(1)
