#include <stdarg.h>
#include <string.h>
#include <libavutil/log.h>
#include "codec.h"

int ed_supports_yuv420p(const AVCodec *codec) {
	if (codec->pix_fmts == NULL) {
		return -1;
	}
	for (const enum AVPixelFormat *f = codec->pix_fmts; *f != AV_PIX_FMT_NONE; f++) {
		if (*f == AV_PIX_FMT_YUV420P) {
			return 1;
		}
	}
	return 0;
}

void ed_encoder_free(ed_encoder *e) {
	if (e == NULL) {
		return;
	}
	avcodec_free_context(&e->ctx);
	av_frame_free(&e->frame);
	av_packet_free(&e->pkt);
	sws_freeContext(e->sws);
	av_free(e);
}

int ed_encoder_open(ed_encoder **out, const AVCodec *codec, const ed_encoder_params *p, AVDictionary **opts) {
	*out = NULL;
	ed_encoder *e = av_mallocz(sizeof(*e));
	if (e == NULL) {
		return ED_ENOMEM;
	}
	e->ctx = avcodec_alloc_context3(codec);
	e->frame = av_frame_alloc();
	e->pkt = av_packet_alloc();
	if (e->ctx == NULL || e->frame == NULL || e->pkt == NULL) {
		ed_encoder_free(e);
		return ED_ENOMEM;
	}

	AVCodecContext *c = e->ctx;
	c->width = p->width;
	c->height = p->height;
	c->pix_fmt = AV_PIX_FMT_YUV420P;
	// The RTP clock of H.264 is 90 kHz: timestamps go through unscaled.
	c->time_base = (AVRational){1, 90000};
	c->framerate = (AVRational){p->fps_num, p->fps_den};
	c->bit_rate = p->bit_rate;
	// A one-second VBV caps bursts (an IDR can otherwise be many times the average frame)
	// so that a UDP receiver's socket buffer and a Wi-Fi link are not flooded.
	c->rc_max_rate = p->bit_rate;
	c->rc_buffer_size = (int)(p->bit_rate > INT32_MAX ? INT32_MAX : p->bit_rate);
	c->gop_size = p->gop;
	c->max_b_frames = 0; // B-frames reorder and add a frame of latency at least
	c->thread_count = p->threads;
	// Parameter sets go to extradata (for the SDP); the Go side puts them in front of
	// every IDR itself, which works whatever the encoder does in-band.
	c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	// Say in the VUI what swscale produces (BT.601, limited range), so decoders agree.
	c->colorspace = AVCOL_SPC_SMPTE170M;
	c->color_primaries = AVCOL_PRI_SMPTE170M;
	c->color_trc = AVCOL_TRC_SMPTE170M;
	c->color_range = AVCOL_RANGE_MPEG;

	int ret = avcodec_open2(c, codec, opts);
	if (ret < 0) {
		ed_encoder_free(e);
		return ret;
	}

	e->frame->format = AV_PIX_FMT_YUV420P;
	e->frame->width = p->width;
	e->frame->height = p->height;
	ret = av_frame_get_buffer(e->frame, 0);
	if (ret < 0) {
		ed_encoder_free(e);
		return ret;
	}
	e->sws = sws_getContext(p->width, p->height, AV_PIX_FMT_RGB24, p->width, p->height,
	                        AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
	if (e->sws == NULL) {
		ed_encoder_free(e);
		return ED_EINVAL;
	}
	*out = e;
	return 0;
}

int ed_encoder_send(ed_encoder *e, const uint8_t *rgb, int64_t pts) {
	// The encoder may still hold a reference to the previous picture (lookahead,
	// threads): make_writable gives us a fresh buffer in that case instead of
	// overwriting a picture being encoded.
	int ret = av_frame_make_writable(e->frame);
	if (ret < 0) {
		return ret;
	}
	const uint8_t *src[4] = {rgb, NULL, NULL, NULL};
	const int stride[4] = {3 * e->frame->width, 0, 0, 0};
	ret = sws_scale(e->sws, src, stride, 0, e->frame->height, e->frame->data, e->frame->linesize);
	if (ret < 0) {
		return ret;
	}
	e->frame->pts = pts;
	return avcodec_send_frame(e->ctx, e->frame);
}

void ed_decoder_free(ed_decoder *d) {
	if (d == NULL) {
		return;
	}
	avcodec_free_context(&d->ctx);
	av_frame_free(&d->frame);
	av_packet_free(&d->pkt);
	sws_freeContext(d->sws);
	av_free(d);
}

int ed_decoder_open(ed_decoder **out, const AVCodec *codec, int low_delay) {
	*out = NULL;
	ed_decoder *d = av_mallocz(sizeof(*d));
	if (d == NULL) {
		return ED_ENOMEM;
	}
	d->ctx = avcodec_alloc_context3(codec);
	d->frame = av_frame_alloc();
	d->pkt = av_packet_alloc();
	if (d->ctx == NULL || d->frame == NULL || d->pkt == NULL) {
		ed_decoder_free(d);
		return ED_ENOMEM;
	}
	// Frame threading holds back one frame per thread; live video wants each access
	// unit out as soon as it is in, so only slice threading is allowed.
	d->ctx->thread_type = FF_THREAD_SLICE;
	if (low_delay) {
		d->ctx->flags |= AV_CODEC_FLAG_LOW_DELAY;
	}
	int ret = avcodec_open2(d->ctx, codec, NULL);
	if (ret < 0) {
		ed_decoder_free(d);
		return ret;
	}
	*out = d;
	return 0;
}

int ed_decoder_send_annexb(ed_decoder *d, const uint8_t *data, int size, int64_t pts) {
	av_packet_unref(d->pkt);
	int ret = av_new_packet(d->pkt, size);
	if (ret < 0) {
		return ret;
	}
	memcpy(d->pkt->data, data, size);
	d->pkt->pts = pts;
	d->pkt->dts = AV_NOPTS_VALUE; // live RTP carries no decoding time
	ret = avcodec_send_packet(d->ctx, d->pkt);
	av_packet_unref(d->pkt);
	return ret;
}

int64_t ed_frame_pts(const ed_decoder *d) {
	if (d->frame->pts != AV_NOPTS_VALUE) {
		return d->frame->pts;
	}
	return d->frame->best_effort_timestamp;
}

int ed_decoder_frame_to_rgb(ed_decoder *d, uint8_t *rgb) {
	const AVFrame *f = d->frame;
	enum AVPixelFormat fmt = f->format;
	int full = f->color_range == AVCOL_RANGE_JPEG;
	// The YUVJ formats are the full-range spellings of the plain ones; swscale wants
	// the plain format plus an explicit range (and warns otherwise).
	switch (fmt) {
	case AV_PIX_FMT_YUVJ420P: fmt = AV_PIX_FMT_YUV420P; full = 1; break;
	case AV_PIX_FMT_YUVJ422P: fmt = AV_PIX_FMT_YUV422P; full = 1; break;
	case AV_PIX_FMT_YUVJ444P: fmt = AV_PIX_FMT_YUV444P; full = 1; break;
	default: break;
	}
	d->sws = sws_getCachedContext(d->sws, f->width, f->height, fmt, f->width, f->height,
	                              AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
	if (d->sws == NULL) {
		return ED_EINVAL;
	}
	int matrix = f->colorspace == AVCOL_SPC_BT709 ? SWS_CS_ITU709 : SWS_CS_DEFAULT;
	sws_setColorspaceDetails(d->sws, sws_getCoefficients(matrix), full,
	                         sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
	uint8_t *dst[4] = {rgb, NULL, NULL, NULL};
	const int stride[4] = {3 * f->width, 0, 0, 0};
	int ret = sws_scale(d->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, stride);
	return ret < 0 ? ret : 0;
}

// Implemented in Go (log.go).
extern void edgedepthLibavLog(int level, char *line);

static void ed_log_callback(void *avcl, int level, const char *fmt, va_list vl) {
	if (level > av_log_get_level()) {
		return;
	}
	char line[1024];
	int print_prefix = 1; // every line names its component ("[libx264 @ 0x...]")
	av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &print_prefix);
	edgedepthLibavLog(level, line);
}

void ed_log_to_go(void) { av_log_set_callback(ed_log_callback); }

void ed_log_to_stderr(void) { av_log_set_callback(av_log_default_callback); }
