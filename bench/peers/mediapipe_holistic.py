#!/usr/bin/env python3
"""MediaPipe 0.10.21 Holistic (legacy Solutions API) as a peer for percept's holistic task.

Install (git-ignored venv):

    python3 -m venv .venv-mp && .venv-mp/bin/pip install -r bench/peers/mediapipe_requirements.txt

Two subcommands:

refs   Run Holistic on each photo and write the landmarks percept's tests compare against:

    .venv-mp/bin/python bench/peers/mediapipe_holistic.py refs \
        --out tests/data/holistic_mediapipe.json tests/data/person_astronaut.jpg ...

       Settings: Holistic(static_image_mode=True, model_complexity=1 (--model-complexity 0
       for BlazePose lite, written to holistic_mediapipe_lite.json; MediaPipe downloads
       pose_landmark_lite.tflite on first use, so offline copy it from the npm package
       @mediapipe/holistic 0.5.1675471629, the file models/manifest.toml names, sha256
       f17bfbec…, into the venv's mediapipe/modules/pose_landmark/),
       refine_face_landmarks=False (--refine-face-landmarks: 478 face points, the irises
       from MediaPipe's attention mesh; written to holistic_mediapipe_refined.json),
       enable_segmentation=False (--masks DIR: on, and each photo's person mask saved as
       DIR/<stem>.png, grey = round(255 * p)), other options at their
       defaults (min_detection_confidence=0.5, min_tracking_confidence=0.5). Photos are
       decoded with Pillow, EXIF-transposed, converted to RGB. One fresh Holistic per photo.
       Output: {"photos": {"<file name>": {"width", "height", "pose": [[x, y, visibility]
       x33] | null, "face": [[x, y] x468] | null, "left_hand": [[x, y] x21] | null,
       "right_hand": ...}}} with x, y as MediaPipe gives them (normalised to the image's width
       and height; may fall slightly outside [0, 1] for points off the frame), 4 decimals;
       visibility 3 decimals.

       Handedness: in Holistic, `left_hand_landmarks` is the PERSON's left hand. Holistic
       crops each hand from the pose model's wrist (LEFT_WRIST = 15 for left_hand,
       RIGHT_WRIST = 16 for right_hand), and those pose indices are the person's own sides.
       What was seen (overlays drawn from this output and checked by eye):
       group5_stairs.jpg, woman on the far right facing the camera: her LEFT arm (elbow on
       the image's right at x~0.90, pose[13]) crosses her body to rest the hand on her knee
       (wrist at x~0.72); MediaPipe returned that hand as left_hand (wrist 5 px from pose[15],
       76 px from pose[16]) and found no right_hand. In person_hands_drink.jpg, the person's
       RIGHT hand is behind her head (image left) and her LEFT hand holds the glass (image
       right). (tests/data/faces.json's note says the opposite; it names the hands by image
       side.) Pose puts RIGHT_WRIST (16) correctly behind the head, but LEFT_WRIST (15) on
       her lap well below the glass, so Holistic returns NO hands for that photo.
       `refs` prints, for every hand found, which pose wrist its landmark 0 is nearest.
       (This differs from MediaPipe *Hands*, whose handedness label assumes a mirrored,
       selfie-camera image: mp.solutions.hands on the unmirrored group5_stairs.jpg labels
       that same hand "Right". Hands finds no hand on person_hands_drink.jpg either.)

bench  Time Holistic on one photo resized to --size, each mode in a FRESH child process:

    .venv-mp/bin/python bench/peers/mediapipe_holistic.py bench \
        --photo tests/data/person_hands_drink.jpg --size 1280x720 --runs 30 --json out.json

       Resize: --fit letterbox (default) scales the whole photo to fit inside WxH
       (Pillow BICUBIC) and pads the rest with black, centred; --fit cover scales to cover
       WxH and centre-crops. The child measures: construction time of Holistic (graph and
       model load), the first process() call, then runs-1 further calls (median, p90 by
       linear interpolation, min), and process peak RSS in MiB (psutil RSS sampled every
       10 ms by a background thread, and getrusage ru_maxrss). Mode "static" is
       static_image_mode=True (detection on every call, like percept's single-photo mode);
       mode "tracking" is static_image_mode=False (the same frame fed repeatedly, so after
       the first call MediaPipe tracks from the previous landmarks and skips detection).
       Prints one JSON line per mode and writes {"rows": [...]} to --json.
"""

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import threading
import time

MP_VERSION = "0.10.21"


def load_rgb(path):
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        return np.ascontiguousarray(np.asarray(im))


def pts(landmarks, vis=False):
    if landmarks is None:
        return None
    out = []
    for p in landmarks.landmark:
        row = [round(p.x, 4), round(p.y, 4)]
        if vis:
            row.append(round(p.visibility, 3))
        out.append(row)
    return out


