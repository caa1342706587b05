#include "calib3d.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include <opencv2/calib3d.hpp>
#include <opencv2/core/utility.hpp>

// Owns the matcher and the 16-bit fixed-point disparity it writes, so that repeated
// calls on same-sized frames allocate nothing.
struct EdcvStereoSGBM {
	cv::Ptr<cv::StereoSGBM> matcher;
	cv::Mat raw;
	int min_disparity;
	int num_disparities;
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

}  // extern "C"
