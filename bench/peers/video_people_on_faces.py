#!/usr/bin/env python3
"""Checks a holistic video run against a clip's labelled faces (bench/peers/make_clips.py).

    target/release/percept run holistic bench/out/clips/group_720p.mp4 --json > bench/out/group.jsonl
    python3 bench/peers/video_people_on_faces.py bench/out/group.jsonl bench/out/clips/group_720p.faces.json

For each frame, each labelled face should hold exactly one person's nose (pose point 0) inside
its box grown by 15 % each way (a turned head's nose nears the box's edge), and no nose should
be on no face: a frame fails when a face holds no nose (someone lost), two noses (someone
counted twice), or a nose sits on no face (a pose stitched between two people). Prints the
failing frames and one summary line as JSON: frames, frames with every face held once and no
stray nose, frames per person count.
"""

import argparse
import collections
import json

GROW = 0.15


def on(nose, face):
    x, y = nose
    return (face["x"] - GROW * face["width"] <= x <= face["x"] + (1 + GROW) * face["width"]
            and face["y"] - GROW * face["height"] <= y <= face["y"] + (1 + GROW) * face["height"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lines", help="percept run holistic --json output, one JSON line per frame")
    parser.add_argument("faces", help="the clip's <clip>.faces.json")
    args = parser.parse_args()
    with open(args.lines) as f:
        frames = [json.loads(line) for line in f if line.strip()]
    with open(args.faces) as f:
        truth = json.load(f)["faces_per_frame"]
    if len(frames) != len(truth):
        raise SystemExit(f"{len(frames)} result lines for {len(truth)} labelled frames")
    good = 0
    counts = collections.Counter()
    for i, (frame, faces) in enumerate(zip(frames, truth)):
        noses = [(p["pose"][0]["x"], p["pose"][0]["y"]) for p in frame["people"]]
        held = [sum(on(n, f) for n in noses) for f in faces]
        stray = [n for n in noses if not any(on(n, f) for f in faces)]
        counts[frame["person_count"]] += 1
        if all(h == 1 for h in held) and not stray:
            good += 1
        else:
            print(f"frame {i}: noses per face {held}, on no face {[(round(x), round(y)) for x, y in stray]}")
    print(json.dumps({"frames": len(frames), "every_face_one_nose": good,
                      "frames_per_person_count": dict(sorted(counts.items()))}))


if __name__ == "__main__":
    main()
