#!/usr/bin/env bash
# Installs everything needed to build, test and run the project on Debian 12, with apt-get.
# Safe to run twice: apt-get install skips what is already there.
# Usage (as root): bash scripts/install-deps.sh [--bench]
#   --bench  also installs the optional Python side: the PyTorch comparison and the safetensors
#            round-trip tests (python3-torch, python3-numpy, libopenblas0-openmp) and the loss plots of
#            scripts/plot-metrics.py (python3-matplotlib). Without them those tests are skipped.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libeigen3-dev libcereal-dev libcli11-dev libgtest-dev zlib1g-dev libbenchmark-dev
  libdnnl-dev   # oneDNN: fp32 and bf16 matrix products (GEMM); the build falls back to Eigen without it
  libopenmpi-dev openmpi-bin   # MPI for data-parallel training (distributed/); the build runs one process without it
  libsentencepiece-dev   # subword tokenizers
  libxxhash-dev   # prepared datasets: shard checksums (XXH3)
  nlohmann-json3-dev   # JSON: prepared datasets' manifest.json, safetensors headers, metrics.jsonl strings
  libtomlplusplus-dev   # toml++: performer-train's config file, read strictly (train/config_file.h)
  mmseqs2-examples   # the default training corpus: /usr/share/doc/mmseqs2/example-data/DB.fasta.gz
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3-torch libopenblas0-openmp python3-numpy python3-matplotlib)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
