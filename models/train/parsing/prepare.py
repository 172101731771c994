"""Data preparation: CCP's labels mapped onto LIP's 20, and each photo's pose crop.

1. `percept batch holistic` (the release binary, ONNX Runtime when present) runs the shipped
   BlazePose and face-mesh models once over every CCP photo: the person's pose ROI (the crop the
   parser runs on at inference), 33 pose landmarks and the 468-point face mesh.
2. CCP's labels go through labels.CCP_TO_LIP; `skin` is split into face (inside the face mesh's
   oval), left/right arm and leg (nearest limb of the person's own pose, the person's own sides)
   and background (neck and torso skin, as in LIP); shoes into left/right by the nearer foot;
   stockings and tights are labelled as the leg they cover.

Writes <out>/labels/NNNN.png (LIP label per photo pixel) and <out>/people.json (ROI per photo).
Nothing is written into the repository; the photos are read in place from the CCP folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import paths
from labels import CCP_TO_LIP, L, LEG_COVER, SHOE, SKIN

FACE_OVAL = [
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
    148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
]
# Pose landmark indices (BlazePose; left/right are the person's own).
ARM = {
    "left": [(11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19)],
    "right": [(12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20)],
}
LEG = {
    "left": [(23, 25), (25, 27), (27, 29), (29, 31), (27, 31)],
    "right": [(24, 26), (26, 28), (28, 30), (30, 32), (28, 32)],
}
FOOT = {"left": [(27, 29), (29, 31), (27, 31)], "right": [(28, 30), (30, 32), (28, 32)]}


def segment_distance(px: np.ndarray, a, b) -> np.ndarray:
    """Distance of points px (N, 2) to the segment a-b."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    ab = b - a
    denom = max(float(ab @ ab), 1e-6)
    t = np.clip(((px - a) @ ab) / denom, 0.0, 1.0)
    return np.linalg.norm(px - (a + t[:, None] * ab), axis=1)


def limb_distance(px: np.ndarray, pts: np.ndarray, segments) -> np.ndarray:
    return np.min([segment_distance(px, pts[i], pts[j]) for i, j in segments], axis=0)


def polygon_mask(shape, polygon) -> np.ndarray:
    img = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(img).polygon([tuple(map(float, p)) for p in polygon], fill=1)
    return np.asarray(img, dtype=bool)


def run_holistic(percept: str, photos: Path, out: Path) -> None:
    """The shipped pose and face-mesh models over every photo, through percept itself."""
    out.mkdir(parents=True, exist_ok=True)
    done = len(list(out.glob("*.json"))) - (1 if (out / "summary.json").exists() else 0)
    if done >= len(list(photos.glob("*.jpg"))):
        print(f"holistic results present in {out}", file=sys.stderr)
        return
    # --skip-existing: an interrupted preparation resumes where it stopped.
    cmd = [percept, "batch", "holistic", str(photos), "-o", str(out), "--image-format", "jpg",
           "--skip-existing", "-O", "hands=false", "-O", "draw=false"]
    print("running", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=False)


