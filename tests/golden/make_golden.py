#!/usr/bin/python3
"""Writes tests/golden/golden_values.h: reference values from PyTorch for the nn tests.

Run with Debian's Python, which has python3-torch (the `python3` on PATH may not):

    /usr/bin/python3 tests/golden/make_golden.py

Every input is written into the header too (as float32 literals printed with 9 significant
digits, which round-trip exactly), so the C++ tests start from bit-identical inputs and never
need Python. Hyperparameters are rounded to float32 before PyTorch sees them, because the C++
options are floats: PyTorch then computes its scalar coefficients (1 - beta1, lr / (1 - beta1^t),
...) from exactly the values the C++ optimizer holds.

Contents:
  * five steps of SGD (momentum + dampening + weight decay), SGD (Nesterov), Adam (L2 weight decay
    on every parameter) and AdamW (decoupled weight decay on the weight only, the bias excluded
    as pf::decay_by_default does) on a small least-squares problem;
  * LayerNorm, GELU (tanh approximation), softmax attention (causal; key padding; both) and
    cross-entropy with an ignored target: forward values and input gradients.
"""
import math
import os
import sys

import numpy as np
import torch

torch.set_num_threads(1)
torch.manual_seed(0)  # nothing here is random; set for safety

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_values.h")
f32 = lambda v: float(np.float32(v))


def seq(n, fn):
    """A deterministic float32 tensor from fn(i), i = 0..n-1."""
    return torch.tensor([f32(fn(i)) for i in range(n)], dtype=torch.float32)


def fmt(v):
    s = format(float(v), ".9g")
    if not any(c in s for c in ".en"):
        s += "."
    return s + "f"


lines = []


def emit(name, t):
    t = t.detach().to(torch.float32).contiguous()
    shape = ", ".join(str(d) for d in t.shape)
    vals = t.reshape(-1).tolist()
    lines.append(f"inline const std::vector<int64_t> {name}_shape = {{{shape}}};")
    body = ", ".join(fmt(v) for v in vals)
    lines.append(f"inline const std::vector<float> {name} = {{{body}}};")


def emit_ints(name, vals):
    lines.append(f"inline const std::vector<int32_t> {name} = {{{', '.join(str(v) for v in vals)}}};")


def emit_scalar(name, v):
    lines.append(f"inline constexpr float {name} = {fmt(v)};")


# ---------------------------------------------------------------- optimizers
# loss = mean((x W^T + b - y)^2), W (3, 4), b (3), x (5, 4), y (5, 3).
W0 = seq(12, lambda i: 0.5 * math.sin(i + 1)).reshape(3, 4)
b0 = seq(3, lambda i: 0.1 * math.cos(i))
X = seq(20, lambda i: math.sin(0.7 * i + 0.3)).reshape(5, 4)
Y = seq(15, lambda i: math.cos(0.3 * i)).reshape(5, 3)
emit("opt_w0", W0)
emit("opt_b0", b0)
emit("opt_x", X)
emit("opt_y", Y)

STEPS = 5


