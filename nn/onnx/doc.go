// Package onnx writes the Monodepth2 networks of nn/monodepth2 (any ChannelScale) as
// ONNX models, operator set 13 (IR version 7), for inference engines that cannot
// train: ONNX Runtime and, through it, TensorRT on a Jetson (jetson/trt). The
// protobuf is written by hand with protowire, following the field numbers of
// onnx.proto; no generated bindings are needed.
//
// # Concepts
//
// Two models, each self-contained:
//
//   - depth.onnx (Depth): input "image", N×3×H×W RGB in [0, 1]; outputs
//     "disparity", the sigmoid disparity at scale 0 (N×1×H×W), and "depth" in
//     metres, N×1×H×W, = 1 / (1/100 + (1/0.1 − 1/100)·disparity), the formula of
//     monodepth2.DispToDepth. The encoder's input normalisation,
//     (x − 0.45) / 0.225, is inside the graph: feed unnormalised images.
//   - pose.onnx (Pose): input "image_pair", two RGB images in [0, 1] stacked along
//     channels (N×6×H×W, as trainer.Predict stacks [previous, current]); outputs
//     "axis_angle" (radians) and "translation", N×3 each: the spatial mean of the
//     pose decoder's last convolution, ×0.01, first frame pair, exactly as
//     monodepth2.PoseDecoder.Forward returns them.
//
// The graphs follow the model's structure layer by layer, read from its parameters
// by the names of the released Monodepth2 checkpoints: ResNet-18 (7×7 stem, max
// pool, basic blocks with 1×1 projection shortcuts), reflection-padded 3×3
// convolutions (Pad mode "reflect"), ELU, nearest ×2 upsampling (Resize,
// asymmetric coordinates, floor), skip concatenations, sigmoid; batch norm as
// BatchNormalization nodes with the running statistics (inference mode, whatever
// mode the model is in: ONNX Runtime and TensorRT fold them into the convolutions
// themselves, and the initializers keep our parameter names, one to one). An export
// that would leave a parameter of the networks out fails (ErrModel), so a change of
// nn/monodepth2 cannot silently produce a different network; only the disparity
// heads of scales 1–3, used in training only, are left out on purpose.
//
// Batch, height and width are fixed by Options or left symbolic ("batch",
// "height", "width"). Every model carries metadata: the network, the channel
// scale, the normalisation and depth formula in words, and the SHA-256 of its
// structure without weights (MetaStructureSHA256), which stays the same when only
// the weights change. WriteDir writes both files and a JSON manifest (Manifest,
// model.json) that says all of this for tools that do not read ONNX metadata.
//
// The numerical checks live in jetson/trt, which has ONNX Runtime: the files
// against our own forward pass, and against PyTorch's exporter on the reference
// networks.
package onnx
