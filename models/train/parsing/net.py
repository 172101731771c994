"""The parsing network: MediaPipe BlazePose landmark full's encoder and segmentation decoder
(converted to PyTorch with onnx2torch), with a 20-class head over its 64x64 and 128x128
decoder features.

Why this trunk: BlazePose's segmentation decoder already draws the person at the crop the pose
stage computes, and its weights (Apache-2.0, shipped in models/) were trained on many people.
The landmark and heatmap heads are cut off, so the network costs less than one pose-landmark run.

Input: 1xHxWx3 float RGB in [0, 1], NHWC, H and W multiples of 32 (the pose landmark model's own
format, so percept crops it the same way; trained and shipped at 384x288). Output: 1x20xH/2xW/2
logits over LIP's 20 labels (NCHW); percept samples their softmax bilinearly back into the photo.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx2torch
import torch
from onnx import helper, numpy_helper
from torch import nn

from labels import NUM_CLASSES

# Tensors of the pose landmark graph the head reads: the decoder at 64x64 (48 channels, the
# sum of the upsampled deeper features and the encoder's skip) and at 128x128 (8 channels).
FEATURES_64 = "add__361"
FEATURES_128 = "clip__406"


def trunk_graph(pose_onnx: str) -> onnx.ModelProto:
    """The pose landmark graph cut to the two decoder features, with its Resize nodes given
    by scales (onnx2torch cannot train through size-given Resize)."""
    model = onnx.load(pose_onnx)
    graph = model.graph
    del graph.output[:]
    for name, shape in ((FEATURES_64, [1, 48, 64, 64]), (FEATURES_128, [1, 8, 128, 128])):
        graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape))
    producer = {o: n for n in graph.node for o in n.output}
    needed, stack = set(), [FEATURES_64, FEATURES_128]
    while stack:
        t = stack.pop()
        if t in needed:
            continue
        needed.add(t)
        node = producer.get(t)
        if node is not None:
            stack.extend(i for i in node.input if i)
    kept = [n for n in graph.node if any(o in needed for o in n.output)]
    del graph.node[:]
    graph.node.extend(kept)
    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type != "Resize":
            continue
        # Every Resize on the kept path doubles H and W (sizes [1, C, 2h, 2w] from h, w).
        sizes = numpy_helper.to_array(inits[node.input[3]])
        if sizes[2] not in (16, 32, 64, 128, 256):
            raise ValueError(f"unexpected Resize sizes {sizes} in {node.name}")
        scales_name = node.name + "_scales"
        graph.initializer.append(
            numpy_helper.from_array(
                np.array([1.0, 1.0, 2.0, 2.0], dtype=np.float32), scales_name
            )
        )
        node.input[2] = scales_name
        del node.input[3]
    used = {i for n in graph.node for i in n.input}
    unused = [t for t in graph.initializer if t.name not in used]
    for t in unused:
        graph.initializer.remove(t)
    onnx.checker.check_model(model)
    return model


class ParsingNet(nn.Module):
    """BlazePose trunk + a light two-scale head."""

    def __init__(self, pose_onnx: str):
        super().__init__()
        self.trunk = onnx2torch.convert(trunk_graph(pose_onnx))
        # No batch normalisation: with batches of 8 crops its running statistics drifted far
        # from the batches' (8 watched photos after 4 epochs: 0.91 pixel accuracy in eval mode
        # vs 0.93 in train mode, upper clothes lost entirely), and plain convolutions export as
        # they train.
        self.reduce64 = nn.Sequential(nn.Conv2d(48, 64, 3, padding=1), nn.ReLU(inplace=True))
        self.fuse128 = nn.Sequential(
            nn.Conv2d(64 + 8, 48, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(48, 48, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.classify = nn.Conv2d(48, NUM_CLASSES, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f64, f128 = self.trunk(x)
        h = self.reduce64(f64)
        h = nn.functional.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
        h = self.fuse128(torch.cat([h, f128], dim=1))
        return self.classify(h)
