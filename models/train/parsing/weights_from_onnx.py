"""Rebuilds a PyTorch checkpoint from an exported parser (default models/lip_parser.onnx).

export.py keeps every parameter's state_dict name as the ONNX initializer's name, so the shipped
file is the checkpoint: a later stage (a new head, more epochs, a teacher for distillation) can
start from it when target/parsing-train/ is gone. The onnx2torch constant buffers of the trunk
(pads, Resize scales: `trunk.initializers.*`) are no weights and come from a fresh network.
The rebuilt network's logits are checked against ONNX Runtime's before the file is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

import paths
from net import network_for
from train import CROP_H, CROP_W


def main() -> None:
    ap = paths.arguments(__doc__)
    ap.add_argument("--onnx", default=str(paths.REPO / "models" / "lip_parser.onnx"))
    ap.add_argument("--pose-model", default=str(paths.POSE_MODEL))
    ap.add_argument("--out", default=str(paths.TRAIN / "shipped.pt"))
    args = ap.parse_args()
    model = onnx.load(args.onnx)
    inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
             for t in model.graph.initializer}
    net = network_for(args.pose_model, inits)
    state = net.state_dict()
    for name, fresh in state.items():
        if name in inits and inits[name].shape == fresh.shape:
            state[name] = inits[name]
        elif not name.startswith("trunk.initializers."):
            raise SystemExit(f"{args.onnx} has no weights for {name}")
    net.load_state_dict(state)
    net.eval()
    x = torch.from_numpy(np.random.default_rng(0).random((1, CROP_H, CROP_W, 3), np.float32))
    with torch.no_grad():
        want = net(x).numpy()
    got = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"]).run(
        None, {"input_1": x.numpy()})[0]
    worst = float(np.abs(want - got).max())
    print(f"PyTorch vs ONNX Runtime: max |diff| {worst:.2e}")
    assert worst < 1e-3, "the rebuilt network does not match the ONNX file"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
