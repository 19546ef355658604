#ifndef CHORUS_VIDEO_H
#define CHORUS_VIDEO_H

#include <stddef.h>
#include <stdint.h>

/* FFmpeg (libavformat, libavcodec, libswscale, libswresample) behind a few calls that read a container
   from memory: no temporary files, no stderr. Every failure comes back as a code and a message naming
   what was wrong; FFmpeg's own log goes to the sink set with chorus_video_set_log_sink (dropped until
   one is set). */

typedef enum {
    CHORUS_VIDEO_OK = 0,
    CHORUS_VIDEO_INVALID = 1,        /* not a container FFmpeg can read, or a corrupt one */
    CHORUS_VIDEO_NO_VIDEO = 2,       /* the file has no video stream */
    CHORUS_VIDEO_NO_AUDIO = 3,       /* the file has no audio stream */
    CHORUS_VIDEO_UNSUPPORTED = 4,    /* a codec this FFmpeg has no decoder for */
    CHORUS_VIDEO_NO_FRAMES = 5,      /* the stream decodes to nothing */
    CHORUS_VIDEO_TOO_LARGE = 6,      /* frames or audio beyond the caller's limits */
    CHORUS_VIDEO_OUT_OF_MEMORY = 7,
    CHORUS_VIDEO_CANCELLED = 8,
    CHORUS_VIDEO_INVALID_ARGUMENT = 9
} chorus_video_code;

#define CHORUS_VIDEO_MESSAGE_CAPACITY 256
#define CHORUS_VIDEO_NAME_CAPACITY 32

typedef struct {
    chorus_video_code code;
    char message[CHORUS_VIDEO_MESSAGE_CAPACITY];
} chorus_video_status;

typedef struct {
    char container[CHORUS_VIDEO_NAME_CAPACITY];  /* FFmpeg's demuxer name: "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm" */
    double duration;        /* seconds; the container's figure, else the longest stream's; 0 when unknown */
    int has_video;
    int width, height;      /* as the stream declares them: check before decoding */
    double frame_rate;      /* average frames per second; 0 when unknown */
    int64_t frame_count;    /* as the container declares it; 0 when unknown */
    double video_start;     /* the first frame's time in seconds */
    double video_duration;  /* seconds; 0 when unknown */
    char video_codec[CHORUS_VIDEO_NAME_CAPACITY];
    int has_audio;
    int sample_rate;
    int channels;
    double audio_start;
    char audio_codec[CHORUS_VIDEO_NAME_CAPACITY];
} chorus_video_info;

typedef struct chorus_video chorus_video;

/* Opens a container held in memory (data must outlive the handle) and reads its streams' headers;
   decodes nothing. max_pixels bounds the frames a decoder may produce (its max_pixels option); threads is
   the video decoder's (0: as many as FFmpeg finds cores). */
chorus_video_code chorus_video_open(const uint8_t *data, size_t size, int64_t max_pixels, int threads, chorus_video **out,
                                    chorus_video_info *info, chorus_video_status *status);

void chorus_video_close(chorus_video *video);

/* From another thread: makes the running (and every later) call of this handle answer CANCELLED. */
void chorus_video_cancel(chorus_video *video);

/* Decodes the frame shown at `seconds` after the video's first frame (the first frame at or after it,
   within half a frame), scaled to width x height RGB (3 bytes a pixel, rows packed) into rgb
   (capacity bytes). Seeks to the keyframe before it unless the decoder is already close behind; calls
   in ascending order decode each stretch once. *shown is the frame's own time, from the first frame.
   Past the end the last frame is answered. */
chorus_video_code chorus_video_frame_at(chorus_video *video, double seconds, int width, int height, uint8_t *rgb,
                                        size_t capacity, double *shown, chorus_video_status *status);

/* Decodes the audio track between start and end seconds (end <= 0: to its end), mixed to mono and
   resampled to rate Hz, float samples. At most max_samples: more answers TOO_LARGE. On success *samples
   is a buffer to release with chorus_video_free (NULL when *count is 0). */
chorus_video_code chorus_video_audio(chorus_video *video, double start, double end, int rate, size_t max_samples,
                                     float **samples, size_t *count, chorus_video_status *status);

void chorus_video_free(void *buffer);

/* Where FFmpeg's log lines go (warnings and errors; level is FFmpeg's: 16 error, 24 warning). NULL
   drops them. Set once, before use, from one thread. */
typedef void (*chorus_video_log_sink)(int level, const char *line);
void chorus_video_set_log_sink(chorus_video_log_sink sink);

#endif
