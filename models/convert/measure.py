#!/usr/bin/env python3
"""Measure the models in the manifest: size, onnxruntime load + median single-thread latency,
and, for converted models, the max |ONNX - TFLite| on the test photos and on random input next to
TFLite's own noise floor (its XNNPACK delegate vs its reference kernels on the same input).

Prints a Markdown table (the numbers in MODELS.md come from it).
Usage: python models/convert/measure.py [--runs 20]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import test_convert as T


def tflite_ref(path):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), num_threads=1,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    inp = it.get_input_details()[0]

    def run(x):
        it.set_tensor(inp["index"], x)
        it.invoke()
        return {o["name"]: it.get_tensor(o["index"]).copy() for o in it.get_output_details()}

    return run


def worst(cmps, probs):
    """'max abs diff over outputs and inputs' text; mask probabilities reported apart."""
    raw = max((d for cmp in cmps for k, (d, _) in cmp.items() if k not in probs), default=0.0)
    text = f"{raw:.1e}"
    if probs:
        mask = max(d for cmp in cmps for k, (d, _) in cmp.items() if k in probs)
        text += f"; mask prob {mask:.1e}"
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    photos = T.photos()
    rows = []
    for spec in T.MANIFEST["model"]:
        name = spec["name"]
        path = T.MODELS_DIR / spec["file"]
        t0 = time.perf_counter()
        sess = T.session(path)
        load_ms = (time.perf_counter() - t0) * 1e3
        shape = [d if d > 0 else 480 if i == 2 else 640 for i, d in enumerate(spec["input"]["shape"])]
        x = np.random.default_rng(0).uniform(*spec["input"]["range"], shape).astype(np.float32)
        T.run_onnx(sess, x)
        times = []
        for _ in range(a.runs):
            t = time.perf_counter()
            T.run_onnx(sess, x)
            times.append((time.perf_counter() - t) * 1e3)
        med = statistics.median(times)
        err_photo = err_rand = floor = "-"
        if name in T.TFLITE_MODELS:
            src = T.source_file(name)
            tfl, ref = T.TFLite(src), tflite_ref(src)
            probs = T.prob_outputs(spec)
            xs = [T.to_input(img, spec) for _, img in photos]
            lo, hi = spec["input"]["range"]
            xr = np.random.default_rng(1234).uniform(lo, hi, spec["input"]["shape"]).astype(np.float32)
            cp = [T.compare(tfl(xi), T.run_onnx(sess, xi), probs) for xi in xs]
            cr = [T.compare(tfl(xr), T.run_onnx(sess, xr), probs)]
            cf = [T.compare(tfl(xi), ref(xi), probs) for xi in xs + [xr]]
            err_photo, err_rand, floor = worst(cp, probs), worst(cr, probs), worst(cf, probs)
        rows.append((name, spec["file"], path.stat().st_size / 1e6, spec["sha256"][:12], load_ms, med,
                     err_photo, err_rand, floor))
    print("| model | file | MB | sha256 | ORT load ms | ORT median ms (1 thread) | max abs diff, photos | "
          "max abs diff, random | TFLite XNNPACK vs ref kernels |")
    print("|---|---|---:|---|---:|---:|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | `{r[3]}` | {r[4]:.0f} | {r[5]:.2f} | {r[6]} | {r[7]} | {r[8]} |")
    print(f"\ntotal {sum(r[2] for r in rows):.2f} MB; photos: {[n for n, _ in photos]}")


if __name__ == "__main__":
    main()
