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


// ---- Stereo rectification (cv::stereoRectify, cv::initUndistortRectifyMap, cv::remap) ----

// EdcvRect is a cv::Rect: x, y of the top-left corner, width and height in pixels.
typedef struct EdcvRect {
	int x, y, width, height;
} EdcvRect;

// edcv_stereo_rectify wraps cv::stereoRectify. k1, k2 are 3x3 camera matrices; d1, d2
// distortion coefficients (4, 5, 8, 12 or 14, or empty); r a 3x3 rotation (or 3x1
// Rodrigues vector) and t a 3-vector taking points from camera 1 to camera 2
// (X2 = R·X1 + T). The outputs r1, r2 (3x3), p1, p2 (3x4) and q (4x4) are (re)created as
// CV_64FC1. new_w, new_h of 0 mean "the input size". roi1, roi2 may be NULL.
EdcvStatus edcv_stereo_rectify(EdcvMat k1, EdcvMat d1, EdcvMat k2, EdcvMat d2, int width,
                               int height, EdcvMat r, EdcvMat t, int flags, double alpha,
                               int new_w, int new_h, EdcvMat r1, EdcvMat r2, EdcvMat p1,
                               EdcvMat p2, EdcvMat q, EdcvRect* roi1, EdcvRect* roi2);

// edcv_init_undistort_rectify_map wraps cv::initUndistortRectifyMap: for every pixel of
// the rectified width x height image, where to sample the raw image. map1_type is
// CV_16SC2 (fixed point, with map2 CV_16UC1 interpolation indices: the fast form for
// remap), CV_32FC1 (map1 = x, map2 = y) or CV_32FC2 (map1 = x,y; map2 empty).
EdcvStatus edcv_init_undistort_rectify_map(EdcvMat k, EdcvMat d, EdcvMat r, EdcvMat p,
                                           int width, int height, int map1_type,
                                           EdcvMat map1, EdcvMat map2);

// edcv_remap wraps cv::remap: dst (re-created with the size of map1 and the type of
// src when they differ) takes src sampled where the maps point. Pixels that map outside
// src get border_value (the same value in every channel) with BORDER_CONSTANT.
EdcvStatus edcv_remap(EdcvMat src, EdcvMat dst, EdcvMat map1, EdcvMat map2,
                      int interpolation, int border_mode, double border_value);

// EdcvRectifyMap owns the pair of maps of one camera, so that a caller remapping every
// frame of a stream holds one object instead of two Mats.
typedef struct EdcvRectifyMap EdcvRectifyMap;

// edcv_rectify_map_new computes the maps as edcv_init_undistort_rectify_map does and
// keeps them. The source size is what remap_packed will accept.
EdcvStatus edcv_rectify_map_new(EdcvMat k, EdcvMat d, EdcvMat r, EdcvMat p, int src_w,
                                int src_h, int dst_w, int dst_h, int map1_type,
                                EdcvRectifyMap** out);
void edcv_rectify_map_free(EdcvRectifyMap* m);

// edcv_rectify_map_remap_packed remaps a packed 8-bit image (rows of src_w·channels bytes,
// no padding) of the source size into dst, a packed buffer of the destination size with
// the same channel count. Neither buffer is copied or kept: OpenCV reads src and writes
// dst in place, during the call only. Linear interpolation; pixels that map outside the
// source are black.
EdcvStatus edcv_rectify_map_remap_packed(EdcvRectifyMap* m, const unsigned char* src,
                                         int src_w, int src_h, int channels,
                                         unsigned char* dst, int dst_w, int dst_h);

// ---- Chessboard calibration (cv::findChessboardCorners, cv::stereoCalibrate) ----

