#!/usr/bin/env python3
"""B1 as a competent PyTorch user writes it: the yardstick for bench/torch_twin.py (issue 28).

Independent of the twin on purpose (no import of it): a causal Performer LM of B1's shapes (d 256 x 4
layers, 4 heads, ff 1024, 128 random features, seq 1024, batch 4), FAVOR+ in performer-pytorch's
style, trained with AdamW(foreach=True), under plain torch.autocast("cpu", torch.bfloat16) with
--precision bf16 and nothing else special:

- softmax kernel as performer-pytorch's `softmax_kernel`: x' = x D^-1/4, u = x' W^T (under autocast:
  a bf16 product), phi = M^-1/2 (exp(u - |x'|^2/2 - stab) + eps), with the query stabilizer the
  query's own max over features and ONE key stabilizer, the max over the whole sequence and all
  features of the (batch, head) (it looks ahead; performer-pytorch does the same);
- causal linear attention in chunks of 64: inside a chunk a masked (C x C) product, across chunks the
  per-chunk totals phi(K)^T V and sum phi(K) prefix-summed with torch.cumsum (exclusive);
- out = num / den;
- GELU: B1's tanh form by default; `--gelu none` is nn.GELU()'s default exact (erf) form, what a user
  who writes nn.GELU() gets: a different function, and in torch 1.13 a much faster one in bf16.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch_plain.py [--precision bf16]
        [--threads 2] [--steps 10] [--warmup 2] [--chunk 64] [--gelu tanh|none] [--profile FILE]

Prints one JSON line (tokens_per_s, step_ms_median, peak_rss_mb, initial_loss), like torch_twin.py train.
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, DIM, DEPTH, HEADS, FF, FEATURES, SEQ, BATCH = 256, 256, 4, 4, 1024, 128, 1024, 4


def gaussian_orthogonal(m, d):
    blocks = []
    for _ in range(math.ceil(m / d)):
        q, _ = torch.linalg.qr(torch.randn(d, d))
        blocks.append(q.t())
    w = torch.cat(blocks)[:m]
    return w * torch.randn(m, d).norm(dim=1, keepdim=True)


def softmax_kernel(x, proj, is_query, eps=1e-6):
    d = x.shape[-1]
    x = x * d ** -0.25
    u = x @ proj.t()  # (B,H,T,M)
    diag = (x * x).sum(-1, keepdim=True) / 2
    if is_query:
        stab = u.amax(-1, keepdim=True).detach()
    else:
        stab = u.amax(dim=(-1, -2), keepdim=True).detach()
    return proj.shape[0] ** -0.5 * (torch.exp(u - diag - stab) + eps)


def causal_linear_attention(q, k, v, chunk):
    B, H, T, D = v.shape
    M = q.shape[-1]
    n = T // chunk
    qc, kc, vc = (t.reshape(B, H, n, chunk, t.shape[-1]) for t in (q, k, v))
    mask = torch.ones(chunk, chunk, dtype=torch.bool).tril()
    a = (qc @ kc.transpose(-1, -2)).masked_fill(~mask, 0.0)  # (B,H,n,C,C)
    num = a @ vc
    den = a.sum(-1, keepdim=True)
    kv = torch.cumsum(kc.transpose(-1, -2) @ vc, dim=2) - kc.transpose(-1, -2) @ vc  # exclusive prefix (B,H,n,M,D)
    ks = torch.cumsum(kc.sum(-2), dim=2) - kc.sum(-2)  # (B,H,n,M)
    num = num + qc @ kv
    den = den + (qc * ks.unsqueeze(-2)).sum(-1, keepdim=True)
    return (num / den).reshape(B, H, T, D)


class Attention(nn.Module):
    def __init__(self, chunk):
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.out = nn.Linear(DIM, DIM)
        self.chunk = chunk
        self.register_buffer("proj", gaussian_orthogonal(FEATURES, DIM // HEADS))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, HEADS, C // HEADS).permute(2, 0, 3, 1, 4)
        q = softmax_kernel(q, self.proj, True)
        k = softmax_kernel(k, self.proj, False)
        o = causal_linear_attention(q, k, v, self.chunk)
        return self.out(o.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, chunk, gelu):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.attn = Attention(chunk)
        self.ff = nn.Sequential(nn.Linear(DIM, FF), nn.GELU(approximate=gelu), nn.Linear(FF, DIM))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff(self.ln2(x))


class LM(nn.Module):
    def __init__(self, chunk, gelu):
        super().__init__()
        self.tok = nn.Embedding(V, DIM)
        self.pos = nn.Embedding(SEQ, DIM)
        self.blocks = nn.Sequential(*[Block(chunk, gelu) for _ in range(DEPTH)])
        self.ln = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, V)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, ids):
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
        return self.head(self.ln(self.blocks(x)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--gelu", choices=["tanh", "none"], default="tanh",
                    help="tanh: B1's GELU (ours); none: nn.GELU()'s default exact erf form, a different function")
    ap.add_argument("--profile", default=None, help="write torch.profiler's op table of 3 steps to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LM(args.chunk, args.gelu)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-4, foreach=True)
    data = torch.randint(0, V, (BATCH, SEQ + 1))
    x, y = data[:, :-1], data[:, 1:]

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = F.cross_entropy(model(x).view(-1, V), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss

    times, loss0 = [], None
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = step()
        dt = time.perf_counter() - t0
        loss0 = loss0 if loss0 is not None else loss.item()
        if i >= args.warmup:
            times.append(dt)
    if args.profile:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                step()
        with open(args.profile, "w") as f:
            f.write(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=45))
    med = statistics.median(times)
    print(json.dumps(dict(mode="train", impl="torch-plain", precision=args.precision, gelu=args.gelu, threads=torch.get_num_threads(),
                          params=sum(p.numel() for p in model.parameters()), tokens_per_s=BATCH * SEQ / med,
                          step_ms_median=med * 1e3,
                          peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                          initial_loss=loss0, steps=args.steps, warmup=args.warmup, torch=torch.__version__)))


if __name__ == "__main__":
    main()
