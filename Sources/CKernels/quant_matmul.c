#include "chorus_kernels.h"

#include <math.h>
#include <string.h>

/* Products of weights kept in GGML's quantized blocks with activations quantized to 8 bits, as llama.cpp's
   CPU backend computes them: the activations of each row become int8 blocks with a float scale
   (q8_0 / q8_1 per 32 values, q8_K per 256), the block products are integer sums, and floats enter only to
   scale each block's sum. The activation rounding follows llama.cpp's x86 code (round half to even; q8_K
   through its reference quantizer), so both compute the same integers. */

static float to_half_and_back(float x) { return (float)(_Float16)x; }

/* llama.cpp's quantize_row_q8_0 / q8_1 (AVX path): d = max|x| / 127 kept as a half; codes x · (127 / max|x|)
   rounded half to even. `offset` (q8_1's s) is d · Σ codes, kept as a half; `sums` the Σ codes. */
static void quantize_32(const float *x, ptrdiff_t columns, int8_t *qs, float *scale, float *offset, int32_t *sums) {
    for (ptrdiff_t b = 0; b < columns / 32; b++) {
        const float *v = x + b * 32;
        float max = 0;
        for (int i = 0; i < 32; i++) max = fmaxf(max, fabsf(v[i]));
        const float d = max / 127.f, id = max != 0.0f ? 127.f / max : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            const int q = (int)nearbyintf(v[i] * id);
            qs[b * 32 + i] = (int8_t)q;
            sum += q;
        }
        scale[b] = to_half_and_back(d);
        if (offset) offset[b] = to_half_and_back(d * (float)sum);
        if (sums) sums[b] = sum;
    }
}

/* llama.cpp's quantize_row_q8_K_ref: the value of largest magnitude maps to -127 (its scale is negative when
   that value is positive); codes by the float-magic rounding (half to even); sums per 16. */
static void quantize_256(const float *x, ptrdiff_t columns, int8_t *qs, float *scale, int32_t *sums) {
    for (ptrdiff_t b = 0; b < columns / 256; b++) {
        const float *v = x + b * 256;
        int8_t *q = qs + b * 256;
        float max = 0, amax = 0;
        for (int i = 0; i < 256; i++) {
            const float ax = fabsf(v[i]);
            if (ax > amax) { amax = ax; max = v[i]; }
        }
        if (amax == 0) {
            scale[b] = 0;
            memset(q, 0, 256);
            for (int g = 0; g < 16; g++) sums[b * 16 + g] = 0;
            continue;
        }
        const float iscale = -127.f / max;
        for (int i = 0; i < 256; i++) {
            const float magic = iscale * v[i] + 12582912.f;
            int32_t bits;
            memcpy(&bits, &magic, 4);
            const int code = (bits & 0x007fffff) - 0x00400000;
            q[i] = (int8_t)(code < 127 ? code : 127);
        }
        for (int g = 0; g < 16; g++) {
            int32_t sum = 0;
            for (int i = 0; i < 16; i++) sum += q[g * 16 + i];
            sums[b * 16 + g] = sum;
        }
        scale[b] = 1 / iscale;
    }
}

int chorus_q8_quantize(int kind, const float *x, ptrdiff_t rows, ptrdiff_t columns, int8_t *qs, float *scale,
                       float *offset, int32_t *sums) {
    if (!x || !qs || !scale || rows < 0 || columns < 0) return -1;
    const ptrdiff_t unit = kind == CHORUS_Q8_K ? 256 : 32;
    if (columns % unit != 0) return -1;
    for (ptrdiff_t i = 0; i < rows; i++) {
        const float *row = x + i * columns;
        int8_t *q = qs + i * columns;
        float *s = scale + i * (columns / unit);
        switch (kind) {
        case CHORUS_Q8_0:
            if (!sums) return -1;
            quantize_32(row, columns, q, s, NULL, sums + i * (columns / 32));
            break;
        case CHORUS_Q8_1:
            if (!offset) return -1;
            quantize_32(row, columns, q, s, offset + i * (columns / 32), NULL);
            break;
        case CHORUS_Q8_K:
            if (!sums) return -1;
            quantize_256(row, columns, q, s, sums + i * (columns / 16));
            break;
        default:
            return -1;
        }
    }
    return 0;
}

#if defined(__x86_64__)
#include <immintrin.h>

/* 32-value units of 8 weight rows unpacked for a prompt's products (quant_matmul_body.h): 2048 columns, 27 KiB,
   about L1's size with the activations of the tokens in flight. */
#define QM_PANEL_UNITS 64

typedef struct {
    uint8_t codes[QM_PANEL_UNITS][256];            /* unit u: 4-byte group g of row i at 32 g + 4 i */
    float scale[QM_PANEL_UNITS][8], min[QM_PANEL_UNITS][8]; /* 32-value blocks: d (and m) of each row */
    int32_t sub[QM_PANEL_UNITS][2][8];             /* K types: sub-block scales (Q6_K: of each 16 values) */
    int32_t pair[QM_PANEL_UNITS / 8][8][8];        /* K types: int16 pairs, Q4_K/Q5_K mins, Q6_K scales */
    float d[QM_PANEL_UNITS / 8][8], dmin[QM_PANEL_UNITS / 8][8]; /* K types: super-block scales */
} qm_panel;

#define QM_TARGET "avx2,fma,f16c"
#define QM_TOKENS 4
#define QM_SUFFIX _avx2
#define QM_VNNI 0
#include "quant_matmul_body.h"
#undef QM_TARGET
#undef QM_TOKENS
#undef QM_SUFFIX
#undef QM_VNNI

#define QM_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define QM_TOKENS 8
#define QM_SUFFIX _vnni
#define QM_VNNI 1
#include "quant_matmul_body.h"

/* 2 with AVX512-VNNI, 1 with AVX2 + FMA + F16C, 0 where these products do not run. */
int chorus_quant_matmul_level(void) {
    const int level = chorus_cpu_level();
    return level >= CHORUS_CPU_AVX512_VNNI ? 2 : level >= CHORUS_CPU_AVX2 ? 1 : 0;
}

int chorus_quant_matmul(int level, int type, const uint8_t *w, ptrdiff_t rows, ptrdiff_t columns,
                        const chorus_q8_rows *a, int batch, ptrdiff_t r0, ptrdiff_t r1, float *y, ptrdiff_t ldy) {
    if (!w || !a || !a->qs || !a->scale || !y || rows < 0 || columns <= 0 || batch < 0 || r0 < 0 || r1 > rows ||
        r0 > r1 || ldy < rows)
        return -1;
    const int k_type = type == 12 || type == 13 || type == 14;
    if (columns % (k_type ? 256 : 32) != 0) return -1;
    if ((type == 3 || type == 7) ? !a->offset : !a->sums) return -1;
    if (level < 1 || level > chorus_quant_matmul_level()) return -1;
    return level == 2 ? matmul_vnni(type, w, columns, a, batch, r0, r1, y, ldy)
                      : matmul_avx2(type, w, columns, a, batch, r0, r1, y, ldy);
}

#else
int chorus_quant_matmul_level(void) { return 0; }
int chorus_quant_matmul(int level, int type, const uint8_t *w, ptrdiff_t rows, ptrdiff_t columns,
                        const chorus_q8_rows *a, int batch, ptrdiff_t r0, ptrdiff_t r1, float *y, ptrdiff_t ldy) {
    (void)level; (void)type; (void)w; (void)rows; (void)columns; (void)a; (void)batch; (void)r0; (void)r1; (void)y;
    (void)ldy;
    return -1;
}
#endif
