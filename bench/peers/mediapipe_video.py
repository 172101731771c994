#!/usr/bin/env python3
"""MediaPipe 0.10.21 Holistic on a video file, as a peer for `percept run holistic clip.mp4`.

    .venv-mp/bin/python bench/peers/mediapipe_video.py bench/out/clips/person_720p.mp4 [--static]

Frames are decoded by OpenCV (cv2.VideoCapture, FFmpeg inside the wheel), converted to RGB
and given to one Holistic(static_image_mode=False) -- MediaPipe's tracking mode, which crops
each frame where the previous frame's pose was and runs the detector only when the person is
lost -- with model_complexity=1, smooth_landmarks=True, refine_face_landmarks=False and the
default confidences, as percept's defaults. `--static` gives static_image_mode=True (the
detector on every frame). The clock starts at the first frame (graph set-up excluded, as
percept's frames/s excludes model loading) and stops after the last frame's result.

Prints one JSON line: frames, frames with a pose, seconds, frames_per_second, and the median
per-frame `process` time in ms (inference alone, decoding excluded).
"""

import argparse
import json
import statistics
import time

import cv2
import mediapipe as mp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("video")
    parser.add_argument("--static", action="store_true")
    args = parser.parse_args()
    capture = cv2.VideoCapture(args.video)
    holistic = mp.solutions.holistic.Holistic(
        static_image_mode=args.static,
        model_complexity=1,
        smooth_landmarks=True,
        refine_face_landmarks=False,
    )
    frames = with_pose = 0
    process_ms = []
    start = None
    while True:
        ok, bgr = capture.read()
        if start is None:
            start = time.perf_counter()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        t0 = time.perf_counter()
        result = holistic.process(rgb)
        process_ms.append((time.perf_counter() - t0) * 1e3)
        frames += 1
        with_pose += result.pose_landmarks is not None
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "mode": "static" if args.static else "tracking",
                "frames": frames,
                "frames_with_pose": with_pose,
                "seconds": round(seconds, 3),
                "frames_per_second": round(frames / seconds, 2),
                "median_process_ms": round(statistics.median(process_ms), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
