#!/usr/bin/env python3
"""Time OpenCV 4.11's art filters and percept's on the same images, sizes and machine.

    .venv-bench/bin/python bench/peers/opencv_art.py \
        --photo tests/data/group5_stairs.jpg \
        --percept target/release/examples/art_bench --csv bench/out/art/art.csv

Steps: resize the photo (INTER_CUBIC) to each --sizes entry and save it as
bench/out/art/<stem>_<W>x<H>.png; time each OpenCV style on it (one untimed warm-up at sizes
below 4 MP, then --runs timed runs; median and min); if --percept is given, run that binary
(crates/art/examples/art_bench.rs) on the same files; write all rows to --csv
(`impl,style,width,height,runs,median_ms,min_ms`) and print a Markdown table with ratios.

OpenCV peers: pencil/pencil-color = cv2.pencilSketch(60, 0.07, 0.02) (one call gives both;
timed once per style), stylize = cv2.stylization(60, 0.45), oil = cv2.xphoto.oilPainting(7, 1).
watercolor and cartoon have no OpenCV function, so their peers are percept's recipes written
with OpenCV calls (see the functions below).
"""

import argparse
import csv
import pathlib
import statistics
import subprocess
import time

import cv2
import numpy as np


def watercolor(bgr):
    res = cv2.edgePreservingFilter(bgr, flags=cv2.RECURS_FILTER, sigma_s=60, sigma_r=0.5).astype(np.float32) / 255
    y = cv2.cvtColor(res, cv2.COLOR_BGR2GRAY)
    mag = cv2.magnitude(cv2.Sobel(y, cv2.CV_32F, 1, 0), cv2.Sobel(y, cv2.CV_32F, 0, 1))
    edge = 1 - 0.35 * np.minimum(mag * 1.5, 1)
    h, w = y.shape
    rng = np.random.default_rng(0x9E3779B9)
    paper = 0.45 * cv2.resize(rng.random((h // 24 + 2, w // 24 + 2), np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    paper += 0.35 * cv2.resize(rng.random((h // 5 + 2, w // 5 + 2), np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    paper += 0.20 * rng.random((h, w), np.float32)
    washed = 1 - (1 - res * edge[..., None]) * 0.88
    return np.clip(washed * (1 - 0.15 * paper)[..., None] * 255, 0, 255).astype(np.uint8)


def cartoon(bgr, levels=6, threshold=0.8):
    res = cv2.edgePreservingFilter(bgr, flags=cv2.NORMCONV_FILTER, sigma_s=60, sigma_r=0.45).astype(np.float32) / 255
    y = cv2.cvtColor(res, cv2.COLOR_BGR2GRAY)
    mag = cv2.magnitude(cv2.Sobel(y, cv2.CV_32F, 1, 0), cv2.Sobel(y, cv2.CV_32F, 0, 1))
    ink = cv2.dilate((mag > threshold).astype(np.uint8), np.ones((3, 3), np.uint8))
    q = (np.clip(np.floor(res * levels), 0, levels - 1) + 0.5) / levels
    out = (q * 255).round().astype(np.uint8)
    out[ink != 0] = 0
    return out


STYLES = {
    "pencil": lambda b: cv2.pencilSketch(b, sigma_s=60, sigma_r=0.07, shade_factor=0.02)[0],
    "pencil-color": lambda b: cv2.pencilSketch(b, sigma_s=60, sigma_r=0.07, shade_factor=0.02)[1],
    "oil": lambda b: cv2.xphoto.oilPainting(b, 7, 1),
    "watercolor": watercolor,
    "stylize": lambda b: cv2.stylization(b, sigma_s=60, sigma_r=0.45),
    "cartoon": cartoon,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=pathlib.Path, default=pathlib.Path("tests/data/group5_stairs.jpg"))
    ap.add_argument("--sizes", default="800x600,1920x1080,4000x3000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--styles", default=",".join(STYLES))
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("bench/out/art"))
    ap.add_argument("--csv", type=pathlib.Path, default=pathlib.Path("bench/out/art/art.csv"))
    ap.add_argument("--percept", type=pathlib.Path, help="path to the art_bench example binary")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    src = cv2.imread(str(args.photo), cv2.IMREAD_COLOR)
    if src is None:
        raise SystemExit(f"cannot read {args.photo}")
    print(f"opencv {cv2.__version__}, threads {cv2.getNumThreads()}, photo {args.photo}")
    rows, files = [], []
    for size in args.sizes.split(","):
        w, h = map(int, size.split("x"))
        img = cv2.resize(src, (w, h), interpolation=cv2.INTER_CUBIC)
        path = args.out / f"{args.photo.stem}_{w}x{h}.png"
        cv2.imwrite(str(path), img)
        files.append(path)
        for style in args.styles.split(","):
            fn = STYLES[style]
            if w * h < 4_000_000:
                fn(img)
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                fn(img)
                times.append((time.perf_counter() - t) * 1e3)
            row = ["opencv", style, w, h, args.runs, round(statistics.median(times), 1), round(min(times), 1)]
            print(",".join(map(str, row)), flush=True)
            rows.append(row)
    if args.percept:
        out = subprocess.run([str(args.percept), "--runs", str(args.runs), *map(str, files)],
                             check=True, capture_output=True, text=True).stdout
        for line in out.splitlines()[1:]:
            print(line, flush=True)
            f = line.split(",")
            rows.append([f[0], f[1], int(f[2]), int(f[3]), int(f[4]), float(f[5]), float(f[6])])
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["impl", "style", "width", "height", "runs", "median_ms", "min_ms"])
        wr.writerows(rows)
    ours = {(r[1], r[2], r[3]): r[5] for r in rows if r[0] == "percept"}
    print("\n| style | size | OpenCV ms | percept ms | OpenCV / percept |\n|---|---|---:|---:|---:|")
    for r in rows:
        if r[0] == "opencv":
            p = ours.get((r[1], r[2], r[3]))
            ratio = f"{r[5] / p:.1f}×" if p else "–"
            print(f"| {r[1]} | {r[2]}×{r[3]} | {r[5]:.0f} | {p if p is not None else '–'} | {ratio} |")


if __name__ == "__main__":
    main()
