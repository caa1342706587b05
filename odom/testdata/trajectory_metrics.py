#!/usr/bin/env python3
"""Independent reference for odom.EvaluateTrajectory, written from the definitions
(TUM RGB-D benchmark: ATE and RPE; KITTI odometry devkit: segment errors; Umeyama 1991:
closed-form similarity alignment), not from the Go code. numpy only.

stdin:  a JSON list of cases, each
          {"est": [pose, ...], "gt": [pose, ...],
           "segment_lengths_m": [...], "segment_step_frames": k, "rpe_delta_frames": d}
        where a pose is the 3x4 matrix [R|t] (world_T_camera) as 3 rows of 4 numbers.
stdout: a JSON list with, per case, {"metrics": {...}, "per_frame": {...}} using the
        JSON names of odom.TrajectoryMetrics and odom.PerFrame.
"""

import json
import sys

import numpy as np


def homogeneous(rows):
    m = np.eye(4)
    m[:3, :] = np.asarray(rows, dtype=np.float64)
    return m


def umeyama(src, dst, with_scale):
    """Least-squares c, R, t with dst ~ c * R @ src + t (Umeyama, PAMI 1991, eqs. 34-43)."""
    n = src.shape[0]
    mu_src, mu_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mu_src, dst - mu_dst
    var_src = np.sum(src_c * src_c) / n
    cov = dst_c.T @ src_c / n
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[2, 2] = -1.0
    rot = u @ s @ vt
    c = float(np.trace(np.diag(d) @ s) / var_src) if with_scale else 1.0
    t = mu_dst - c * rot @ mu_src
    return c, rot, t


def rotation_angle(r):
    """Angle of a rotation matrix, stable near 0 and pi: atan2(sin, cos)."""
    sin = 0.5 * np.linalg.norm([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    cos = 0.5 * (np.trace(r[:3, :3]) - 1.0)
    return float(np.arctan2(sin, cos))


def error_motion(est_i, est_j, gt_i, gt_j):
    inv = np.linalg.inv
    return inv(inv(gt_i) @ gt_j) @ (inv(est_i) @ est_j)


def evaluate(case):
    est = [homogeneous(p) for p in case["est"]]
    gt = [homogeneous(p) for p in case["gt"]]
    n = len(gt)
    est_pos = np.array([p[:3, 3] for p in est])
    gt_pos = np.array([p[:3, 3] for p in gt])

    steps = np.linalg.norm(np.diff(gt_pos, axis=0), axis=1)
    path = np.concatenate([[0.0], np.cumsum(steps)])
    length = float(path[-1])

    metrics = {"frames": n, "length_m": length}
    per_frame = {"path_m": path.tolist()}

    for with_scale, key in ((False, "se3"), (True, "sim3")):
        c, rot, t = umeyama(est_pos, gt_pos, with_scale)
        aligned = (c * (rot @ est_pos.T)).T + t
        err = np.linalg.norm(aligned - gt_pos, axis=1)
        metrics["ate_%s_rmse_m" % key] = float(np.sqrt(np.mean(err ** 2)))
        per_frame["ate_%s_m" % key] = err.tolist()
        per_frame["aligned_%s" % key] = aligned.tolist()
        if with_scale:
            metrics["sim3_scale"] = c

    anchor = gt[0] @ np.linalg.inv(est[0])
    first = np.array([(anchor @ p)[:3, 3] for p in est])
    first_err = np.linalg.norm(first - gt_pos, axis=1)
    per_frame["aligned_first_pose"] = first.tolist()
    per_frame["first_pose_error_m"] = first_err.tolist()
    metrics["final_error_m"] = float(first_err[-1])
    metrics["drift_pct"] = 100.0 * float(first_err[-1]) / length

    delta = case["rpe_delta_frames"]
    trans, rot_deg = [], []
    for i in range(n - delta):
        e = error_motion(est[i], est[i + delta], gt[i], gt[i + delta])
        trans.append(float(np.linalg.norm(e[:3, 3])))
        rot_deg.append(np.degrees(rotation_angle(e)))
    if trans:
        metrics["rpe_frame_trans_rmse_m"] = float(np.sqrt(np.mean(np.square(trans))))
        metrics["rpe_frame_rot_rmse_deg"] = float(np.sqrt(np.mean(np.square(rot_deg))))
        per_frame["rpe_frame_trans_m"] = trans
        per_frame["rpe_frame_rot_deg"] = [float(x) for x in rot_deg]
    else:
        metrics["rpe_frame_trans_rmse_m"] = 0.0
        metrics["rpe_frame_rot_rmse_deg"] = 0.0
        per_frame["rpe_frame_trans_m"] = None
        per_frame["rpe_frame_rot_deg"] = None

    # KITTI: for each first frame (every step frames) and each length L, the segment
    # ends at the first frame whose path length exceeds path[first] + L.
    all_t, all_r, by_segment = [], [], []
    for seg in case["segment_lengths_m"]:
        t_err, r_err = [], []
        for i in range(0, n, case["segment_step_frames"]):
            j = int(np.searchsorted(path, path[i] + seg, side="right"))
            if j >= n:
                continue
            e = error_motion(est[i], est[j], gt[i], gt[j])
            t_err.append(np.linalg.norm(e[:3, 3]) / seg)
            r_err.append(rotation_angle(e) / seg)
        if not t_err:
            continue
        all_t += t_err
        all_r += r_err
        by_segment.append({
            "length_m": seg,
            "segments": len(t_err),
            "trans_pct": 100.0 * float(np.mean(t_err)),
            "rot_deg_per_m": float(np.degrees(np.mean(r_err))),
        })
    metrics["rpe_segments"] = len(all_t)
    metrics["rpe_by_segment"] = by_segment or None
    metrics["rpe_trans_pct"] = 100.0 * float(np.mean(all_t)) if all_t else 0.0
    metrics["rpe_rot_deg_per_m"] = float(np.degrees(np.mean(all_r))) if all_r else 0.0
    return {"metrics": metrics, "per_frame": per_frame}


def main():
    cases = json.load(sys.stdin)
    json.dump([evaluate(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
