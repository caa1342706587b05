package calib3d

/*
#include <stdlib.h>
#include "calib3d.h"
*/
import "C"

import (
	"runtime"
	"sync"

	"gocv.io/x/gocv"
)

// SGBMMode selects the cost aggregation of semi-global matching (cv::StereoSGBM::MODE_*).
type SGBMMode int

// SGBM modes, as OpenCV numbers them.
const (
	// ModeSGBM aggregates along 5 directions in one pass (OpenCV's default).
	ModeSGBM SGBMMode = 0
	// ModeHH aggregates along 8 directions in two passes; needs a full-size cost volume
	// (width·height·numDisparities·2 bytes).
	ModeHH SGBMMode = 1
	// Mode3Way aggregates along 3 directions; fastest and parallelised over rows.
	Mode3Way SGBMMode = 2
	// ModeHH4 aggregates along 4 directions.
	ModeHH4 SGBMMode = 3
)

func (m SGBMMode) String() string {
	switch m {
	case ModeSGBM:
		return "sgbm"
	case ModeHH:
		return "hh"
	case Mode3Way:
		return "3way"
	case ModeHH4:
		return "hh4"
	}
	return "unknown"
}

// SGBMParams are the arguments of cv::StereoSGBM::create, passed through unchanged;
// OpenCV checks them when Compute runs. Disparities are in pixels.
type SGBMParams struct {
	MinDisparity      int
	NumDisparities    int // a positive multiple of 16
	BlockSize         int // odd, >= 1
	P1, P2            int // smoothness penalties, P2 > P1
	Disp12MaxDiff     int // left-right check tolerance in pixels; negative disables it
	PreFilterCap      int
	UniquenessRatio   int // percent
	SpeckleWindowSize int // pixels; 0 disables speckle filtering
	SpeckleRange      int // pixels
	Mode              SGBMMode
}

// StereoSGBM is an OpenCV semi-global block matcher. It keeps its internal buffers
// between calls, so matching frames of one size allocates nothing after the first.
type StereoSGBM struct {
	mu      sync.Mutex // guards h against Close racing a forgotten concurrent caller
	h       *sgbmHandle
	cleanup runtime.Cleanup
	params  SGBMParams
}

// sgbmHandle is apart from StereoSGBM so that the safety-net cleanup can free it
// without keeping the StereoSGBM reachable.
type sgbmHandle struct {
	once sync.Once
	p    *C.EdcvStereoSGBM
}

func (h *sgbmHandle) free() {
	h.once.Do(func() {
		C.edcv_sgbm_free(h.p)
		h.p = nil
		live.Add(-1)
	})
}

// NewStereoSGBM creates a matcher. Call Close when done.
func NewStereoSGBM(p SGBMParams) (*StereoSGBM, error) {
	cp := C.EdcvSGBMParams{
		min_disparity:       C.int(p.MinDisparity),
		num_disparities:     C.int(p.NumDisparities),
		block_size:          C.int(p.BlockSize),
		p1:                  C.int(p.P1),
		p2:                  C.int(p.P2),
		disp12_max_diff:     C.int(p.Disp12MaxDiff),
		pre_filter_cap:      C.int(p.PreFilterCap),
		uniqueness_ratio:    C.int(p.UniquenessRatio),
		speckle_window_size: C.int(p.SpeckleWindowSize),
		speckle_range:       C.int(p.SpeckleRange),
		mode:                C.int(p.Mode),
	}
	var cs *C.EdcvStereoSGBM
	if err := statusError("sgbm create", C.edcv_sgbm_new(cp, &cs)); err != nil {
		return nil, err
	}
	live.Add(1)
	s := &StereoSGBM{h: &sgbmHandle{p: cs}, params: p}
	s.cleanup = runtime.AddCleanup(s, (*sgbmHandle).free, s.h)
	return s, nil
}

// Params returns the parameters the matcher was created with.
func (s *StereoSGBM) Params() SGBMParams { return s.params }

// InvalidDisparity is the value Compute writes where it found no match:
// MinDisparity - 1.
func (s *StereoSGBM) InvalidDisparity() float32 { return float32(s.params.MinDisparity - 1) }

// Compute matches a rectified pair and writes the disparity of every left pixel, in
// pixels, to disp as CV_32FC1 (disp is re-created only when its size or type differ, so
// pass the same Mat every frame). left and right must have the same size and type,
// CV_8UC1 or CV_8UC3, and wider than the search range (more than
// max(MinDisparity+NumDisparities, 0) − min(MinDisparity, 0) columns). Pixels without a reliable match (no unique cost minimum, failed
// left-right check, removed speckles, the left border where the search range leaves
// the image) hold InvalidDisparity.
func (s *StereoSGBM) Compute(left, right gocv.Mat, disp *gocv.Mat) error {
	const op = "sgbm compute"
	lp, err := matPtr(op, "left", &left)
	if err != nil {
		return err
	}
	rp, err := matPtr(op, "right", &right)
	if err != nil {
		return err
	}
	dp, err := matPtr(op, "disparity", disp)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return ErrClosed
	}
	return statusError(op, C.edcv_sgbm_compute(s.h.p, lp, rp, dp))
}

// Close frees the matcher. It is safe to call more than once.
func (s *StereoSGBM) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return nil
	}
	s.cleanup.Stop()
	s.h.free()
	s.h = nil
	return nil
}
