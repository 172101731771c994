"""Default locations shared by the recipe's scripts, and their common arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DATA = REPO / "target" / "parsing-data"  # prepare.py's labels and ROIs
TRAIN = REPO / "target" / "parsing-train"  # train.py's weights and logs
PERCEPT = REPO / "target" / "release" / "percept"
POSE_MODEL = REPO / "models" / "pose_landmark_full.onnx"


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """A parser with `--ccp` (the dataset folder) already added."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ccp", default=str(REPO.parent / "shared" / "datasets" / "ccp"),
                    help="the CCP folder (photos/, labels/, labels.txt)")
    return ap