def cmd_refs(args):
    import mediapipe as mp

    assert mp.__version__ == MP_VERSION, mp.__version__
    hol = mp.solutions.holistic
    photos = {}
    for path in args.photos:
        rgb = load_rgb(path)
        h, w = rgb.shape[:2]
        with hol.Holistic(
            static_image_mode=True,
            model_complexity=args.model_complexity,
            refine_face_landmarks=args.refine_face_landmarks,
            enable_segmentation=args.masks is not None,
        ) as model:
            res = model.process(rgb)
        if args.masks is not None and res.segmentation_mask is not None:
            # The person mask as MediaPipe returns it (float in [0, 1], image size), written as
            # an 8-bit grey PNG (value = round(255 * p)).
            import numpy as np
            from PIL import Image

            args.masks.mkdir(parents=True, exist_ok=True)
            grey = np.clip(np.rint(res.segmentation_mask * 255.0), 0, 255).astype(np.uint8)
            Image.fromarray(grey, "L").save(args.masks / (path.stem + ".png"), optimize=True)
        rec = {
            "width": w,
            "height": h,
            "pose": pts(res.pose_landmarks, vis=True),
            "face": pts(res.face_landmarks),
            "left_hand": pts(res.left_hand_landmarks),
            "right_hand": pts(res.right_hand_landmarks),
        }
        photos[path.name] = rec
        found = {k: (len(v) if v else None) for k, v in rec.items() if k not in ("width", "height")}
        print(f"{path.name} {w}x{h}: {found}", file=sys.stderr)
        # Handedness check: which pose wrist (15 = LEFT_WRIST, 16 = RIGHT_WRIST) is each hand's
        # landmark 0 (wrist) nearest to, in pixels?
        if rec["pose"]:
            for side in ("left_hand", "right_hand"):
                if rec[side]:
                    hx, hy = rec[side][0]
                    d = {
                        i: ((hx - rec["pose"][i][0]) * w) ** 2 + ((hy - rec["pose"][i][1]) * h) ** 2
                        for i in (15, 16)
                    }
                    near = min(d, key=d.get)
                    print(
                        f"  {side}: wrist at x={hx:.3f} y={hy:.3f}; nearest pose wrist "
                        f"{near} ({'LEFT' if near == 15 else 'RIGHT'}_WRIST, {d[near] ** 0.5:.0f} px; "
                        f"other {d[31 - near] ** 0.5:.0f} px)",
                        file=sys.stderr,
                    )
    generator = "bench/peers/mediapipe_holistic.py refs" + (
        f" --model-complexity {args.model_complexity}" if args.model_complexity != 1 else ""
    ) + (" --refine-face-landmarks" if args.refine_face_landmarks else "") + (
        f" --masks {args.masks}" if args.masks is not None else ""
    ) + " --out " + str(args.out) + " " + " ".join(
        str(p) for p in args.photos
    )
    doc = {
        "generator": generator,
        "mediapipe": MP_VERSION,
        "model_complexity": args.model_complexity,
        "settings": f"Holistic(static_image_mode=True, model_complexity={args.model_complexity}, "
        f"refine_face_landmarks={args.refine_face_landmarks}, "
        f"enable_segmentation={args.masks is not None}); Pillow decode, EXIF transpose, RGB",
        "coordinates": "x, y normalised to image width/height as MediaPipe returns them; pose rows are "
        "[x, y, visibility]; left_hand is the person's left hand",
        "photos": photos,
    }
    # Compact: one line per photo part.
    lines = ["{"]
    head = {k: v for k, v in doc.items() if k != "photos"}
    for k, v in head.items():
        lines.append(f" {json.dumps(k)}: {json.dumps(v)},")
    lines.append(' "photos": {')
    names = list(photos)
    for i, name in enumerate(names):
        rec = photos[name]
        lines.append(f"  {json.dumps(name)}: {{")
        keys = list(rec)
        for j, k in enumerate(keys):
            sep = "," if j < len(keys) - 1 else ""
            lines.append(f"   {json.dumps(k)}: {json.dumps(rec[k], separators=(',', ':'))}{sep}")
        lines.append("  }" + ("," if i < len(names) - 1 else ""))
    lines.append(" }")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # sanity
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text)} bytes)", file=sys.stderr)


