#ifndef CHORUS_JPEG_H
#define CHORUS_JPEG_H

#include <stddef.h>
#include <stdint.h>

/* libjpeg's default error handler calls exit(), and Swift cannot setjmp, so every libjpeg call
   goes through these functions. They never exit or abort: failures come back as a code plus
   libjpeg's own message. */

typedef enum {
    CHORUS_JPEG_OK = 0,
    CHORUS_JPEG_CORRUPT = 1,
    CHORUS_JPEG_TRUNCATED = 2,
    CHORUS_JPEG_TOO_LARGE = 3,       /* beyond libjpeg's 65500-pixel limit; width/height are set */
    CHORUS_JPEG_UNSUPPORTED = 4,     /* colour space or precision that has no gray/RGB output */
    CHORUS_JPEG_OUT_OF_MEMORY = 5,
    CHORUS_JPEG_INVALID_ARGUMENT = 6
} chorus_jpeg_code;

#define CHORUS_JPEG_MESSAGE_CAPACITY 200

typedef struct {
    chorus_jpeg_code code;
    int width;
    int height;
    int channels; /* of the decoded pixels: 1 (gray) or 3 (RGB) */
    char message[CHORUS_JPEG_MESSAGE_CAPACITY];
} chorus_jpeg_status;

/* Reads only the headers: fills width, height and channels without decoding any pixels, so the
   caller can check its limits before allocating. */
chorus_jpeg_code chorus_jpeg_read_info(const uint8_t *data, size_t size, chorus_jpeg_status *status);

/* Decodes into pixels (height rows of width * channels bytes, as chorus_jpeg_read_info reported).
   capacity is the size of pixels in bytes. */
chorus_jpeg_code chorus_jpeg_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t capacity,
                                    chorus_jpeg_status *status);

/* Encodes width x height pixels of 1 (gray) or 3 (RGB) interleaved channels. On success *output is
   a buffer to release with chorus_jpeg_free. */
chorus_jpeg_code chorus_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                                    uint8_t **output, size_t *output_size, chorus_jpeg_status *status);

void chorus_jpeg_free(uint8_t *buffer);

#endif
