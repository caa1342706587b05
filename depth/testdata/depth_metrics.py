#!/usr/bin/env python3
"""Independent reference for depth.Compare, written from the KITTI depth evaluation as
Monodepth2's evaluate_depth.py runs it (compute_errors, depth caps, optional median
scaling, predictions clamped to the caps), not from the Go code. numpy only.
The caps are inclusive, [min_depth_m, max_depth_m], as depth.CompareOptions documents
(Monodepth2 excludes truths exactly at a cap; only that equality differs).

stdin:  a JSON list of cases, each
          {"pred": [...], "truth": [...], "mask": [bool, ...] or null,
           "min_depth_m": x, "max_depth_m": y (0: no upper cap), "median_scaling": bool}
        pixel values may be NaN, Infinity or -Infinity (Python's JSON extension).
stdout: a JSON list with, per case, the fields of depth.Metrics by their Go names, or
        {"error": "no valid pixels"}.
"""

import json
import sys

import numpy as np


def evaluate(case):
    pred = np.asarray(case["pred"], dtype=np.float64)
    gt = np.asarray(case["truth"], dtype=np.float64)
    lo = case["min_depth_m"]
    hi = case["max_depth_m"] if case["max_depth_m"] > 0 else np.inf

    with np.errstate(invalid="ignore"):
        keep = np.isfinite(gt) & (gt > 0) & (gt >= lo) & (gt <= hi)
        keep &= np.isfinite(pred) & (pred > 0)
    if case["mask"] is not None:
        keep &= np.asarray(case["mask"], dtype=bool)
    pred, gt = pred[keep], gt[keep]
    if gt.size == 0:
        return {"error": "no valid pixels"}

    ratio = 1.0
    if case["median_scaling"]:
        ratio = float(np.median(gt) / np.median(pred))
    pred = np.clip(pred * ratio, lo, hi)

    thresh = np.maximum(gt / pred, pred / gt)
    rel = np.abs(gt - pred) / gt
    return {
        "AbsRel": float(np.mean(rel)),
        "SqRel": float(np.mean((gt - pred) ** 2 / gt)),
        "RMSE": float(np.sqrt(np.mean((gt - pred) ** 2))),
        "RMSELog": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "Delta1": float(np.mean(thresh < 1.25)),
        "Delta2": float(np.mean(thresh < 1.25 ** 2)),
        "Delta3": float(np.mean(thresh < 1.25 ** 3)),
        "MedianAbsRel": float(np.median(rel)),
        "Scale": ratio,
        "N": int(gt.size),
    }


def main():
    cases = json.load(sys.stdin)
    json.dump([evaluate(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
