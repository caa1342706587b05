// C interface of the calib3d shim. Every function that can fail returns an EdcvStatus;
// no C++ exception ever crosses this boundary (an exception escaping into cgo aborts the
// whole process, and OpenCV reports bad arguments by throwing cv::Exception).
#ifndef EDGEDEPTH_CALIB3D_H
#define EDGEDEPTH_CALIB3D_H

#ifdef __cplusplus
#include <opencv2/core.hpp>
extern "C" {
// Same representation as gocv's C.Mat: a pointer to a heap cv::Mat owned by a gocv.Mat.
typedef cv::Mat* EdcvMat;
#else
typedef void* EdcvMat;
#endif

// Status codes that are not OpenCV's. OpenCV's own cv::Error::Code values are 0 or
// negative; ours are positive so the two never collide.
enum {
	EDCV_OK = 0,
	EDCV_ERR_STD = 1,       // a std::exception other than cv::Exception (e.g. bad_alloc)
	EDCV_ERR_UNKNOWN = 2,   // something that is not a std::exception was thrown
	EDCV_ERR_ARGUMENT = 3,  // the shim rejected its arguments before calling OpenCV
};

// EdcvStatus is the result of a shim call: code == EDCV_OK and msg == NULL on success.
// On failure msg, when not NULL, is allocated with malloc and owned by the caller.
typedef struct EdcvStatus {
	int code;
	char* msg;
} EdcvStatus;

// edcv_version returns OpenCV's runtime version string, allocated with malloc.
char* edcv_version(void);

// edcv_set_num_threads sets the size of OpenCV's global worker pool
// (cv::setNumThreads: 0 = sequential, negative = OpenCV's default).
EdcvStatus edcv_set_num_threads(int n);
int edcv_get_num_threads(void);

// edcv_throw_for_test throws one kind of exception inside the guard (0: cv::Exception,
// 1: std::exception, 2: an int, 3: an argument error), so tests can check that each
// becomes a status. Nothing else calls it.
EdcvStatus edcv_throw_for_test(int kind);

// ---- Semi-global block matching (cv::StereoSGBM) ----

typedef struct EdcvStereoSGBM EdcvStereoSGBM;

// Mirrors the arguments of cv::StereoSGBM::create. edcv_sgbm_new rejects values that
// OpenCV documents as invalid but does not check.
typedef struct EdcvSGBMParams {
	int min_disparity;
	int num_disparities;
	int block_size;
	int p1;
	int p2;
	int disp12_max_diff;
	int pre_filter_cap;
	int uniqueness_ratio;
	int speckle_window_size;
	int speckle_range;
	int mode;
} EdcvSGBMParams;

EdcvStatus edcv_sgbm_new(EdcvSGBMParams p, EdcvStereoSGBM** out);
void edcv_sgbm_free(EdcvStereoSGBM* s);

// edcv_sgbm_compute matches a rectified pair (8-bit, 1 or 3 channels, same size and
// type) and writes the disparity of the left image in pixels to disp (re-created as
// CV_32FC1 only when its size or type differ). Pixels without a match hold
// min_disparity - 1.
EdcvStatus edcv_sgbm_compute(EdcvStereoSGBM* s, EdcvMat left, EdcvMat right, EdcvMat disp);

#ifdef __cplusplus
}
#endif

#endif
