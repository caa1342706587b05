#!/usr/bin/env python3
"""Export the PyTorch reference's Monodepth2 networks with torch.onnx.export.

The Go test TestTorchExportAgrees runs this to get a second, independently made
ONNX export of the same weights: it loads the Monodepth2 checkpoints that
monodepth2_ref.py parity wrote (encoder.pth, depth.pth, pose_encoder.pth,
pose.pth) into the reference's own modules and exports them with the input and
output names and semantics of edgedepth's nn/onnx:

  depth.onnx  image (N,3,H,W in [0,1]) -> disparity (sigmoid, scale 0),
              depth (metres, the reference's disp_to_depth)
  pose.onnx   image_pair (N,6,H,W) -> axis_angle, translation (N,3): the first
              frame pair of the reference's PoseDecoder

Batch, height and width are dynamic axes; opset 13. Runs with Debian's
python3-torch (1.13) without the onnx package.

usage: torch_export.py --ref monodepth2_ref.py --ckpt DIR --out DIR [--height H --width W]
"""
import argparse
import importlib.util
import os

import torch


def load_ref(path):
    spec = importlib.util.spec_from_file_location("monodepth2_ref", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tensors_only(state):
    return {k: v for k, v in state.items() if torch.is_tensor(v)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ref", required=True)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=192)
    a = p.parse_args()
    ref = load_ref(a.ref)

    def load(module, name):
        state = tensors_only(torch.load(os.path.join(a.ckpt, name), map_location="cpu"))
        module.load_state_dict(state)
        return module.eval()

    enc = load(ref.ResnetEncoder(1), "encoder.pth")
    dec = load(ref.DepthDecoder(enc.num_ch_enc), "depth.pth")
    penc = load(ref.ResnetEncoder(2), "pose_encoder.pth")
    pdec = load(ref.PoseDecoder(penc.num_ch_enc), "pose.pth")

    class Depth(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.dec = enc, dec

        def forward(self, image):
            disp = self.dec(self.enc(image))[0]
            return disp, ref.disp_to_depth(disp)

    class Pose(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.dec = penc, pdec

        def forward(self, pair):
            axisangle, translation = self.dec(self.enc(pair))  # (N, frames, 1, 3)
            return axisangle[:, 0, 0], translation[:, 0, 0]

    os.makedirs(a.out, exist_ok=True)
    img = torch.rand(1, 3, a.height, a.width)
    axes = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad():
        torch.onnx.export(Depth().eval(), (img,), os.path.join(a.out, "depth.onnx"), opset_version=13,
                          input_names=["image"], output_names=["disparity", "depth"],
                          dynamic_axes={"image": axes, "disparity": axes, "depth": axes})
        torch.onnx.export(Pose().eval(), (torch.cat([img, img], 1),), os.path.join(a.out, "pose.onnx"),
                          opset_version=13, input_names=["image_pair"], output_names=["axis_angle", "translation"],
                          dynamic_axes={"image_pair": axes, "axis_angle": {0: "batch"}, "translation": {0: "batch"}})
    print("torch %s exported %s" % (torch.__version__, a.out))


if __name__ == "__main__":
    main()
