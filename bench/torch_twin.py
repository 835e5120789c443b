#!/usr/bin/env python3
"""The PyTorch twin of performer-bench: the same Performer LM (B1, B2), the same CLI, the same JSON.

Plain PyTorch (Debian's python3-torch 1.13, OpenBLAS), eager mode, float32, CPU. Mirrors
performer/model.h, performer/attention_layer.h, performer/favor.h and performer/features.h, and
performer/favor_local.h in its O(T^2) reference form (favor_local: for exported models and checks,
not offered by the benchmark subcommands); the notes (what is timed, why the causal FAVOR+
formulation is a fair one) are in bench/README_twin.md.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch_twin.py train --preset b1
    ... torch_twin.py train --preset b2 --seq 16384 --attention softmax --steps 3 --warmup 1
    ... torch_twin.py attention --seq 4096 --kind favor --causal
    ... torch_twin.py generate --context 4096 --tokens 128
    ... torch_twin.py check
    ... torch_twin.py text --data ../shared/data/text/tinyshakespeare.txt --preset small --steps 4000 --time-limit 600

Every subcommand ends its output with ONE line of JSON (compare.sh reads the last line).
Shapes: B batch, T time, C channels, H heads, D head dim, M random features, V vocabulary, L layers.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 256
# The shapes of docs/ARCHITECTURE.md, "Benchmark shapes"; ff for B2 is 4 * d_model, as in
# bench/performer_bench.cpp (override with --ff; compare.sh warns when the parameter counts of both sides differ).
PRESETS = {
    "b1": dict(dim=256, depth=4, heads=4, ff=1024, features=128, seq=1024, batch=4),
    "b2": dict(dim=128, depth=2, heads=2, ff=512, features=64, seq=1024, batch=1),
    # performer/presets.cpp b3: the wider and deeper shape of the scaling table (issue 28).
    "b3": dict(dim=512, depth=8, heads=8, ff=2048, features=256, seq=1024, batch=4),
    # performer-train --preset small (train/train_config.cpp), for the `text` quality run.
    "small": dict(dim=128, depth=4, heads=4, ff=512, features=64, seq=256, batch=8),
}
KERNEL_EPS = 1e-6  # ModelConfig::kernel_eps
RELU_FLOOR = 1e-3  # FavorOptions::relu_floor
DEN_FLOOR = 1e-30  # kFavorDenominatorFloor
# Causal FAVOR+ computes the cross-chunk state at one reference shift per (batch, head) (see
# favor_causal); if the running max of the key shifts moves by more than this many nats along the
# sequence, the exact per-chunk carried form (a Python loop over chunks) is used instead.
MAX_VECTORIZED_SPAN = 60.0
LOOP_FALLBACKS = [0]  # how many causal FAVOR+ calls took the carried loop (reported in the JSON when > 0)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # ru_maxrss is KB on Linux


def emit(obj):
    print(json.dumps(obj), flush=True)


# ----------------------------------------------------------------------------- random features


def orthogonal_random_features(m, d, gen):
    """(M, D), as performer/features.cpp: ceil(M/D) blocks, each Q^T of the QR of a D x D Gaussian
    (columns sign-corrected by sign(diag R)), truncated to M rows; rows scaled by the norm of an
    independent D-dimensional Gaussian vector. QR in double."""
    blocks = []
    for _ in range((m + d - 1) // d):
        g = torch.randn(d, d, generator=gen, dtype=torch.float64)
        q, r = torch.linalg.qr(g)
        q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # Q diag(sign(R_ii))
        blocks.append(q.t())
    w = torch.cat(blocks, 0)[:m]  # (M, D)
    norms = torch.randn(m, d, generator=gen, dtype=torch.float64).norm(dim=1, keepdim=True)
    return (w * norms).float()


# ----------------------------------------------------------------------------- FAVOR+ kernel


def feature_map(x, w, kind, eps):
    """phi(x) (..., T, M) and the shift s (..., T) of performer/favor.h. x (..., T, D), w (M, D).
    Softmax: x' = x D^-1/4, u = W x', phi = M^-1/2 (exp(u - |x'|^2/2 - s) + eps), s = max_f u_f - |x'|^2/2
    (a constant for the gradient). Relu: phi = relu(W x') + 1e-3, s = 0."""
    D, M = x.shape[-1], w.shape[0]
    xs = x * D ** -0.25
    u = xs @ w.t()  # (..., T, M)
    if kind == "relu":
        return F.relu(u) + RELU_FLOOR, torch.zeros(x.shape[:-1])
    h = 0.5 * (xs * xs).sum(-1, keepdim=True)  # (..., T, 1), differentiable
    s = (u.detach().amax(-1, keepdim=True) - h.detach())  # (..., T, 1), constant
    # M^-1/2 exp(u - h - s) = exp(u - (h + s + ln(M)/2)): one exp over (T, M) and one add.
    phi = torch.exp(u - (h + s + 0.5 * math.log(M))) + eps * M ** -0.5
    return phi, s.squeeze(-1)


def finish(na, dv):
    """out = num / max(den, floor) from NA = [num, den] (..., Dv + 1)."""
    return na[..., :dv] / na[..., dv:].clamp_min(DEN_FLOOR)


def favor_causal(q, k, v, w, kind="favor", eps=KERNEL_EPS, chunk=64, return_state=False, force_loop=False):
    """Causal FAVOR+, (B,H,T,D) q, k and (B,H,T,Dv) v -> (B,H,T,Dv), chunked, through autograd.

    w_ij = phi(q_i) . phi(k_j) exp(s_j - r_i) for j <= i, r_i = max_{j<=i} s_j (running max, never
    looks ahead), out_i = sum_j w_ij v_j / max(sum_j w_ij, floor)   (performer/favor.h).
    The weights are folded into the features (_factorized_features): phi'(q_i) = phi(q_i) exp(G - r_i),
    phi'(k_j) = phi(k_j) exp(s_j - G), so phi'(q_i) . phi'(k_j) = w_ij exactly, and what remains is plain
    causal linear attention: inside a chunk of C positions a masked (C x C) product
    (phi'(Q) phi'(K)^T, upper triangle set to 0) [V 1]; across chunks the per-chunk totals
    phi'(K)^T [V 1] (M x (Dv+1)), an exclusive torch.cumsum over the chunk axis (every chunk's entering
    state at once, no Python loop), read by each query as phi'(q_i) S. G = the running max at the end
    of the FIRST chunk: nothing looks ahead (a change after position t leaves the outputs up to t
    bit-identical). While r stays within MAX_VECTORIZED_SPAN nats of G along the sequence no factor
    over/underflows; otherwise the carried loop below is used.
    (Until 2026-12-07 the weights exp(s_j - r_i) were a separate (C x C) matrix per chunk, exp'd and
    multiplied in, plus two (T, M) products by exp(s - G) and exp(G - r); BENCHMARKS.md, "An honest twin".)
    return_state: also the final (S [M, Dv+1] at shift R, R) per (B, H), for recurrent generation."""
    B, H, T, D = q.shape
    Dv = v.shape[-1]
    M = w.shape[0]
    C = max(1, min(chunk, T))
    pad = (-T) % C
    Tp = T + pad
    nc = Tp // C
    E = Dv + 1
    shifted = kind != "relu"
    if shifted and not force_loop:
        pq, pk, s, r, G = _factorized_features(q, k, w, eps, C)
        if G is None:  # the running max spans too many nats for one reference shift
            force_loop = True
    if force_loop or not shifted:
        pq, _ = feature_map(q, w, kind, eps)  # (B,H,T,M)
        pk, s = feature_map(k, w, kind, eps)  # (B,H,T,M), (B,H,T)
        r = torch.cummax(s, dim=-1).values if shifted else s  # (B,H,T)
    vaug = torch.cat([v, v.new_ones(B, H, T, 1)], -1)  # (B,H,T,E) with E = Dv + 1: [V 1], in v's dtype
    if pad:  # padded positions: zero features and values (padded keys add nothing, padded queries are cut)
        pq = F.pad(pq, (0, 0, 0, pad))
        pk = F.pad(pk, (0, 0, 0, pad))
        vaug = F.pad(vaug, (0, 0, 0, pad))
        s = F.pad(s, (0, pad), value=-math.inf)
        r = F.pad(r, (0, pad), value=math.inf) if not shifted else torch.cat([r, r[..., -1:].expand(B, H, pad)], -1)
    if force_loop and shifted:
        LOOP_FALLBACKS[0] += 1
        return _favor_causal_loop(pq, pk, s, r, vaug, T, C, Dv, return_state)

    # From here the weights exp(s_j - r_i) are inside the features (shifted) or absent (relu): plain
    # causal linear attention.
    tril = _tril(C)
    pqc, pkc, vc = pq.view(B, H, nc, C, M), pk.view(B, H, nc, C, M), vaug.view(B, H, nc, C, E)
    na = (pqc @ pkc.transpose(-1, -2)).masked_fill(~tril, 0.0) @ vc  # (B,H,nc,C,E) intra-chunk
    tot = pkc.transpose(-1, -2) @ vc  # (B,H,nc,M,E) per-chunk totals (at shift G)
    if nc > 1:
        csum = torch.cumsum(tot[:, :, :-1], dim=2)
        prefix = torch.cat([csum.new_zeros(B, H, 1, M, E), csum], 2)  # exclusive
        na = na + pqc @ prefix
    out = finish(na, Dv).reshape(B, H, Tp, Dv)[:, :, :T]
    if return_state:
        if not shifted:
            return out, (tot.sum(2), torch.zeros(B, H))
        R = r[..., T - 1]  # (B,H) the final running max
        return out, (tot.sum(2) * torch.exp(G.squeeze(-1) - R)[..., None, None], R)  # S (B,H,M,E) at shift R
    return out


_TRIL = {}


def _tril(c):
    if c not in _TRIL:
        _TRIL[c] = torch.ones(c, c, dtype=torch.bool).tril()
    return _TRIL[c]


# How the causal FAVOR+ key shift is taken in favor_causal's vectorized form: "running" (ours, the
# default: the running max r_i, causal-safe) or "global" (performer-pytorch's: ONE key stabilizer, the
# max of u over the whole sequence and all features of the (batch, head); it looks ahead, so it is NOT
# our model; only `train --key-shift global` sets it, to measure what the running max costs PyTorch).
KEY_SHIFT = ["running"]


def _factorized_features(q, k, w, eps, C):
    """The features of the vectorized causal form with the weights folded in: phi'(q_i) = phi(q_i)
    exp(G - r_i) and phi'(k_j) = phi(k_j) exp(s_j - G), so phi'(q_i) . phi'(k_j) = phi(q_i) . phi(k_j)
    exp(s_j - r_i) (performer/favor.h's w_ij) for every i, j, and one exp per (T, M) element each:
    phi'(q) = exp(u - (h + a + ln(M)/2 + r - G)) + eps M^-1/2 exp(G - r),
    phi'(k) = exp(u - (h + G + ln(M)/2)) + eps M^-1/2 exp(s - G), with a the query's own shift.
    G = the running max at the end of the first chunk (nothing looks ahead). Returns pq, pk (B,H,T,M),
    s, r (B,H,T), G (B,H,1); G None when r - G leaves [-MAX_VECTORIZED_SPAN, MAX_VECTORIZED_SPAN]
    (the factors could overflow: the caller takes the carried loop)."""
    D, M = q.shape[-1], w.shape[0]
    lm, ce = 0.5 * math.log(M), eps * M ** -0.5
    xq, xk = q * D ** -0.25, k * D ** -0.25
    uq, uk = xq @ w.t(), xk @ w.t()  # (B,H,T,M)
    hq, hk = 0.5 * (xq * xq).sum(-1, keepdim=True), 0.5 * (xk * xk).sum(-1, keepdim=True)  # (B,H,T,1)
    a = uq.detach().amax(-1, keepdim=True) - hq.detach()  # the query's own shift, a constant
    if KEY_SHIFT[0] == "global":  # performer-pytorch's single key stabilizer (looks ahead; measurement only)
        g = uk.detach().amax((-1, -2), keepdim=True)
        pq = torch.exp(uq - (hq + a + lm)) + ce
        pk = torch.exp(uk - (hk + g + lm)) + ce
        s = torch.zeros(pk.shape[:-1], dtype=pk.dtype)
        return pq, pk, s, s, torch.zeros(pk.shape[:-2] + (1,), dtype=pk.dtype)
    s1 = uk.detach().amax(-1, keepdim=True) - hk.detach()  # (B,H,T,1) per-key shifts, constants
    s = s1.squeeze(-1)
    r = torch.cummax(s, dim=-1).values  # (B,H,T)
    G = r[..., C - 1 : C]  # (B,H,1)
    T = r.shape[-1]
    if float(torch.maximum(r[..., T - 1 : T] - G, G - r[..., :1]).max()) > MAX_VECTORIZED_SPAN:
        return None, None, s, r, None
    rg = (r - G).unsqueeze(-1)  # (B,H,T,1)
    pq = torch.exp(uq - (hq + a + lm + rg)) + ce * torch.exp(-rg)
    pk = torch.exp(uk - (hk + G.unsqueeze(-1) + lm)) + ce * torch.exp(s1 - G.unsqueeze(-1))
    return pq, pk, s, r, G


def _favor_causal_loop(pq, pk, s, r, vaug, T, C, Dv, return_state):
    """The carried form chunk by chunk, exactly as performer/favor_causal.cpp: state S (M, Dv+1) at the
    running max R entering the chunk, rescaled by exp(R - R') when the max grows. A Python loop over
    the T / C chunks; used only when the shift range is too wide for the vectorized form."""
    B, H, Tp, M = pq.shape
    E = Dv + 1
    tril = torch.ones(C, C, dtype=torch.bool).tril()
    S = torch.zeros(B, H, M, E)
    R = torch.full((B, H), -math.inf)
    outs = []
    for t0 in range(0, Tp, C):
        sl = slice(t0, t0 + C)
        qc, kc, vc, sc, rc = pq[:, :, sl], pk[:, :, sl], vaug[:, :, sl], s[..., sl], r[..., sl]
        wgt = torch.exp((sc.unsqueeze(-2) - rc.unsqueeze(-1)).masked_fill(~tril, -math.inf))
        na = ((qc @ kc.transpose(-1, -2)) * wgt) @ vc  # (B,H,C,E)
        if t0 > 0:
            alpha = torch.exp(R.unsqueeze(-1) - rc).unsqueeze(-1)  # (B,H,C,1) <= 1
            na = na + (qc * alpha) @ S
        outs.append(finish(na, Dv))
        Rn = rc[..., -1]  # (B,H)
        beta = torch.exp(R - Rn) if t0 > 0 else torch.zeros(B, H)
        kw = torch.exp(sc - Rn.unsqueeze(-1)).unsqueeze(-1)  # (B,H,C,1) <= 1
        S = S * beta[..., None, None] + (kc * kw).transpose(-1, -2) @ vc
        R = Rn
    out = torch.cat(outs, 2)[:, :, :T]
    if return_state:
        return out, (S, R)
    return out


def favor_bidirectional(q, k, v, w, kind="favor", eps=KERNEL_EPS):
    """Bidirectional FAVOR+: keys read at the one shift r = max_j s_j of the (batch, head)."""
    B, H, T, _ = q.shape
    Dv = v.shape[-1]
    pq, _ = feature_map(q, w, kind, eps)
    pk, s = feature_map(k, w, kind, eps)
    if kind != "relu":
        pk = pk * torch.exp(s - s.amax(-1, keepdim=True)).unsqueeze(-1)
    vaug = torch.cat([v, torch.ones(B, H, T, 1)], -1)
    return finish(pq @ (pk.transpose(-1, -2) @ vaug), Dv)  # (B,H,T,Dv)


def favor_reference(q, k, v, w, causal, kind="favor", eps=KERNEL_EPS):
    """The same weights w_ij with T x T matrices, for the checks (O(T^2) memory)."""
    T = q.shape[2]
    pq, _ = feature_map(q, w, kind, eps)
    pk, s = feature_map(k, w, kind, eps)
    if causal:
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        r = torch.cummax(s, -1).values
        fac = torch.exp((s.unsqueeze(-2) - r.unsqueeze(-1)).masked_fill(~mask, -math.inf))
    else:
        fac = torch.exp(s - s.amax(-1, keepdim=True)).unsqueeze(-2)  # (B,H,1,T): key j's factor
    a = (pq @ pk.transpose(-1, -2)) * fac  # (B,H,T,T)
    return a @ v / a.sum(-1, keepdim=True).clamp_min(DEN_FLOOR)


def favor_step(state, q, k, v, w, kind="favor", eps=KERNEL_EPS):
    """One position of the recurrent form (performer favor_step). q, k (B,H,D), v (B,H,Dv);
    state (S (B,H,M,Dv+1) at shift R, R (B,H)) -> out (B,H,Dv), new state."""
    S, R = state
    pq, _ = feature_map(q.unsqueeze(2), w, kind, eps)  # (B,H,1,M)
    pk, s = feature_map(k.unsqueeze(2), w, kind, eps)  # (B,H,1,M), (B,H,1)
    B, H, Dv = v.shape
    M = pk.shape[-1]
    vaug = torch.cat([v, torch.ones(B, H, 1)], -1).view(B * H, 1, Dv + 1)  # (BH,1,E)
    S = S.contiguous()
    if kind != "relu":  # rescale the state to the new running max, weight the key at it
        s = s.squeeze(-1)
        Rn = torch.maximum(R, s)
        S = S * torch.exp(R - Rn)[..., None, None]
        pk = pk * torch.exp(s - Rn)[..., None, None]
        R = Rn
    S.view(B * H, M, Dv + 1).baddbmm_(pk.reshape(B * H, M, 1), vaug)  # S += phi(k) [v 1]^T, in place
    out = finish(pq @ S, Dv).squeeze(2)  # (B,H,Dv)
    return out, (S, R)


def favor_local(q, k, v, w, window, eps=KERNEL_EPS):
    """favor-local (performer/favor_local.h), (B,H,T,D) q, k and (B,H,T,Dv) v -> (B,H,T,Dv). Causal.

    A REFERENCE implementation, for the checks and for exported models: it mirrors our composed
    favor_local_attention_reference (performer/favor_reference.cpp) with T x T matrices, O(T^2) memory
    and time; it is not our fused chunked node and not for speed comparisons.
    Query i reads the near keys i - w < j <= i exactly, exp(l_ij), l_ij = q_i.k_j / sqrt(D), and the far
    keys j <= i - w through the FAVOR+ features (per-key shifts s_j, the query's shift a_i), the far sum
    taken at the key shift r_i = max_{j <= i-w} s_j: NF_i = [num, den]. One shared scale
    c_i = max(m_i, lF_i), m_i the largest near logit, lF_i = a_i + r_i + log(den F_i) (-inf when there is
    no far key or den F_i < the floor: the far part is dropped); NA_i = sum_near exp(l_ij - c_i) [v_j 1]
    + g_i NF_i, g_i = exp(a_i + r_i - c_i); out_i = num / max(den, floor). The shifts, c and g are
    constants for the gradient, as in ours."""
    B, H, T, D = q.shape
    if window < 1:
        raise ValueError(f"favor-local needs a window >= 1, got {window}")
    pq, a = feature_map(q, w, "favor", eps)  # (B,H,T,M) at the query shifts a (B,H,T)
    pk, s = feature_map(k, w, "favor", eps)  # (B,H,T,M) at the per-key shifts s (B,H,T)
    idx = torch.arange(T)
    far_mask = idx.view(1, T) <= idx.view(T, 1) - window  # (T,T): j <= i - w
    near_mask = (idx.view(1, T) > idx.view(T, 1) - window) & (idx.view(1, T) <= idx.view(T, 1))
    # rF_i = max_{j <= i-w} s_j: the running max of the key shifts delayed by w (-inf when none)
    rF = torch.full_like(s, -math.inf)
    if T > window:
        rF[..., window:] = torch.cummax(s, -1).values[..., : T - window]
    # Far weights exp(s_j - rF_i) on the far keys, SET to 0 elsewhere (exp(-inf)).
    wgt = torch.exp((s.unsqueeze(-2) - rF.unsqueeze(-1)).masked_fill(~far_mask, -math.inf))  # (B,H,T,T)
    lf = ((pq @ pk.transpose(-1, -2)) * wgt).masked_fill(~far_mask, 0.0)
    num_f = lf @ v  # (B,H,T,Dv)
    den_f = lf.sum(-1, keepdim=True)  # (B,H,T,1)
    logits = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D))  # (B,H,T,T)
    with torch.no_grad():  # the shared scale c and the far factor g: constants
        m = logits.masked_fill(~near_mask, -math.inf).amax(-1, keepdim=True)  # (B,H,T,1), finite (j = i)
        ar = (a + rF).unsqueeze(-1)  # (B,H,T,1), -inf without far keys
        far = (rF.unsqueeze(-1) > -math.inf) & (den_f >= DEN_FLOOR)
        lF = torch.where(far, ar + torch.log(den_f.clamp_min(DEN_FLOOR)), torch.full_like(ar, -math.inf))
        c = torch.maximum(m, lF)
        g = torch.where(far, torch.exp(ar - c), torch.zeros_like(c))
    # Logits outside the window are SET to -1e30 before exp (weight 0, gradient 0), as ours.
    pn = torch.exp((logits - c).masked_fill(~near_mask, -1e30))
    num = pn @ v + num_f * g
    den = pn.sum(-1, keepdim=True) + den_f * g
    return num / den.clamp_min(DEN_FLOOR)


# ----------------------------------------------------------------------------- exact attention


def softmax_attention(q, k, v, causal, block_rows=None):
    """softmax(Q K^T / sqrt(D) + mask) V, plain matmul/softmax (torch 1.13 has no fused SDPA).
    block_rows: in no-grad mode, process the queries in blocks to bound memory (prompts)."""
    T = q.shape[2]
    scale = q.shape[-1] ** -0.5
    if block_rows is None or block_rows >= T:
        scores = (q * scale) @ k.transpose(-1, -2)  # (B,H,T,T)
        if causal:
            scores.masked_fill_(torch.ones(T, T, dtype=torch.bool).triu(1), -math.inf)
        return torch.softmax(scores, -1) @ v
    outs = []
    for i0 in range(0, T, block_rows):
        i1 = min(T, i0 + block_rows)
        kk, vv = (k[:, :, :i1], v[:, :, :i1]) if causal else (k, v)
        scores = (q[:, :, i0:i1] * scale) @ kk.transpose(-1, -2)
        if causal:
            scores.masked_fill_(torch.ones(i1 - i0, i1, dtype=torch.bool).triu(i0 + 1), -math.inf)
        outs.append(torch.softmax(scores, -1) @ vv)
    return torch.cat(outs, 2)


# ----------------------------------------------------------------------------- the model


class Attention(nn.Module):
    """PerformerAttention: q, k, v = x Wq, x Wk, x Wv -> heads -> kernel -> merge -> out projection."""

    def __init__(self, cfg, proj_gen):
        super().__init__()
        C = cfg["dim"]
        self.cfg = cfg
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(C, C) for _ in range(4))
        if cfg["attention"] != "softmax":  # buffer, never trained, not redrawn inside a benchmark
            self.register_buffer("projection", orthogonal_random_features(cfg["features"], C // cfg["heads"], proj_gen))

    def project(self, x):  # (B,T,C) -> three (B,H,T,D)
        # One product for q, k and v (the three weights stacked, as a fused qkv Linear would hold them):
        # one pass over x, and under autocast one bf16 copy of x instead of three.
        B, T, C = x.shape
        H = self.cfg["heads"]
        ps = (self.q_proj, self.k_proj, self.v_proj)
        qkv = F.linear(x, torch.cat([p.weight for p in ps]), torch.cat([p.bias for p in ps]))  # (B,T,3C)
        return qkv.view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4).unbind(0)

    def merge(self, o):  # (B,H,T,D) -> (B,T,C)
        B, H, T, D = o.shape
        return self.out_proj(o.transpose(1, 2).reshape(B, T, H * D))

    def forward(self, x, return_state=False):
        q, k, v = self.project(x)
        kind = self.cfg["attention"]
        state = None
        if kind == "softmax":
            o = softmax_attention(q, k, v, True, self.cfg.get("block_rows"))
            state = (k, v)
        elif kind == "favor-local":
            if return_state:  # no recurrent form here: the Decoder recomputes the full forward instead
                raise ValueError("the twin's favor-local attention has no recurrent state (return_state); "
                                 "run the full forward instead")
            o = favor_local(q, k, v, self.projection, self.cfg["local_window"],
                            self.cfg.get("kernel_eps", KERNEL_EPS))
        else:
            o = favor_causal(q, k, v, self.projection, kind, self.cfg.get("kernel_eps", KERNEL_EPS), self.cfg["chunk"],
                             return_state)
            if return_state:
                o, state = o
        return (self.merge(o), state) if return_state else self.merge(o)


class Block(nn.Module):
    """x = x + Attn(LN1(x)); x = x + FF(LN2(x)), FF = Linear -> GELU (tanh) -> Linear."""

    def __init__(self, cfg, proj_gen):
        super().__init__()
        C = cfg["dim"]
        self.ln1 = nn.LayerNorm(C)
        self.attn = Attention(cfg, proj_gen)
        self.ln2 = nn.LayerNorm(C)
        self.ff = nn.ModuleDict(dict(fc1=nn.Linear(C, cfg["ff"]), fc2=nn.Linear(cfg["ff"], C)))

    def feed_forward(self, x):
        return self.ff["fc2"](F.gelu(self.ff["fc1"](self.ln2(x)), approximate="tanh"))

    def forward(self, x, return_state=False):
        a = self.attn(self.ln1(x), return_state)
        a, state = a if return_state else (a, None)
        x = x + a
        x = x + self.feed_forward(x)
        return (x, state) if return_state else x


class PerformerLM(nn.Module):
    """tok_emb + learned pos_emb -> L blocks -> ln_f -> head (untied, the C++ default). No dropout.
    GPT-2 init as performer/model.cpp: every matrix N(0, 0.02), biases 0, LayerNorm gains 1,
    attention out_proj and ff.fc2 scaled by 1/sqrt(2 L)."""

    def __init__(self, cfg, seed=1):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        proj_gen = torch.Generator().manual_seed(seed + 1)
        C = cfg["dim"]
        self.cfg = cfg
        V = cfg.get("vocab", VOCAB)
        self.tok_emb = nn.Embedding(V, C)
        self.pos_emb = nn.Embedding(cfg["max_seq_len"], C)
        self.blocks = nn.ModuleList(Block(cfg, proj_gen) for _ in range(cfg["depth"]))
        self.ln_f = nn.LayerNorm(C)
        self.head = nn.Linear(C, V)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    p.normal_(0.0, 0.02, generator=gen)
                elif name.endswith(".bias"):
                    p.zero_()
            for b in self.blocks:
                b.attn.out_proj.weight.mul_(1.0 / math.sqrt(2.0 * cfg["depth"]))
                b.ff["fc2"].weight.mul_(1.0 / math.sqrt(2.0 * cfg["depth"]))

    def embed(self, ids, start=0):  # (B,T) -> (B,T,C)
        return self.tok_emb(ids) + self.pos_emb(torch.arange(start, start + ids.shape[1]))

    def forward(self, ids, return_state=False):  # (B,T) -> (B,T,V)
        x = self.embed(ids)
        states = []
        for b in self.blocks:
            x = b(x, return_state)
            if return_state:
                x, st = x
                states.append(st)
        logits = self.head(self.ln_f(x))
        return (logits, states) if return_state else logits


def decay_by_default(name, p):
    """nn/optimizer.h: no decay for biases, norms (components with "norm" or starting "ln"),
    embeddings (components with "emb"), learned feature projections (last component "projection")
    and parameters with fewer than 2 axes."""
    parts = name.split(".")
    if p.dim() < 2 or parts[-1] in ("bias", "projection"):
        return False
    return not any("norm" in c or c.startswith("ln") or "emb" in c for c in parts)


def make_config(args, seq, max_seq_len=None):
    cfg = dict(PRESETS[args.preset])
    for key in ("dim", "depth", "heads", "ff", "features"):
        if getattr(args, key, None):
            cfg[key] = getattr(args, key)
    cfg.update(attention=args.attention, chunk=args.chunk, seq=seq, max_seq_len=max_seq_len or seq)
    if args.attention == "favor-local":
        cfg["local_window"] = getattr(args, "local_window", None) or 16
    return cfg


# ----------------------------------------------------------------------------- safetensors (NumPy only)
# The file format of performer-export and performer-train --init-from (nn/safetensors.h): 8-byte
# little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__":
# {str: str}} padded with spaces to a multiple of 8, then the tensors' bytes, contiguous, offsets
# relative to the end of the header. Read and written here with json and NumPy alone (no safetensors
# package), checking what the specification requires.

SAFETENSORS_MAX_HEADER = 100_000_000
SAFETENSORS_DTYPES = {"F32": ("<f4", 4), "F64": ("<f8", 8), "F16": ("<f2", 2), "BF16": (None, 2)}


def read_safetensors(path):
    """(name -> float32 np.ndarray, metadata dict). Raises ValueError naming the file and the problem."""
    import numpy as np

    def bad(what):
        return ValueError(f"{path}: not a valid safetensors file: {what}")

    raw = open(path, "rb").read()
    if len(raw) < 8:
        raise bad("truncated (shorter than the 8-byte header length)")
    n = int.from_bytes(raw[:8], "little")
    if n > SAFETENSORS_MAX_HEADER:
        raise bad(f"header too large ({n} bytes)")
    if 8 + n > len(raw):
        raise bad(f"truncated header ({n} bytes announced, {len(raw) - 8} present)")

    def no_duplicates(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                raise bad(f"duplicate key {k!r} in the header")
            d[k] = v
        return d

    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(f"bad JSON header ({e})")
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    buf = raw[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise bad("__metadata__ must map strings to strings")
    tensors, spans = {}, []
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"tensor {name!r}: the entry must have exactly dtype, shape and data_offsets")
        if e["dtype"] not in SAFETENSORS_DTYPES:
            raise bad(f"tensor {name!r}: unsupported dtype {e['dtype']!r}")
        shape, (b, end) = e["shape"], e["data_offsets"]
        if not all(isinstance(d, int) and d >= 0 for d in shape) or not (isinstance(b, int) and isinstance(end, int)):
            raise bad(f"tensor {name!r}: shape and data_offsets must be non-negative integers")
        code, size = SAFETENSORS_DTYPES[e["dtype"]]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not 0 <= b <= end <= len(buf) or end - b != count * size:
            raise bad(f"tensor {name!r}: data_offsets [{b}, {end}] do not fit shape {shape} of {e['dtype']} "
                      f"in a {len(buf)}-byte buffer")
        chunk = buf[b:end]
        if code is None:  # BF16: the upper half of a float32
            arr = (np.frombuffer(chunk, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(chunk, code).astype(np.float32)
        tensors[name] = arr.reshape(shape)
        spans.append((b, end, name))
    at = 0
    for b, end, name in sorted(spans):
        if b != at:
            raise bad(f"tensor {name!r} begins at {b}, the previous one ends at {at} (gap or overlap)")
        at = end
    if at != len(buf):
        raise bad(f"{len(buf) - at} bytes after the last tensor")
    return tensors, meta


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> array-like, written as F32 in name order; metadata: str -> str."""
    import numpy as np
    arrays = {k: np.ascontiguousarray(np.asarray(v, dtype="<f4")) for k, v in sorted(tensors.items())}
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for k, a in arrays.items():
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for a in arrays.values():
            f.write(a.tobytes())
    os.replace(tmp, path)


def config_from_metadata(meta):
    """The twin's cfg for a performer-cpp model described by safetensors metadata (train/interop.h).
    The twin implements the causal model with learned positions, an untied head and per-key FAVOR+
    shifts, with attention favor, relu, softmax or favor-local (window from "local_window"; FAVOR+
    features only, feature_map = favor+; favor-local is the O(T^2) reference form, see favor_local);
    any other configuration is refused (ValueError) rather than computed differently."""
    need = {"causal": "true", "positions": "learned", "tie_embeddings": "false", "shared_key_shift": "false",
            "feature_map": "favor+"}
    for key, want in need.items():
        if meta.get(key, want) != want:
            raise ValueError(f"the twin implements {key} = {want} only; this model has {key} = {meta[key]}")
    if meta.get("attention", "favor") not in ("favor", "relu", "softmax", "favor-local"):
        raise ValueError("the twin implements attention favor, relu, softmax or favor-local; this model has "
                         f"{meta['attention']}")
    cfg = dict(dim=int(meta["dim"]), depth=int(meta["depth"]), heads=int(meta["heads"]), ff=int(meta["ff_hidden"]),
               features=int(meta.get("features", 1)), attention=meta.get("attention", "favor"),
               chunk=int(meta.get("chunk_size", 64)), vocab=int(meta["vocab_size"]),
               kernel_eps=float(meta.get("kernel_eps", KERNEL_EPS)))
    if cfg["attention"] == "favor-local":
        cfg["local_window"] = int(meta.get("local_window", 16))  # ModelConfig::local_window's default
        if cfg["local_window"] < 1:
            raise ValueError(f"local_window must be >= 1; this model has {cfg['local_window']}")
    cfg.update(seq=int(meta["max_seq_len"]), max_seq_len=int(meta["max_seq_len"]))
    return cfg


def metadata_from_config(cfg):
    """The metadata performer-train --init-from checks (train/interop.h) for a twin model."""
    return {"format": "pt", "producer": "torch_twin", "vocab_size": cfg["vocab"], "dim": cfg["dim"],
            "depth": cfg["depth"], "heads": cfg["heads"], "ff_hidden": cfg["ff"], "features": cfg["features"],
            "max_seq_len": cfg["max_seq_len"], "attention": cfg["attention"], "causal": "true",
            "positions": "learned", "tie_embeddings": "false", "kernel_eps": repr(cfg.get("kernel_eps", KERNEL_EPS)),
            "chunk_size": cfg["chunk"], "shared_key_shift": "false", "orthogonal_features": "true",
            "antithetic_features": "false",
            **({"local_window": cfg["local_window"], "feature_map": "favor+"} if cfg["attention"] == "favor-local" else {})}


def load_safetensors(path):
    """A twin PerformerLM (eval mode) with the weights and projections of a performer-export file. Our
    dotted state-dict names are the twin's own, so the load is strict (every name, every shape)."""
    tensors, meta = read_safetensors(path)
    cfg = config_from_metadata(meta)
    model = PerformerLM(cfg)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)
    return model.eval(), meta


def save_safetensors(model, path, extra_metadata=None):
    """Every parameter and buffer of a twin model (projections included) with metadata_from_config."""
    meta = metadata_from_config(model.cfg)
    meta.update(extra_metadata or {})
    write_safetensors(path, {k: v.detach().numpy() for k, v in model.state_dict().items()}, meta)


# ----------------------------------------------------------------------------- subcommands


def cmd_train(args):
    KEY_SHIFT[0] = args.key_shift
    seq = args.seq or PRESETS[args.preset]["seq"]
    batch = args.batch or PRESETS[args.preset]["batch"]
    cfg = make_config(args, seq)
    model = PerformerLM(cfg, args.seed)
    params = sum(p.numel() for p in model.parameters())
    named = list(model.named_parameters())
    groups = [
        dict(params=[p for n, p in named if decay_by_default(n, p)], weight_decay=args.weight_decay),
        dict(params=[p for n, p in named if not decay_by_default(n, p)], weight_decay=0.0),
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, foreach=True)
    gen = torch.Generator().manual_seed(args.seed + 7)
    n = args.warmup + args.steps
    data = [torch.randint(0, VOCAB, (batch, seq + 1), generator=gen) for _ in range(min(n, 4))]
    times, initial_loss = [], None
    for step in range(n):
        ids = data[step % len(data)]
        x, y = ids[:, :-1], ids[:, 1:]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        # bf16: PyTorch's own mixed precision on CPU, one line as a user would write it (matmuls in bf16
        # with fp32 accumulation, exp/softmax/norms/loss autocast to fp32; weights and AdamW stay fp32).
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            logits = model(x)  # (B,T,V)
            loss = F.cross_entropy(logits.reshape(-1, VOCAB).float(), y.reshape(-1))
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if initial_loss is None:
            initial_loss = loss.item()
        if step >= args.warmup:
            times.append(dt)
        if args.verbose:
            print(f"step {step}: loss {loss.item():.4f} {dt * 1e3:.1f} ms", file=sys.stderr)
    med = statistics.median(times)
    emit(dict(mode="train", preset=args.preset, attention=args.attention, seq=seq, batch=batch,
              threads=torch.get_num_threads(), params=params, tokens_per_s=batch * seq / med,
              step_ms_median=med * 1e3, peak_rss_mb=peak_rss_mb(), initial_loss=initial_loss,
              steps=args.steps, warmup=args.warmup, impl="torch-twin", torch=torch.__version__,
              precision=args.precision, key_shift=args.key_shift,
              **({"favor_loop_fallbacks": LOOP_FALLBACKS[0]} if LOOP_FALLBACKS[0] else {})))


def cmd_text(args):
    """performer-train's loop on a byte-level text corpus, for a fixed wall-clock budget.

    Mirrors performer-train --format text --objective causal: the last --val-fraction of the bytes held
    out (data/split.cpp), training rows at uniformly drawn offsets of the training bytes, AdamW (betas
    0.9 / --beta2, decay on weight matrices only), linear warm-up then cosine to lr * min_lr_ratio at
    --steps, global-norm clipping, projections redrawn every --redraw-every steps, evaluation over
    every validation byte (non-overlapping windows of seq, as data/text_batcher.h). The vocabulary is
    258 (bytes, pad, mask) like ours, so the models have the same parameter count. Training stops at
    --steps or once the wall time (evaluations included, as in performer-train) reaches --time-limit."""
    start = time.perf_counter()
    raw = open(args.data, "rb").read()
    n_val = int(len(raw) * args.val_fraction)
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()
    train, val = data[: len(raw) - n_val], data[len(raw) - n_val:]
    seq = args.seq or PRESETS[args.preset]["seq"]
    batch = args.batch or PRESETS[args.preset]["batch"]
    cfg = make_config(args, seq)
    cfg["vocab"] = 258
    model = PerformerLM(cfg, args.seed)
    proj_gen = torch.Generator().manual_seed(args.seed + 2)
    named = list(model.named_parameters())
    groups = [
        dict(params=[p for n, p in named if decay_by_default(n, p)], weight_decay=args.weight_decay),
        dict(params=[p for n, p in named if not decay_by_default(n, p)], weight_decay=0.0),
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, args.beta2), eps=1e-8, foreach=True)
    gen = torch.Generator().manual_seed(args.seed + 7)

    def lr_at(step):  # nn/schedule.h, cosine
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        p = min(max((step - args.warmup) / max(args.steps - args.warmup, 1), 0.0), 1.0)
        lo = args.lr * args.min_lr_ratio
        return lo + (args.lr - lo) * (1 + math.cos(math.pi * p)) / 2

    def evaluate():
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            starts = list(range(0, len(val) - 1, seq))
            full = [o for o in starts if o + seq + 1 <= len(val)]
            for i in range(0, len(full), batch):
                idx = torch.tensor(full[i:i + batch]).unsqueeze(1) + torch.arange(seq + 1)
                rows = val[idx]
                logits = model(rows[:, :-1])
                total += float(F.cross_entropy(logits.reshape(-1, cfg["vocab"]), rows[:, 1:].reshape(-1), reduction="sum"))
                count += rows[:, 1:].numel()
            for o in starts[len(full):]:  # the last, shorter window
                rows = val[o:].unsqueeze(0)
                logits = model(rows[:, :-1])
                total += float(F.cross_entropy(logits.reshape(-1, cfg["vocab"]), rows[:, 1:].reshape(-1), reduction="sum"))
                count += rows.shape[1] - 1
        model.train()
        return total / count, count

    params = sum(p.numel() for p in model.parameters())
    print(f"twin text: {len(train)} train / {len(val)} val bytes, {params} parameters, seq {seq} batch {batch}",
          file=sys.stderr)
    step, val_loss, tokens = 0, None, 0
    while step < args.steps:
        # As performer-train: redraw at the start of the step that follows every redraw_every-th, so an
        # evaluation at step s sees the projection step s trained with.
        if args.redraw_every and step > 0 and step % args.redraw_every == 0 and cfg["attention"] != "softmax":
            for b in model.blocks:
                b.attn.projection.copy_(orthogonal_random_features(cfg["features"], cfg["dim"] // cfg["heads"], proj_gen))
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        offsets = torch.randint(0, len(train) - seq, (batch,), generator=gen)
        rows = train[offsets.unsqueeze(1) + torch.arange(seq + 1)]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(rows[:, :-1]).reshape(-1, cfg["vocab"]), rows[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        tokens += batch * seq
        elapsed = time.perf_counter() - start
        out_of_time = args.time_limit > 0 and elapsed >= args.time_limit
        if step % args.eval_every == 0 or step == args.steps or out_of_time:
            val_loss, count = evaluate()
            elapsed = time.perf_counter() - start
            print(f"step {step}: train loss {loss.item():.4f} | val loss {val_loss:.4f} | "
                  f"{val_loss / math.log(2):.4f} bits/char | {tokens / elapsed:.0f} tok/s | {elapsed:.0f} s",
                  file=sys.stderr, flush=True)
        if out_of_time:
            break
    elapsed = time.perf_counter() - start
    emit(dict(mode="text", preset=args.preset, attention=args.attention, seq=seq, batch=batch,
              threads=torch.get_num_threads(), params=params, steps=step, val_loss=val_loss,
              val_bits_per_char=val_loss / math.log(2), val_bytes=count, elapsed_s=elapsed,
              tokens_per_s=tokens / elapsed, peak_rss_mb=peak_rss_mb(), impl="torch-twin", torch=torch.__version__))


def cmd_attention(args):
    B, H, T, D, M = args.batch, args.heads, args.seq, args.head_dim, args.features
    causal = not args.bidirectional
    gen = torch.Generator().manual_seed(args.seed)
    w = orthogonal_random_features(M, D, gen) if args.kind != "softmax" else None
    q, k, v = (torch.randn(B, H, T, D, generator=gen).requires_grad_() for _ in range(3))
    g = torch.randn(B, H, T, D, generator=gen)

    def run():
        if args.kind == "softmax":
            return softmax_attention(q, k, v, causal)
        if causal:
            return favor_causal(q, k, v, w, args.kind, KERNEL_EPS, args.chunk)
        return favor_bidirectional(q, k, v, w, args.kind)

    times = []
    for rep in range(args.warmup + args.steps):
        q.grad = k.grad = v.grad = None
        t0 = time.perf_counter()
        run().backward(g)  # forward + backward into q, k, v
        dt = time.perf_counter() - t0
        if rep >= args.warmup:
            times.append(dt)
    emit(dict(mode="attention", kind=args.kind, causal=causal, seq=T, batch=B, heads=H, head_dim=D,
              features=M if args.kind != "softmax" else 0, threads=torch.get_num_threads(),
              ms_median=statistics.median(times) * 1e3, peak_rss_mb=peak_rss_mb(), impl="torch-twin"))


class Decoder:
    """Recurrent decoding (performer/generate.h): favor/relu carry (S, R) per layer (all heads at once),
    softmax a preallocated key/value cache. Batch 1. favor-local has no recurrent form in the twin: each
    step recomputes the full forward over every token so far (O(T^2) per token; correct, not fast)."""

    def __init__(self, model, capacity):
        self.model, self.cfg = model, model.cfg
        self.capacity, self.pos, self.states = capacity, 0, None
        self.ids = None  # favor-local: the tokens so far

    def prompt(self, ids):
        """Whole prompt in one parallel forward; keeps the per-layer states (or key/value caches)."""
        if self.cfg["attention"] == "favor-local":
            self.ids, self.pos = ids.clone(), ids.numel()
            return self.model(self.ids.unsqueeze(0))[0, -1]
        logits, states = self.model(ids.unsqueeze(0), return_state=True)
        if self.cfg["attention"] == "softmax":
            caches = []
            for k, v in states:
                B, H, T, D = k.shape
                kc, vc = torch.empty(B, H, self.capacity, D), torch.empty(B, H, self.capacity, D)
                kc[:, :, :T], vc[:, :, :T] = k, v
                caches.append((kc, vc))
            states = caches
        self.states, self.pos = states, ids.numel()
        return logits[0, -1]

    def step(self, token):  # -> logits (V)
        m, kind = self.model, self.cfg["attention"]
        if kind == "favor-local":  # the full forward again (see the class comment)
            self.ids = torch.cat([self.ids, token.reshape(1)])
            self.pos += 1
            return m(self.ids.unsqueeze(0))[0, -1]
        x = m.embed(token.view(1, 1), self.pos)  # (1,1,C)
        for li, b in enumerate(m.blocks):
            q, k, v = b.attn.project(b.ln1(x))  # (1,H,1,D)
            if kind == "softmax":
                kc, vc = self.states[li]
                kc[:, :, self.pos], vc[:, :, self.pos] = k[:, :, 0], v[:, :, 0]
                o = softmax_attention(q, kc[:, :, : self.pos + 1], vc[:, :, : self.pos + 1], False)
            else:
                o, self.states[li] = favor_step(self.states[li], q[:, :, 0], k[:, :, 0], v[:, :, 0],
                                                b.attn.projection, kind, self.cfg.get("kernel_eps", KERNEL_EPS))
                o = o.unsqueeze(2)
            x = x + b.attn.merge(o)
            x = x + b.feed_forward(x)
        self.pos += 1
        return m.head(m.ln_f(x))[0, 0]


def cmd_generate(args):
    cfg = make_config(args, args.context, max_seq_len=args.context + args.tokens)
    cfg["block_rows"] = 1024  # exact attention over a long prompt: bound the T x T scores
    torch.manual_seed(args.seed)
    model = PerformerLM(cfg, args.seed).eval()
    gen = torch.Generator().manual_seed(args.seed + 3)
    prompt = torch.randint(0, VOCAB, (args.context,), generator=gen)
    with torch.inference_mode():
        dec = Decoder(model, args.context + args.tokens)
        t0 = time.perf_counter()
        if args.prompt == "parallel":
            logits = dec.prompt(prompt)
        else:
            dec.prompt(prompt[:1])
            for t in prompt[1:]:
                logits = dec.step(t)
        prompt_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(args.tokens):  # sample, then feed the token back (as performer-bench: `tokens` steps)
            nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)
            logits = dec.step(nxt)
        gen_s = time.perf_counter() - t0
    emit(dict(mode="generate", preset=args.preset, attention=args.attention, context=args.context,
              tokens=args.tokens, threads=torch.get_num_threads(), tokens_per_s=args.tokens / gen_s,
              ms_per_token=gen_s / args.tokens * 1e3, prompt_tokens_per_s=args.context / prompt_s,
              prompt=args.prompt, peak_rss_mb=peak_rss_mb(), impl="torch-twin"))


def rel_errors(approx, exact):
    """(Frobenius relative error, mean over rows of |a_i - e_i| / |e_i|)."""
    fro = float((approx - exact).norm() / exact.norm())
    rows = float(((approx - exact).norm(dim=-1) / exact.norm(dim=-1).clamp_min(1e-12)).mean())
    return fro, rows


def cmd_check(args):
    res = {}
    print("== initial loss on random tokens (B1, batch 4, seq 1024), ln(256) = %.4f" % math.log(VOCAB))
    for kind in ("favor", "relu", "softmax"):
        a = argparse.Namespace(**vars(args))
        a.preset, a.attention = "b1", kind
        model = PerformerLM(make_config(a, 1024), args.seed)
        ids = torch.randint(0, VOCAB, (4, 1025), generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            loss = float(F.cross_entropy(model(ids[:, :-1]).reshape(-1, VOCAB), ids[:, 1:].reshape(-1)))
        print(f"  {kind:8s} initial loss {loss:.4f}")
        res[f"initial_loss_{kind}"] = loss

    print("== implementation agreement (B=2, H=2, T=300, D=64, M=128; chunk 64, T not a multiple)")
    g = torch.Generator().manual_seed(11)
    B, H, T, D = 2, 2, 300, 64
    q, k, v = (torch.randn(B, H, T, D, generator=g) * sc for sc in (1.0, 1.5, 1.0))
    w = orthogonal_random_features(128, D, g)
    for kind in ("favor", "relu"):
        qs, ks, vs = (t.clone().requires_grad_() for t in (q, k, v))
        ref = favor_reference(qs, ks, vs, w, True, kind)
        ref.backward(v)
        gref = [t.grad.clone() for t in (qs, ks, vs)]
        for name, loop in (("vectorized", False), ("carried loop", True)):
            for t in (qs, ks, vs):
                t.grad = None
            out = favor_causal(qs, ks, vs, w, kind, force_loop=loop)
            out.backward(v)
            dmax = float((out - ref).abs().max())
            gerr = max(float((t.grad - gr).abs().max() / gr.abs().max()) for t, gr in zip((qs, ks, vs), gref))
            print(f"  {kind:5s} causal {name:12s} vs T x T reference: max|out diff| {dmax:.2e}, "
                  f"max rel grad diff {gerr:.2e}")
            res[f"{kind}_{name.replace(' ', '_')}_max_diff"] = dmax
            res[f"{kind}_{name.replace(' ', '_')}_grad_rel_diff"] = gerr
        with torch.no_grad():
            bi = float((favor_bidirectional(q, k, v, w, kind) - favor_reference(q, k, v, w, False, kind)).abs().max())
            # recurrent form vs batch rows
            st = (torch.zeros(B, H, 128, D + 1), torch.full((B, H), -math.inf))
            rec = []
            for t in range(T):
                o, st = favor_step(st, q[:, :, t], k[:, :, t], v[:, :, t], w, kind)
                rec.append(o)
            drec = float((torch.stack(rec, 2) - favor_causal(q, k, v, w, kind)).abs().max())
            # causality: change the future after t = 130, outputs up to t unchanged
            k2, v2 = k.clone(), v.clone()
            k2[:, :, 131:] *= 3.0
            v2[:, :, 131:] += 1.0
            dc = float((favor_causal(q, k2, v2, w, kind)[:, :, :131] - favor_causal(q, k, v, w, kind)[:, :, :131]).abs().max())
        print(f"  {kind:5s} bidirectional vs reference {bi:.2e}; recurrent step vs batch {drec:.2e}; "
              f"future change leaks into the past {dc:.2e}")
        res[f"{kind}_recurrent_max_diff"], res[f"{kind}_causality_leak"] = drec, dc

    print("== favor-local (the twin's O(T^2) reference form; B=2, H=2, T=300, D=64, M=128)")
    q, k, v = (torch.randn(B, H, T, D, generator=g) * sc for sc in (1.0, 1.5, 1.0))
    w = orthogonal_random_features(128, D, g)
    qs, ks, vs = (t.clone().requires_grad_() for t in (q, k, v))
    out = favor_local(qs, ks, vs, w, T)  # window >= T: exact causal softmax attention
    out.backward(v)
    gfl = [t.grad.clone() for t in (qs, ks, vs)]
    for t in (qs, ks, vs):
        t.grad = None
    exact = softmax_attention(qs, ks, vs, True)
    exact.backward(v)
    dex = float((out - exact).abs().max())
    gex = max(float((a - t.grad).abs().max() / t.grad.abs().max()) for a, t in zip(gfl, (qs, ks, vs)))
    with torch.no_grad():
        # window 8: against the definition written without any shift or shared scale, in float64
        # (near weights exp(l_ij), far weights phi(q_i).phi(k_j) e^(a_i + s_j)), and causality
        win = 8
        q64, k64, v64, w64 = (t.double() for t in (q, k, v, w))
        pq, a = feature_map(q64, w64, "favor", KERNEL_EPS)
        pk, s = feature_map(k64, w64, "favor", KERNEL_EPS)
        i, j = torch.arange(T).view(T, 1), torch.arange(T).view(1, T)
        near, far = (j > i - win) & (j <= i), j <= i - win
        wt = torch.where(near, torch.exp((q64 @ k64.transpose(-1, -2)) / math.sqrt(D)), torch.zeros(()).double())
        wt = wt + torch.where(far, (pq @ pk.transpose(-1, -2)) * torch.exp(a.unsqueeze(-1) + s.unsqueeze(-2)),
                              torch.zeros(()).double())
        ddef = float((favor_local(q, k, v, w, win) - ((wt @ v64) / wt.sum(-1, keepdim=True)).float()).abs().max())
        k2, v2 = k.clone(), v.clone()
        k2[:, :, 131:] *= 3.0
        v2[:, :, 131:] += 1.0
        dc = float((favor_local(q, k2, v2, w, win)[:, :, :131] - favor_local(q, k, v, w, win)[:, :, :131]).abs().max())
    print(f"  window >= T vs exact causal softmax: max|out diff| {dex:.2e}, max rel grad diff {gex:.2e}")
    print(f"  window 8 vs the unshifted definition in float64: max|out diff| {ddef:.2e}; "
          f"future change leaks into the past {dc:.2e}")
    res.update(favor_local_full_window_vs_softmax_max_diff=dex, favor_local_full_window_grad_rel_diff=gex,
               favor_local_vs_definition_max_diff=ddef, favor_local_causality_leak=dc)

    print("== FAVOR+ vs exact softmax attention, T=1024, D=64, H=4 (B1 head shape), mean over 3 draws of W")
    print("   error = |O_favor - O_exact|_F / |O_exact|_F; 'uniform' = plain average of the visible values")
    print("   (the collapsed-attention failure mode), to read the numbers against.")
    T = 1024
    a = argparse.Namespace(**vars(args))
    a.preset, a.attention = "b1", "softmax"
    model = PerformerLM(make_config(a, T), args.seed)
    ids = torch.randint(0, VOCAB, (1, T), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():  # q, k, v of layer 0 of the B1 model at initialization, on random tokens
        b0 = model.blocks[0]
        q0, k0, v0 = b0.attn.project(b0.ln1(model.embed(ids)))
    inputs = [("B1 layer-0 q,k,v at init", "b1_init", q0, k0, v0)]
    g = torch.Generator().manual_seed(21)
    for sigma in (0.25, 0.5, 0.75):  # q, k ~ N(0, sigma^2): logits q.k/sqrt(D) have std sigma^2
        q, k, v = torch.randn(1, 4, T, D, generator=g) * sigma, torch.randn(1, 4, T, D, generator=g) * sigma, \
            torch.randn(1, 4, T, D, generator=g)
        inputs.append((f"q,k ~ N(0,{sigma}^2), logit std {sigma * sigma:.2f}", f"sigma{sigma}", q, k, v))
    with torch.no_grad():
        for causal in (True, False):
            for label, key, q, k, v in inputs:
                exact = softmax_attention(q, k, v, causal)
                if causal:
                    uni = torch.cumsum(v, 2) / torch.arange(1, T + 1).view(1, 1, T, 1)
                else:
                    uni = v.mean(2, keepdim=True).expand_as(v)
                tag = "causal" if causal else "bidir "
                line = f"  {tag} {label:34s} uniform {rel_errors(uni, exact)[0]:.3f}"
                for m in (128, 1024, 8192):
                    errs = []
                    for draw in range(3 if m <= 1024 else 1):
                        w = orthogonal_random_features(m, D, g)
                        approx = favor_causal(q, k, v, w) if causal else favor_bidirectional(q, k, v, w)
                        errs.append(rel_errors(approx, exact)[0])
                    line += f" | m={m} {statistics.mean(errs):.4f}"
                    res[f"favor_vs_exact_{tag.strip()}_{key}_m{m}"] = statistics.mean(errs)
                print(line)
    print("== generation: parallel prompt state + recurrent steps == full forward (B1, T=200; favor-local: "
          "the twin's decoder recomputes the full forward per token)")
    for kind in ("favor", "softmax", "favor-local"):
        a = argparse.Namespace(**vars(args))
        a.preset, a.attention = "b1", kind
        model = PerformerLM(make_config(a, 200), args.seed).eval()
        ids = torch.randint(0, VOCAB, (200,), generator=torch.Generator().manual_seed(9))
        with torch.no_grad():
            full = model(ids.unsqueeze(0))[0]
            dec = Decoder(model, 200)
            last = dec.prompt(ids[:150])
            diffs = [float((last - full[149]).abs().max())]
            for t in range(150, 200):
                diffs.append(float((dec.step(ids[t]) - full[t]).abs().max()))
        print(f"  {kind:11s} max |logit diff| {max(diffs):.2e}")
        res[f"generate_{kind}_max_logit_diff"] = max(diffs)
    emit(dict(mode="check", **res))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)

    def common(sp):
        sp.add_argument("--threads", type=int, default=2)
        sp.add_argument("--seed", type=int, default=1)
        sp.add_argument("--chunk", type=int, default=64, help="causal FAVOR+ chunk length C")

    def model_args(sp):
        sp.add_argument("--preset", choices=sorted(PRESETS), default="b1")
        sp.add_argument("--attention", choices=["favor", "relu", "softmax"], default="favor")
        for key in ("dim", "depth", "heads", "ff", "features"):
            sp.add_argument("--" + key, type=int, default=None, help="override the preset")

    t = sub.add_parser("train", help="training steps: forward, backward, AdamW step")
    common(t)
    model_args(t)
    t.add_argument("--seq", type=int, default=None)
    t.add_argument("--batch", type=int, default=None)
    t.add_argument("--steps", type=int, default=5, help="timed steps")
    t.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--verbose", action="store_true")
    t.add_argument("--key-shift", choices=["running", "global"], default="running",
                   help="favor: 'global' = performer-pytorch's one key stabilizer over the sequence (looks "
                        "ahead, not our model; only to measure what the running max costs)")
    t.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: torch.autocast('cpu', dtype=torch.bfloat16) around forward and loss")

    a = sub.add_parser("attention", help="one attention kernel on (B,H,T,D) q, k, v: forward + backward")
    common(a)
    a.add_argument("--seq", type=int, required=True)
    a.add_argument("--batch", type=int, default=1)
    a.add_argument("--heads", type=int, default=4)
    a.add_argument("--head-dim", type=int, default=64)
    a.add_argument("--features", type=int, default=128)
    a.add_argument("--kind", choices=["favor", "relu", "softmax"], default="favor")
    d = a.add_mutually_exclusive_group()
    d.add_argument("--causal", action="store_true", default=True)
    d.add_argument("--bidirectional", action="store_true")
    a.add_argument("--steps", "--repeats", dest="steps", type=int, default=5, help="timed repetitions")
    a.add_argument("--warmup", type=int, default=1)

    g = sub.add_parser("generate", help="prompt of --context tokens, then --tokens sampled one by one")
    common(g)
    model_args(g)
    g.add_argument("--context", type=int, default=256, help="prompt length")
    g.add_argument("--tokens", type=int, default=256, help="tokens to sample (timed)")
    g.add_argument("--prompt", choices=["parallel", "recurrent"], default="parallel",
                   help="prompt through one batch forward (default) or token by token like ours (untimed)")

    x = sub.add_parser("text", help="train on a text file for a wall-clock budget; validation bits per char")
    common(x)
    model_args(x)
    x.set_defaults(preset="small")
    x.add_argument("--data", required=True)
    x.add_argument("--val-fraction", type=float, default=0.1)
    x.add_argument("--seq", type=int, default=None)
    x.add_argument("--batch", type=int, default=None)
    x.add_argument("--steps", type=int, default=2500, help="schedule length (and most steps)")
    x.add_argument("--time-limit", type=float, default=0.0, help="seconds (0 = none)")
    x.add_argument("--lr", type=float, default=2e-3)
    x.add_argument("--warmup", type=int, default=50)
    x.add_argument("--min-lr-ratio", type=float, default=0.1)
    x.add_argument("--beta2", type=float, default=0.99)
    x.add_argument("--weight-decay", type=float, default=0.01)
    x.add_argument("--clip", type=float, default=1.0)
    x.add_argument("--redraw-every", type=int, default=0)
    x.add_argument("--eval-every", type=int, default=500)

    c = sub.add_parser("check", help="agreement checks (initial loss, implementations, FAVOR+ vs exact)")
    common(c)
    for key in ("dim", "depth", "heads", "ff", "features"):
        c.set_defaults(**{key: None})

    args = p.parse_args()
    torch.set_num_threads(args.threads)
    try:
        {"train": cmd_train, "attention": cmd_attention, "generate": cmd_generate, "check": cmd_check,
         "text": cmd_text}[args.mode](args)
    except (MemoryError, RuntimeError) as e:  # allocation failure: report it as one JSON line
        msg = str(e)
        if isinstance(e, MemoryError) or "alloc" in msg.lower() or "memory" in msg.lower():
            emit(dict(mode=args.mode, error="OOM", message=msg[:200], peak_rss_mb=peak_rss_mb()))
            sys.exit(3)
        raise


if __name__ == "__main__":
    main()
