// Package eval measures how well depth and ego-motion estimators do on a recorded
// sequence with ground truth, and writes the result as plots and a JSON + Markdown
// summary: the engine of `edgedepth eval`.
//
// # Concepts
//
// Source: a recorded sequence with ground truth. SimSource reads the sequence format of
// camera/sim (what `edgedepth sim write` and `edgedepth record` produce: depth in
// millimetres, poses in TUM format); KITTISource reads a KITTI raw drive with the depth
// benchmark's ground truth (OpenKITTIRaw) or a KITTI odometry sequence (OpenKITTIOdometry;
// the layouts and conventions are documented in kitti.go). Options.PoseTruth replaces
// a source's poses with a TUM trajectory, associated by capture time.
//
// Predictor: an estimator under evaluation. FromEstimator wraps any depth.Estimator (the
// SGBM matcher); a network comes from the model code; LivePredictor replays the daemon's
// output as captured from MQTT (CaptureWriter writes such captures). A Prediction holds
// a metric depth map of the left image and, optionally, the left camera's pose in the
// estimator's own world.
//
// Metrics: for depth, the KITTI metrics of depth.Compare (abs rel, sq rel, RMSE, RMSE log,
// δ < 1.25, 1.25², 1.25³) per frame, metric and median-scaled, within the depth caps and
// the crop (Garg or Eigen, as fractions of the image), averaged over frames; with the
// coverage (how much of the truth an estimator gives a depth for), since a matcher's
// metrics count only the pixels it answers. For trajectories, odom.EvaluateTrajectory
// (ATE after SE(3) and Sim(3) alignment, KITTI segment RPE, per-frame RPE, drift in %
// of distance) over the frames with both a predicted and a true pose. Frames a predictor
// has no output for (ErrNoOutput) are counted as missing, never dropped silently.
//
// Report: the summary (Report), written by Evaluation.Write as summary.json and
// summary.md beside the plots; several estimators of one run appear side by side in
// every table and overlaid in every plot.
//
// # Lifecycle
//
// Open a Source, build the Predictors, call Evaluate (which reads every frame once, in
// order, and hands it to each predictor in turn), then Evaluation.Write. Evaluate does not
// close the predictors: their owner does. Cancelling Evaluate's context ends it after
// the frame in progress with the partial evaluation and the context's error.
//
// # Concurrency
//
// Evaluate runs on the caller's goroutine and calls Predict from it only, so a
// Predictor need not be safe for concurrent use. CaptureWriter is safe for concurrent
// use (an MQTT client delivers depth and poses from its own goroutine).
package eval
