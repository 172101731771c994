"""Writes the learned-model slot's test fixture: a tiny "parsing network" with RANDOM weights.

It is NOT a parser: one 1x1 convolution from RGB to 20 score planes (LIP's labels) on a 64x64
input, seeded so the file is the same on every run. It exists only so the test of the slot's
plumbing (crates/vision/tests/learned_slot.rs) runs a real ONNX file through the same path a
user's network (e.g. SCHP's LIP model exported to ONNX) would take: manifest entry with
`task = "human_parsing"` and `[model.segmentation]`, input normalisation, argmax, LIP labels.

    .venv-models/bin/python models/convert/make_parsing_fixture.py crates/vision/tests/fixtures/parsing_fixture.onnx
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main(out: str) -> None:
    rng = np.random.default_rng(20261123)
    weight = rng.normal(0.0, 1.0, size=(20, 3, 1, 1)).astype(np.float32)
    bias = rng.normal(0.0, 0.1, size=(20,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "weight", "bias"], ["logits"])],
        "parsing_fixture",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 20, 64, 64])],
        initializer=[numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="percept")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out)


if __name__ == "__main__":
    main(sys.argv[1])
