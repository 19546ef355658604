#include "chorus_jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

_Static_assert(CHORUS_JPEG_MESSAGE_CAPACITY >= JMSG_LENGTH_MAX, "message buffer too small for libjpeg");

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf escape;
    chorus_jpeg_code code;
    int ran_dry; /* the source had no more bytes and libjpeg was fed a fake end marker */
} escaping_error_mgr;

static chorus_jpeg_code classify(int msg_code) {
    switch (msg_code) {
    case JERR_IMAGE_TOO_BIG:
        return CHORUS_JPEG_TOO_LARGE;
    case JERR_OUT_OF_MEMORY:
        return CHORUS_JPEG_OUT_OF_MEMORY;
    case JERR_INPUT_EOF:
    case JERR_INPUT_EMPTY:
        return CHORUS_JPEG_TRUNCATED;
    case JERR_CONVERSION_NOTIMPL:
    case JERR_BAD_PRECISION:
    case JERR_NOT_COMPILED:
        return CHORUS_JPEG_UNSUPPORTED;
    default:
        return CHORUS_JPEG_CORRUPT;
    }
}

static void escape_on_error(j_common_ptr cinfo) {
    escaping_error_mgr *err = (escaping_error_mgr *)cinfo->err;
    if (err->code == CHORUS_JPEG_OK) {
        err->code = classify(err->base.msg_code);
        if (err->code == CHORUS_JPEG_CORRUPT && err->ran_dry) {
            err->code = CHORUS_JPEG_TRUNCATED;
        }
    }
    longjmp(err->escape, 1);
}

/* When the data runs out, libjpeg warns (JWRN_JPEG_EOF), feeds itself an end marker and pads the
   picture with gray. Running out is harmless when the Huffman decoder was only reading ahead (a
   file missing just its end marker), so that alone is tolerated; but when the decoder then needs
   bits that are not there (JWRN_HIT_MARKER) pixels are missing, and handing that on as an image
   would hide a broken upload. Other warnings (stray bytes between markers and the like) are
   tolerated, as every common decoder does. */
static void escape_on_truncation(j_common_ptr cinfo, int msg_level) {
    escaping_error_mgr *err = (escaping_error_mgr *)cinfo->err;
    if (msg_level >= 0) {
        return; /* trace messages */
    }
    err->base.num_warnings++;
    if (err->base.msg_code == JWRN_JPEG_EOF) {
        err->ran_dry = 1;
    } else if (err->base.msg_code == JWRN_HIT_MARKER && err->ran_dry) {
        err->code = CHORUS_JPEG_TRUNCATED;
        longjmp(err->escape, 1);
    }
}

static void install_error_mgr(escaping_error_mgr *err) {
    jpeg_std_error(&err->base);
    err->base.error_exit = escape_on_error;
    err->base.emit_message = escape_on_truncation;
    err->code = CHORUS_JPEG_OK;
    err->ran_dry = 0;
}

static chorus_jpeg_code fail(chorus_jpeg_status *status, chorus_jpeg_code code, const char *message) {
    status->code = code;
    snprintf(status->message, sizeof status->message, "%s", message);
    return code;
}

/* Chooses an output colour space that libjpeg can produce directly. CMYK has no libjpeg
   conversion to RGB, so it is decoded as CMYK and converted by hand. */
static int prepare_output(struct jpeg_decompress_struct *cinfo, chorus_jpeg_status *status) {
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo->out_color_space = JCS_GRAYSCALE;
        status->channels = 1;
        return 1;
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo->out_color_space = JCS_RGB;
        status->channels = 3;
        return 1;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo->out_color_space = JCS_CMYK;
        status->channels = 3;
        return 1;
    default:
        return 0;
    }
}

static inline uint8_t multiply_div_255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* Adobe writes CMYK inverted (0 = full ink), which is what almost every CMYK JPEG is. */
static void cmyk_row_to_rgb(const uint8_t *cmyk, uint8_t *rgb, int width, int inverted) {
    for (int x = 0; x < width; x++, cmyk += 4, rgb += 3) {
        unsigned k = inverted ? cmyk[3] : 255u - cmyk[3];
        for (int c = 0; c < 3; c++) {
            unsigned v = inverted ? cmyk[c] : 255u - cmyk[c];
            rgb[c] = multiply_div_255(v, k);
        }
    }
}

static void read_pixels(struct jpeg_decompress_struct *cinfo, uint8_t *pixels, int channels) {
    size_t stride = (size_t)cinfo->output_width * (size_t)channels;
    if (cinfo->out_color_space == JCS_CMYK) {
        JSAMPARRAY cmyk = (*cinfo->mem->alloc_sarray)((j_common_ptr)cinfo, JPOOL_IMAGE,
                                                     cinfo->output_width * 4, 1);
        while (cinfo->output_scanline < cinfo->output_height) {
            uint8_t *row = pixels + stride * cinfo->output_scanline;
            if (jpeg_read_scanlines(cinfo, cmyk, 1) != 1) {
                ERREXIT(cinfo, JERR_INPUT_EOF);
            }
            cmyk_row_to_rgb(cmyk[0], row, (int)cinfo->output_width, cinfo->saw_Adobe_marker);
        }
        return;
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = pixels + stride * cinfo->output_scanline;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            ERREXIT(cinfo, JERR_INPUT_EOF);
        }
    }
}

