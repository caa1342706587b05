#!/usr/bin/env python3
"""Times Monodepth2's typical convolutions in PyTorch (CPU), to compare with the Go
benchmark BenchmarkConv2D in conv_bench_test.go, which lists the same shapes.

    /usr/bin/python3 tensor/cpu/testdata/conv_bench.py [--threads N] [--reps R]

Prints, per shape, milliseconds per forward call and per forward + backward call, with
the same gradients the Go benchmark computes (no input gradient for the first layer,
whose input is the image; a bias gradient where the layer has a bias).
"""
import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

# name, x shape, w shape, stride, padding, bias, input needs a gradient
SHAPES = [
    ("enc_conv1_7x7s2_3-64_192x640", (2, 3, 192, 640), (64, 3, 7, 7), 2, 3, False, False),
    ("enc_layer1_3x3_64-64_48x160", (2, 64, 48, 160), (64, 64, 3, 3), 1, 1, False, True),
    ("enc_layer2_3x3s2_64-128_48x160", (2, 64, 48, 160), (128, 64, 3, 3), 2, 1, False, True),
    ("enc_layer2_down_1x1s2_64-128_48x160", (2, 64, 48, 160), (128, 64, 1, 1), 2, 0, False, True),
    ("enc_layer3_3x3_256-256_12x40", (2, 256, 12, 40), (256, 256, 3, 3), 1, 1, False, True),
    ("enc_layer4_3x3_512-512_6x20", (2, 512, 6, 20), (512, 512, 3, 3), 1, 1, False, True),
    # The decoder pads by reflection first and then convolves without padding.
    ("dec_upconv1_1_3x3_96-32_96x320", (2, 96, 98, 322), (32, 96, 3, 3), 1, 0, True, True),
    ("dec_upconv0_1_3x3_16-16_192x640", (2, 16, 194, 642), (16, 16, 3, 3), 1, 0, True, True),
    ("dec_dispconv0_3x3_16-1_192x640", (2, 16, 194, 642), (1, 16, 3, 3), 1, 0, True, True),
]


def timeit(fn, reps):
    fn()  # warm up: oneDNN builds its kernels on the first call
    fn()
    best = float("inf")
    total = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        total += dt
    return total / reps * 1e3, best * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all cores, as Go's GOMAXPROCS)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="one JSON object per shape (for edgedepth bench)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.json:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mkldnn {torch.backends.mkldnn.is_available()}")
        print(f"{'shape':40s} {'fwd ms':>9s} {'(best)':>8s} {'fwd+bwd ms':>11s} {'(best)':>8s}")
    for name, xs, ws, stride, pad, has_bias, need_x in SHAPES:
        x = torch.randn(xs)
        w = torch.randn(ws)
        b = torch.randn(ws[0]) if has_bias else None

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, b, stride, pad)

        xg = x.clone().requires_grad_(need_x)
        wg = w.clone().requires_grad_(True)
        bg = b.clone().requires_grad_(True) if has_bias else None
        dy = torch.randn(F.conv2d(x, w, b, stride, pad).shape)

        def fwdbwd():
            y = F.conv2d(xg, wg, bg, stride, pad)
            y.backward(dy)
            xg.grad = None
            wg.grad = None
            if bg is not None:
                bg.grad = None

        f_mean, f_best = timeit(fwd, args.reps)
        b_mean, b_best = timeit(fwdbwd, args.reps)
        if args.json:
            print(json.dumps({"name": name, "x": xs, "w": ws, "stride": stride, "pad": pad, "bias": has_bias,
                              "need_x": need_x, "fwd_ms": f_best, "fwdbwd_ms": b_best, "torch": torch.__version__}))
        else:
            print(f"{name:40s} {f_mean:9.2f} {f_best:8.2f} {b_mean:11.2f} {b_best:8.2f}")


if __name__ == "__main__":
    main()
