package eval

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Write puts the evaluation into dir (created if needed; files of an earlier
// evaluation there are replaced):
//
//	summary.json            the Report (schema ReportSchema)
//	summary.md              the Report for people, with the plots inline
//	trajectory.png          top view (x–z, metres) of the ground truth and of each
//	                        estimator's trajectory after SE(3) (solid) and Sim(3)
//	                        (dashed) alignment; TrajectoryPlotPx square
//	trajectory_error.png    position error over time after each alignment
//	depth_error.png         abs rel per frame over time, metric and median-scaled
//	depth_error_NNNNNN.png  image | prediction | truth | |error| of frame NNNNNN, for
//	                        Options.DepthMaps evenly spaced frames with depth truth
//
// Plots without anything to show (no trajectory, no depth truth) are not written.
// Report.Files lists what was.
func (ev *Evaluation) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	var files []string
	anyTraj, anyDepth := false, false
	for _, r := range ev.runs {
		anyTraj = anyTraj || (r.traj != nil && r.traj.err == nil)
		anyDepth = anyDepth || len(r.depth) > 0
	}
	if anyTraj {
		if err := ev.plotTrajectory(filepath.Join(dir, "trajectory.png")); err != nil {
			return err
		}
		if err := ev.plotTrajectoryError(filepath.Join(dir, "trajectory_error.png")); err != nil {
			return err
		}
		files = append(files, "trajectory.png", "trajectory_error.png")
	}
	if anyDepth {
		if err := ev.plotDepthError(filepath.Join(dir, "depth_error.png")); err != nil {
			return err
		}
		files = append(files, "depth_error.png")
	}
	for _, s := range ev.maps {
		name := fmt.Sprintf("depth_error_%06d.png", s.index)
		ok, err := ev.plotDepthFigure(filepath.Join(dir, name), s)
		if err != nil {
			return err
		}
		if ok {
			files = append(files, name)
		}
	}
	ev.Report.Files = append([]string{"summary.json", "summary.md"}, files...)

	var js bytes.Buffer
	if err := ev.Report.WriteJSON(&js); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "summary.json"), js.Bytes()); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "summary.md"), ev.Report.Markdown())
}
