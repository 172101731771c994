#!/usr/bin/env python3
"""Convert MediaPipe .tflite models to ONNX without TensorFlow.

Reads the TFLite flatbuffer with the PyPI `tflite` package and writes an ONNX graph (opset 13)
with the `onnx` package.

* Constant weights are folded: DEQUANTIZE of FP16 (or int8 with scale/zero-point) constants
  becomes an FP32 initializer, DENSIFY of a sparse constant becomes a dense initializer.
* Graph inputs and outputs keep TFLite's names, shapes and NHWC layout. Inside, every rank-4
  activation is tracked in the layout it was last produced in; Conv/Pool/Resize/DepthToSpace run
  in NCHW, layout-agnostic ops (Add, PRelu, Pad, Concat, Mean, ...) follow their input, and a
  Transpose is inserted (once per tensor and layout) only where an op needs the other layout.
* 'SAME' padding is computed from the static shapes exactly like TFLite (extra pixel at the end).

Usage: tflite2onnx_mp.py model.tflite model.onnx
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
PRODUCER = "percept-tflite2onnx-mp"

NHWC, NCHW = "NHWC", "NCHW"
TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]
# NHWC axis index -> NCHW axis index
AXIS_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}

_BUILTIN_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

_TFL_DTYPE = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.INT16: np.int16,
    tflite.TensorType.BOOL: np.bool_,
}


class ConversionError(RuntimeError):
    pass


def _options(op, cls):
    tab = op.BuiltinOptions()
    o = cls()
    if tab is not None:
        o.Init(tab.Bytes, tab.Pos)
        return o
    return None


def _sparse_vector(kind, table):
    cls = {
        tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
        tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
        tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector,
    }[kind]
    v = cls()
    v.Init(table.Bytes, table.Pos)
    return v.ValuesAsNumpy().astype(np.int64)


def densify(values: np.ndarray, sparsity, dense_shape) -> np.ndarray:
    """Sparse (TFLite SparsityParameters) -> dense, like tflite's FormatConverter::SparseToDense."""
    trav = sparsity.TraversalOrderAsNumpy() if sparsity.TraversalOrderLength() else np.arange(len(dense_shape))
    if sparsity.BlockMapLength():
        raise ConversionError("block-sparse DENSIFY is not supported")
    trav = [int(t) for t in trav]
    rank = len(dense_shape)
    if len(trav) != rank or sparsity.DimMetadataLength() != rank:
        raise ConversionError("unexpected sparsity metadata")
    # Vectorised walk over the traversal levels: idx[level] holds, for every element reached so
    # far, its coordinate on that level; prev is the position used to index the next CSR level.
    idx: list[np.ndarray] = []
    prev = np.zeros(1, dtype=np.int64)
    for level in range(rank):
        dm = sparsity.DimMetadata(level)
        if dm.Format() == tflite.DimensionType.DENSE:
            size = dm.DenseSize()
            idx = [np.repeat(a, size) for a in idx]
            coord = np.tile(np.arange(size, dtype=np.int64), len(prev))
            prev = (np.repeat(prev, size) * size + coord)
            idx.append(coord)
        else:
            seg = _sparse_vector(dm.ArraySegmentsType(), dm.ArraySegments())
            ind = _sparse_vector(dm.ArrayIndicesType(), dm.ArrayIndices())
            starts, ends = seg[prev], seg[prev + 1]
            counts = ends - starts
            idx = [np.repeat(a, counts) for a in idx]
            pos = np.concatenate([np.arange(s, e, dtype=np.int64) for s, e in zip(starts, ends)]) \
                if len(starts) else np.zeros(0, dtype=np.int64)
            idx.append(ind[pos])
            prev = pos
    if len(prev) != values.size:
        raise ConversionError(f"sparse value count {values.size} != walked {len(prev)}")
    dense = np.zeros(dense_shape, dtype=values.dtype)
    orig = [None] * rank
    for level, dim in enumerate(trav):
        orig[dim] = idx[level]
    dense[tuple(orig)] = values.reshape(-1)
    return dense


