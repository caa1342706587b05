// Package calib3d is edgedepth's own cgo binding to the parts of OpenCV's calib3d module
// that gocv does not wrap (gocv v0.31, the last release that builds against Debian 12's
// OpenCV 4.6, has no StereoSGBM, stereoRectify or stereoCalibrate).
//
// # Concepts
//
// The binding takes and returns gocv Mats, so callers keep using gocv for everything
// else: a gocv.Mat's Ptr is a heap cv::Mat*, which the C++ side (calib3d.cpp) uses
// directly. The C interface (calib3d.h) is plain C, one function per operation.
//
// OpenCV reports bad arguments by throwing cv::Exception, and a C++ exception that
// reaches cgo aborts the process. Every shim function therefore runs its body inside one
// guard that catches cv::Exception, std::exception and anything else and returns a
// status; statusError turns that status into an *Error. Adding an operation means: a C
// function in calib3d.h whose body is wrapped in guarded(...), and a Go function that
// calls it and passes the status to statusError.
//
// Chessboard calibration (FindChessboardCorners, InitCameraMatrix2D, StereoCalibrate,
// UndistortPoints) passes points as flat float arrays and results as plain values, so it
// owns no C++ memory beyond a call; SampleStereoCalibFlags and SampleTermCriteria are
// the settings of OpenCV's stereo_calib sample.
//
// Rectification comes in two forms: StereoRectify, InitUndistortRectifyMap and Remap
// mirror OpenCV's functions over gocv Mats; RectifyMap keeps one camera's maps in C++
// and remaps packed 8-bit images straight from and into Go byte slices, which is what a
// stream wants (no Mat wrapping, no copies).
//
// # Lifecycle
//
// Objects that own C++ memory (StereoSGBM, RectifyMap) have an explicit Close. A cleanup attached at
// creation frees an object that was dropped without Close, as a safety net only, and
// LiveObjects counts what is still allocated so tests can check it returns to zero.
// gocv Mats passed in stay owned by the caller.
//
// # Concurrency
//
// An object is used from one goroutine at a time. OpenCV parallelises inside a call on
// its own worker pool, whose size SetNumThreads sets for the whole process.
package calib3d