/* pixels == NULL: headers only. */
static chorus_jpeg_code run_decoder(const uint8_t *data, size_t size, uint8_t *pixels, size_t capacity,
                                    chorus_jpeg_status *status) {
    struct jpeg_decompress_struct cinfo;
    escaping_error_mgr err;

    memset(status, 0, sizeof *status);
    if (data == NULL || size == 0) {
        return fail(status, CHORUS_JPEG_TRUNCATED, "empty JPEG data");
    }
    /* Zeroed so that jpeg_destroy_decompress is safe even if jpeg_CreateDecompress itself fails. */
    memset(&cinfo, 0, sizeof cinfo);
    install_error_mgr(&err);
    cinfo.err = &err.base;
    if (setjmp(err.escape)) {
        status->code = err.code;
        status->width = (int)cinfo.image_width;
        status->height = (int)cinfo.image_height;
        if (err.code == CHORUS_JPEG_TRUNCATED) {
            snprintf(status->message, sizeof status->message, "the data ends before the image is complete");
        } else {
            (*err.base.format_message)((j_common_ptr)&cinfo, status->message);
        }
        jpeg_destroy_decompress(&cinfo);
        return status->code;
    }

    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
        jpeg_destroy_decompress(&cinfo);
        return fail(status, CHORUS_JPEG_CORRUPT, "JPEG stream has no image");
    }
    status->width = (int)cinfo.image_width;
    status->height = (int)cinfo.image_height;
    if (!prepare_output(&cinfo, status)) {
        jpeg_destroy_decompress(&cinfo);
        return fail(status, CHORUS_JPEG_UNSUPPORTED, "JPEG colour space has no gray or RGB conversion");
    }
    if (pixels == NULL) {
        jpeg_destroy_decompress(&cinfo);
        return CHORUS_JPEG_OK;
    }
    if (capacity < (size_t)status->width * (size_t)status->height * (size_t)status->channels) {
        jpeg_destroy_decompress(&cinfo);
        return fail(status, CHORUS_JPEG_INVALID_ARGUMENT, "pixel buffer is smaller than the image");
    }
    if (!jpeg_start_decompress(&cinfo)) {
        jpeg_destroy_decompress(&cinfo);
        return fail(status, CHORUS_JPEG_UNSUPPORTED, "buffered-image mode is not supported");
    }
    read_pixels(&cinfo, pixels, status->channels);
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return CHORUS_JPEG_OK;
}

chorus_jpeg_code chorus_jpeg_read_info(const uint8_t *data, size_t size, chorus_jpeg_status *status) {
    return run_decoder(data, size, NULL, 0, status);
}

chorus_jpeg_code chorus_jpeg_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t capacity,
                                    chorus_jpeg_status *status) {
    if (pixels == NULL) {
        memset(status, 0, sizeof *status);
        return fail(status, CHORUS_JPEG_INVALID_ARGUMENT, "no pixel buffer");
    }
    return run_decoder(data, size, pixels, capacity, status);
}

/* libjpeg's memory destination mallocs the output and keeps its address here; it lives outside
   the stack frame that longjmp returns to, so it is valid in the error path. */
typedef struct {
    unsigned char *buffer;
    unsigned long size;
} encoded_output;

chorus_jpeg_code chorus_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                                    uint8_t **output, size_t *output_size, chorus_jpeg_status *status) {
    struct jpeg_compress_struct cinfo;
    escaping_error_mgr err;
    encoded_output *out;

    memset(status, 0, sizeof *status);
    *output = NULL;
    *output_size = 0;
    if (pixels == NULL || width <= 0 || height <= 0 || (channels != 1 && channels != 3)) {
        return fail(status, CHORUS_JPEG_INVALID_ARGUMENT, "JPEG encoding needs a non-empty gray or RGB image");
    }
    if (width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION) {
        status->width = width;
        status->height = height;
        return fail(status, CHORUS_JPEG_TOO_LARGE, "JPEG cannot store images wider or taller than 65500 pixels");
    }
    out = calloc(1, sizeof *out);
    if (out == NULL) {
        return fail(status, CHORUS_JPEG_OUT_OF_MEMORY, "out of memory");
    }
    memset(&cinfo, 0, sizeof cinfo);
    install_error_mgr(&err);
    cinfo.err = &err.base;
    if (setjmp(err.escape)) {
        status->code = err.code;
        (*err.base.format_message)((j_common_ptr)&cinfo, status->message);
        jpeg_destroy_compress(&cinfo);
        free(out->buffer);
        free(out);
        return status->code;
    }

    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &out->buffer, &out->size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality < 1 ? 1 : (quality > 100 ? 100 : quality), TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)width * (size_t)channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        /* libjpeg's row type is not const, but compression only reads it. */
        JSAMPROW row = (JSAMPROW)(pixels + stride * cinfo.next_scanline);
        if (jpeg_write_scanlines(&cinfo, &row, 1) != 1) {
            ERREXIT(&cinfo, JERR_BUFFER_SIZE);
        }
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);

    *output = out->buffer;
    *output_size = out->size;
    free(out);
    status->width = width;
    status->height = height;
    status->channels = channels;
    return CHORUS_JPEG_OK;
}

void chorus_jpeg_free(uint8_t *buffer) {
    free(buffer);
}
