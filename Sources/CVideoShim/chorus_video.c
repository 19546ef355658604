#include "chorus_video.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

/* The bytes FFmpeg reads through its custom I/O: a cursor over the caller's buffer. */
typedef struct {
    const uint8_t *data;
    size_t size;
    size_t position;
} memory_source;

struct chorus_video {
    memory_source source;
    AVIOContext *io;
    AVFormatContext *format;
    int64_t max_pixels;
    int threads;
    atomic_int cancelled;

    int video_index;
    AVCodecContext *video_decoder;
    struct SwsContext *scaler;
    AVPacket *packet;
    AVFrame *frame;
    int64_t video_start;    /* stream time base */
    int64_t last_shown;     /* the last frame handed out; INT64_MIN before any */
    int decoder_drained;    /* the decoder saw the end: it needs a seek and a flush before more */

    int audio_index;
};

/* ---- status ---------------------------------------------------------------------------------------- */

static chorus_video_code fail(chorus_video_status *status, chorus_video_code code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static chorus_video_code fail(chorus_video_status *status, chorus_video_code code, const char *format, ...) {
    status->code = code;
    va_list args;
    va_start(args, format);
    vsnprintf(status->message, sizeof status->message, format, args);
    va_end(args);
    return code;
}

static const char *error_text(int error, char *buffer, size_t size) {
    if (av_strerror(error, buffer, size) < 0) {
        snprintf(buffer, size, "FFmpeg error %d", error);
    }
    return buffer;
}

/* The last error FFmpeg logged on this thread: its codes say little ("Invalid argument"), its log says
   what was wrong ("Picture size 100000x100000 is invalid"). Calls run on the caller's thread. */
static _Thread_local char last_logged_error[192];

/* An FFmpeg error from reading or decoding: cancelled, out of memory, or the input's fault. */
static chorus_video_code fail_av(chorus_video_status *status, int error, const char *what) {
    char text[AV_ERROR_MAX_STRING_SIZE];
    if (error == AVERROR_EXIT) {
        return fail(status, CHORUS_VIDEO_CANCELLED, "cancelled");
    }
    if (error == AVERROR(ENOMEM)) {
        return fail(status, CHORUS_VIDEO_OUT_OF_MEMORY, "%s: out of memory", what);
    }
    if (last_logged_error[0] != 0) {
        return fail(status, CHORUS_VIDEO_INVALID, "%s: %s (%s)", what, error_text(error, text, sizeof text), last_logged_error);
    }
    return fail(status, CHORUS_VIDEO_INVALID, "%s: %s", what, error_text(error, text, sizeof text));
}

/* ---- log ------------------------------------------------------------------------------------------- */

static chorus_video_log_sink log_sink = NULL;

static void route_log(void *context, int level, const char *format, va_list args) {
    chorus_video_log_sink sink = log_sink;
    if (level > AV_LOG_WARNING || (sink == NULL && level > AV_LOG_ERROR)) {
        return;
    }
    char line[512];
    int prefix = 0;
    va_list copy;
    va_copy(copy, args);
    vsnprintf(line, sizeof line, format, copy);
    va_end(copy);
    size_t length = strlen(line);
    while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r' || line[length - 1] == '.')) {
        line[--length] = 0;
    }
    if (level <= AV_LOG_ERROR && length > 0) {
        snprintf(last_logged_error, sizeof last_logged_error, "%s", line);
    }
    if (sink != NULL && length > 0) {
        prefix = 1;
        av_log_format_line2(context, level, format, args, line, sizeof line, &prefix);
        length = strlen(line);
        while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r')) {
            line[--length] = 0;
        }
        sink(level, line);
    }
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

/* FFmpeg prints to stderr until a callback replaces its own: done before the first call of any kind. */
static void install_log(void) { av_log_set_callback(route_log); }

void chorus_video_set_log_sink(chorus_video_log_sink sink) {
    pthread_once(&log_once, install_log);
    log_sink = sink;
}

