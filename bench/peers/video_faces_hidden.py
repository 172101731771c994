#!/usr/bin/env python3
"""Does an anonymised video still show any labelled face? (issue #20)

    python video_faces_hidden.py ORIGINAL.mp4 ANONYMISED.mp4 ORIGINAL.faces.json [--every N]

ORIGINAL and its labels come from make_clips.py. Both videos are decoded by an ffmpeg subprocess
to rawvideo rgb24 (no imageio). If ANONYMISED has another frame size (deface's imageio writer
stretches 1080 to 1088, see README-video.md), ffmpeg scales it back to ORIGINAL's size.
On every Nth frame (default 5), for every labelled face, on the inner 80 % of its box (so a
label a few pixels loose, or an anonymiser's soft mask edge, does not decide):

  detail  how much of the original's fine detail is still there: band-pass both crops (grey minus
          its Gaussian blur, sigma = shorter box side / 32, i.e. eye/mouth-scale detail at any
          face size) and project the output's band onto the original's:
          <hp_out, hp_orig> / <hp_orig, hp_orig>. An untouched face gives ~1 (a lossy re-encode a
          little less); blur and a solid box give ~0 (no detail); a mosaic stays low (<= 0.26
          measured), because its block edges are detail that does not match the original's (a
          plain energy ratio would count those edges as detail kept).
  mad     mean absolute RGB difference, 0..255.

A face is VISIBLE when detail > 0.35 and mad < 30 (what an untouched face does even after a
lossy re-encode), else hidden. Thresholds were checked with the `mask` mode below: the original
against itself and against a crf 30 re-encode (all visible), and black box, blur, mosaic
(all hidden); results in README-video.md.

Output: JSON summary on stdout. Exit 0 when no face is visible and every labelled frame was
there to check, 1 otherwise.

Calibration (writes ORIGINAL with its labelled boxes masked, libx264 crf 23, audio copied):

    python video_faces_hidden.py mask {none,black,blur,mosaic} ORIGINAL.mp4 ORIGINAL.faces.json OUT.mp4
    none = no mask, re-encoded at crf 30 (a visibly lossy copy: faces must still count visible);
    blur = Gaussian, sigma 0.1 x the box's longer side (percept's default strength);
    mosaic = 20 px blocks (deface's --mosaicsize default).
"""

import argparse
import json
import subprocess
import sys

import cv2
import numpy as np

DETAIL_MAX, MAD_MAX = 0.35, 30.0


def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=True).stdout
    w, h = out.strip().split(",")[:2]
    return int(w), int(h)


def frames(path, size=None):
    """Yield decoded frames as HxWx3 uint8; scale to size=(w, h) if the video differs."""
    w, h = probe(path)
    cmd = ["ffmpeg", "-v", "error", "-i", path, "-map", "0:v:0"]
    if size and size != (w, h):
        cmd += ["-vf", f"scale={size[0]}:{size[1]}:flags=bicubic"]
        w, h = size
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    n = w * h * 3
    try:
        while True:
            buf = proc.stdout.read(n)
            if len(buf) < n:
                break
            yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    finally:  # also when the caller stops early: end ffmpeg rather than let it hit a closed pipe
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.wait()


def inner(box, frac=0.8):
    dx, dy = box["width"] * (1 - frac) / 2, box["height"] * (1 - frac) / 2
    return (int(round(box["x"] + dx)), int(round(box["y"] + dy)),
            int(round(box["x"] + box["width"] - dx)), int(round(box["y"] + box["height"] - dy)))