// Calibration flags, with OpenCV's values (cv::CALIB_*; calib3d.cpp asserts they match)
// so Go can name them without including OpenCV.
enum {
	EDCV_CALIB_USE_INTRINSIC_GUESS = 0x00001,
	EDCV_CALIB_FIX_ASPECT_RATIO = 0x00002,
	EDCV_CALIB_FIX_PRINCIPAL_POINT = 0x00004,
	EDCV_CALIB_ZERO_TANGENT_DIST = 0x00008,
	EDCV_CALIB_FIX_FOCAL_LENGTH = 0x00010,
	EDCV_CALIB_FIX_K1 = 0x00020,
	EDCV_CALIB_FIX_K2 = 0x00040,
	EDCV_CALIB_FIX_K3 = 0x00080,
	EDCV_CALIB_FIX_K4 = 0x00800,
	EDCV_CALIB_FIX_K5 = 0x01000,
	EDCV_CALIB_FIX_K6 = 0x02000,
	EDCV_CALIB_RATIONAL_MODEL = 0x04000,
	EDCV_CALIB_THIN_PRISM_MODEL = 0x08000,
	EDCV_CALIB_TILTED_MODEL = 0x40000,
	EDCV_CALIB_FIX_INTRINSIC = 0x00100,
	EDCV_CALIB_SAME_FOCAL_LENGTH = 0x00200,
};

// edcv_find_chessboard_corners looks for the cols x rows inner corners of a chessboard
// in img (CV_8UC1 or CV_8UC3) the way OpenCV's stereo_calib sample does: adaptive
// threshold with a normalised image, retried on the image upscaled 2x, then refined with
// cornerSubPix over an 11x11 half-window. corners receives 2·cols·rows floats (x, y
// row by row, as OpenCV orders them) when *found is 1; it is left undefined otherwise.
EdcvStatus edcv_find_chessboard_corners(EdcvMat img, int cols, int rows, float* corners,
                                        int* found);

// edcv_find_chessboard_corners_gray is edcv_find_chessboard_corners on a caller-owned
// 8-bit grey buffer (width x height, stride bytes a row). OpenCV reads it during the
// call only; nothing is copied or kept.
EdcvStatus edcv_find_chessboard_corners_gray(const unsigned char* pix, int width, int height,
                                             int stride, int cols, int rows, float* corners,
                                             int* found);

// Point sets of several views are passed flat: counts[v] points for view v, one after
// the other; object points as x, y, z floats, image points as x, y floats.

// edcv_init_camera_matrix_2d wraps cv::initCameraMatrix2D: a first camera matrix (k,
// 9 doubles row-major) from planar views. aspect_ratio 0 estimates fx and fy apart.
EdcvStatus edcv_init_camera_matrix_2d(const float* object_points, const float* image_points,
                                      const int* counts, int views, int width, int height,
                                      double aspect_ratio, double* k);

// EdcvStereoCalibration holds the in/out parameters of cv::stereoCalibrate. k1, k2, d1
// and d2 are read as the initial guess when the flags ask for one (d_len coefficients
// each, 0 for none); on return d_len is the model's coefficient count (5, 8, 12 or 14).
typedef struct EdcvStereoCalibration {
	double rms;
	double k1[9], k2[9];
	double d1[14], d2[14];
	int d_len;
	double r[9], t[3], e[9], f[9];
} EdcvStereoCalibration;

// edcv_stereo_calibrate wraps cv::stereoCalibrate over views sets of object points and
// their images in camera 1 and 2. max_count and epsilon are its termination criteria
// (0 and 0 keep OpenCV's default, 30 iterations or a change below 1e-6).
EdcvStatus edcv_stereo_calibrate(const float* object_points, const float* image_points1,
                                 const float* image_points2, const int* counts, int views,
                                 int width, int height, int flags, int max_count,
                                 double epsilon, EdcvStereoCalibration* c);

// edcv_undistort_points wraps cv::undistortPoints for n points (x, y floats): out
// receives them undistorted and, with p (9 doubles) not NULL, re-projected with that
// camera matrix (pixels); with p NULL, in normalised coordinates. d holds nd
// coefficients (0, 4, 5, 8, 12 or 14). out may be in.
EdcvStatus edcv_undistort_points(const float* in, int n, const double* k, const double* d,
                                 int nd, const double* p, float* out);

#ifdef __cplusplus
}
#endif

#endif
