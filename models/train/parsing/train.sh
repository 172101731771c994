#!/usr/bin/env bash
# Rebuilds models/lip_parser.onnx and lip_parser_int8.onnx from a CCP folder, end to end:
#   models/train/parsing/train.sh [CCP_DIR]      (default ../shared/datasets/ccp)
# 1. a virtual environment with the pinned tooling (requirements.txt),
# 2. the release binary (its pose and face-mesh models prepare the labels),
# 3. prepare.py -> train.py -> export.py (float) -> quantize.py (the head's heaviest layers in
#    8 bits, the file both engines load) -> evaluate.py (metrics.json beside this file).
# export.py and quantize.py write the files' sha256 and bytes into models/manifest.toml.
# Wall time on 2 cores (AMD EPYC): see models/MODELS.md (the trained human parser).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
ccp="${1:-$repo/../shared/datasets/ccp}"
venv="$repo/.venv-train"
cd "$repo"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r "$here/requirements.txt"
scripts/fetch-ort >/dev/null || echo "ONNX Runtime not fetched: preparation runs on tract (slower)" >&2
cargo build --release --locked -p percept
cd "$here"
start=$(date +%s)
"$venv/bin/python" prepare.py --ccp "$ccp"
# The shipped weights: 8 epochs of a 16-epoch cosine schedule (the learning rate is then at half
# its peak), then 3 epochs falling linearly from there to 0, starting from those weights, ...
"$venv/bin/python" train.py --ccp "$ccp" --epochs 16 --stop-after 8
cp "$repo/target/parsing-train/last.pt" "$repo/target/parsing-train/stage1.pt"
"$venv/bin/python" train.py --ccp "$ccp" --resume "$repo/target/parsing-train/stage1.pt" --anneal 3 --lr-start 0.5
# Then twice 8 epochs from half the peak rate to 0 with a second person pasted beside half the
# crops (group photos: CCP shows one person) and rotations of up to 30 degrees.
for stage in 2 3; do
  cp "$repo/target/parsing-train/last.pt" "$repo/target/parsing-train/stage$stage.pt"
  "$venv/bin/python" train.py --ccp "$ccp" --resume "$repo/target/parsing-train/stage$stage.pt" \
    --anneal 8 --lr-start 0.5 --rotate 30 --neighbours 0.5
done
# Then twice the same 8 epochs with the context branch (net.py: the encoder's deepest features
# added to the head), started at zero on those weights.
for stage in 4 5; do
  cp "$repo/target/parsing-train/last.pt" "$repo/target/parsing-train/stage$stage.pt"
  "$venv/bin/python" train.py --ccp "$ccp" --resume "$repo/target/parsing-train/stage$stage.pt" \
    --anneal 8 --lr-start 0.5 --rotate 30 --neighbours 0.5 --context
done
# Then twice the same 8 epochs with the Lovász-softmax term added to the cross-entropy
# (train.py --lovasz: every class's IoU weighs the same, as in mIoU).
for stage in 6 7; do
  cp "$repo/target/parsing-train/last.pt" "$repo/target/parsing-train/stage$stage.pt"
  "$venv/bin/python" train.py --ccp "$ccp" --resume "$repo/target/parsing-train/stage$stage.pt" \
    --anneal 8 --lr-start 0.5 --rotate 30 --neighbours 0.5 --context --lovasz 1.0
done
# Then the shipped head ("s4d", net.py): the stride-2 stage gone, the labels at stride 4 with a
# cheap stride-2 correction, taught by those stage-8 weights (KL divergence from their
# softmax). Eight epochs of a cosine schedule with the trunk frozen and the stride-4 head
# ("s4") new; six with the whole network, falling from half the peak rate; six more with the
# stride-2 correction added at zero.
t="$repo/target/parsing-train"
cp "$t/last.pt" "$t/stage8.pt"
base=(--ccp "$ccp" --rotate 30 --neighbours 0.5 --context --lovasz 1.0)
common=("${base[@]}" --teacher "$t/stage8.pt")
"$venv/bin/python" train.py "${common[@]}" --resume "$t/stage8.pt" --head s4 --epochs 8 --freeze-trunk
cp "$t/last.pt" "$t/stage9.pt"
"$venv/bin/python" train.py "${common[@]}" --resume "$t/stage9.pt" --head s4 --anneal 6 --lr-start 0.5
cp "$t/last.pt" "$t/stage10.pt"
"$venv/bin/python" train.py "${common[@]}" --resume "$t/stage10.pt" --head s4d --anneal 6 --lr-start 0.5
# Then six epochs of the labels alone (no teacher), falling from 0.3x the peak rate.
cp "$t/last.pt" "$t/stage11.pt"
"$venv/bin/python" train.py "${base[@]}" --resume "$t/stage11.pt" --head s4d --anneal 6 --lr-start 0.3
# Then twice eight epochs of the labels alone, falling from half the peak rate.
for stage in 12 13; do
  cp "$t/last.pt" "$t/stage$stage.pt"
  "$venv/bin/python" train.py "${base[@]}" --resume "$t/stage$stage.pt" --head s4d --anneal 8 --lr-start 0.5
done
"$venv/bin/python" export.py --ccp "$ccp"
"$venv/bin/python" quantize.py --ccp "$ccp"
sha256sum "$repo/models/lip_parser.onnx" "$repo/models/lip_parser_int8.onnx"
"$venv/bin/python" evaluate.py --ccp "$ccp"
echo "recipe wall time: $(( $(date +%s) - start )) s" >&2