def band(rgb, sigma):
    grey = rgb.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    return grey - cv2.GaussianBlur(grey, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def measure(orig, anon, box):
    x0, y0, x1, y1 = inner(box)
    o, a = orig[y0:y1, x0:x1], anon[y0:y1, x0:x1]
    sigma = max(1.0, min(x1 - x0, y1 - y0) / 32)
    ho, ha = band(o, sigma), band(a, sigma)
    detail = float((ho * ha).sum() / max((ho * ho).sum(), 1e-6))
    mad = float(np.abs(o.astype(np.int16) - a.astype(np.int16)).mean())
    return detail, mad


def outside_mad(orig, anon, boxes):
    """MAD away from the faces (boxes grown 1.6x, beyond any mask scale): a large value means the
    two videos are not frame-aligned or not the same picture, so the face figures mean nothing."""
    keep = np.ones(orig.shape[:2], bool)
    for b in boxes:
        cx, cy = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
        hw, hh = 0.8 * b["width"], 0.8 * b["height"]
        keep[max(0, int(cy - hh)):int(cy + hh), max(0, int(cx - hw)):int(cx + hw)] = False
    d = np.abs(orig.astype(np.int16) - anon.astype(np.int16)).mean(axis=2)
    return float(d[keep].mean()) if keep.any() else 0.0


def check(args):
    labels = json.load(open(args.labels))
    size = (labels["width"], labels["height"])
    if probe(args.original) != size:
        sys.exit("labels are for another frame size than ORIGINAL")
    anon_size = probe(args.anonymised)
    n_orig = n_anon = checked_frames = checked_faces = 0
    visible, details, bg = [], [], []
    it_o, it_a = frames(args.original), frames(args.anonymised, size)
    while True:
        # Lockstep decode; keep draining the longer video so both counts are true.
        o, a = next(it_o, None), next(it_a, None)
        if o is None and a is None:
            break
        i = max(n_orig, n_anon)
        n_orig += o is not None
        n_anon += a is not None
        if o is None or a is None or i % args.every or i >= len(labels["faces_per_frame"]):
            continue
        boxes = labels["faces_per_frame"][i]
        checked_frames += 1
        bg.append(outside_mad(o, a, boxes))
        for j, box in enumerate(boxes):
            detail, mad = measure(o, a, box)
            checked_faces += 1
            details.append(detail)
            if detail > DETAIL_MAX and mad < MAD_MAX:
                visible.append({"frame": i, "face": j, "detail": round(detail, 3),
                                "mad": round(mad, 1)})
    bad_frames = len({v["frame"] for v in visible})
    missing = n_anon < labels["frames"]
    summary = {
        "original": args.original, "anonymised": args.anonymised,
        "original_frames": n_orig, "anonymised_frames": n_anon,
        "anonymised_size": list(anon_size), "rescaled_to": list(size) if anon_size != size else None,
        "every": args.every, "frames_checked": checked_frames, "faces_checked": checked_faces,
        "visible": len(visible), "frames_all_hidden": checked_frames - bad_frames,
        "frames_all_hidden_fraction": round(1 - bad_frames / checked_frames, 4) if checked_frames else None,
        "detail_min": round(min(details), 3) if details else None,
        "detail_max": round(max(details), 3) if details else None,
        "detail_median": round(float(np.median(details)), 3) if details else None,
        "outside_faces_mad_mean": round(float(np.mean(bg)), 2) if bg else None,
        "thresholds": {"detail_gt": DETAIL_MAX, "mad_lt": MAD_MAX},
        "visible_faces": visible,
    }
    if missing:
        summary["error"] = "anonymised video has fewer frames than the labels"
    print(json.dumps(summary, indent=1))
    return 1 if visible or missing else 0


def mask(args):
    """Calibration input: ORIGINAL with its labelled boxes masked (or only re-encoded)."""
    labels = json.load(open(args.labels))
    w, h = labels["width"], labels["height"]
    crf = "30" if args.mode == "none" else "23"
    enc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
         "-r", str(labels["fps"]), "-i", "-", "-i", args.original, "-map", "0:v", "-map", "1:a?",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", crf, "-c:a", "copy", args.out],
        stdin=subprocess.PIPE)
    for i, f in enumerate(frames(args.original)):
        f = f.copy()
        for b in labels["faces_per_frame"][i] if args.mode != "none" else []:
            x0, y0, x1, y1 = b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]
            roi = f[y0:y1, x0:x1]
            if args.mode == "black":
                roi[:] = 0
            elif args.mode == "blur":
                roi[:] = cv2.GaussianBlur(roi, (0, 0), 0.1 * max(roi.shape[:2]))
            elif args.mode == "mosaic":
                small = cv2.resize(roi, (max(1, roi.shape[1] // 20), max(1, roi.shape[0] // 20)),
                                   interpolation=cv2.INTER_AREA)
                roi[:] = cv2.resize(small, roi.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        enc.stdin.write(f.tobytes())
    enc.stdin.close()
    return enc.wait()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "mask":
        p = argparse.ArgumentParser(description="write a masked calibration copy")
        p.add_argument("cmd")
        p.add_argument("mode", choices=["none", "black", "blur", "mosaic"])
        p.add_argument("original")
        p.add_argument("labels")
        p.add_argument("out")
        return mask(p.parse_args())
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("original")
    p.add_argument("anonymised")
    p.add_argument("labels")
    p.add_argument("--every", type=int, default=5)
    return check(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