/* ---- memory I/O ------------------------------------------------------------------------------------ */

static int read_memory(void *opaque, uint8_t *buffer, int size) {
    memory_source *source = opaque;
    size_t left = source->size - source->position;
    if (left == 0) {
        return AVERROR_EOF;
    }
    size_t count = size < 0 ? 0 : (size_t)size;
    if (count > left) {
        count = left;
    }
    memcpy(buffer, source->data + source->position, count);
    source->position += count;
    return (int)count;
}

static int64_t seek_memory(void *opaque, int64_t offset, int whence) {
    memory_source *source = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
        return (int64_t)source->size;
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = (int64_t)source->position;
        break;
    case SEEK_END:
        base = (int64_t)source->size;
        break;
    default:
        return AVERROR(EINVAL);
    }
    /* Offsets come from the file: checked before they move the cursor. */
    if ((offset > 0 && base > INT64_MAX - offset) || base + offset < 0 || (uint64_t)(base + offset) > source->size) {
        return AVERROR(EINVAL);
    }
    source->position = (size_t)(base + offset);
    return base + offset;
}

static int interrupted(void *opaque) {
    chorus_video *video = opaque;
    return atomic_load(&video->cancelled);
}

void chorus_video_cancel(chorus_video *video) {
    if (video != NULL) {
        atomic_store(&video->cancelled, 1);
    }
}

/* ---- open ------------------------------------------------------------------------------------------ */

static double seconds(int64_t value, AVRational base) {
    return value == AV_NOPTS_VALUE ? 0 : (double)value * av_q2d(base);
}

static void copy_name(char *target, const char *name) {
    snprintf(target, CHORUS_VIDEO_NAME_CAPACITY, "%s", name ? name : "");
}

static void close_format(AVIOContext **io, AVFormatContext **format) {
    avformat_close_input(format);
    if (*io != NULL) {
        av_freep(&(*io)->buffer);
        avio_context_free(io);
    }
}

void chorus_video_close(chorus_video *video) {
    if (video == NULL) {
        return;
    }
    avcodec_free_context(&video->video_decoder);
    sws_freeContext(video->scaler);
    av_packet_free(&video->packet);
    av_frame_free(&video->frame);
    close_format(&video->io, &video->format);
    free(video);
}

/* A demuxer over `source` from its first byte, its streams' headers read. On failure nothing is left open. */
static chorus_video_code open_format(chorus_video *video, memory_source *source, AVIOContext **io_out,
                                     AVFormatContext **format_out, chorus_video_status *status) {
    const int io_size = 64 * 1024;
    source->position = 0;
    last_logged_error[0] = 0;
    uint8_t *io_buffer = av_malloc(io_size);
    AVIOContext *io = io_buffer ? avio_alloc_context(io_buffer, io_size, 0, source, read_memory, NULL, seek_memory) : NULL;
    AVFormatContext *format = io ? avformat_alloc_context() : NULL;
    if (format == NULL) {
        if (io != NULL) {
            av_freep(&io->buffer);
            avio_context_free(&io);
        } else {
            av_free(io_buffer);
        }
        return fail(status, CHORUS_VIDEO_OUT_OF_MEMORY, "out of memory");
    }
    format->pb = io;
    format->flags |= AVFMT_FLAG_CUSTOM_IO;
    format->interrupt_callback = (AVIOInterruptCB){interrupted, video};
    /* On failure avformat_open_input frees the context it was given (not the custom I/O). */
    int error = avformat_open_input(&format, NULL, NULL, NULL);
    chorus_video_code code = CHORUS_VIDEO_OK;
    if (error < 0) {
        code = fail_av(status, error, "not a video container FFmpeg can read");
    } else if ((error = avformat_find_stream_info(format, NULL)) < 0) {
        code = fail_av(status, error, "reading the streams");
        avformat_close_input(&format);
    } else if (format->iformat != NULL && (strstr(format->iformat->name, "_pipe") || !strcmp(format->iformat->name, "image2"))) {
        /* FFmpeg reads a PNG or a JPEG as a one-frame video: here that is a mistake worth naming. */
        code = fail(status, CHORUS_VIDEO_INVALID, "the data is an image (%s), not a video", format->iformat->name);
        avformat_close_input(&format);
    }
    if (code != CHORUS_VIDEO_OK) {
        av_freep(&io->buffer);
        avio_context_free(&io);
        return code;
    }
    *io_out = io;
    *format_out = format;
    return CHORUS_VIDEO_OK;
}

