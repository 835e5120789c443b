"""The same matmul shapes as bench/bench_ops.cpp, through PyTorch (Debian's python3-torch on OpenBLAS).

Run side by side with ours (see BENCHMARKS.md):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/matmul_torch.py --threads 2
"""
import argparse
import statistics
import time

import torch

SHAPES = [(4096, 256, 768), (4096, 256, 1024), (4096, 1024, 256), (2048, 2048, 2048)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, blas: "
          f"{'openblas' if 'openblas' in torch.__config__.show().lower() else 'other'}")
    for m, k, n in SHAPES:
        a = torch.randn(m, k)
        b = torch.randn(k, n)
        for _ in range(3):
            a @ b
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        print(f"matmul {m}x{k} @ {k}x{n}: {t * 1e3:.3f} ms, {2 * m * n * k / t / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
