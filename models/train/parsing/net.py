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
# The encoder's deepest features before the decoder (144 channels at 1/32 of the input, e.g.
# 12x9 for the 384x288 crop), read by the context branch (ParsingNet(context=True)).
FEATURES_DEEP = "add__322"


def trunk_graph(pose_onnx: str, deep: bool = False) -> onnx.ModelProto:
    """The pose landmark graph cut to the two decoder features (and with `deep` the encoder's
    deepest), with its Resize nodes given by scales (onnx2torch cannot train through
    size-given Resize)."""
    model = onnx.load(pose_onnx)
    graph = model.graph
    del graph.output[:]
    outputs = [(FEATURES_64, [1, 48, 64, 64]), (FEATURES_128, [1, 8, 128, 128])]
    if deep:
        outputs.append((FEATURES_DEEP, [1, 144, 8, 8]))
    for name, shape in outputs:
        graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape))
    producer = {o: n for n in graph.node for o in n.output}
    needed, stack = set(), [name for name, _ in outputs]
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


# The head over the trunk: "wide" (stages 1-8), "narrow" (tried, not shipped), "s4" (labels at
# stride 4: stages 9 and 10) or "s4d" (s4 corrected at stride 2: stages 11 and 12, shipped).
HEADS = ("wide", "narrow", "s4", "s4d")


def head_of(weights: dict) -> str:
    """Which head a state dict was trained with."""
    if any(k.startswith("detail.") for k in weights):
        return "s4d"
    if any(k.startswith("refine4.") for k in weights):
        return "s4"
    return "narrow" if any(k.startswith("refine64.") for k in weights) else "wide"


def network_for(pose_onnx: str, weights: dict) -> "ParsingNet":
    """A network of the shape `weights` were trained with (the context branch, the head), not
    yet loaded with them."""
    return ParsingNet(pose_onnx, context=any(k.startswith("context.") for k in weights),
                      head=head_of(weights))


