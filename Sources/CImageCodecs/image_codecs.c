#include "chorus_image_codecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

// MARK: - libjpeg behind an error manager

struct chorus_jpeg_error {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *message;
    int premature_end;
};

static void chorus_jpeg_fail(j_common_ptr cinfo) {
    struct chorus_jpeg_error *err = (struct chorus_jpeg_error *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    err->base.format_message(cinfo, text);
    snprintf(err->message, CHORUS_CODEC_ERROR_SIZE, "corrupt JPEG: %s", text);
    longjmp(err->jump, 1);
}

// Warnings (level -1) do not stop libjpeg; a truncated file only warns and is filled with grey, so the
// end-of-data warning is remembered and turned into an error by the caller.
static void chorus_jpeg_message(j_common_ptr cinfo, int level) {
    struct chorus_jpeg_error *err = (struct chorus_jpeg_error *)cinfo->err;
    if (level < 0 && err->base.msg_code == JWRN_JPEG_EOF) err->premature_end = 1;
}

static void chorus_jpeg_silence(j_common_ptr cinfo) { (void)cinfo; }

#define CHORUS_JPEG_SETUP(cinfo, err, error)          \
    struct chorus_jpeg_error err;                      \
    memset(&err, 0, sizeof err);                       \
    (cinfo).err = jpeg_std_error(&err.base);           \
    err.base.error_exit = chorus_jpeg_fail;            \
    err.base.emit_message = chorus_jpeg_message;       \
    err.base.output_message = chorus_jpeg_silence;     \
    err.message = (error);

int chorus_jpeg_info(const uint8_t *data, size_t size, int *width, int *height, int *channels, char *error) {
    struct jpeg_decompress_struct cinfo;
    CHORUS_JPEG_SETUP(cinfo, err, error)
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    *width = (int)cinfo.image_width;
    *height = (int)cinfo.image_height;
    *channels = cinfo.num_components == 1 ? 1 : 3;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int chorus_jpeg_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t pixels_size, char *error) {
    struct jpeg_decompress_struct cinfo;
    CHORUS_JPEG_SETUP(cinfo, err, error)
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    size_t row = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    if (row * cinfo.output_height > pixels_size) {
        snprintf(error, CHORUS_CODEC_ERROR_SIZE, "JPEG decodes to %zu bytes, the buffer holds %zu", row * cinfo.output_height, pixels_size);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW line = pixels + row * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &line, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (err.premature_end) {
        snprintf(error, CHORUS_CODEC_ERROR_SIZE, "truncated JPEG: the data ends before the image does");
        return 1;
    }
    return 0;
}

int chorus_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                       uint8_t **out, unsigned long *out_size, char *error) {
    struct jpeg_compress_struct cinfo;
    CHORUS_JPEG_SETUP(cinfo, err, error)
    *out = NULL;
    *out_size = 0;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(*out);
        *out = NULL;
        return 1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, out, out_size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t row = (size_t)width * (size_t)channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW line = (JSAMPROW)(pixels + row * cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, &line, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return 0;
}

// MARK: - libpng's simplified API

static png_uint_32 chorus_png_format(int channels, int bit_depth) {
    png_uint_32 format = 0;
    if (channels >= 3) format |= PNG_FORMAT_FLAG_COLOR;
    if (channels == 2 || channels == 4) format |= PNG_FORMAT_FLAG_ALPHA;
    if (bit_depth == 16) format |= PNG_FORMAT_FLAG_LINEAR;
    return format;
}

int chorus_png_info(const uint8_t *data, size_t size, int *width, int *height, int *channels, int *bit_depth, char *error) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, size)) {
        snprintf(error, CHORUS_CODEC_ERROR_SIZE, "corrupt PNG: %s", image.message);
        png_image_free(&image);
        return 1;
    }
    *width = (int)image.width;
    *height = (int)image.height;
    *channels = (int)PNG_IMAGE_SAMPLE_CHANNELS(image.format);
    *bit_depth = (image.format & PNG_FORMAT_FLAG_LINEAR) ? 16 : 8;
    png_image_free(&image);
    return 0;
}

int chorus_png_decode(const uint8_t *data, size_t size, int channels, int bit_depth, void *pixels, size_t pixels_size, char *error) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, size)) {
        snprintf(error, CHORUS_CODEC_ERROR_SIZE, "corrupt PNG: %s", image.message);
        png_image_free(&image);
        return 1;
    }
    image.format = chorus_png_format(channels, bit_depth);
    if (PNG_IMAGE_SIZE(image) > pixels_size) {
        snprintf(error, CHORUS_CODEC_ERROR_SIZE, "PNG decodes to %zu bytes, the buffer holds %zu", (size_t)PNG_IMAGE_SIZE(image), pixels_size);
        png_image_free(&image);
        return 1;
    }
    if (!png_image_finish_read(&image, NULL, pixels, 0, NULL)) {
        snprintf(error, CHORUS_CODEC_ERROR_SIZE, "corrupt PNG: %s", image.message);
        png_image_free(&image);
        return 1;
    }
    return 0;
}

int chorus_png_encode(const void *pixels, int width, int height, int channels, int bit_depth, int fast,
                      uint8_t **out, size_t *out_size, char *error) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = chorus_png_format(channels, bit_depth);
    if (fast) image.flags |= PNG_IMAGE_FLAG_FAST;
    *out = NULL;
    size_t needed = 0;
    // First pass measures, second writes: png_image_write_to_memory's documented protocol.
    if (!png_image_write_to_memory(&image, NULL, &needed, 0, pixels, 0, NULL)) {
        snprintf(error, CHORUS_CODEC_ERROR_SIZE, "PNG encoding failed: %s", image.message);
        return 1;
    }
    *out = malloc(needed);
    if (*out == NULL) {
        snprintf(error, CHORUS_CODEC_ERROR_SIZE, "out of memory for a %zu-byte PNG", needed);
        return 1;
    }
    if (!png_image_write_to_memory(&image, *out, &needed, 0, pixels, 0, NULL)) {
        snprintf(error, CHORUS_CODEC_ERROR_SIZE, "PNG encoding failed: %s", image.message);
        free(*out);
        *out = NULL;
        return 1;
    }
    *out_size = needed;
    return 0;
}
