#!/usr/bin/env python3
"""Generate the OpenCV reference outputs that crates/art/tests/ssim.rs compares against.

For each input photo: downscale to REF_WIDTH px wide (INTER_AREA), save that as
`<out>/<stem>.png` (the exact pixels the test feeds to percept), then run OpenCV with its
default parameters and save `<stem>.pencil.png`, `<stem>.pencil-color.png` and
`<stem>.stylize.png`.

    .venv-bench/bin/python bench/peers/make_art_refs.py --out crates/art/tests/refs PHOTO...

Requires opencv-contrib-python-headless==4.11.0.86 (bench/peers/requirements.txt).
"""

import argparse
import pathlib

import cv2

REF_WIDTH = 192
PNG = [cv2.IMWRITE_PNG_COMPRESSION, 9]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--width", type=int, default=REF_WIDTH)
    ap.add_argument("photos", nargs="+", type=pathlib.Path)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("opencv", cv2.__version__)
    for photo in args.photos:
        bgr = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"cannot read {photo}")
        h, w = bgr.shape[:2]
        if w > args.width:
            bgr = cv2.resize(bgr, (args.width, round(h * args.width / w)), interpolation=cv2.INTER_AREA)
        stem = photo.stem
        cv2.imwrite(str(args.out / f"{stem}.png"), bgr, PNG)
        grey, colour = cv2.pencilSketch(bgr, sigma_s=60, sigma_r=0.07, shade_factor=0.02)
        cv2.imwrite(str(args.out / f"{stem}.pencil.png"), grey, PNG)
        cv2.imwrite(str(args.out / f"{stem}.pencil-color.png"), colour, PNG)
        cv2.imwrite(str(args.out / f"{stem}.stylize.png"), cv2.stylization(bgr, sigma_s=60, sigma_r=0.45), PNG)
        print(f"{stem}: {bgr.shape[1]}x{bgr.shape[0]}")


if __name__ == "__main__":
    main()