def split_labels(ccp: np.ndarray, names: list[str], holistic: dict) -> tuple[np.ndarray, dict]:
    """CCP label map -> LIP label map, with skin, shoes and leg covers split by geometry."""
    h, w = ccp.shape
    lip = np.zeros((h, w), np.uint8)
    special = {SKIN: [], SHOE: [], LEG_COVER: []}
    for cid, name in enumerate(names):
        target = CCP_TO_LIP[name]
        sel = ccp == cid
        if not sel.any():
            continue
        if target in special:
            special[target].append(sel)
        else:
            lip[sel] = L[target]
    stats = {"pose": False, "face_mesh": False}
    pose = holistic.get("pose") or []
    if len(pose) != 33:
        # No pose: nothing to split by. Skin and shoes stay unlabelled (background) and the
        # photo is dropped by the caller.
        return lip, stats
    stats["pose"] = True
    pts = np.array([[p["x"], p["y"]] for p in pose], np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    shoulder_w = float(np.linalg.norm(pts[11] - pts[12]))
    torso_h = float(np.linalg.norm((pts[11] + pts[12]) / 2 - (pts[23] + pts[24]) / 2))
    scale = max(shoulder_w, 0.6 * torso_h, 8.0)

    def coords(sel):
        return np.stack([xx[sel], yy[sel]], axis=1).astype(np.float32) + 0.5

    face = holistic.get("face") or []
    face_region = np.zeros((h, w), bool)
    if len(face) >= 468:
        stats["face_mesh"] = True
        face_region = polygon_mask((h, w), [(face[i]["x"], face[i]["y"]) for i in FACE_OVAL])
    skin = np.any(special[SKIN], axis=0) if special[SKIN] else np.zeros((h, w), bool)
    if skin.any():
        px = coords(skin)
        d = {
            "left_arm": limb_distance(px, pts, ARM["left"]),
            "right_arm": limb_distance(px, pts, ARM["right"]),
            "left_leg": limb_distance(px, pts, LEG["left"]),
            "right_leg": limb_distance(px, pts, LEG["right"]),
        }
        # Torso skin (inside the shoulder-hip quad) and the neck (mid-shoulder to nose) are
        # background in LIP; a limb within ~a third of a shoulder width still wins over them
        # (an arm lying across the belly is arm).
        torso = polygon_mask((h, w), [pts[11], pts[12], pts[24], pts[23]])[skin]
        neck = segment_distance(px, (pts[11] + pts[12]) / 2, pts[0])
        limb_radius = 0.35 * scale
        names_ = list(d)
        stack = np.stack([d[k] for k in names_], axis=1)
        best = stack.argmin(axis=1)
        best_d = stack.min(axis=1)
        trunk_d = np.where(torso, 0.0, neck)
        label = np.array([L[k] for k in names_], np.uint8)[best]
        label[(best_d > limb_radius) & (trunk_d + limb_radius < best_d)] = 0
        label[torso & (best_d > limb_radius)] = 0
        # The face: inside the mesh's oval; without a mesh, a disc around the head's points
        # above the shoulders.
        in_face = face_region[skin]
        if not stats["face_mesh"]:
            head = pts[[0, 2, 5, 7, 8]]
            centre = head.mean(axis=0)
            radius = max(0.6 * float(np.linalg.norm(pts[7] - pts[8])), 0.25 * scale)
            above = px[:, 1] < min(pts[11, 1], pts[12, 1])
            in_face = (np.linalg.norm(px - centre, axis=1) < radius) & above
        label[in_face] = L["face"]
        lip[skin] = label
    for target, sides, names_ in ((SHOE, FOOT, ("left_shoe", "right_shoe")),
                                  (LEG_COVER, LEG, ("left_leg", "right_leg"))):
        if not special[target]:
            continue
        sel = np.any(special[target], axis=0)
        px = coords(sel)
        dl = limb_distance(px, pts, sides["left"])
        dr = limb_distance(px, pts, sides["right"])
        lip[sel] = np.where(dl <= dr, L[names_[0]], L[names_[1]])
    return lip, stats


def main() -> None:
    ap = paths.arguments(__doc__)
    ap.add_argument("--out", default=str(paths.DATA))
    ap.add_argument("--percept", default=str(paths.PERCEPT))
    args = ap.parse_args()
    ccp, out = Path(args.ccp), Path(args.out)
    names = (ccp / "labels.txt").read_text().split()
    assert len(names) == 59, f"expected CCP's 59 labels, got {len(names)}"
    started = time.time()
    run_holistic(args.percept, ccp / "photos", out / "holistic")
    (out / "labels").mkdir(parents=True, exist_ok=True)
    people, counts = {}, {"photos": 0, "pose": 0, "face_mesh": 0}
    for photo in sorted((ccp / "photos").glob("*.jpg")):
        pid = photo.stem
        ccp_labels = np.asarray(Image.open(ccp / "labels" / f"{pid}.png"))
        result_path = out / "holistic" / f"{pid}.json"
        holistic = json.loads(result_path.read_text()) if result_path.exists() else {}
        lip, stats = split_labels(ccp_labels, names, holistic)
        Image.fromarray(lip).save(out / "labels" / f"{pid}.png")
        counts["photos"] += 1
        counts["pose"] += stats["pose"]
        counts["face_mesh"] += stats["face_mesh"]
        roi = ((holistic.get("parts") or {}).get("pose") or {}).get("roi")
        people[pid] = {"roi": roi, **stats}
    (out / "people.json").write_text(json.dumps(people, indent=1))
    counts["seconds"] = round(time.time() - started, 1)
    print(json.dumps(counts))


if __name__ == "__main__":
    os.environ.setdefault("PERCEPT_LOG", "warn")
    main()
