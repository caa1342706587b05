#include "calib3d.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/calib3d.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>

// Owns the matcher and the 16-bit fixed-point disparity it writes, so that repeated
// calls on same-sized frames allocate nothing.
struct EdcvStereoSGBM {
	cv::Ptr<cv::StereoSGBM> matcher;
	cv::Mat raw;
	int min_disparity;
	int num_disparities;
};

// Owns one camera's rectification maps and the sizes they were made for, so that
// remapping a frame checks its size against what the maps expect.
struct EdcvRectifyMap {
	cv::Mat map1, map2;
	int src_w, src_h;
};

namespace {

char* dup_message(const std::string& s) {
	char* p = static_cast<char*>(std::malloc(s.size() + 1));
	if (p != nullptr) {
		std::memcpy(p, s.c_str(), s.size() + 1);
	}
	return p;
}

EdcvStatus status(int code, const std::string& msg) {
	EdcvStatus st;
	st.code = code;
	st.msg = dup_message(msg);
	return st;
}

EdcvStatus ok() {
	EdcvStatus st;
	st.code = EDCV_OK;
	st.msg = nullptr;
	return st;
}

// ArgumentError lets a shim function reject its input with the same machinery that
// reports OpenCV's errors.
struct ArgumentError : std::exception {
	explicit ArgumentError(std::string m) : msg(std::move(m)) {}
	const char* what() const noexcept override { return msg.c_str(); }
	std::string msg;
};

// guarded runs body and turns anything it throws into a status. Every exported
// function goes through here: it is the only place exceptions are caught.
template <typename F>
EdcvStatus guarded(F body) noexcept {
	try {
		try {
			body();
			return ok();
		} catch (const ArgumentError& e) {
			return status(EDCV_ERR_ARGUMENT, e.msg);
		} catch (const cv::Exception& e) {
			// e.err is the bare message; e.what() adds the build path and line of the
			// OpenCV source, which means nothing to an operator.
			std::string msg = e.err;
			if (!e.func.empty()) {
				msg += " (in " + e.func + ")";
			}
			return status(e.code != 0 ? e.code : cv::Error::StsError, msg);
		} catch (const std::exception& e) {
			return status(EDCV_ERR_STD, e.what());
		} catch (...) {
			return status(EDCV_ERR_UNKNOWN, "unknown C++ exception");
		}
	} catch (...) {
		// Building the message threw (out of memory): report the failure without one.
		EdcvStatus st;
		st.code = EDCV_ERR_STD;
		st.msg = nullptr;
		return st;
	}
}

std::string describe(const cv::Mat& m) {
	return std::to_string(m.cols) + "x" + std::to_string(m.rows) + " " +
	       cv::typeToString(m.type());
}

void check_pair(EdcvMat left, EdcvMat right) {
	if (left == nullptr || right == nullptr) {
		throw ArgumentError("nil image");
	}
	if (left->empty() || right->empty()) {
		throw ArgumentError("empty image (left " + describe(*left) + ", right " +
		                    describe(*right) + ")");
	}
	if (left->size() != right->size() || left->type() != right->type()) {
		throw ArgumentError("left " + describe(*left) + " and right " + describe(*right) +
		                    " differ");
	}
	if (left->depth() != CV_8U || (left->channels() != 1 && left->channels() != 3)) {
		throw ArgumentError("images are " + describe(*left) + ", want CV_8UC1 or CV_8UC3");
	}
}

// check_sgbm_params rejects what OpenCV 4.6 does not check itself. Its SGBM silently
// accepts a numDisparities that is not a multiple of 16 or an even block size, and a
// negative numDisparities makes a destructor throw, which no catch can stop from
// aborting the process.
void check_sgbm_params(const EdcvSGBMParams& p) {
	if (p.num_disparities <= 0 || p.num_disparities % 16 != 0) {
		throw ArgumentError("numDisparities " + std::to_string(p.num_disparities) +
		                    " must be a positive multiple of 16");
	}
	if (p.block_size < 1 || p.block_size % 2 == 0) {
		throw ArgumentError("blockSize " + std::to_string(p.block_size) +
		                    " must be odd and at least 1");
	}
	if (p.p1 < 0 || p.p2 < 0) {
		throw ArgumentError("P1 " + std::to_string(p.p1) + " and P2 " + std::to_string(p.p2) +
		                    " must not be negative");
	}
	if (p.pre_filter_cap < 0 || p.uniqueness_ratio < 0 || p.speckle_window_size < 0 ||
	    p.speckle_range < 0) {
		throw ArgumentError(
		    "preFilterCap, uniquenessRatio, speckleWindowSize and speckleRange must not be "
		    "negative");
	}
	if (p.mode < cv::StereoSGBM::MODE_SGBM || p.mode > cv::StereoSGBM::MODE_HH4) {
		throw ArgumentError("unknown mode " + std::to_string(p.mode));
	}
}


// check_matrix rejects a missing, empty or non-floating-point matrix, or one whose
// shape is not rows x cols. OpenCV would assert on most of these too, but with a
// message that names its own internal variable instead of the argument.
void check_matrix(const char* name, EdcvMat m, int rows, int cols) {
	if (m == nullptr) {
		throw ArgumentError(std::string(name) + " is nil");
	}
	if (m->empty() || m->rows != rows || m->cols != cols || m->channels() != 1 ||
	    (m->depth() != CV_32F && m->depth() != CV_64F)) {
		throw ArgumentError(std::string(name) + " is " + describe(*m) + ", want " +
		                    std::to_string(cols) + "x" + std::to_string(rows) +
		                    " CV_32FC1 or CV_64FC1");
	}
}

// check_vector accepts an n-element row or column vector of floats.
void check_vector(const char* name, EdcvMat m, int n) {
	if (m == nullptr) {
		throw ArgumentError(std::string(name) + " is nil");
	}
	if (m->total() != size_t(n) || (m->rows != 1 && m->cols != 1) || m->channels() != 1 ||
	    (m->depth() != CV_32F && m->depth() != CV_64F)) {
		throw ArgumentError(std::string(name) + " is " + describe(*m) + ", want " +
		                    std::to_string(n) + " CV_32F or CV_64F values in a row or column");
	}
}

// check_distortion accepts no coefficients (an ideal pinhole) or OpenCV's 4, 5, 8, 12
// or 14 in a row or column of floats.
void check_distortion(const char* name, EdcvMat m) {
	if (m == nullptr) {
		throw ArgumentError(std::string(name) + " is nil");
	}
	if (m->empty()) {
		return;
	}
	const size_t n = m->total();
	if ((n != 4 && n != 5 && n != 8 && n != 12 && n != 14) || (m->rows != 1 && m->cols != 1) ||
	    m->channels() != 1 || (m->depth() != CV_32F && m->depth() != CV_64F)) {
		throw ArgumentError(std::string(name) + " is " + describe(*m) +
		                    ", want 4, 5, 8, 12 or 14 CV_32F or CV_64F coefficients");
	}
}

void check_size(const char* what, int w, int h) {
	if (w <= 0 || h <= 0) {
		throw ArgumentError(std::string(what) + " " + std::to_string(w) + "x" +
		                    std::to_string(h) + " must be positive");
	}
}

void check_out(const char* name, EdcvMat m) {
	if (m == nullptr) {
		throw ArgumentError("output " + std::string(name) + " is nil");
	}
}

void check_map1_type(int t) {
	if (t != CV_16SC2 && t != CV_32FC1 && t != CV_32FC2) {
		throw ArgumentError("map type " + cv::typeToString(t) +
		                    ", want CV_16SC2, CV_32FC1 or CV_32FC2");
	}
}

EdcvRect to_rect(const cv::Rect& r) {
	EdcvRect out;
	out.x = r.x;
	out.y = r.y;
	out.width = r.width;
	out.height = r.height;
	return out;
}

// ---- Chessboard calibration helpers ----

static_assert(int(EDCV_CALIB_USE_INTRINSIC_GUESS) == int(cv::CALIB_USE_INTRINSIC_GUESS), "flag value");
static_assert(int(EDCV_CALIB_FIX_ASPECT_RATIO) == int(cv::CALIB_FIX_ASPECT_RATIO), "flag value");
static_assert(int(EDCV_CALIB_FIX_PRINCIPAL_POINT) == int(cv::CALIB_FIX_PRINCIPAL_POINT), "flag value");
static_assert(int(EDCV_CALIB_ZERO_TANGENT_DIST) == int(cv::CALIB_ZERO_TANGENT_DIST), "flag value");
static_assert(int(EDCV_CALIB_FIX_FOCAL_LENGTH) == int(cv::CALIB_FIX_FOCAL_LENGTH), "flag value");
static_assert(int(EDCV_CALIB_FIX_K1) == int(cv::CALIB_FIX_K1), "flag value");
static_assert(int(EDCV_CALIB_FIX_K2) == int(cv::CALIB_FIX_K2), "flag value");
static_assert(int(EDCV_CALIB_FIX_K3) == int(cv::CALIB_FIX_K3), "flag value");
static_assert(int(EDCV_CALIB_FIX_K4) == int(cv::CALIB_FIX_K4), "flag value");
static_assert(int(EDCV_CALIB_FIX_K5) == int(cv::CALIB_FIX_K5), "flag value");
static_assert(int(EDCV_CALIB_FIX_K6) == int(cv::CALIB_FIX_K6), "flag value");
static_assert(int(EDCV_CALIB_RATIONAL_MODEL) == int(cv::CALIB_RATIONAL_MODEL), "flag value");
static_assert(int(EDCV_CALIB_THIN_PRISM_MODEL) == int(cv::CALIB_THIN_PRISM_MODEL), "flag value");
static_assert(int(EDCV_CALIB_TILTED_MODEL) == int(cv::CALIB_TILTED_MODEL), "flag value");
static_assert(int(EDCV_CALIB_FIX_INTRINSIC) == int(cv::CALIB_FIX_INTRINSIC), "flag value");
static_assert(int(EDCV_CALIB_SAME_FOCAL_LENGTH) == int(cv::CALIB_SAME_FOCAL_LENGTH), "flag value");

void check_pattern(int cols, int rows) {
	// findChessboardCorners asserts both are above 2; saying so in our words names the
	// argument the caller gave.
	if (cols < 3 || rows < 3) {
		throw ArgumentError("chessboard pattern " + std::to_string(cols) + "x" +
		                    std::to_string(rows) +
		                    " inner corners: each side needs at least 3");
	}
}

// find_corners is the detection of OpenCV's stereo_calib sample, which the calibration
// figures we compare against come from: adaptive threshold on a normalised image, and
// on failure the same on the image upscaled 2x (small or distant boards, whose squares
// are too few pixels for the quad detector), then sub-pixel refinement on the original
// image. The 11x11 half-window (23x23 pixels) is the sample's: squares must be larger
// than about 12 pixels or the window straddles a neighbouring corner.
bool find_corners(const cv::Mat& img, int cols, int rows, float* corners) {
	check_pattern(cols, rows);
	if (corners == nullptr) {
		throw ArgumentError("nil corner buffer");
	}
	if (img.empty()) {
		throw ArgumentError("empty image");
	}
	if (img.depth() != CV_8U || (img.channels() != 1 && img.channels() != 3)) {
		throw ArgumentError("image is " + describe(img) + ", want CV_8UC1 or CV_8UC3");
	}
	cv::Mat grey;
	if (img.channels() == 3) {
		cv::cvtColor(img, grey, cv::COLOR_BGR2GRAY);
	} else {
		grey = img;
	}
	const cv::Size pattern(cols, rows);
	const int flags = cv::CALIB_CB_ADAPTIVE_THRESH | cv::CALIB_CB_NORMALIZE_IMAGE;
	std::vector<cv::Point2f> pts;
	bool found = cv::findChessboardCorners(grey, pattern, pts, flags);
	if (!found) {
		cv::Mat big;
		cv::resize(grey, big, cv::Size(), 2, 2, cv::INTER_LINEAR_EXACT);
		found = cv::findChessboardCorners(big, pattern, pts, flags);
		if (found) {
			for (cv::Point2f& p : pts) {
				p *= 0.5f;
			}
		}
	}
	if (!found) {
		return false;
	}
	if (pts.size() != size_t(cols) * size_t(rows)) {
		// Never seen; guards the copy below against a short vector.
		throw std::runtime_error("OpenCV found " + std::to_string(pts.size()) + " corners, want " +
		                    std::to_string(cols * rows));
	}
	cv::cornerSubPix(grey, pts, cv::Size(11, 11), cv::Size(-1, -1),
	                 cv::TermCriteria(cv::TermCriteria::COUNT + cv::TermCriteria::EPS, 30,
	                                  0.01));
	for (size_t i = 0; i < pts.size(); i++) {
		corners[2 * i] = pts[i].x;
		corners[2 * i + 1] = pts[i].y;
	}
	return true;
}

// check_views validates the per-view point counts of flat point arrays and returns
// their total.
size_t check_views(const int* counts, int views) {
	if (counts == nullptr || views < 1) {
		throw ArgumentError("no views");
	}
	size_t total = 0;
	for (int v = 0; v < views; v++) {
		// Fewer than 4 points cannot fix a homography; OpenCV asserts the same.
		if (counts[v] < 4) {
			throw ArgumentError("view " + std::to_string(v) + " has " +
			                    std::to_string(counts[v]) + " points, want at least 4");
		}
		total += size_t(counts[v]);
	}
	return total;
}

std::vector<std::vector<cv::Point3f>> object_views(const float* p, const int* counts,
                                                   int views) {
	if (p == nullptr) {
		throw ArgumentError("nil object points");
	}
	std::vector<std::vector<cv::Point3f>> out(views);
	for (int v = 0; v < views; v++) {
		out[v].reserve(counts[v]);
		for (int i = 0; i < counts[v]; i++, p += 3) {
			out[v].emplace_back(p[0], p[1], p[2]);
		}
	}
	return out;
}

std::vector<std::vector<cv::Point2f>> image_views(const float* p, const int* counts,
                                                  int views) {
	if (p == nullptr) {
		throw ArgumentError("nil image points");
	}
	std::vector<std::vector<cv::Point2f>> out(views);
	for (int v = 0; v < views; v++) {
		out[v].reserve(counts[v]);
		for (int i = 0; i < counts[v]; i++, p += 2) {
			out[v].emplace_back(p[0], p[1]);
		}
	}
	return out;
}

// copy_out copies a floating-point matrix of n elements into out as doubles.
void copy_out(const char* name, const cv::Mat& m, double* out, size_t n) {
	if (m.total() != n || m.channels() != 1) {
		throw std::runtime_error(std::string("OpenCV returned ") + name + " as " + describe(m) +
		                    ", want " + std::to_string(n) + " values");
	}
	cv::Mat d;
	m.convertTo(d, CV_64F);
	d = d.reshape(1, 1);
	for (size_t i = 0; i < n; i++) {
		out[i] = d.at<double>(0, int(i));
	}
}

// distortion_count is how many coefficients the model selected by the calibration
// flags has. stereoCalibrate returns 14 whenever any model beyond the 5-coefficient one
// is on, the unused ones zero; trimming them keeps files readable and says which model
// was fitted.
int distortion_count(int flags) {
	if (flags & cv::CALIB_TILTED_MODEL) {
		return 14;
	}
	if (flags & cv::CALIB_THIN_PRISM_MODEL) {
		return 12;
	}
	if (flags & cv::CALIB_RATIONAL_MODEL) {
		return 8;
	}
	return 5;
}

void check_distortion_len(int n) {
	if (n != 0 && n != 4 && n != 5 && n != 8 && n != 12 && n != 14) {
		throw ArgumentError(std::to_string(n) +
		                    " distortion coefficients, want 0, 4, 5, 8, 12 or 14");
	}
}

}  // namespace