class ParsingNet(nn.Module):
    """BlazePose trunk + a light head over two scales (`HEADS`); with `context`, a branch that
    adds the encoder's deepest features (and their mean over the crop) to the head's stride-4
    features.

    Why the branch: the decoder hands the head 48 channels, summed from every depth; telling a
    dress from a top and skirt, or a coat from a shirt, needs the whole outfit in view. Its
    last layers start at zero, so a network resumed from weights trained without it starts
    exactly where they were (train.py --context on a --resume)."""

    def __init__(self, pose_onnx: str, context: bool = False, head: str = "wide"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head {head!r}: one of {HEADS}")
        self.trunk = onnx2torch.convert(trunk_graph(pose_onnx, deep=context))
        self.context = None
        self.scene = None
        if context:
            self.context = nn.Sequential(
                nn.Conv2d(144, 96, 1),
                nn.ReLU(inplace=True),
                nn.Conv2d(96, 96, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(96, 64, 1),
            )
            self.scene = nn.Sequential(nn.Conv2d(144, 64, 1), nn.ReLU(inplace=True),
                                       nn.Conv2d(64, 64, 1))
            for branch in (self.context, self.scene):
                nn.init.zeros_(branch[-1].weight)
                nn.init.zeros_(branch[-1].bias)
        # No batch normalisation: with batches of 8 crops its running statistics drifted far
        # from the batches' (8 watched photos after 4 epochs: 0.91 pixel accuracy in eval mode
        # vs 0.93 in train mode, upper clothes lost entirely), and plain convolutions export as
        # they train.
        self.reduce64 = nn.Sequential(nn.Conv2d(48, 64, 3, padding=1), nn.ReLU(inplace=True))
        self.refine64 = None
        self.refine4 = None
        self.detail = None
        if head in ("s4", "s4d"):
            # The wide head's two 3x3 convolutions at stride 2 were 42 % of a network run
            # (ONNX Runtime's profile) and percept runs it twice per person: here the 3x3 work
            # is a residual pair of 3x3 64->64 at stride 4 and the labels come out at 1/4 of
            # the input (96x72); the second convolution starts small, so the resumed features
            # pass through nearly unchanged (README, stages 9-11).
            self.refine4 = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),
                                         nn.Conv2d(64, 64, 3, padding=1))
            with torch.no_grad():
                self.refine4[2].weight.mul_(0.1)
                self.refine4[2].bias.zero_()
            self.classify = nn.Conv2d(64, NUM_CLASSES, 1)
            if head == "s4d":
                # The stride-4 logits upsampled and corrected at stride 2 from the trunk's
                # 8-channel stride-2 features: a depthwise 3x3 and two 1x1s, the last at zero
                # (the s4 network's output, upsampled, to start from). s4 alone lost hair, skin
                # and garment boundaries to its 4-pixel cells (watched coarse 0.700 vs the wide
                # head's 0.717); this wins them back (0.714) for about 7 ms a run.
                self.detail = nn.Sequential(
                    nn.Conv2d(NUM_CLASSES + 8, NUM_CLASSES + 8, 3, padding=1,
                              groups=NUM_CLASSES + 8),
                    nn.Conv2d(NUM_CLASSES + 8, 32, 1),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(32, NUM_CLASSES, 1),
                )
                nn.init.zeros_(self.detail[-1].weight)
                nn.init.zeros_(self.detail[-1].bias)
        elif head == "wide":
            self.fuse128 = nn.Sequential(
                nn.Conv2d(64 + 8, 48, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(48, 48, 3, padding=1),
                nn.ReLU(inplace=True),
            )
            self.classify = nn.Conv2d(48, NUM_CLASSES, 1)
        else:
            # "narrow": the wide head's two 3x3 convolutions at stride 2 were 64 % of the
            # network's multiply-adds (BENCHMARKS.md "Parse painting"). Here the width moves to
            # stride 4 (a residual 3x3 64->64, a quarter of the pixels) and stride 2 keeps a
            # 1x1 72->32 and one 3x3 32->32: 0.32 GMACs there instead of 1.43, 1.35 for the
            # whole network at 384x288 instead of 2.22.
            self.refine64 = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True))
            # A residual branch that starts small, so the resumed stride-4 features pass
            # through nearly unchanged (not zero: a zero convolution under a ReLU never learns).
            with torch.no_grad():
                self.refine64[0].weight.mul_(0.1)
                self.refine64[0].bias.zero_()
            self.fuse128 = nn.Sequential(
                nn.Conv2d(64 + 8, 32, 1),
                nn.ReLU(inplace=True),
                nn.Conv2d(32, 32, 3, padding=1),
                nn.ReLU(inplace=True),
            )
            self.classify = nn.Conv2d(32, NUM_CLASSES, 1)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The trunk's outputs: the decoder's stride-4 and stride-2 features (and, with the
        context branch, the encoder's deepest)."""
        return tuple(self.trunk(x))

    def decode(self, features: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Logits at half the input's resolution (a quarter for "s4") from the trunk's features
        (train.py's distillation runs the trunk once for the teacher and the student)."""
        if self.context is None:
            f64, f128 = features
            h = self.reduce64(f64)
        else:
            f64, f128, deep = features
            h = self.reduce64(f64)
            c = self.context(deep) + self.scene(deep.mean(dim=(2, 3), keepdim=True))
            h = h + nn.functional.interpolate(c, scale_factor=8.0, mode="bilinear",
                                              align_corners=False)
        if self.refine4 is not None:
            logits = self.classify(h + self.refine4(h))
            if self.detail is None:
                return logits
            up = nn.functional.interpolate(logits, scale_factor=2.0, mode="bilinear",
                                           align_corners=False)
            return up + self.detail(torch.cat([up, f128], dim=1))
        if self.refine64 is not None:
            h = h + self.refine64(h)
        h = nn.functional.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
        h = self.fuse128(torch.cat([h, f128], dim=1))
        return self.classify(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.features(x))
