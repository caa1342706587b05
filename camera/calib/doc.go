// Package calib reads and writes stereo camera calibrations and rectifies raw stereo
// pairs with them.
//
// # Why
//
// Depth from a stereo pair needs two things the cameras do not give: the pair must be
// rectified (undistorted and rotated so that a scene point lies on the same image row in
// both eyes, which turns matching into a 1-D search along rows), and the rectified focal
// length and baseline must be known (depth = fx·baseline / disparity). Both come from a
// calibration made offline with a chessboard, in whatever tool the robot's integrator
// uses; this package reads the formats those tools write, so no conversion step stands
// between a calibration and the robot.
//
// # Formats
//
//   - OpenCV cv::FileStorage YAML (`%YAML:1.0`, `!!opencv-matrix` nodes with rows, cols,
//     dt and data), as OpenCV's stereo_calib sample writes it: intrinsics.yml (M1, D1,
//     M2, D2) and extrinsics.yml (R, T, R1, R2, P1, P2, Q), one file or both; the
//     spellings K1/K2 and cameraMatrix1/2, distCoeffs1/2 are accepted too.
//   - OpenCV cv::FileStorage XML (`<opencv_storage>`, `type_id="opencv-matrix"`), same keys.
//   - ROS camera_info YAML (camera_calibration_parsers), one file per camera: the stereo
//     extrinsics are recovered from the rectification matrices and the right camera's
//     projection matrix, whose P[0,3] = −fx'·baseline.
//
// Only the plumb-bob / rational model of OpenCV (4, 5, 8, 12 or 14 coefficients) is
// supported; fisheye (equidistant) calibrations are rejected with an error.
// WriteOpenCVYAML writes what cv::FileStorage reads back (and what this package reads).
//
// Image size: OpenCV's stereo_calib sample does not record the size of the calibration
// images. The readers take it from image_width/image_height or imageSize when present;
// Load refuses a calibration without it, because a calibration used at another
// resolution rectifies wrongly without any visible error. Add the two keys to the file.
//
// # Units
//
// The translation T is taken to be in metres; the rectified baseline, and so every depth
// the robot publishes, is in the units of T. OpenCV's calibration samples give T in the
// units of the chessboard square size they were told (stereo_calib defaults to 1, i.e.
// "squares"): scale such a calibration with Stereo.ScaleTranslation (the square size in
// metres; 0.001 for one in millimetres). Validate rejects baselines beyond
// MaxBaselineM, which catches most calibrations left in millimetres.
//
// # Lifecycle and concurrency
//
// Stereo is a plain value. A Rectifier owns OpenCV memory (its rectification maps):
// Close it when done; Rectify is called from one goroutine at a time.
package calib
