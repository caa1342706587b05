// C side of package codec: allocation, opening and pixel conversion around libavcodec and
// libswscale. Everything the Go side owns is one struct per object so that a single free
// function releases it all, whether called from Close or from the GC safety net.
#ifndef EDGEDEPTH_CODEC_H
#define EDGEDEPTH_CODEC_H

#include <errno.h>
#include <stdint.h>
#include <libavcodec/avcodec.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>

// Status codes the Go side compares against (function-like macros are invisible to cgo).
enum {
	ED_EAGAIN = AVERROR(EAGAIN),
	ED_EOF = AVERROR_EOF,
	ED_ENOMEM = AVERROR(ENOMEM),
	ED_EINVAL = AVERROR(EINVAL),
};

// ed_encoder_params is filled by Go; plain values only (no Go pointers cross).
typedef struct {
	int width, height;
	int fps_num, fps_den;
	int64_t bit_rate;
	int gop;
	int threads;
} ed_encoder_params;

typedef struct {
	AVCodecContext *ctx;
	AVFrame *frame; // YUV420P, buffers from av_frame_get_buffer
	AVPacket *pkt;
	struct SwsContext *sws;
} ed_encoder;

// ed_encoder_open allocates and opens an encoder. On failure *out stays NULL and
// everything allocated so far is freed. opts is consumed the way avcodec_open2 does:
// entries the encoder did not recognise remain in it.
int ed_encoder_open(ed_encoder **out, const AVCodec *codec, const ed_encoder_params *p, AVDictionary **opts);
void ed_encoder_free(ed_encoder *e);
// ed_encoder_send converts one packed RGB24 image (3*width bytes a row) into the encoder's
// frame and sends it. rgb is only read during the call.
int ed_encoder_send(ed_encoder *e, const uint8_t *rgb, int64_t pts);

typedef struct {
	AVCodecContext *ctx;
	AVFrame *frame;
	AVPacket *pkt;
	struct SwsContext *sws;
} ed_decoder;

// ed_decoder_open allocates and opens a decoder. low_delay asks the decoder to output
// every picture as soon as it is decoded, in decoding order (right for streams without
// B-frames); without it pictures come out in display order after the reorder delay the
// stream declares.
int ed_decoder_open(ed_decoder **out, const AVCodec *codec, int low_delay);
void ed_decoder_free(ed_decoder *d);
// ed_decoder_send_annexb sends one access unit in Annex B form, presented at pts (any
// unit; libavcodec hands it back on the picture in d->frame->pts, after reordering);
// data is copied into a C-allocated packet, so the Go buffer is not retained.
int ed_decoder_send_annexb(ed_decoder *d, const uint8_t *data, int size, int64_t pts);
// ed_frame_pts is the presentation time libavcodec gives the picture in d->frame: the pts
// of the packet it was coded in, or its best guess when that packet had none.
int64_t ed_frame_pts(const ed_decoder *d);
// ed_decoder_frame_to_rgb converts d->frame into packed RGB24 at rgb (3*width bytes a row),
// honouring the frame's colour range and matrix.
int ed_decoder_frame_to_rgb(ed_decoder *d, uint8_t *rgb);

// ed_supports_yuv420p reports whether an encoder accepts AV_PIX_FMT_YUV420P frames
// (1), does not (0), or does not say (-1).
int ed_supports_yuv420p(const AVCodec *codec);


// ed_log_to_go sends libav's log lines to the Go function edgedepthLibavLog;
// ed_log_to_stderr restores libav's default.
void ed_log_to_go(void);
void ed_log_to_stderr(void);

#endif