chorus_video_code chorus_video_open(const uint8_t *data, size_t size, int64_t max_pixels, int threads, chorus_video **out,
                                    chorus_video_info *info, chorus_video_status *status) {
    pthread_once(&log_once, install_log);
    *out = NULL;
    memset(info, 0, sizeof *info);
    status->code = CHORUS_VIDEO_OK;
    status->message[0] = 0;
    if (data == NULL || size == 0) {
        return fail(status, CHORUS_VIDEO_INVALID, "no data");
    }
    chorus_video *video = calloc(1, sizeof *video);
    if (video == NULL) {
        return fail(status, CHORUS_VIDEO_OUT_OF_MEMORY, "out of memory");
    }
    video->source = (memory_source){data, size, 0};
    video->max_pixels = max_pixels;
    video->threads = threads < 0 || threads > 64 ? 1 : threads;
    video->video_index = -1;
    video->audio_index = -1;
    video->last_shown = INT64_MIN;
    atomic_init(&video->cancelled, 0);

    video->packet = av_packet_alloc();
    video->frame = av_frame_alloc();
    if (video->packet == NULL || video->frame == NULL) {
        chorus_video_close(video);
        return fail(status, CHORUS_VIDEO_OUT_OF_MEMORY, "out of memory");
    }
    chorus_video_code code = open_format(video, &video->source, &video->io, &video->format, status);
    if (code != CHORUS_VIDEO_OK) {
        chorus_video_close(video);
        return code;
    }
    AVFormatContext *format = video->format;
    copy_name(info->container, format->iformat ? format->iformat->name : "");
    video->video_index = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    video->audio_index = av_find_best_stream(format, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (video->video_index < 0) {
        video->video_index = -1;
    }
    if (video->audio_index < 0) {
        video->audio_index = -1;
    }
    double longest = 0;
    if (video->video_index >= 0) {
        AVStream *stream = format->streams[video->video_index];
        AVCodecParameters *codec = stream->codecpar;
        info->has_video = 1;
        info->width = codec->width;
        info->height = codec->height;
        AVRational rate = stream->avg_frame_rate.num > 0 && stream->avg_frame_rate.den > 0 ? stream->avg_frame_rate : stream->r_frame_rate;
        info->frame_rate = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0;
        info->frame_count = stream->nb_frames > 0 ? stream->nb_frames : 0;
        video->video_start = stream->start_time == AV_NOPTS_VALUE ? 0 : stream->start_time;
        info->video_start = seconds(video->video_start, stream->time_base);
        info->video_duration = stream->duration == AV_NOPTS_VALUE ? 0 : seconds(stream->duration, stream->time_base);
        longest = info->video_duration;
        copy_name(info->video_codec, avcodec_get_name(codec->codec_id));
    }
    if (video->audio_index >= 0) {
        AVStream *stream = format->streams[video->audio_index];
        info->has_audio = 1;
        info->sample_rate = stream->codecpar->sample_rate;
        info->channels = stream->codecpar->ch_layout.nb_channels;
        info->audio_start = stream->start_time == AV_NOPTS_VALUE ? 0 : seconds(stream->start_time, stream->time_base);
        double duration = stream->duration == AV_NOPTS_VALUE ? 0 : seconds(stream->duration, stream->time_base);
        if (duration > longest) {
            longest = duration;
        }
        copy_name(info->audio_codec, avcodec_get_name(stream->codecpar->codec_id));
    }
    info->duration = format->duration != AV_NOPTS_VALUE && format->duration > 0 ? (double)format->duration / AV_TIME_BASE : longest;
    if (!isfinite(info->duration) || info->duration < 0) {
        info->duration = 0;
    }
    /* This demuxer serves the frames; the audio is read through one of its own (chorus_video_audio). */
    for (unsigned i = 0; i < format->nb_streams; i++) {
        if ((int)i != video->video_index) {
            format->streams[i]->discard = AVDISCARD_ALL;
        }
    }
    *out = video;
    return CHORUS_VIDEO_OK;
}

static chorus_video_code open_decoder(chorus_video *video, AVFormatContext *format, int index, AVCodecContext **out,
                                      chorus_video_status *status) {
    AVStream *stream = format->streams[index];
    const AVCodec *codec = avcodec_find_decoder(stream->codecpar->codec_id);
    if (codec == NULL) {
        return fail(status, CHORUS_VIDEO_UNSUPPORTED, "no decoder for the %s stream's codec %s",
                    av_get_media_type_string(stream->codecpar->codec_type), avcodec_get_name(stream->codecpar->codec_id));
    }
    AVCodecContext *context = avcodec_alloc_context3(codec);
    if (context == NULL) {
        return fail(status, CHORUS_VIDEO_OUT_OF_MEMORY, "out of memory");
    }
    int error = avcodec_parameters_to_context(context, stream->codecpar);
    if (error >= 0) {
        context->pkt_timebase = stream->time_base;
        context->max_pixels = video->max_pixels;
        /* Frame threads for the pictures (exact, as single-threaded decoding); audio decodes in one. */
        context->thread_count = stream->codecpar->codec_type == AVMEDIA_TYPE_VIDEO ? video->threads : 1;
        context->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
        error = avcodec_open2(context, codec, NULL);
    }
    if (error < 0) {
        avcodec_free_context(&context);
        return fail_av(status, error, "opening the decoder");
    }
    *out = context;
    return CHORUS_VIDEO_OK;
}

/* ---- frames ---------------------------------------------------------------------------------------- */

static chorus_video_code convert(chorus_video *video, AVFrame *frame, int width, int height, uint8_t *rgb,
                                 chorus_video_status *status) {
    if (frame->width <= 0 || frame->height <= 0 || frame->format < 0) {
        return fail(status, CHORUS_VIDEO_INVALID, "the decoder produced an empty frame");
    }
    video->scaler = sws_getCachedContext(video->scaler, frame->width, frame->height, frame->format, width, height,
                                         AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
    if (video->scaler == NULL) {
        return fail(status, CHORUS_VIDEO_UNSUPPORTED, "no conversion from pixel format %s to RGB",
                    av_get_pix_fmt_name(frame->format) ? av_get_pix_fmt_name(frame->format) : "?");
    }
    /* swscale's SIMD may write past a row's end: it writes into its own aligned picture, copied out. */
    uint8_t *planes[4];
    int strides[4];
    int size = av_image_alloc(planes, strides, width, height, AV_PIX_FMT_RGB24, 64);
    if (size < 0) {
        return fail(status, CHORUS_VIDEO_OUT_OF_MEMORY, "out of memory for a %dx%d frame", width, height);
    }
    int rows = sws_scale(video->scaler, (const uint8_t *const *)frame->data, frame->linesize, 0, frame->height, planes, strides);
    if (rows != height) {
        av_freep(&planes[0]);
        return fail(status, CHORUS_VIDEO_INVALID, "converting the frame to RGB failed");
    }
    for (int y = 0; y < height; y++) {
        memcpy(rgb + (size_t)y * (size_t)width * 3, planes[0] + (size_t)y * (size_t)strides[0], (size_t)width * 3);
    }
    av_freep(&planes[0]);
    return CHORUS_VIDEO_OK;
}

static int64_t frame_time(const AVFrame *frame) {
    return frame->best_effort_timestamp != AV_NOPTS_VALUE ? frame->best_effort_timestamp : frame->pts;
}

chorus_video_code chorus_video_frame_at(chorus_video *video, double at, int width, int height, uint8_t *rgb,
                                        size_t capacity, double *shown, chorus_video_status *status) {
    status->code = CHORUS_VIDEO_OK;
    status->message[0] = 0;
    if (video->video_index < 0) {
        return fail(status, CHORUS_VIDEO_NO_VIDEO, "the file has no video stream");
    }
    if (width <= 0 || height <= 0 || width > 16384 || height > 16384 || capacity / 3 / (size_t)width < (size_t)height
        || !isfinite(at) || at < 0 || at > 1e7) {
        return fail(status, CHORUS_VIDEO_INVALID_ARGUMENT, "frame request out of range");
    }
    if (atomic_load(&video->cancelled)) {
        return fail(status, CHORUS_VIDEO_CANCELLED, "cancelled");
    }
    if (video->video_decoder == NULL) {
        chorus_video_code code = open_decoder(video, video->format, video->video_index, &video->video_decoder, status);
        if (code != CHORUS_VIDEO_OK) {
            return code;
        }
    }
    AVStream *stream = video->format->streams[video->video_index];
    AVRational base = stream->time_base;
    if (base.num <= 0 || base.den <= 0) {
        return fail(status, CHORUS_VIDEO_INVALID, "the video stream has no time base");
    }
    double rate = av_q2d(stream->avg_frame_rate.num > 0 && stream->avg_frame_rate.den > 0 ? stream->avg_frame_rate : stream->r_frame_rate);
    double half_frame = isfinite(rate) && rate > 0 ? 0.5 / rate : 0.001;
    int64_t target = video->video_start + (int64_t)llround(at / av_q2d(base));
    int64_t early = target - (int64_t)llround(half_frame / av_q2d(base));
    int64_t keyframe_reach = (int64_t)llround(1.0 / av_q2d(base)); /* closer than a second: decode on */
    if (video->last_shown == INT64_MIN || video->decoder_drained || target <= video->last_shown
        || target - video->last_shown > keyframe_reach) {
        int error = av_seek_frame(video->format, video->video_index, target, AVSEEK_FLAG_BACKWARD);
        if (error < 0 && video->last_shown != INT64_MIN) {
            /* A stream the demuxer cannot seek in: from the start again. */
            error = av_seek_frame(video->format, video->video_index, video->video_start, AVSEEK_FLAG_BACKWARD | AVSEEK_FLAG_ANY);
        }
        if (error == AVERROR_EXIT) {
            return fail(status, CHORUS_VIDEO_CANCELLED, "cancelled");
        }
        avcodec_flush_buffers(video->video_decoder);
        video->decoder_drained = 0;
        /* A failed first seek is harmless: the demuxer is still at the start. */
    }
    AVFrame *frame = video->frame;
    AVFrame *latest = av_frame_alloc(); /* the last frame decoded: the answer if the stream ends before `at` */
    if (latest == NULL) {
        return fail(status, CHORUS_VIDEO_OUT_OF_MEMORY, "out of memory");
    }
    int have_latest = 0, ended = 0;
    chorus_video_code code = CHORUS_VIDEO_OK;
    for (;;) {
        int error = avcodec_receive_frame(video->video_decoder, frame);
        if (error >= 0) {
            int64_t time = frame_time(frame);
            if (time == AV_NOPTS_VALUE || time >= early) {
                code = convert(video, frame, width, height, rgb, status);
                video->last_shown = time == AV_NOPTS_VALUE ? target : time;
                *shown = seconds(video->last_shown - video->video_start, base);
                av_frame_unref(frame);
                av_frame_free(&latest);
                return code;
            }
            av_frame_unref(latest);
            av_frame_move_ref(latest, frame);
            have_latest = 1;
            continue;
        }
        if (error == AVERROR_EOF) {
            break;
        }
        if (error != AVERROR(EAGAIN)) {
            av_frame_free(&latest);
            return fail_av(status, error, "decoding the video");
        }
        if (ended) {
            break;
        }
        error = av_read_frame(video->format, video->packet);
        if (error == AVERROR_EOF || error == AVERROR(EIO) && avio_feof(video->format->pb)) {
            ended = 1;
            error = avcodec_send_packet(video->video_decoder, NULL);
            if (error < 0 && error != AVERROR_EOF) {
                av_frame_free(&latest);
                return fail_av(status, error, "decoding the video");
            }
            continue;
        }
        if (error < 0) {
            av_frame_free(&latest);
            return fail_av(status, error, "reading the video");
        }
        if (video->packet->stream_index == video->video_index) {
            /* Frames shown before the one wanted are never handed out: those no other frame refers to (most
               B-frames) need not be decoded at all. */
            int64_t shown = video->packet->pts;
            video->video_decoder->skip_frame = shown != AV_NOPTS_VALUE && shown < early ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
            error = avcodec_send_packet(video->video_decoder, video->packet);
            /* A damaged packet is skipped, as players do; a file of nothing but damage ends with NO_FRAMES. */
            if (error < 0 && error != AVERROR(EAGAIN) && error != AVERROR_INVALIDDATA) {
                av_packet_unref(video->packet);
                av_frame_free(&latest);
                return fail_av(status, error, "decoding the video");
            }
        }
        av_packet_unref(video->packet);
    }
    video->decoder_drained = 1;
    if (!have_latest) {
        av_frame_free(&latest);
        return fail(status, CHORUS_VIDEO_NO_FRAMES,
                    "the video stream has no frame that decodes at %.3f s (the file is empty, truncated or damaged there)", at);
    }
    int64_t time = frame_time(latest);
    code = convert(video, latest, width, height, rgb, status);
    video->last_shown = time == AV_NOPTS_VALUE ? target : time;
    *shown = seconds(video->last_shown - video->video_start, base);
    av_frame_free(&latest);
    return code;
}

/* ---- audio ----------------------------------------------------------------------------------------- */

typedef struct {
    float *samples;
    size_t count;
    size_t capacity;
    size_t limit;
} sample_buffer;

static int reserve(sample_buffer *buffer, size_t more) {
    if (more > buffer->limit || buffer->count > buffer->limit - more) {
        return 0;
    }
    size_t needed = buffer->count + more;
    if (needed <= buffer->capacity) {
        return 1;
    }
    size_t capacity = buffer->capacity < 4096 ? 4096 : buffer->capacity;
    while (capacity < needed) {
        capacity = capacity > SIZE_MAX / 2 ? needed : capacity * 2;
    }
    if (capacity > buffer->limit) {
        capacity = buffer->limit;
    }
    float *grown = realloc(buffer->samples, capacity * sizeof(float));
    if (grown == NULL) {
        return -1;
    }
    buffer->samples = grown;
    buffer->capacity = capacity;
    return 1;
}

/* Resamples one decoded frame (or, with frame NULL, what the resampler still holds) onto the buffer,
   dropping the first *skip samples. */
static chorus_video_code resample(SwrContext *resampler, const AVFrame *frame, sample_buffer *buffer, size_t *skip,
                                  chorus_video_status *status) {
    int room = swr_get_out_samples(resampler, frame ? frame->nb_samples : 0);
    if (room < 0) {
        return fail(status, CHORUS_VIDEO_INVALID, "resampling the audio failed");
    }
    if (room == 0) {
        return CHORUS_VIDEO_OK;
    }
    /* The resampler's output goes past the limit only by what the limit check refuses below. */
    size_t headroom = (size_t)room;
    int reserved = reserve(buffer, headroom);
    if (reserved < 0) {
        return fail(status, CHORUS_VIDEO_OUT_OF_MEMORY, "out of memory for the audio");
    }
    if (reserved == 0) {
        return fail(status, CHORUS_VIDEO_TOO_LARGE, "the audio is longer than the limit of %zu samples", buffer->limit);
    }
    uint8_t *out = (uint8_t *)(buffer->samples + buffer->count);
    int made = swr_convert(resampler, &out, room, frame ? (const uint8_t **)frame->extended_data : NULL, frame ? frame->nb_samples : 0);
    if (made < 0) {
        return fail(status, CHORUS_VIDEO_INVALID, "resampling the audio failed");
    }
    size_t kept = (size_t)made;
    if (*skip > 0) {
        size_t dropped = *skip < kept ? *skip : kept;
        memmove(buffer->samples + buffer->count, buffer->samples + buffer->count + dropped, (kept - dropped) * sizeof(float));
        kept -= dropped;
        *skip -= dropped;
    }
    buffer->count += kept;
    return CHORUS_VIDEO_OK;
}

chorus_video_code chorus_video_audio(chorus_video *video, double start, double end, int rate, size_t max_samples,
                                     float **samples, size_t *count, chorus_video_status *status) {
    status->code = CHORUS_VIDEO_OK;
    status->message[0] = 0;
    *samples = NULL;
    *count = 0;
    if (video->audio_index < 0) {
        return fail(status, CHORUS_VIDEO_NO_AUDIO, "the file has no audio track");
    }
    if (rate < 1000 || rate > 384000 || !isfinite(start) || start < 0 || start > 1e7 || !isfinite(end) || end > 1e7
        || (end > 0 && end <= start)) {
        return fail(status, CHORUS_VIDEO_INVALID_ARGUMENT, "audio request out of range");
    }
    /* A demuxer of its own, from the first byte, as a fresh open reads it: the video decoder keeps its place,
       and a codec's start (Opus's pre-skip, AAC's priming) is handled as at any first read. */
    memory_source source = video->source;
    AVIOContext *io = NULL;
    AVFormatContext *format = NULL;
    chorus_video_code code = open_format(video, &source, &io, &format, status);
    if (code != CHORUS_VIDEO_OK) {
        return code;
    }
    AVPacket *packet = av_packet_alloc();
    AVCodecContext *decoder = NULL;
    if (packet == NULL) {
        code = fail(status, CHORUS_VIDEO_OUT_OF_MEMORY, "out of memory");
    } else if ((unsigned)video->audio_index >= format->nb_streams
               || format->streams[video->audio_index]->codecpar->codec_type != AVMEDIA_TYPE_AUDIO) {
        code = fail(status, CHORUS_VIDEO_INVALID, "the audio track moved between two reads of the same bytes");
    } else {
        code = open_decoder(video, format, video->audio_index, &decoder, status);
    }
    if (code != CHORUS_VIDEO_OK) {
        av_packet_free(&packet);
        close_format(&io, &format);
        return code;
    }
    for (unsigned i = 0; i < format->nb_streams; i++) {
        format->streams[i]->discard = (int)i == video->audio_index ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    }
    AVStream *stream = format->streams[video->audio_index];
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    AVChannelLayout input;
    if (decoder->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || decoder->ch_layout.nb_channels <= 0) {
        av_channel_layout_default(&input, decoder->ch_layout.nb_channels > 0 ? decoder->ch_layout.nb_channels : 1);
    } else if (av_channel_layout_copy(&input, &decoder->ch_layout) < 0) {
        avcodec_free_context(&decoder);
        return fail(status, CHORUS_VIDEO_OUT_OF_MEMORY, "out of memory");
    }
    SwrContext *resampler = NULL;
    int error = decoder->sample_rate > 0 && decoder->sample_rate <= 1000000
        ? swr_alloc_set_opts2(&resampler, &mono, AV_SAMPLE_FMT_FLT, rate, &input, decoder->sample_fmt, decoder->sample_rate, 0, NULL)
        : AVERROR_INVALIDDATA;
    if (error >= 0) {
        error = swr_init(resampler);
    }
    av_channel_layout_uninit(&input);
    if (error < 0) {
        swr_free(&resampler);
        code = fail(status, CHORUS_VIDEO_UNSUPPORTED, "the audio track (%d Hz, %d channels, %s) cannot be resampled",
                    decoder ? decoder->sample_rate : 0, decoder ? decoder->ch_layout.nb_channels : 0,
                    decoder ? av_get_sample_fmt_name(decoder->sample_fmt) ? av_get_sample_fmt_name(decoder->sample_fmt) : "?" : "?");
        avcodec_free_context(&decoder);
        av_packet_free(&packet);
        close_format(&io, &format);
        return code;
    }
    AVRational base = stream->time_base;
    int64_t stream_start = stream->start_time == AV_NOPTS_VALUE ? 0 : stream->start_time;
    if (start > 0 && base.num > 0 && base.den > 0) {
        av_seek_frame(format, video->audio_index, stream_start + (int64_t)llround(start / av_q2d(base)), AVSEEK_FLAG_BACKWARD);
    }
    sample_buffer buffer = {NULL, 0, 0, max_samples};
    size_t skip = 0;
    int first = 1, ended = 0;
    AVFrame *frame = av_frame_alloc();
    if (frame == NULL) {
        code = fail(status, CHORUS_VIDEO_OUT_OF_MEMORY, "out of memory");
    }
    while (code == CHORUS_VIDEO_OK) {
        error = avcodec_receive_frame(decoder, frame);
        if (error >= 0) {
            if (first) {
                /* The seek lands on a packet at or before start: the samples before it are dropped. From the
                   start, everything the decoder gives is kept (it already dropped the codec's priming). */
                int64_t time = frame_time(frame);
                double lead = time == AV_NOPTS_VALUE || base.num <= 0 || start == 0 ? 0 : start - seconds(time - stream_start, base);
                skip = lead > 0 ? (size_t)llround(lead * rate) : 0;
                first = 0;
            }
            code = resample(resampler, frame, &buffer, &skip, status);
            av_frame_unref(frame);
            if (end > 0 && (double)buffer.count >= (end - start) * rate) {
                break;
            }
            continue;
        }
        if (error == AVERROR_EOF) {
            code = resample(resampler, NULL, &buffer, &skip, status);
            break;
        }
        if (error != AVERROR(EAGAIN)) {
            code = fail_av(status, error, "decoding the audio");
            break;
        }
        if (ended) {
            break;
        }
        error = av_read_frame(format, packet);
        if (error == AVERROR_EOF) {
            ended = 1;
            avcodec_send_packet(decoder, NULL);
            continue;
        }
        if (error < 0) {
            code = fail_av(status, error, "reading the audio");
            break;
        }
        if (packet->stream_index == video->audio_index) {
            error = avcodec_send_packet(decoder, packet);
            if (error < 0 && error != AVERROR(EAGAIN) && error != AVERROR_INVALIDDATA) {
                code = fail_av(status, error, "decoding the audio");
            }
        }
        av_packet_unref(packet);
    }
    av_frame_free(&frame);
    av_packet_free(&packet);
    swr_free(&resampler);
    avcodec_free_context(&decoder);
    close_format(&io, &format);
    if (code != CHORUS_VIDEO_OK) {
        free(buffer.samples);
        return code;
    }
    if (end > 0) {
        double wanted = (end - start) * rate;
        if ((double)buffer.count > wanted) {
            buffer.count = (size_t)wanted;
        }
    }
    if (buffer.count == 0) {
        free(buffer.samples);
        buffer.samples = NULL;
    }
    *samples = buffer.samples;
    *count = buffer.count;
    return CHORUS_VIDEO_OK;
}

void chorus_video_free(void *buffer) { free(buffer); }