extern "C" {

EdcvStatus edcv_throw_for_test(int kind) {
	return guarded([&] {
		switch (kind) {
		case 0:
			CV_Error(cv::Error::StsBadArg, "test error");
		case 1:
			throw std::runtime_error("test error");
		case 2:
			throw 42;
		case 3:
			throw ArgumentError("test error");
		}
	});
}


char* edcv_version(void) { return dup_message(cv::getVersionString()); }

EdcvStatus edcv_set_num_threads(int n) {
	return guarded([&] { cv::setNumThreads(n); });
}

int edcv_get_num_threads(void) {
	try {
		return cv::getNumThreads();
	} catch (...) {
		return -1;
	}
}

EdcvStatus edcv_sgbm_new(EdcvSGBMParams p, EdcvStereoSGBM** out) {
	return guarded([&] {
		if (out == nullptr) {
			throw ArgumentError("nil output handle");
		}
		*out = nullptr;
		check_sgbm_params(p);
		EdcvStereoSGBM* s = new EdcvStereoSGBM();
		try {
			s->matcher = cv::StereoSGBM::create(
			    p.min_disparity, p.num_disparities, p.block_size, p.p1, p.p2,
			    p.disp12_max_diff, p.pre_filter_cap, p.uniqueness_ratio,
			    p.speckle_window_size, p.speckle_range, p.mode);
		} catch (...) {
			delete s;
			throw;
		}
		s->min_disparity = p.min_disparity;
		s->num_disparities = p.num_disparities;
		*out = s;
	});
}

void edcv_sgbm_free(EdcvStereoSGBM* s) {
	// Destructors of cv::Mat and cv::Ptr do not throw.
	delete s;
}

EdcvStatus edcv_sgbm_compute(EdcvStereoSGBM* s, EdcvMat left, EdcvMat right, EdcvMat disp) {
	return guarded([&] {
		if (s == nullptr || disp == nullptr) {
			throw ArgumentError("nil matcher or output");
		}
		check_pair(left, right);
		// Columns where the whole search range lies inside both images. With none,
		// OpenCV 4.6's 3-way mode fails an assertion, or, when the count goes negative,
		// throws from a destructor and aborts the process.
		const int usable = left->cols + std::min(s->min_disparity, 0) -
		                   std::max(s->min_disparity + s->num_disparities, 0);
		if (usable <= 0) {
			throw ArgumentError("image width " + std::to_string(left->cols) +
			                    " leaves no column for disparities " +
			                    std::to_string(s->min_disparity) + ".." +
			                    std::to_string(s->min_disparity + s->num_disparities - 1));
		}
		s->matcher->compute(*left, *right, s->raw);
		CV_Assert(s->raw.type() == CV_16SC1);

		// OpenCV writes disparity·16 and marks pixels without a match (no unique
		// minimum, failed left-right check, speckles, the unmatched left border) as
		// (min_disparity-1)·16. Every valid value is at least min_disparity·16.
		const int threshold = s->min_disparity * cv::StereoMatcher::DISP_SCALE;
		const float invalid = float(s->min_disparity - 1);
		const float scale = 1.0f / cv::StereoMatcher::DISP_SCALE;
		disp->create(s->raw.size(), CV_32FC1);
		for (int y = 0; y < s->raw.rows; y++) {
			const short* r = s->raw.ptr<short>(y);
			float* d = disp->ptr<float>(y);
			for (int x = 0; x < s->raw.cols; x++) {
				d[x] = r[x] < threshold ? invalid : float(r[x]) * scale;
			}
		}
	});
}

EdcvStatus edcv_stereo_rectify(EdcvMat k1, EdcvMat d1, EdcvMat k2, EdcvMat d2, int width,
                               int height, EdcvMat r, EdcvMat t, int flags, double alpha,
                               int new_w, int new_h, EdcvMat r1, EdcvMat r2, EdcvMat p1,
                               EdcvMat p2, EdcvMat q, EdcvRect* roi1, EdcvRect* roi2) {
	return guarded([&] {
		check_matrix("K1", k1, 3, 3);
		check_matrix("K2", k2, 3, 3);
		check_distortion("D1", d1);
		check_distortion("D2", d2);
		check_size("image size", width, height);
		if (new_w != 0 || new_h != 0) {
			check_size("new image size", new_w, new_h);
		}
		if (r == nullptr) {
			throw ArgumentError("R is nil");
		}
		if (r->total() == 3) {
			check_vector("R (Rodrigues)", r, 3);
		} else {
			check_matrix("R", r, 3, 3);
		}
		check_vector("T", t, 3);
		// OpenCV takes -1 ("let OpenCV choose") or a scale in [0, 1]; anything else
		// silently extrapolates the crop.
		if (!(alpha == -1 || (alpha >= 0 && alpha <= 1))) {
			throw ArgumentError("alpha " + std::to_string(alpha) + " must be -1 or in [0, 1]");
		}
		check_out("R1", r1);
		check_out("R2", r2);
		check_out("P1", p1);
		check_out("P2", p2);
		check_out("Q", q);
		cv::Rect v1, v2;
		cv::stereoRectify(*k1, *d1, *k2, *d2, cv::Size(width, height), *r, *t, *r1, *r2, *p1,
		                  *p2, *q, flags, alpha, cv::Size(new_w, new_h), &v1, &v2);
		if (roi1 != nullptr) {
			*roi1 = to_rect(v1);
		}
		if (roi2 != nullptr) {
			*roi2 = to_rect(v2);
		}
	});
}

EdcvStatus edcv_init_undistort_rectify_map(EdcvMat k, EdcvMat d, EdcvMat r, EdcvMat p,
                                           int width, int height, int map1_type,
                                           EdcvMat map1, EdcvMat map2) {
	return guarded([&] {
		check_matrix("K", k, 3, 3);
		check_distortion("D", d);
		if (r == nullptr) {
			throw ArgumentError("R is nil");
		}
		if (!r->empty()) { // empty means identity, as in OpenCV
			check_matrix("R", r, 3, 3);
		}
		if (p == nullptr) {
			throw ArgumentError("P is nil");
		}
		if (!p->empty()) { // empty means K, as in OpenCV
			if (p->cols == 4) {
				check_matrix("P", p, 3, 4);
			} else {
				check_matrix("P", p, 3, 3);
			}
		}
		check_size("map size", width, height);
		check_map1_type(map1_type);
		check_out("map1", map1);
		check_out("map2", map2);
		cv::initUndistortRectifyMap(*k, *d, *r, *p, cv::Size(width, height), map1_type,
		                            *map1, *map2);
	});
}

EdcvStatus edcv_remap(EdcvMat src, EdcvMat dst, EdcvMat map1, EdcvMat map2,
                      int interpolation, int border_mode, double border_value) {
	return guarded([&] {
		if (src == nullptr || map1 == nullptr || map2 == nullptr) {
			throw ArgumentError("nil source or map");
		}
		check_out("dst", dst);
		if (src->empty() || map1->empty()) {
			throw ArgumentError("empty source (" + describe(*src) + ") or map1 (" +
			                    describe(*map1) + ")");
		}
		if (src == dst) {
			throw ArgumentError("src and dst are the same Mat; remap cannot work in place");
		}
		cv::remap(*src, *dst, *map1, *map2, interpolation, border_mode,
		          cv::Scalar::all(border_value));
	});
}

EdcvStatus edcv_rectify_map_new(EdcvMat k, EdcvMat d, EdcvMat r, EdcvMat p, int src_w,
                                int src_h, int dst_w, int dst_h, int map1_type,
                                EdcvRectifyMap** out) {
	if (out != nullptr) {
		*out = nullptr;
	}
	EdcvRectifyMap* m = nullptr;
	EdcvStatus st = guarded([&] {
		if (out == nullptr) {
			throw ArgumentError("nil output handle");
		}
		check_size("source size", src_w, src_h);
		m = new EdcvRectifyMap();
		m->src_w = src_w;
		m->src_h = src_h;
	});
	if (st.code != EDCV_OK) {
		return st;
	}
	st = edcv_init_undistort_rectify_map(k, d, r, p, dst_w, dst_h, map1_type, &m->map1,
	                                     &m->map2);
	if (st.code != EDCV_OK) {
		delete m;
		return st;
	}
	*out = m;
	return st;
}

void edcv_rectify_map_free(EdcvRectifyMap* m) {
	// cv::Mat's destructor does not throw.
	delete m;
}

EdcvStatus edcv_rectify_map_remap_packed(EdcvRectifyMap* m, const unsigned char* src,
                                         int src_w, int src_h, int channels,
                                         unsigned char* dst, int dst_w, int dst_h) {
	return guarded([&] {
		if (m == nullptr || src == nullptr || dst == nullptr) {
			throw ArgumentError("nil map or buffer");
		}
		if (channels < 1 || channels > 4) {
			throw ArgumentError(std::to_string(channels) + " channels, want 1 to 4");
		}
		if (src_w != m->src_w || src_h != m->src_h) {
			throw ArgumentError("source image is " + std::to_string(src_w) + "x" +
			                    std::to_string(src_h) + ", the map was made for " +
			                    std::to_string(m->src_w) + "x" + std::to_string(m->src_h));
		}
		if (dst_w != m->map1.cols || dst_h != m->map1.rows) {
			throw ArgumentError("destination image is " + std::to_string(dst_w) + "x" +
			                    std::to_string(dst_h) + ", the map makes " +
			                    std::to_string(m->map1.cols) + "x" +
			                    std::to_string(m->map1.rows));
		}
		// Headers over the caller's memory: no copy in, no copy out.
		const cv::Mat s(src_h, src_w, CV_8UC(channels), const_cast<unsigned char*>(src));
		cv::Mat d(dst_h, dst_w, CV_8UC(channels), dst);
		cv::remap(s, d, m->map1, m->map2, cv::INTER_LINEAR, cv::BORDER_CONSTANT,
		          cv::Scalar::all(0));
		// remap re-creates dst only when its size or type differ, which the checks above
		// exclude; were it ever to, the result would land in a buffer nobody reads.
		CV_Assert(d.data == dst);
	});
}

EdcvStatus edcv_find_chessboard_corners(EdcvMat img, int cols, int rows, float* corners,
                                        int* found) {
	return guarded([&] {
		if (img == nullptr || found == nullptr) {
			throw ArgumentError("nil image or output");
		}
		*found = 0;
		*found = find_corners(*img, cols, rows, corners) ? 1 : 0;
	});
}

EdcvStatus edcv_find_chessboard_corners_gray(const unsigned char* pix, int width, int height,
                                             int stride, int cols, int rows, float* corners,
                                             int* found) {
	return guarded([&] {
		if (pix == nullptr || found == nullptr) {
			throw ArgumentError("nil image or output");
		}
		*found = 0;
		check_size("image size", width, height);
		if (stride < width) {
			throw ArgumentError("stride " + std::to_string(stride) + " is less than width " +
			                    std::to_string(width));
		}
		// A header over the caller's buffer: OpenCV only reads it.
		const cv::Mat img(height, width, CV_8UC1, const_cast<unsigned char*>(pix),
		                  size_t(stride));
		*found = find_corners(img, cols, rows, corners) ? 1 : 0;
	});
}

EdcvStatus edcv_init_camera_matrix_2d(const float* object_points, const float* image_points,
                                      const int* counts, int views, int width, int height,
                                      double aspect_ratio, double* k) {
	return guarded([&] {
		if (k == nullptr) {
			throw ArgumentError("nil output");
		}
		check_views(counts, views);
		check_size("image size", width, height);
		const auto obj = object_views(object_points, counts, views);
		const auto img = image_views(image_points, counts, views);
		const cv::Mat m =
		    cv::initCameraMatrix2D(obj, img, cv::Size(width, height), aspect_ratio);
		copy_out("camera matrix", m, k, 9);
	});
}

EdcvStatus edcv_stereo_calibrate(const float* object_points, const float* image_points1,
                                 const float* image_points2, const int* counts, int views,
                                 int width, int height, int flags, int max_count,
                                 double epsilon, EdcvStereoCalibration* c) {
	return guarded([&] {
		if (c == nullptr) {
			throw ArgumentError("nil calibration");
		}
		check_views(counts, views);
		check_size("image size", width, height);
		check_distortion_len(c->d_len);
		if (max_count < 0 || epsilon < 0) {
			throw ArgumentError("termination criteria must not be negative");
		}
		const auto obj = object_views(object_points, counts, views);
		const auto img1 = image_views(image_points1, counts, views);
		const auto img2 = image_views(image_points2, counts, views);
		// Copies of the guesses: stereoCalibrate writes its results into these Mats,
		// possibly re-allocating them, and c's arrays are read back only at the end.
		cv::Mat k1 = cv::Mat(3, 3, CV_64F, c->k1).clone();
		cv::Mat k2 = cv::Mat(3, 3, CV_64F, c->k2).clone();
		cv::Mat d1, d2;
		if (c->d_len > 0) {
			d1 = cv::Mat(1, c->d_len, CV_64F, c->d1).clone();
			d2 = cv::Mat(1, c->d_len, CV_64F, c->d2).clone();
		}
		cv::TermCriteria crit(cv::TermCriteria::COUNT + cv::TermCriteria::EPS, 30, 1e-6);
		if (max_count > 0 || epsilon > 0) {
			crit = cv::TermCriteria(
			    (max_count > 0 ? cv::TermCriteria::COUNT : 0) +
			        (epsilon > 0 ? cv::TermCriteria::EPS : 0),
			    max_count, epsilon);
		}
		cv::Mat r, t, e, f;
		const double rms = cv::stereoCalibrate(obj, img1, img2, k1, d1, k2, d2,
		                                       cv::Size(width, height), r, t, e, f, flags,
		                                       crit);
		const int nd = distortion_count(flags);
		for (const cv::Mat* d : {&d1, &d2}) {
			if (d->total() < size_t(nd) || d->total() > 14) {
				throw std::runtime_error("OpenCV returned distortion " + describe(*d) + ", want " +
				                    std::to_string(nd) + " coefficients");
			}
		}
		copy_out("K1", k1, c->k1, 9);
		copy_out("K2", k2, c->k2, 9);
		// Only the model's leading coefficients; the rest OpenCV left at zero.
		copy_out("D1", d1.reshape(1, 1).colRange(0, nd), c->d1, size_t(nd));
		copy_out("D2", d2.reshape(1, 1).colRange(0, nd), c->d2, size_t(nd));
		c->d_len = nd;
		copy_out("R", r, c->r, 9);
		copy_out("T", t, c->t, 3);
		copy_out("E", e, c->e, 9);
		copy_out("F", f, c->f, 9);
		c->rms = rms;
	});
}

EdcvStatus edcv_undistort_points(const float* in, int n, const double* k, const double* d,
                                 int nd, const double* p, float* out) {
	return guarded([&] {
		if (in == nullptr || out == nullptr || k == nullptr) {
			throw ArgumentError("nil points or camera matrix");
		}
		if (n < 1) {
			throw ArgumentError("no points");
		}
		check_distortion_len(nd);
		if (nd > 0 && d == nullptr) {
			throw ArgumentError("nil distortion coefficients");
		}
		std::vector<cv::Point2f> src(n), dst;
		for (int i = 0; i < n; i++) {
			src[i] = cv::Point2f(in[2 * i], in[2 * i + 1]);
		}
		const cv::Mat km(3, 3, CV_64F, const_cast<double*>(k));
		cv::Mat dm;
		if (nd > 0) {
			dm = cv::Mat(1, nd, CV_64F, const_cast<double*>(d));
		}
		cv::Mat pm;
		if (p != nullptr) {
			pm = cv::Mat(3, 3, CV_64F, const_cast<double*>(p));
		}
		cv::undistortPoints(src, dst, km, dm, cv::noArray(), pm);
		if (dst.size() != size_t(n)) {
			throw std::runtime_error("OpenCV returned " + std::to_string(dst.size()) +
			                    " points, want " + std::to_string(n));
		}
		for (int i = 0; i < n; i++) {
			out[2 * i] = dst[i].x;
			out[2 * i + 1] = dst[i].y;
		}
	});
}

}  // extern "C"
