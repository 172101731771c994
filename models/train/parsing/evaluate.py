"""Evaluates percept's parsers end to end on CCP's held-out split (0901-1004).

Runs `percept batch parse` (the release binary, the shipped models, the engine it picks) over
the held-out photos once per parser, reads each result's label mask and compares it with:
- LIP labels: prepare.py's mapping of CCP's hand-drawn labels (skin split by the person's own
  pose and face mesh). Per-class IoU over the classes present in the split, their mean, pixel
  accuracy.
- Coarse groups, straight from CCP's labels with no geometry: background / hair+hat / skin /
  upper clothes (incl. dress, coat) / lower clothes / shoes. CCP's one `skin` label includes neck
  and torso skin, which LIP (and so both parsers) leave as background: this grouping counts
  that against the parser. The regression test in crates/vision/tests/parse_ccp.rs computes
  the same numbers.

Writes a metrics JSON (default models/train/parsing/metrics.json).
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import paths
from labels import CCP_TO_LIP, COARSE, L, LEG_COVER, LIP, LIP_TO_COARSE, NUM_CLASSES, SHOE, SKIN

HELD_OUT = range(901, 1005)
WATCHED = range(851, 901)


def ccp_to_coarse(names: list[str]) -> np.ndarray:
    table = np.zeros(256, np.uint8)
    for cid, name in enumerate(names):
        target = CCP_TO_LIP[name]
        if target in (SKIN, LEG_COVER):
            table[cid] = COARSE.index("skin")
        elif target == SHOE:
            table[cid] = COARSE.index("shoes")
        else:
            table[cid] = LIP_TO_COARSE[L[target]]
    return table


def confusion(pred: np.ndarray, truth: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(truth.astype(np.int64) * n + pred, minlength=n * n).reshape(n, n)


def scores(conf: np.ndarray, names: list[str]) -> dict:
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    present = conf.sum(1) > 0
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return {
        "miou": round(float(iou[present].mean()), 4),
        "pixel_accuracy": round(float(inter.sum() / conf.sum()), 4),
        "iou": {names[c]: round(float(iou[c]), 4) for c in range(len(names)) if present[c]},
    }


def run_parser(percept: str, photos: Path, out: Path, parser: str) -> float:
    """`parser` is a parser name, optionally followed by `:` and more options for it
    (`learned:mirror=false`, several separated by `;`)."""
    out.mkdir(parents=True, exist_ok=True)
    name, _, extra = parser.partition(":")
    options = [f"parser={name}"] + [o for o in extra.split(";") if o]
    # From the repository's root, whatever the caller's folder: percept looks for ONNX Runtime
    # in ./.ort first (scripts/fetch-ort), and metrics.json's figures are ONNX Runtime's. Run
    # from elsewhere, it fell back to tract without a word.
    if os.sep in percept:
        percept = os.path.abspath(percept)
    started = time.time()
    subprocess.run([percept, "batch", "parse", str(photos.resolve()), "-o", str(out.resolve()),
                    "--jobs", "1", "--force"] + [a for o in options for a in ("-O", o)],
                   check=True, cwd=paths.REPO)
    return time.time() - started


def main() -> None:
    ap = paths.arguments(__doc__)
    ap.add_argument("--data", default=str(paths.DATA))
    ap.add_argument("--percept", default=str(paths.PERCEPT))
    ap.add_argument("--parsers", default="learned,learned:mirror=false,pose-guided",
                    help="comma-separated; each a parser name, optionally with `:option=value` "
                         "(several joined by `;`)")
    ap.add_argument("--split", choices=["held-out", "watched"], default="held-out",
                    help="held-out: 0901-1004, the figures reported; watched: 0851-0900, the "
                         "photos design choices are made on")
    ap.add_argument("--out", default=str(paths.HERE / "metrics.json"))
    args = ap.parse_args()
    ccp, data = Path(args.ccp), Path(args.data)
    names = (ccp / "labels.txt").read_text().split()
    coarse_of = ccp_to_coarse(names)
    split = HELD_OUT if args.split == "held-out" else WATCHED
    ids = [f"{i:04d}" for i in split]
    report = {"split": f"CCP {ids[0]}-{ids[-1]} ({args.split}, {len(ids)} photos)", "parsers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for pid in ids:
            os.symlink(ccp / "photos" / f"{pid}.jpg", photos / f"{pid}.jpg")
        for parser in args.parsers.split(","):
            out = Path(tmp) / parser.replace(":", "_").replace(";", "_").replace("=", "-")
            seconds = run_parser(args.percept, photos, out, parser)
            lip_conf = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
            coarse_conf = np.zeros((len(COARSE), len(COARSE)), np.int64)
            emitted = np.zeros(NUM_CLASSES, np.int64)
            persons = []
            parser_name = None
            for pid in ids:
                result = json.loads((out / f"{pid}.json").read_text())
                parser_name = result.get("parser", parser_name)
                persons.append(len(result["persons"]))
                pred = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["mask"]))))
                truth = np.asarray(Image.open(data / "labels" / f"{pid}.png"))
                ccp_truth = np.asarray(Image.open(ccp / "labels" / f"{pid}.png"))
                assert pred.shape == truth.shape, (pid, pred.shape, truth.shape)
                lip_conf += confusion(pred.ravel(), truth.ravel(), NUM_CLASSES)
                coarse_pred = np.array(LIP_TO_COARSE, np.uint8)[pred]
                coarse_conf += confusion(coarse_pred.ravel(), coarse_of[ccp_truth].ravel(), len(COARSE))
                emitted += np.bincount(pred.ravel(), minlength=NUM_CLASSES) > 0
            present = lip_conf.sum(1) > 0
            report["parsers"][parser] = {
                "parser_field": parser_name,
                "coarse": scores(coarse_conf, COARSE),
                "lip": scores(lip_conf, LIP),
                "classes_present_not_emitted": [LIP[c] for c in range(NUM_CLASSES)
                                                if present[c] and emitted[c] == 0],
                "photos_with_persons": {str(k): persons.count(k) for k in sorted(set(persons))},
                "batch_seconds_one_job": round(seconds, 1),
            }
            print(parser, json.dumps(report["parsers"][parser]["coarse"]),
                  "lip mIoU", report["parsers"][parser]["lip"]["miou"], flush=True)
    metrics = Path(args.out)
    if metrics.exists():
        # The training log and the notes beside the figures stay; the figures are replaced.
        kept = json.loads(metrics.read_text())
        kept.update(report)
        report = kept
    metrics.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
