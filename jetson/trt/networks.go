package trt

import "fmt"

// Networks adapts an Engine to the daemon's inference engine (inference.Networks):
// batch 1 at a fixed size, host buffers in and out. It owns the Engine.
type Networks struct {
	e    *Engine
	w, h int
	disp []float32 // the depth network's disparity output, unused
	pair []float32 // [prev, cur] stacked along channels
}

// NewNetworks wraps e for images of width x height.
func NewNetworks(e *Engine, width, height int) *Networks {
	n := width * height
	return &Networks{e: e, w: width, h: height, disp: make([]float32, n), pair: make([]float32, 6*n)}
}

// Depth writes the metric depth of img (3·H·W planar RGB in [0, 1]) into depthM.
func (n *Networks) Depth(img, depthM []float32) error {
	if err := n.e.Depth(img, 1, n.h, n.w, n.disp, depthM); err != nil {
		return fmt.Errorf("onnxruntime: %w", err)
	}
	return nil
}

// Pose runs the pose network on the pair [prev, cur].
func (n *Networks) Pose(prev, cur []float32) (aa, tr [3]float32, err error) {
	copy(n.pair, prev)
	copy(n.pair[len(prev):], cur)
	if err := n.e.Pose(n.pair, 1, n.h, n.w, aa[:], tr[:]); err != nil {
		return aa, tr, fmt.Errorf("onnxruntime: %w", err)
	}
	return aa, tr, nil
}

// Close closes the engine.
func (n *Networks) Close() error { return n.e.Close() }
