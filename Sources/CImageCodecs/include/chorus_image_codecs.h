// C side of ChorusMedia's image codecs. libjpeg reports fatal errors through longjmp, which Swift cannot
// catch, so every libjpeg call happens here behind an error manager that turns them into return codes.
// PNG uses libpng's simplified API, which needs no setjmp, but lives here too so both codecs share one
// shape: 0 on success, non-zero with a human message in `error` on failure.
#ifndef CHORUS_IMAGE_CODECS_H
#define CHORUS_IMAGE_CODECS_H

#include <stddef.h>
#include <stdint.h>

#define CHORUS_CODEC_ERROR_SIZE 200

// Reads only the header: dimensions and channel count (1 gray, 3 RGB, 4 RGBA; bit depth 8 or 16).
int chorus_jpeg_info(const uint8_t *data, size_t size, int *width, int *height, int *channels, char *error);
// Decodes into `pixels` (width * height * channels bytes, channels 1 or 3 as chorus_jpeg_info reported).
int chorus_jpeg_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t pixels_size, char *error);
// Encodes 8-bit gray or RGB; *out is malloc'ed by libjpeg: free() it.
int chorus_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                       uint8_t **out, unsigned long *out_size, char *error);

int chorus_png_info(const uint8_t *data, size_t size, int *width, int *height, int *channels, int *bit_depth, char *error);
// Decodes to 8-bit (bit_depth 8) or 16-bit gray (bit_depth 16) with `channels` 1, 3 or 4.
int chorus_png_decode(const uint8_t *data, size_t size, int channels, int bit_depth, void *pixels, size_t pixels_size, char *error);
// Encodes; *out is malloc'ed: free() it. `fast` trades size for speed (PNG_IMAGE_FLAG_FAST).
int chorus_png_encode(const void *pixels, int width, int height, int channels, int bit_depth, int fast,
                      uint8_t **out, size_t *out_size, char *error);

#endif