def resize_to(rgb, width, height, fit):
    import numpy as np
    from PIL import Image

    h, w = rgb.shape[:2]
    im = Image.fromarray(rgb)
    if fit == "letterbox":
        s = min(width / w, height / h)
        nw, nh = round(w * s), round(h * s)
        canvas = Image.new("RGB", (width, height), (0, 0, 0))
        canvas.paste(im.resize((nw, nh), Image.BICUBIC), ((width - nw) // 2, (height - nh) // 2))
    else:
        s = max(width / w, height / h)
        nw, nh = round(w * s), round(h * s)
        big = im.resize((nw, nh), Image.BICUBIC)
        left, top = (nw - width) // 2, (nh - height) // 2
        canvas = big.crop((left, top, left + width, top + height))
    return np.ascontiguousarray(np.asarray(canvas))


class RssSampler(threading.Thread):
    def __init__(self, period=0.010):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.period = period
        self.peak = 0
        self.samples = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            rss = self.proc.memory_info().rss
            self.peak = max(self.peak, rss)
            self.samples += 1
            time.sleep(self.period)


def mib(b):
    return round(b / (1024 * 1024), 1)


def cmd_child(args):
    """One fresh process, one mode. Prints one JSON line."""
    sampler = RssSampler()
    sampler.start()
    rss0 = sampler.proc.memory_info().rss
    t = time.perf_counter()
    import mediapipe as mp

    import_s = time.perf_counter() - t
    width, height = (int(v) for v in args.size.lower().split("x"))
    rgb = resize_to(load_rgb(args.photo), width, height, args.fit)
    rss_loaded = sampler.proc.memory_info().rss
    static = args.mode == "static"
    cpu0 = time.process_time()
    t = time.perf_counter()
    model = mp.solutions.holistic.Holistic(
        static_image_mode=static,
        model_complexity=1,
        refine_face_landmarks=args.refine_face_landmarks,
        enable_segmentation=args.enable_segmentation,
    )
    construct_ms = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    res = model.process(rgb)
    first_ms = (time.perf_counter() - t) * 1e3
    found = {
        "pose": res.pose_landmarks is not None,
        "face": res.face_landmarks is not None,
        "left_hand": res.left_hand_landmarks is not None,
        "right_hand": res.right_hand_landmarks is not None,
    }
    times = []
    cpu1 = time.process_time()
    for _ in range(args.runs - 1):
        t = time.perf_counter()
        res = model.process(rgb)
        times.append((time.perf_counter() - t) * 1e3)
    cpu2 = time.process_time()
    found_last = {
        "pose": res.pose_landmarks is not None,
        "face": res.face_landmarks is not None,
        "left_hand": res.left_hand_landmarks is not None,
        "right_hand": res.right_hand_landmarks is not None,
    }
    model.close()
    time.sleep(0.03)
    sampler.stop.set()
    sampler.join()
    import numpy as np

    ts = np.array(times)
    row = {
        "impl": f"mediapipe {mp.__version__} holistic (legacy solutions, model_complexity=1, "
        f"refine_face_landmarks={args.refine_face_landmarks}, "
        f"enable_segmentation={args.enable_segmentation})",
        "mode": args.mode,
        "static_image_mode": static,
        "photo": str(args.photo),
        "size": f"{width}x{height}",
        "fit": args.fit,
        "runs": args.runs,
        "import_ms": round(import_s * 1e3, 1),
        "construct_ms": round(construct_ms, 1),
        "first_call_ms": round(first_ms, 1),
        "steady_n": len(times),
        "steady_median_ms": round(float(np.median(ts)), 2),
        "steady_p90_ms": round(float(np.percentile(ts, 90)), 2),
        "steady_min_ms": round(float(ts.min()), 2),
        "steady_cpu_ms_per_call": round((cpu2 - cpu1) * 1e3 / len(times), 2),
        "first_cpu_ms_incl_construct": round((cpu1 - cpu0) * 1e3, 1),
        "found_first": found,
        "found_last": found_last,
        "rss_start_mib": mib(rss0),
        "rss_after_import_and_decode_mib": mib(rss_loaded),
        "peak_rss_sampled_mib": mib(sampler.peak),
        "rss_samples": sampler.samples,
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpus": len(os.sched_getaffinity(0)),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(row), flush=True)


def cmd_bench(args):
    rows = []
    for mode in ("static", "tracking"):
        load_before = [round(x, 2) for x in os.getloadavg()]
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "_child",
                "--photo",
                str(args.photo),
                "--size",
                args.size,
                "--runs",
                str(args.runs),
                "--fit",
                args.fit,
                "--mode",
                mode,
            ]
            + (["--refine-face-landmarks"] if args.refine_face_landmarks else [])
            + (["--enable-segmentation"] if args.enable_segmentation else []),
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        row = json.loads(out.strip().splitlines()[-1])
        row["loadavg_before"] = load_before
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows}, indent=1) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("refs")
    r.add_argument("--out", required=True, type=pathlib.Path)
    r.add_argument("--model-complexity", type=int, choices=(0, 1), default=1,
                   help="0 = BlazePose lite, 1 = full (the default, as percept's default)")
    r.add_argument("--refine-face-landmarks", action="store_true",
                   help="478 face points (468 + both irises, from the attention mesh)")
    r.add_argument("--masks", type=pathlib.Path,
                   help="enable_segmentation and write each photo's person mask as <stem>.png here")
    r.add_argument("photos", nargs="+", type=pathlib.Path)
    for name in ("bench", "_child"):
        b = sub.add_parser(name)
        b.add_argument("--photo", required=True, type=pathlib.Path)
        b.add_argument("--size", default="1280x720")
        b.add_argument("--runs", type=int, default=30)
        b.add_argument("--fit", choices=("letterbox", "cover"), default="letterbox")
        b.add_argument("--refine-face-landmarks", action="store_true")
        b.add_argument("--enable-segmentation", action="store_true")
        if name == "bench":
            b.add_argument("--json", type=pathlib.Path)
        else:
            b.add_argument("--mode", choices=("static", "tracking"), required=True)
    args = ap.parse_args()
    {"refs": cmd_refs, "bench": cmd_bench, "_child": cmd_child}[args.cmd](args)


if __name__ == "__main__":
    main()