def run(name, make_opt):
    W = W0.clone().requires_grad_(True)
    b = b0.clone().requires_grad_(True)
    opt = make_opt(W, b)
    ws, bs, losses = [], [], []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = ((X @ W.t() + b - Y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        ws.append(W.detach().clone())
        bs.append(b.detach().clone())
    emit(f"{name}_w", torch.stack(ws))  # (STEPS, 3, 4): W after each step
    emit(f"{name}_b", torch.stack(bs))  # (STEPS, 3)
    emit(f"{name}_loss", torch.tensor(losses))  # loss before each step


# SGD with momentum, dampening and weight decay on W only (the bias is excluded).
run("sgd_momentum", lambda W, b: torch.optim.SGD(
    [{"params": [W], "weight_decay": f32(0.01)}, {"params": [b], "weight_decay": 0.0}],
    lr=f32(0.1), momentum=f32(0.9), dampening=f32(0.1)))
run("sgd_nesterov", lambda W, b: torch.optim.SGD([W, b], lr=f32(0.05), momentum=f32(0.9), nesterov=True))
# Adam with L2 weight decay on every parameter (pf::decay_all), and an eps large enough that where
# it enters the update (sqrt(v_hat) + eps, not sqrt(v_hat + eps)) shows at 1e-6.
run("adam", lambda W, b: torch.optim.Adam([W, b], lr=f32(0.05), betas=(f32(0.9), f32(0.999)), eps=f32(1e-3),
                                          weight_decay=f32(0.1)))
# AdamW with decoupled weight decay on W only (pf::decay_by_default excludes the bias).
run("adamw", lambda W, b: torch.optim.AdamW(
    [{"params": [W], "weight_decay": f32(0.1)}, {"params": [b], "weight_decay": 0.0}],
    lr=f32(0.05), betas=(f32(0.9), f32(0.99)), eps=f32(1e-8)))

# ---------------------------------------------------------------- layer norm
x = seq(2 * 3 * 8, lambda i: 2.0 * math.sin(0.37 * i) + 0.5).reshape(2, 3, 8).requires_grad_(True)
g = seq(8, lambda i: 1.0 + 0.1 * i).requires_grad_(True)
bb = seq(8, lambda i: 0.05 * i - 0.2).requires_grad_(True)
up = seq(48, lambda i: math.cos(0.5 * i)).reshape(2, 3, 8)
y = torch.nn.functional.layer_norm(x, (8,), g, bb, eps=1e-5)
y.backward(up)
for n, t in [("ln_x", x), ("ln_gain", g), ("ln_bias", bb), ("ln_upstream", up), ("ln_out", y),
             ("ln_dx", x.grad), ("ln_dgain", g.grad), ("ln_dbias", bb.grad)]:
    emit(n, t)

# ---------------------------------------------------------------- GELU (tanh approximation)
x = seq(25, lambda i: -6.0 + 0.5 * i).requires_grad_(True)
y = torch.nn.functional.gelu(x, approximate="tanh")
y.backward(torch.ones_like(y))
emit("gelu_x", x)
emit("gelu_out", y)
emit("gelu_dx", x.grad)

# ---------------------------------------------------------------- softmax attention
B, H, T, D = 2, 2, 4, 3
q0 = seq(B * H * T * D, lambda i: math.sin(0.9 * i + 0.1)).reshape(B, H, T, D)
k0 = seq(B * H * T * D, lambda i: math.cos(0.45 * i + 0.2)).reshape(B, H, T, D)
v0 = seq(B * H * T * D, lambda i: math.sin(0.31 * i - 0.4) * 1.5).reshape(B, H, T, D)
key_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.float32)  # second sequence: last key padded
up = seq(B * H * T * D, lambda i: math.cos(0.77 * i)).reshape(B, H, T, D)
emit("att_q", q0)
emit("att_k", k0)
emit("att_v", v0)
emit("att_key_mask", key_mask)
emit("att_upstream", up)


def attention(q, k, v, causal, mask):
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, T, T)
    forbid = torch.zeros(s.shape, dtype=torch.bool)
    if causal:
        forbid |= torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    if mask is not None:
        forbid |= (mask == 0)[:, None, None, :]
    s = s.masked_fill(forbid, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


for name, causal, mask in [("att_causal", True, None), ("att_padded", False, key_mask),
                           ("att_causal_padded", True, key_mask)]:
    q, k, v = (t.clone().requires_grad_(True) for t in (q0, k0, v0))
    out = attention(q, k, v, causal, mask)
    out.backward(up)
    emit(f"{name}_out", out)
    emit(f"{name}_dq", q.grad)
    emit(f"{name}_dk", k.grad)
    emit(f"{name}_dv", v.grad)

# ---------------------------------------------------------------- cross-entropy with an ignored target
logits = seq(4 * 5, lambda i: 3.0 * math.sin(1.3 * i)).reshape(4, 5).requires_grad_(True)
targets = [1, -100, 4, 0]
loss = torch.nn.functional.cross_entropy(logits, torch.tensor(targets), ignore_index=-100)
loss.backward()
emit("ce_logits", logits)
emit_ints("ce_targets", targets)
emit_scalar("ce_loss", loss.item())
emit("ce_dlogits", logits.grad)

header = [
    "// Generated by tests/golden/make_golden.py with PyTorch " + torch.__version__ + ". Do not edit by hand;",
    "// regenerate with: /usr/bin/python3 tests/golden/make_golden.py",
    "// Each tensor is a flat row-major vector plus its shape.",
    "#pragma once",
    "",
    "#include <cstdint>",
    "#include <vector>",
    "",
    "// clang-format off",
    "namespace pf::golden {",
    "",
    f"inline constexpr int kOptimizerSteps = {STEPS};",
]
footer = ["", "}  // namespace pf::golden", "// clang-format on", ""]
with open(OUT, "w") as fh:
    fh.write("\n".join(header + lines + footer))
print(f"wrote {OUT} ({len(lines)} lines of values)", file=sys.stderr)
