"""Exports the trained network to ONNX (models/lip_parser.onnx) and checks it.

The graph takes the crop train.py trains on (input_1: 1x384x288x3 float RGB in [0, 1], NHWC,
the pose landmark model's format) and gives `logits` (1x20x192x144, NCHW, LIP's labels). ONNX Runtime's output is compared
with PyTorch's on real crops before the file is written.
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

import paths
from net import network_for
from train import CROP_H, CROP_W, TRAIN_LAST, load, sample


def main() -> None:
    ap = paths.arguments(__doc__)
    ap.add_argument("--data", default=str(paths.DATA))
    ap.add_argument("--weights", default=str(paths.TRAIN / "last.pt"))
    ap.add_argument("--pose-model", default=str(paths.POSE_MODEL))
    ap.add_argument("--out", default=str(paths.REPO / "models" / "lip_parser.onnx"))
    ap.add_argument("--manifest", default=str(paths.REPO / "models" / "manifest.toml"))
    args = ap.parse_args()
    torch.manual_seed(0)
    weights = torch.load(args.weights, map_location="cpu")
    net = network_for(args.pose_model, weights)
    net.load_state_dict(weights)
    net.eval()
    example = torch.zeros(1, CROP_H, CROP_W, 3)
    tmp = Path(args.out).with_suffix(".tmp.onnx")
    torch.onnx.export(net, (example,), str(tmp), input_names=["input_1"], output_names=["logits"],
                      opset_version=17, dynamo=False)
    model = onnx.load(str(tmp))
    onnx.checker.check_model(model)
    # The exporter leaves the output's spatial dims symbolic (they come through Resize nodes);
    # the input is fixed, so are they: write them, so the manifest's shape is the graph's.
    with torch.no_grad():
        out_shape = list(net(example).shape)
    dims = model.graph.output[0].type.tensor_type.shape.dim
    for d, v in zip(dims, out_shape):
        d.ClearField("dim_param")
        d.dim_value = v
    # Deterministic bytes: no producer version or doc strings that change between runs.
    model.producer_name = "percept models/train/parsing"
    model.producer_version = ""
    for node in model.graph.node:
        node.doc_string = ""
    data = model.SerializeToString()
    tmp.unlink()

    # The exported graph agrees with PyTorch on real crops (training photos' ROIs).
    photos, labels, rois = load(Path(args.data), Path(args.ccp), list(range(TRAIN_LAST - 7, TRAIN_LAST + 1)))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rng = random.Random(0)
    worst, scale, agree = 0.0, 0.0, []
    for p, l, r in zip(photos, labels, rois):
        x, _ = sample(p, l, r, False, rng)
        x = x[None]
        with torch.no_grad():
            want = net(x).numpy()
        got = session.run(None, {"input_1": x.numpy()})[0]
        worst = max(worst, float(np.abs(want - got).max()))
        scale = max(scale, float(np.abs(want).max()))
        agree.append(float((want.argmax(1) == got.argmax(1)).mean()))
    print(f"ONNX Runtime vs PyTorch: max |diff| {worst:.2e} (largest |logit| {scale:.1f}), "
          f"argmax agreement {min(agree):.5f}")
    # Float32 rounding grows with the logits' size (a stage with larger logits differed by
    # 1.3e-3 with every label equal), so the bound is relative to them.
    assert worst < 1e-4 * max(scale, 10.0) and min(agree) > 0.999, \
        "the exported graph does not match PyTorch"
    Path(args.out).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    print(f"{args.out}: {len(data)} bytes, sha256 {digest}")
    update_manifest(Path(args.manifest), Path(args.out).name, digest, len(data))


def update_manifest(manifest: Path, file: str, digest: str, size: int) -> None:
    """Writes the new file's sha256 and size into its [[model]] entry (the loader refuses a
    file whose hash differs from the manifest's)."""
    text = manifest.read_text()
    start = text.index(f'file = "{file}"')
    end = text.find("[[model]]", start)
    end = len(text) if end < 0 else end
    entry = re.sub(r'(?m)^sha256 = "[0-9a-f]*"$', f'sha256 = "{digest}"', text[start:end], count=1)
    entry = re.sub(r"(?m)^bytes = \d+$", f"bytes = {size}", entry, count=1)
    manifest.write_text(text[:start] + entry + text[end:])
    print(f"{manifest}: {file} entry updated")


if __name__ == "__main__":
    main()
