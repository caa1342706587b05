package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/edgedepth/edgedepth/internal/atomicfile"
	"github.com/edgedepth/edgedepth/nn/monodepth2"
	"github.com/edgedepth/edgedepth/tensor"
)

// File names inside an export directory.
const (
	DepthFile    = "depth.onnx"
	PoseFile     = "pose.onnx"
	ManifestFile = "model.json"
)

// ManifestFormat is the version of ManifestFile's layout.
const ManifestFormat = 1

// Manifest is ManifestFile: what an export directory holds and how to feed it. It is
// written last, so a directory without it is an export that did not finish.
type Manifest struct {
	Format       int     `json:"format"`
	Producer     string  `json:"producer"`
	Version      string  `json:"producer_version,omitempty"`
	Opset        int     `json:"opset"`
	IRVersion    int     `json:"ir_version"`
	ChannelScale float64 `json:"channel_scale"`
	// Source says where the weights came from (a model store version, ...).
	Source             string  `json:"source,omitempty"`
	Normalisation      string  `json:"normalisation"`
	DepthFromDisparity string  `json:"depth_from_disparity"`
	MinDepthM          float64 `json:"min_depth_m"`
	MaxDepthM          float64 `json:"max_depth_m"`
	BatchNorm          string  `json:"batch_norm"`
	Depth              Network `json:"depth"`
	Pose               Network `json:"pose"`
}

// Network describes one exported model file.
type Network struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	// StructureSHA256 is the hash of the graph without its weights
	// (MetaStructureSHA256): unchanged when only the weights change.
	StructureSHA256 string       `json:"structure_sha256"`
	Bytes           int          `json:"bytes"`
	Inputs          []TensorInfo `json:"inputs"`
	Outputs         []TensorInfo `json:"outputs"`
	Notes           string       `json:"notes,omitempty"`
}

// TensorInfo is one graph input or output: float32, row-major.
type TensorInfo struct {
	Name    string `json:"name"`
	DType   string `json:"dtype"`
	Shape   []Dim  `json:"shape"`
	Meaning string `json:"meaning"`
}

// MarshalJSON writes a fixed size as a number and a symbolic one as its name.
func (d Dim) MarshalJSON() ([]byte, error) {
	if d.Param != "" {
		return json.Marshal(d.Param)
	}
	return []byte(strconv.FormatInt(d.Value, 10)), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Dim) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*d = Dim{}
		return json.Unmarshal(b, &d.Param)
	}
	*d = Dim{}
	return json.Unmarshal(b, &d.Value)
}

// WriteDir exports m's depth and pose networks into dir (created if needed) as
// DepthFile and PoseFile, then ManifestFile; each file is written atomically.
// source is recorded in the manifest (may be empty).
func WriteDir(dir string, b tensor.Backend, m *monodepth2.Model, o Options, source string) (Manifest, error) {
	if err := o.Validate(); err != nil {
		return Manifest{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Manifest{}, fmt.Errorf("onnx export: %w", err)
	}
	depth, err := exportDepth(b, m, o)
	if err != nil {
		return Manifest{}, err
	}
	pose, err := exportPose(b, m, o)
	if err != nil {
		return Manifest{}, err
	}
	man := describe(m, o, source, depth, pose)
	for _, f := range []struct {
		name string
		data []byte
	}{{DepthFile, depth.data}, {PoseFile, pose.data}} {
		if err := atomicfile.WriteBytes(filepath.Join(dir, f.name), 0o644, f.data); err != nil {
			return Manifest{}, fmt.Errorf("onnx export: %w", err)
		}
	}
	raw, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, ManifestFile), 0o644, append(raw, '\n')); err != nil {
		return Manifest{}, fmt.Errorf("onnx export: %w", err)
	}
	return man, nil
}

// describe is the manifest of an export of m with o.
func describe(m *monodepth2.Model, o Options, source string, depth, pose exported) Manifest {
	scale := m.Options.ChannelScale
	if scale == 0 {
		scale = 1
	}
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	img, one := o.dims(3), o.dims(1)
	vec := []Dim{one[0], {Value: 3}}
	return Manifest{
		Format: ManifestFormat, Producer: Producer, Version: o.ProducerVersion,
		Opset: Opset, IRVersion: IRVersion, ChannelScale: scale, Source: source,
		Normalisation:      Normalisation,
		DepthFromDisparity: DepthFormula,
		MinDepthM:          monodepth2.MinDepth, MaxDepthM: monodepth2.MaxDepth,
		BatchNorm: "BatchNormalization nodes with the running statistics (inference mode); ONNX Runtime and TensorRT fold them into the convolutions",
		Depth: Network{
			File: DepthFile, SHA256: sum(depth.data), StructureSHA256: depth.structure, Bytes: len(depth.data),
			Inputs: []TensorInfo{{Name: DepthInput, DType: "float32", Shape: img,
				Meaning: "RGB images, NCHW, values in [0, 1] (not normalised: the graph does it); height and width multiples of 32, at least 64"}},
			Outputs: []TensorInfo{
				{Name: DepthDisparity, DType: "float32", Shape: one, Meaning: "sigmoid disparity at full resolution (scale 0), in (0, 1)"},
				{Name: DepthDepth, DType: "float32", Shape: one, Meaning: "depth in metres from the disparity (depth_from_disparity), in [0.1, 100]; metric when the network was trained with the stereo baseline"},
			},
		},
		Pose: Network{
			File: PoseFile, SHA256: sum(pose.data), StructureSHA256: pose.structure, Bytes: len(pose.data),
			Inputs: []TensorInfo{{Name: PoseInput, DType: "float32", Shape: o.dims(6),
				Meaning: "two RGB images in [0, 1] stacked along channels: [source, target] for a source frame before the target, [target, source] for one after it (Monodepth2's convention)"}},
			Outputs: []TensorInfo{
				{Name: PoseAxisAngle, DType: "float32", Shape: vec, Meaning: "rotation of the pair, axis-angle, radians"},
				{Name: PoseTranslation, DType: "float32", Shape: vec, Meaning: "translation of the pair, in the network's distance unit (metres when trained with the stereo baseline)"},
			},
			Notes: "the pose decoder's last 1x1 convolution has 12 outputs (two frame pairs, as in the released pose.pth); its spatial mean × 0.01 gives six values per pair and only the first pair is output, as monodepth2.PoseDecoder.Forward does; for a source before the target invert the transform",
		},
	}
}

// ReadManifest reads dir's ManifestFile.
func ReadManifest(dir string) (Manifest, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Manifest{}, err
	}
	var man Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if man.Format != ManifestFormat {
		return Manifest{}, fmt.Errorf("%s: format %d, this edgedepth reads format %d", filepath.Join(dir, ManifestFile), man.Format, ManifestFormat)
	}
	return man, nil
}