def same_pads(in_size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite 'SAME' padding: total split with the odd pixel at the end."""
    out = (in_size + stride - 1) // stride
    eff = (k - 1) * dilation + 1
    total = max((out - 1) * stride + eff - in_size, 0)
    return total // 2, total - total // 2


class Converter:
    def __init__(self, data: bytes):
        self.data = data
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise ConversionError("only single-subgraph models are supported")
        self.g = self.model.Subgraphs(0)
        self.nodes: list = []
        self.inits: dict[str, onnx.TensorProto] = {}
        self.consts: dict[int, np.ndarray] = {}
        # tensor index -> {layout: onnx value name}; rank != 4 tensors use NHWC for "native"
        self.vals: dict[int, dict[str, str]] = {}
        self._uid = 0
        self._const_cache: dict[tuple, str] = {}
        for i in range(self.g.TensorsLength()):
            arr = self._buffer(i)
            if arr is not None:
                self.consts[i] = arr

    # ---- flatbuffer access -------------------------------------------------------------------
    def tensor(self, i):
        return self.g.Tensors(i)

    def shape(self, i) -> list[int]:
        t = self.tensor(i)
        return [int(s) for s in t.ShapeAsNumpy()] if t.ShapeLength() else []

    def tname(self, i) -> str:
        return self.tensor(i).Name().decode()

    def _buffer(self, i):
        t = self.tensor(i)
        b = self.model.Buffers(t.Buffer())
        if b is None:
            return None
        if b.Offset() > 1:
            raw = np.frombuffer(self.data, dtype=np.uint8, count=b.Size(), offset=b.Offset())
        elif b.DataLength():
            raw = b.DataAsNumpy()
        else:
            return None
        dt = _TFL_DTYPE.get(t.Type())
        if dt is None:
            raise ConversionError(f"unsupported constant dtype {t.Type()} for {self.tname(i)}")
        arr = np.frombuffer(raw.tobytes(), dtype=dt)
        if t.Sparsity() is None:
            arr = arr.reshape(self.shape(i))
        return arr.copy()

    def opname(self, op) -> str:
        oc = self.model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == tflite.BuiltinOperator.CUSTOM:
            return "CUSTOM:" + oc.CustomCode().decode()
        return _BUILTIN_NAMES[code]

    # ---- ONNX building helpers ---------------------------------------------------------------
    def uid(self, base: str) -> str:
        self._uid += 1
        return f"{base}__{self._uid}"

    def node(self, op_type: str, inputs: list[str], n_out: int = 1, out: list[str] | None = None,
             **attrs) -> list[str]:
        outs = out or [self.uid(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.uid("n_" + op_type), **attrs))
        return outs

    def const(self, arr: np.ndarray, hint: str = "c") -> str:
        arr = np.ascontiguousarray(arr)
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 16 else None
        if key is not None and key in self._const_cache:
            return self._const_cache[key]
        name = self.uid(hint)
        self.inits[name] = numpy_helper.from_array(arr, name)
        if key is not None:
            self._const_cache[key] = name
        return name

    def fconst(self, i: int) -> np.ndarray:
        """The folded constant of tensor i as float32 (raises if it is not constant)."""
        if i not in self.consts:
            raise ConversionError(f"tensor {self.tname(i)} is expected to be constant")
        a = self.consts[i]
        return a.astype(np.float32) if a.dtype == np.float16 else a

    def is_const(self, i: int) -> bool:
        return i >= 0 and i in self.consts

    def get(self, i: int, layout: str = NHWC) -> str:
        """ONNX name of tensor i in the requested layout (rank-4 only; other ranks are native)."""
        if i in self.consts:
            a = self.consts[i]
            if a.dtype == np.float16:
                a = a.astype(np.float32)
            if a.ndim == 4 and layout == NCHW:
                a = a.transpose(TO_NCHW)
            return self.const(a, "w")
        have = self.vals.get(i)
        if have is None:
            raise ConversionError(f"tensor {self.tname(i)} used before it is produced")
        if len(self.shape(i)) != 4:
            return have[NHWC]
        if layout in have:
            return have[layout]
        src = next(iter(have.values()))
        perm = TO_NCHW if layout == NCHW else TO_NHWC
        out = self.node("Transpose", [src], perm=perm)[0]
        have[layout] = out
        return out

    def has(self, i: int, layout: str) -> bool:
        return layout in self.vals.get(i, {})

    def set(self, i: int, name: str, layout: str = NHWC):
        if len(self.shape(i)) != 4:
            layout = NHWC
        self.vals[i] = {layout: name}

    def act(self, name: str, fused: int) -> str:
        A = tflite.ActivationFunctionType
        if fused == A.NONE:
            return name
        if fused == A.RELU:
            return self.node("Relu", [name])[0]
        if fused == A.RELU6:
            return self.node("Clip", [name, self.const(np.float32(0)), self.const(np.float32(6))])[0]
        if fused == A.RELU_N1_TO_1:
            return self.node("Clip", [name, self.const(np.float32(-1)), self.const(np.float32(1))])[0]
        if fused == A.TANH:
            return self.node("Tanh", [name])[0]
        raise ConversionError(f"unsupported fused activation {fused}")

    # ---- conversion --------------------------------------------------------------------------
    def convert(self, doc: str = "") -> onnx.ModelProto:
        g = self.g
        inputs, outputs = [], []
        for k in range(g.InputsLength()):
            i = g.Inputs(k)
            if self.tensor(i).Type() != tflite.TensorType.FLOAT32:
                raise ConversionError("only float32 graph inputs are supported")
            inputs.append(helper.make_tensor_value_info(self.tname(i), TensorProto.FLOAT, self.shape(i)))
            self.vals[i] = {NHWC: self.tname(i)}
        for k in range(g.OperatorsLength()):
            op = g.Operators(k)
            name = self.opname(op)
            ins = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
            outs = [int(x) for x in op.OutputsAsNumpy()]
            fn = getattr(self, "op_" + name.replace("CUSTOM:", "CUSTOM_"), None)
            if fn is None:
                raise ConversionError(f"unsupported op {name} (operator #{k})")
            fn(op, ins, outs)
        # graph outputs: NHWC (TFLite layout) under TFLite's names
        renames = {}
        for k in range(g.OutputsLength()):
            i = g.Outputs(k)
            src = self.get(i, NHWC)
            tgt = self.tname(i)
            produced_by_node = any(src in n.output for n in self.nodes)
            if produced_by_node and src not in renames and src not in [x.name for x in inputs]:
                renames[src] = tgt
            else:
                self.node("Identity", [src], out=[tgt])
            outputs.append(helper.make_tensor_value_info(tgt, TensorProto.FLOAT, self.shape(i)))
        for n in self.nodes:
            for j, v in enumerate(n.input):
                if v in renames:
                    n.input[j] = renames[v]
            for j, v in enumerate(n.output):
                if v in renames:
                    n.output[j] = renames[v]
        self._prune([o.name for o in outputs])
        graph = helper.make_graph(self.nodes, "main", inputs, outputs, list(self.inits.values()))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name=PRODUCER, producer_version="1")
        model.ir_version = 8
        model.doc_string = doc
        onnx.checker.check_model(model)
        return model

    def _prune(self, outputs: list[str]):
        """Drop nodes and initializers that do not reach a graph output."""
        needed = set(outputs)
        keep = []
        for n in reversed(self.nodes):
            if any(o in needed for o in n.output):
                keep.append(n)
                needed.update(n.input)
        self.nodes = list(reversed(keep))
        self.inits = {k: v for k, v in self.inits.items() if k in needed}

    # ---- constant-only ops -------------------------------------------------------------------
    def op_DEQUANTIZE(self, op, ins, outs):
        i = ins[0]
        if i not in self.consts:
            raise ConversionError("DEQUANTIZE of a non-constant tensor is not supported")
        a = self.consts[i]
        if a.dtype == np.float16:
            self.consts[outs[0]] = a.astype(np.float32)
            return
        q = self.tensor(i).Quantization()
        scale = q.ScaleAsNumpy().astype(np.float32)
        zp = q.ZeroPointAsNumpy().astype(np.float32) if q.ZeroPointLength() else np.zeros_like(scale)
        if scale.size > 1:
            shp = [1] * a.ndim
            shp[q.QuantizedDimension()] = -1
            scale, zp = scale.reshape(shp), zp.reshape(shp)
        self.consts[outs[0]] = ((a.astype(np.float32) - zp) * scale).astype(np.float32)

    def op_DENSIFY(self, op, ins, outs):
        i = ins[0]
        t = self.tensor(i)
        if i not in self.consts or t.Sparsity() is None:
            raise ConversionError("DENSIFY expects a sparse constant")
        self.consts[outs[0]] = densify(self.consts[i], t.Sparsity(), self.shape(outs[0]))

    # ---- convolutions and pooling (NCHW inside) ----------------------------------------------
    def _conv_pads(self, padding, in_hw, k_hw, strides, dil):
        if padding == tflite.Padding.VALID:
            return [0, 0, 0, 0]
        (t, b), (l, r) = (same_pads(in_hw[0], k_hw[0], strides[0], dil[0]),
                          same_pads(in_hw[1], k_hw[1], strides[1], dil[1]))
        return [t, l, b, r]

    def op_CONV_2D(self, op, ins, outs):
        o = _options(op, tflite.Conv2DOptions)
        w = self.fconst(ins[1])  # [O, KH, KW, I]
        x_shape = self.shape(ins[0])
        group = x_shape[3] // w.shape[3]
        strides = [o.StrideH(), o.StrideW()]
        dil = [o.DilationHFactor(), o.DilationWFactor()]
        pads = self._conv_pads(o.Padding(), x_shape[1:3], w.shape[1:3], strides, dil)
        args = [self.get(ins[0], NCHW), self.const(w.transpose(0, 3, 1, 2), "w")]
        if len(ins) > 2 and ins[2] >= 0:
            args.append(self.const(self.fconst(ins[2]).astype(np.float32), "b"))
        y = self.node("Conv", args, kernel_shape=list(w.shape[1:3]), strides=strides, dilations=dil,
                      pads=pads, group=group)[0]
        self.set(outs[0], self.act(y, o.FusedActivationFunction()), NCHW)

    def op_DEPTHWISE_CONV_2D(self, op, ins, outs):
        o = _options(op, tflite.DepthwiseConv2DOptions)
        w = self.fconst(ins[1])  # [1, KH, KW, C*M]
        x_shape = self.shape(ins[0])
        cin = x_shape[3]
        strides = [o.StrideH(), o.StrideW()]
        dil = [o.DilationHFactor(), o.DilationWFactor()]
        pads = self._conv_pads(o.Padding(), x_shape[1:3], w.shape[1:3], strides, dil)
        wk = w.transpose(3, 0, 1, 2)  # [C*M, 1, KH, KW]
        args = [self.get(ins[0], NCHW), self.const(wk, "w")]
        if len(ins) > 2 and ins[2] >= 0:
            args.append(self.const(self.fconst(ins[2]).astype(np.float32), "b"))
        y = self.node("Conv", args, kernel_shape=list(w.shape[1:3]), strides=strides, dilations=dil,
                      pads=pads, group=cin)[0]
        self.set(outs[0], self.act(y, o.FusedActivationFunction()), NCHW)

    def op_TRANSPOSE_CONV(self, op, ins, outs):
        o = _options(op, tflite.TransposeConvOptions)
        w = self.fconst(ins[1])  # [O, KH, KW, I]
        x_shape, y_shape = self.shape(ins[2]), self.shape(outs[0])
        strides = [o.StrideH(), o.StrideW()]
        pads = [0, 0, 0, 0]
        if o.Padding() == tflite.Padding.SAME:
            t, b = same_pads(y_shape[1], w.shape[1], strides[0])
            l, r = same_pads(y_shape[2], w.shape[2], strides[1])
            pads = [t, l, b, r]
        args = [self.get(ins[2], NCHW), self.const(w.transpose(3, 0, 1, 2), "w")]
        if len(ins) > 3 and ins[3] >= 0:
            args.append(self.const(self.fconst(ins[3]), "b"))
        # output_shape makes the result unambiguous whatever the padding split
        y = self.node("ConvTranspose", args, kernel_shape=list(w.shape[1:3]), strides=strides,
                      pads=pads)[0]
        got = [(x_shape[1] - 1) * strides[0] + w.shape[1] - pads[0] - pads[2],
               (x_shape[2] - 1) * strides[1] + w.shape[2] - pads[1] - pads[3]]
        if got != y_shape[1:3]:
            raise ConversionError(f"TRANSPOSE_CONV output {got} != {y_shape[1:3]}")
        self.set(outs[0], self.act(y, o.FusedActivationFunction()), NCHW)

    def _pool(self, op, ins, outs, onnx_op):
        o = _options(op, tflite.Pool2DOptions)
        x_shape = self.shape(ins[0])
        k = [o.FilterHeight(), o.FilterWidth()]
        strides = [o.StrideH(), o.StrideW()]
        pads = self._conv_pads(o.Padding(), x_shape[1:3], k, strides, [1, 1])
        extra = {"count_include_pad": 0} if onnx_op == "AveragePool" else {}
        y = self.node(onnx_op, [self.get(ins[0], NCHW)], kernel_shape=k, strides=strides, pads=pads,
                      **extra)[0]
        self.set(outs[0], self.act(y, o.FusedActivationFunction()), NCHW)

    def op_MAX_POOL_2D(self, op, ins, outs):
        self._pool(op, ins, outs, "MaxPool")

    def op_AVERAGE_POOL_2D(self, op, ins, outs):
        self._pool(op, ins, outs, "AveragePool")

    def op_RESIZE_BILINEAR(self, op, ins, outs):
        o = _options(op, tflite.ResizeBilinearOptions)
        y_shape = self.shape(outs[0])
        if o is not None and o.AlignCorners():
            mode = "align_corners"
        elif o is not None and o.HalfPixelCenters():
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        sizes = np.array([y_shape[0], y_shape[3], y_shape[1], y_shape[2]], dtype=np.int64)
        y = self.node("Resize", [self.get(ins[0], NCHW), "", "", self.const(sizes, "sizes")],
                      mode="linear", coordinate_transformation_mode=mode)[0]
        self.set(outs[0], y, NCHW)

    def op_RESIZE_NEAREST_NEIGHBOR(self, op, ins, outs):
        o = _options(op, tflite.ResizeNearestNeighborOptions)
        y_shape = self.shape(outs[0])
        if o is not None and o.AlignCorners():
            mode, nearest = "align_corners", "round_prefer_ceil"
        elif o is not None and o.HalfPixelCenters():
            mode, nearest = "tf_half_pixel_for_nn", "floor"
        else:
            mode, nearest = "asymmetric", "floor"
        sizes = np.array([y_shape[0], y_shape[3], y_shape[1], y_shape[2]], dtype=np.int64)
        y = self.node("Resize", [self.get(ins[0], NCHW), "", "", self.const(sizes, "sizes")],
                      mode="nearest", coordinate_transformation_mode=mode, nearest_mode=nearest)[0]
        self.set(outs[0], y, NCHW)

    def op_DEPTH_TO_SPACE(self, op, ins, outs):
        o = _options(op, tflite.DepthToSpaceOptions)
        bs = o.BlockSize()
        n, h, w, c = self.shape(ins[0])
        # TF's depth_to_space is ONNX DCR; spelled as Reshape/Transpose/Reshape so any engine runs it
        x = self.get(ins[0], NCHW)
        x = self.node("Reshape", [x, self.const(np.array([n, bs, bs, c // (bs * bs), h, w], np.int64))])[0]
        x = self.node("Transpose", [x], perm=[0, 3, 4, 1, 5, 2])[0]
        x = self.node("Reshape", [x, self.const(np.array([n, c // (bs * bs), h * bs, w * bs], np.int64))])[0]
        self.set(outs[0], x, NCHW)

    # ---- layout-following ops ----------------------------------------------------------------
    def _pick_layout(self, ins, out):
        """NCHW when the output is rank 4 and some non-constant rank-4 input already is NCHW."""
        if len(self.shape(out)) != 4:
            return NHWC
        dyn = [i for i in ins if i >= 0 and i not in self.consts]
        if any(len(self.shape(i)) != 4 for i in dyn):
            return NHWC
        if any(self.has(i, NCHW) for i in dyn):
            return NCHW
        return NHWC

    def _operand(self, i, layout, out_rank):
        if i in self.consts and layout == NCHW:
            a = self.fconst(i)
            a = a.reshape([1] * (out_rank - a.ndim) + list(a.shape)).transpose(TO_NCHW)
            return self.const(np.ascontiguousarray(a), "k")
        return self.get(i, layout)

    def _binary(self, op, ins, outs, onnx_op, opts_cls):
        layout = self._pick_layout(ins, outs[0])
        r = len(self.shape(outs[0]))
        args = [self._operand(i, layout, r) for i in ins]
        y = self.node(onnx_op, args)[0]
        o = _options(op, opts_cls) if opts_cls else None
        if o is not None:
            y = self.act(y, o.FusedActivationFunction())
        self.set(outs[0], y, layout)

    def op_ADD(self, op, ins, outs):
        self._binary(op, ins, outs, "Add", tflite.AddOptions)

    def op_SUB(self, op, ins, outs):
        self._binary(op, ins, outs, "Sub", tflite.SubOptions)

    def op_MUL(self, op, ins, outs):
        self._binary(op, ins, outs, "Mul", tflite.MulOptions)

    def op_DIV(self, op, ins, outs):
        self._binary(op, ins, outs, "Div", tflite.DivOptions)

    def op_MAXIMUM(self, op, ins, outs):
        self._binary(op, ins, outs, "Max", None)

    def op_MINIMUM(self, op, ins, outs):
        self._binary(op, ins, outs, "Min", None)

    def op_PRELU(self, op, ins, outs):
        self._binary(op, ins, outs, "PRelu", None)

    def _unary(self, ins, outs, onnx_op, **attrs):
        layout = self._pick_layout(ins[:1], outs[0])
        y = self.node(onnx_op, [self.get(ins[0], layout)], **attrs)[0]
        self.set(outs[0], y, layout)
        return y

    def op_RELU(self, op, ins, outs):
        self._unary(ins, outs, "Relu")

    def op_LOGISTIC(self, op, ins, outs):
        self._unary(ins, outs, "Sigmoid")

    def op_TANH(self, op, ins, outs):
        self._unary(ins, outs, "Tanh")

    def op_RELU6(self, op, ins, outs):
        layout = self._pick_layout(ins[:1], outs[0])
        y = self.act(self.get(ins[0], layout), tflite.ActivationFunctionType.RELU6)
        self.set(outs[0], y, layout)

    def op_RELU_N1_TO_1(self, op, ins, outs):
        layout = self._pick_layout(ins[:1], outs[0])
        y = self.act(self.get(ins[0], layout), tflite.ActivationFunctionType.RELU_N1_TO_1)
        self.set(outs[0], y, layout)

    def op_HARD_SWISH(self, op, ins, outs):
        layout = self._pick_layout(ins[:1], outs[0])
        x = self.get(ins[0], layout)
        hs = self.node("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)[0]
        self.set(outs[0], self.node("Mul", [x, hs])[0], layout)

    def op_LEAKY_RELU(self, op, ins, outs):
        o = _options(op, tflite.LeakyReluOptions)
        self._unary(ins, outs, "LeakyRelu", alpha=float(o.Alpha()))

    def op_PAD(self, op, ins, outs):
        pads = self.consts[ins[1]].astype(np.int64)  # [rank, 2] in NHWC
        layout = self._pick_layout(ins[:1], outs[0])
        if layout == NCHW:
            pads = pads[TO_NCHW]
        value = []
        if len(ins) > 2 and ins[2] >= 0:  # PADV2
            value = [self.const(self.fconst(ins[2]).reshape(()).astype(np.float32), "padv")]
        p = self.const(np.concatenate([pads[:, 0], pads[:, 1]]).astype(np.int64), "pads")
        y = self.node("Pad", [self.get(ins[0], layout), p] + value, mode="constant")[0]
        self.set(outs[0], y, layout)

    op_PADV2 = op_PAD

    def op_CONCATENATION(self, op, ins, outs):
        o = _options(op, tflite.ConcatenationOptions)
        r = len(self.shape(outs[0]))
        axis = o.Axis() % r
        layout = NCHW if r == 4 and all(self.has(i, NCHW) or i in self.consts for i in ins) else NHWC
        if layout == NCHW:
            axis = AXIS_NHWC_TO_NCHW[axis]
        y = self.node("Concat", [self._operand(i, layout, r) for i in ins], axis=axis)[0]
        self.set(outs[0], self.act(y, o.FusedActivationFunction()), layout)

    def op_MEAN(self, op, ins, outs):
        o = _options(op, tflite.ReducerOptions)
        r = len(self.shape(ins[0]))
        axes = sorted(int(a) % r for a in self.consts[ins[1]].reshape(-1))
        keep = bool(o.KeepDims()) if o is not None else False
        layout = NHWC
        if r == 4 and self.has(ins[0], NCHW):
            kept_nhwc = [d for d in range(4) if d not in axes]
            kept_nchw = [d for d in TO_NCHW if d not in axes]  # NHWC dims in NCHW order
            if keep or kept_nhwc == kept_nchw:
                layout = NCHW
        if layout == NCHW:
            axes = sorted(AXIS_NHWC_TO_NCHW[a] for a in axes)
        y = self.node("ReduceMean", [self.get(ins[0], layout)], axes=axes, keepdims=int(keep))[0]
        self.set(outs[0], y, layout if keep else NHWC)

    # ---- NHWC (TFLite-semantics) ops ---------------------------------------------------------
    def op_RESHAPE(self, op, ins, outs):
        shape = np.array(self.shape(outs[0]), dtype=np.int64)
        y = self.node("Reshape", [self.get(ins[0], NHWC), self.const(shape, "shape")])[0]
        self.set(outs[0], y, NHWC)

    op_SQUEEZE = op_RESHAPE
    op_EXPAND_DIMS = op_RESHAPE

    def op_TRANSPOSE(self, op, ins, outs):
        perm = [int(p) for p in self.consts[ins[1]].reshape(-1)]
        y = self.node("Transpose", [self.get(ins[0], NHWC)], perm=perm)[0]
        self.set(outs[0], y, NHWC)

    def op_SOFTMAX(self, op, ins, outs):
        o = _options(op, tflite.SoftmaxOptions)
        x = self.get(ins[0], NHWC)
        if o is not None and abs(o.Beta() - 1.0) > 1e-12:
            x = self.node("Mul", [x, self.const(np.float32(o.Beta()))])[0]
        self.set(outs[0], self.node("Softmax", [x], axis=-1)[0], NHWC)

    def op_FULLY_CONNECTED(self, op, ins, outs):
        o = _options(op, tflite.FullyConnectedOptions)
        w = self.fconst(ins[1])  # [out, in]
        x = self.get(ins[0], NHWC)
        if self.shape(ins[0]) != [-1, w.shape[1]] and len(self.shape(ins[0])) != 2:
            x = self.node("Reshape", [x, self.const(np.array([-1, w.shape[1]], np.int64), "shape")])[0]
        args = [x, self.const(w, "w")]
        if len(ins) > 2 and ins[2] >= 0:
            args.append(self.const(self.fconst(ins[2]), "b"))
        y = self.node("Gemm", args, transB=1)[0]
        y = self.act(y, o.FusedActivationFunction())
        out_shape = self.shape(outs[0])
        if len(out_shape) != 2:
            y = self.node("Reshape", [y, self.const(np.array(out_shape, np.int64), "shape")])[0]
        self.set(outs[0], y, NHWC)

    def op_STRIDED_SLICE(self, op, ins, outs):
        o = _options(op, tflite.StridedSliceOptions)
        if o.EllipsisMask() or o.NewAxisMask():
            raise ConversionError("STRIDED_SLICE with ellipsis/new-axis masks is not supported")
        x_shape = self.shape(ins[0])
        begin = self.consts[ins[1]].reshape(-1).astype(np.int64)
        end = self.consts[ins[2]].reshape(-1).astype(np.int64)
        stride = self.consts[ins[3]].reshape(-1).astype(np.int64)
        starts, ends, axes, steps = [], [], [], []
        for d in range(len(begin)):
            b, e, s = int(begin[d]), int(end[d]), int(stride[d])
            if o.ShrinkAxisMask() >> d & 1:
                b = b % x_shape[d]
                e, s = b + 1, 1
            else:
                if o.BeginMask() >> d & 1:
                    b = 0 if s > 0 else x_shape[d] - 1
                if o.EndMask() >> d & 1:
                    e = x_shape[d] if s > 0 else -(2 ** 62)
            starts.append(b), ends.append(e), axes.append(d), steps.append(s)
        y = self.node("Slice", [self.get(ins[0], NHWC), self.const(np.array(starts, np.int64)),
                                self.const(np.array(ends, np.int64)), self.const(np.array(axes, np.int64)),
                                self.const(np.array(steps, np.int64))])[0]
        out_shape = self.shape(outs[0])
        y = self.node("Reshape", [y, self.const(np.array(out_shape, np.int64), "shape")])[0]
        self.set(outs[0], y, NHWC)

    # MediaPipe's custom transposed convolution (selfie segmentation); options mirror
    # TransposeConvOptions in a flatbuffer-less struct: assume stride 2, SAME.
    def op_CUSTOM_Convolution2DTransposeBias(self, op, ins, outs):
        w = self.fconst(ins[1])  # [O, KH, KW, I]
        b = self.fconst(ins[2])
        x_shape, y_shape = self.shape(ins[0]), self.shape(outs[0])
        sh, sw = y_shape[1] // x_shape[1], y_shape[2] // x_shape[2]
        t, bo = same_pads(y_shape[1], w.shape[1], sh)
        l, r = same_pads(y_shape[2], w.shape[2], sw)
        y = self.node("ConvTranspose", [self.get(ins[0], NCHW), self.const(w.transpose(3, 0, 1, 2), "w"),
                                        self.const(b, "b")],
                      kernel_shape=list(w.shape[1:3]), strides=[sh, sw], pads=[t, l, bo, r])[0]
        self.set(outs[0], y, NCHW)


def convert_file(src: str, dst: str, doc: str = "") -> onnx.ModelProto:
    with open(src, "rb") as f:
        data = f.read()
    model = Converter(data).convert(doc=doc)
    onnx.save(model, dst)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--doc", default="", help="doc_string stored in the ONNX model")
    a = ap.parse_args(argv)
    m = convert_file(a.src, a.dst, a.doc)
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"{a.dst}: {len(m.graph.node)} nodes, ops {ops}")


if __name__ == "__main__":
    sys.exit(main())
