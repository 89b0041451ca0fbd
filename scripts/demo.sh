#!/usr/bin/env bash
# demo.sh - the project's main job on a fresh machine: install, build, show
# the bundled trained model (models/grok-mini.gguf, a 3.5 M-parameter
# Grok-architecture MoE trained by `grok train` on the King James Bible)
# and generate from it with plain `grok run -p`, which uses that model
# when no -m is given.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
./build/grok info models/grok-mini.gguf --no-tensors | tail -n 6
echo "--- grok run (the bundled model, no -m needed):"
./build/grok run -p "And God said" -n 48 --temp 0.8 --top-p 0.95 --seed 1
echo
./build/grok run -p "The LORD is my shepherd;" -n 48 --temp 0.8 --top-p 0.95 --seed 2
