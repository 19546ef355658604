#ifndef CHORUS_KERNELS_H
#define CHORUS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Stride-1 conv1d computed directly with register blocks (AVX2 + FMA or AVX-512), for the shapes where
   sgemm loses to its own packing: few channels over long sequences (vocoders), or short sequences
   (VITS flows). Weights are packed for one block shape, named by its rows of output channels: 6 (AVX2)
   or 8 (AVX-512); every kernel takes that number as block_rows. The caller asks
   chorus_conv_block_rows_best() and falls back to sgemm when it is 0 (other CPUs, other
   architectures). Nothing here allocates: scratch comes from the caller. */

/* The fastest block shape on this CPU: 8 with AVX-512, 6 with AVX2 + FMA, 0 where the kernels do not run. */
int chorus_conv_block_rows_best(void);

/* 1 when this CPU runs blocks of `rows` (6 or 8). */
int chorus_conv_block_rows_supported(int rows);

/* Floats in the packed weight of a [cout, cin, taps] convolution, for blocks of `rows`. */
size_t chorus_conv1d_packed_count(int cout, int cin, int taps, int rows);

/* weight [cout, cin, taps] → blocks of `rows` output channels, each [cin·taps][rows] (zero rows past cout). */
void chorus_conv1d_pack(const float *weight, int cout, int cin, int taps, int rows, float *packed);

/* Floats of scratch one call needs. */
size_t chorus_conv1d_scratch_count(int cin, int taps, int dilation);

/* One sample of a stride-1 convolution, with what surrounds it in vocoders folded in:
   out[o, t] = residual[o, t] + bias[o] + Σ_c Σ_j w[o, c, j] · act(x[c, t - padding + j·dilation]),
   where x is zero outside [0, length) and act is a leaky ReLU when leaky is set, else the identity.
   bias and residual may be NULL; residual rows are out_stride apart like out's. */
typedef struct {
    const float *x;
    ptrdiff_t x_stride, length;
    int cin, padding;
    int leaky;
    float leaky_slope;
    const float *packed;
    int block_rows;        /* the rows `packed` was packed for */
    int cout, taps, dilation;
    const float *bias;
    const float *residual;
    float *out;
    ptrdiff_t out_stride;
} chorus_conv1d_args;

/* Output positions [t0, t1) of a. Returns 0, or -1 for arguments out of range. */
int chorus_conv1d_direct(const chorus_conv1d_args *a, ptrdiff_t t0, ptrdiff_t t1, float *scratch);

/* A vocoder's stage of residual blocks (HiFi-GAN's MRF), computed a time tile at a time so that the
   tile's intermediates stay in cache: out = (1/blocks) Σ_b block_b(x), where each block applies its
   steps in turn, x ← x + second(leaky(first(leaky(x)))) (HiFi-GAN type 1) or x ← x + first(leaky(x))
   (type 2, second NULL). Every convolution keeps the length ("same" padding, zeros outside [0, length))
   and maps channels to channels. */
typedef struct {
    const float *packed;   /* chorus_conv1d_pack of [channels, channels, taps] */
    const float *bias;     /* [channels] or NULL */
    int taps, dilation;
} chorus_conv_ref;

typedef struct {
    int steps;
    const chorus_conv_ref *first;   /* [steps] */
    const chorus_conv_ref *second;  /* [steps] or NULL */
} chorus_residual_block;

typedef struct {
    const float *x;                 /* [channels, length] */
    float *out;                     /* [channels, length], not x */
    ptrdiff_t length;
    int channels;
    int block_rows;                 /* the rows every weight was packed for */
    float slope;
    int blocks;
    const chorus_residual_block *block;
} chorus_residual_stage_args;

/* Output positions each call should take at a time, and the floats of scratch a call needs. */
ptrdiff_t chorus_residual_stage_tile(const chorus_residual_stage_args *a);
size_t chorus_residual_stage_scratch_count(const chorus_residual_stage_args *a);

/* Output positions [t0, t1), in tiles. Returns 0, or -1 for arguments out of range. */
int chorus_residual_stage(const chorus_residual_stage_args *a, ptrdiff_t t0, ptrdiff_t t1, float *scratch);

/* A transposed conv1d (an upsampler) as its stride phases: output o = q·stride + r − padding is phase r's
   convolution at q, Σ_c Σ_j w_r[o', c, j] · x[c, q − (taps_r − 1) + j], whose packed weight w_r holds
   kernel taps r + (taps_r − 1 − j)·stride. A tile of q runs every phase into scratch, then interleaves. */
typedef struct {
    const float *packed;   /* chorus_conv1d_pack of the phase's [cout, cin, taps] */
    int taps;
} chorus_phase;

typedef struct {
    const float *x;           /* [cin, length] */
    ptrdiff_t length;
    int cin, cout;
    int stride, padding;
    int block_rows;           /* the rows every phase was packed for */
    const chorus_phase *phases;  /* [stride] */
    const float *bias;        /* [cout] or NULL */
    float *out;               /* [cout, out_length] */
    ptrdiff_t out_length;
} chorus_conv_transpose1d_args;

/* The q a call covers: [0, chorus_conv_transpose1d_steps(a)). */
ptrdiff_t chorus_conv_transpose1d_steps(const chorus_conv_transpose1d_args *a);
size_t chorus_conv_transpose1d_scratch_count(const chorus_conv_transpose1d_args *a);
int chorus_conv_transpose1d_direct(const chorus_conv_transpose1d_args *a, ptrdiff_t q0, ptrdiff_t q1, float *scratch);

/* One sample of a stride-1, undilated k×k convolution (NCHW, cross-correlation, zero padding), with the
   conv1d kernel's blocks: out[o, y, x] = residual[o, y, x] + bias[o]
   + Σ_c Σ_dy Σ_dx w[o, c, dy, dx] · x[c, y − pad_h + dy, x − pad_w + dx]. The weight is
   chorus_conv1d_pack of [cout, cin, kh·kw] (OIHW as it is stored). bias and residual may be NULL. */
typedef struct {
    const float *x;          /* [cin, h, w] */
    int cin, h, w;
    int kh, kw, pad_h, pad_w;
    const float *packed;
    int block_rows;
    int cout;
    const float *bias;       /* [cout] */
    const float *residual;   /* [cout, ho, wo] */
    float *out;              /* [cout, ho, wo] */
    int ho, wo;
} chorus_conv2d_args;

/* Floats of scratch a call over `rows` output rows needs (0 for arguments out of range). */
size_t chorus_conv2d_scratch_count(const chorus_conv2d_args *a, int rows);

/* Output rows [y0, y1) of the output-channel blocks [b0, b1) (blocks of block_rows channels). Returns 0,
   or -1 for arguments out of range. */
int chorus_conv2d_direct(const chorus_conv2d_args *a, int y0, int y1, int b0, int b1, float *scratch);

/* The same for 3×3 kernels by Winograd F(4×4, 3×3): 4× fewer multiply-adds, for a transform on either
   side. `packed` is chorus_winograd2d_pack of the OIHW weight; work is shared out by rows of 4×4 tiles. */
size_t chorus_winograd2d_packed_count(int cout, int cin, int rows);
/* Returns 0, or -1 for arguments out of range. */
int chorus_winograd2d_pack(const float *weight, int cout, int cin, int rows, float *packed);
/* Floats of scratch a call needs (0 for arguments out of range). */
size_t chorus_winograd2d_scratch_count(const chorus_conv2d_args *a);
/* Output rows 4·r0 ..< 4·r1 (clipped to ho), every output channel. Returns 0, or -1 for arguments out of range. */
int chorus_winograd2d(const chorus_conv2d_args *a, int r0, int r1, float *scratch);

/* A linear layer's product y [m, n] = x [m, k] · Wᵀ (+ bias), W [n, k] packed once into panels of nr
   columns: 32 with AVX-512 (12 × 32 register blocks), 16 with AVX2 + FMA (6 × 16); 0 where neither runs. */
int chorus_gemm_columns_best(void);

/* 1 when this CPU runs panels of `nr` (16 or 32) columns. */
int chorus_gemm_columns_supported(int nr);

/* Floats of a packed weight (panels, then the bias padded to whole panels). */
size_t chorus_gemm_packed_count(int n, int k, int nr);

/* w [n, k] row-major and bias [n] (or NULL) → packed. Returns 0, or -1 for arguments out of range. */
int chorus_gemm_pack(const float *w, const float *bias, int n, int k, int nr, float *packed);

/* Rows of x per packed block: 12 for nr 32, 6 for nr 16. */
int chorus_gemm_block_rows(int nr);

/* x [m, k] is packed too, once per product, into blocks of chorus_gemm_block_rows rows, k-major. */
size_t chorus_gemm_packed_x_count(int m, int k, int nr);

/* Row blocks [b0, b1) of x into packed_x (so several threads can pack one x). Returns 0, or -1. */
int chorus_gemm_pack_x(const float *x, ptrdiff_t ldx, int m, int k, int nr, int b0, int b1, float *packed_x);

typedef struct {
    const float *packed_x; /* chorus_gemm_pack_x of x [m, k] */
    const float *packed;   /* chorus_gemm_pack of W [n, k] */
    int nr;                /* the columns both were packed for */
    int m, n, k;
    int has_bias;          /* start from the packed bias (ignored when accumulate) */
    int accumulate;        /* add to y instead of overwriting it */
    float *y;              /* [m, n], rows ldy apart */
    ptrdiff_t ldy;
} chorus_gemm_args;

/* Column panels [p0, p1) of y, every row. Returns 0, or -1 for arguments out of range or a panel width
   this CPU does not run. */
int chorus_gemm(const chorus_gemm_args *g, int p0, int p1);

/* 1 when the two functions below run here (AVX-512); elsewhere they return -1 and callers keep their own loops. */
int chorus_vector_math_avx512(void);

/* x[i] ← x[i] / (1 + e^(−alpha·x[i])) in place: SiLU with alpha 1, quick GELU with 1.702. Returns 0, or -1. */
int chorus_silu(float *x, ptrdiff_t n, float alpha);

/* p[i] ← e^(p[i] − shift) in place, and their sum into *sum (softmax's middle pass). Returns 0, or -1. */
int chorus_exp_shifted(float *p, ptrdiff_t n, float shift, float *sum);

/* 1 when chorus_half_gemv runs here (AVX-512); elsewhere it returns -1 and callers keep their own loop. */
int chorus_half_gemv_supported(void);

/* y[b, r] = Σ_c w[r, c] · x[b, c] for weight rows [r0, r1) and every input row b < batch: w [rows, columns]
   as IEEE halves (bit patterns), x [batch, columns] and y [batch, rows] float32. Each weight row is read
   from memory once for all the input rows. Returns 0, or -1 for arguments out of range or another CPU. */
int chorus_half_gemv(const uint16_t *w, ptrdiff_t rows, ptrdiff_t columns, const float *x, int batch,
                     ptrdiff_t r0, ptrdiff_t r1, float *y);

/* Attention of a few queries over many keys, its two passes split by keys so that cores can share them:
   scores[query·heads + h][j] = alpha · q[query, head h] · k[j, key head h / group], then (after a softmax of
   each scores row over every key) out[query, head h] += Σ_j scores[query·heads + h][j] · v[j, key head]. */
typedef struct {
    const float *q;        /* [tq, width], width = heads · head_width */
    const float *k, *v;    /* [tk, key_width] rows */
    float *scores;         /* [tq · heads, tk] */
    int tq, heads, head_width, group;
    ptrdiff_t width, key_width, tk;
    float alpha;
} chorus_few_query_args;

/* 1 when the two passes run here: AVX-512, head_width a multiple of 16 up to 256. */
int chorus_few_query_supported(int head_width);

/* The scores of keys [j0, j1). Returns 0, or -1 for arguments out of range or another CPU. */
int chorus_few_query_scores(const chorus_few_query_args *a, ptrdiff_t j0, ptrdiff_t j1);

/* Adds keys [j0, j1)'s share of the output to out [tq, width]. Returns 0, or -1. */
int chorus_few_query_values(const chorus_few_query_args *a, ptrdiff_t j0, ptrdiff_t j1, float *out);

/* int8 linears (int8_gemm.c): W [n, k] quantized at load and x on every call, both with one scale per row
   and per 128 values, products summed in int32 by AVX-512 VNNI. */
int chorus_i8gemm_supported(void);                  /* 1 at CHORUS_CPU_AVX512_VNNI and above */
size_t chorus_i8gemm_packed_bytes(int n, int k);    /* of the packed weight */
size_t chorus_i8gemm_packed_x_bytes(int m, int k);  /* of the packed input codes */
size_t chorus_i8gemm_x_scale_count(int m, int k);   /* of the input's scales, and of its sums */

/* Scales of a weight: its rows padded to whole panels of 32, times its blocks of 128 values. */
size_t chorus_i8gemm_scale_count(int n, int k);

/* codes[r, i] = round(w[r, i] · 127 / max |w[r, block of i]|), inverse_scale[r, block] = that max / 127
   (inverse_scale [n, blocks]). Returns 0, or -1 for a value that is not finite. */
int chorus_i8gemm_quantize_weight(const float *w, int n, int k, int8_t *codes, float *inverse_scale);

/* inverse_scale [n, blocks] in the kernel's order: panel, block, the panel's 32 rows (zeros past n). */
int chorus_i8gemm_pack_scales(const float *inverse_scale, int n, int k, float *packed_scales);

/* codes [n, k] into panels of 32 rows, 4 values of a row together, each stored as code + 128. */
int chorus_i8gemm_pack(const int8_t *codes, int n, int k, uint8_t *packed);

/* Row blocks [b0, b1) of x [m, k] (rows ldx apart; blocks of 12 rows, the last padded with zero codes) with
   their scales and code sums per 128 values. Returns 0, or -1 for a value that is not finite, arguments out
   of range or a CPU without VNNI. */
int chorus_i8gemm_quantize_x(const float *x, ptrdiff_t ldx, int m, int k, int b0, int b1, int8_t *packed_x,
                             float *inverse_scale, int32_t *sums);

typedef struct {
    const int8_t *packed_x;   /* chorus_i8gemm_quantize_x of x [m, k] */
    const float *x_scale;
    const int32_t *x_sums;
    const uint8_t *packed;    /* chorus_i8gemm_pack of W [n, k] */
    const float *w_scale;     /* chorus_i8gemm_pack_scales of W's inverse scales */
    const float *bias;        /* [n] or NULL */
    int m, n, k;
    float *y;                 /* [m, n], rows ldy apart */
    ptrdiff_t ldy;
} chorus_i8gemm_args;

/* Weight panels [p0, p1) (32 rows of W each) of y, every row. Returns 0, or -1 for arguments out of range or
   a CPU without VNNI. */
int chorus_i8gemm(const chorus_i8gemm_args *g, int p0, int p1);

/* Instruction-set levels, each including the ones below it. Every kernel here has a path for each level it
   uses and a plain one (its caller's Swift loop, or OpenBLAS), and runs the path chorus_cpu_level() allows. */
enum {
    CHORUS_CPU_INVALID = -2,     /* chorus_cpu_parse_level: not a level's name */
    CHORUS_CPU_UNSET = -1,       /* chorus_cpu_parse_level: empty, "auto" or NULL */
    CHORUS_CPU_PLAIN = 0,        /* no C vector kernels: Swift loops (compiled for the binary's target) and OpenBLAS */
    CHORUS_CPU_AVX2 = 1,         /* AVX2, FMA, F16C: Haswell, Zen 1-3 */
    CHORUS_CPU_AVX512 = 2,       /* AVX-512 F, DQ, BW, VL: Skylake-X */
    CHORUS_CPU_AVX512_VNNI = 3,  /* and VNNI's int8 dot products: Cascade Lake, Ice Lake */
    CHORUS_CPU_AVX512_BF16 = 4,  /* and BF16 dot products: Cooper Lake, Zen 4 and later */
    CHORUS_CPU_AMX = 5,          /* and AMX tiles (BF16, INT8) that Linux let this process use: Sapphire Rapids on */
};

/* The highest level this CPU and OS run (AMX counted before Linux's permission is asked). */
int chorus_cpu_detected(void);

/* CHORUS_CPU as chorus_cpu_parse_level reads it. */
int chorus_cpu_requested(void);

/* The level every kernel uses, chosen once per process: the detected one, lowered to CHORUS_CPU when that
   names a lower one, and below AMX when Linux refused the tile state. */
int chorus_cpu_level(void);

/* 1 when Linux granted this process AMX's tile data (asked only when the chosen level is AMX). */
int chorus_cpu_amx_permitted(void);

/* "plain", "avx2", "avx512", "avx512-vnni", "avx512-bf16", "amx"; "unknown" for other numbers. */
const char *chorus_cpu_level_name(int level);

/* The level `text` names, CHORUS_CPU_UNSET, or CHORUS_CPU_INVALID. */
int chorus_cpu_parse_level(const char *text);

/* The CPU's spin-wait hint (x86 `pause`), for threads polling a flag another core will set. */
static inline void chorus_cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

/* Activation rows quantized to 8 bits as llama.cpp quantizes a product's right-hand side: for each row of
   `columns` values, `qs` holds int8 codes and `scale` one float per block (32 values for Q8_0 / Q8_1,
   256 for Q8_K). Q8_0 also fills `sums` (Σ codes per 32), Q8_1 `offset` (its s: scale · Σ codes, as a half),
   Q8_K `sums` per 16 values. Rows follow each other: qs [rows · columns], scale [rows · columns / block]. */
typedef struct {
    const int8_t *qs;
    const float *scale;
    const float *offset;
    const int32_t *sums;
} chorus_q8_rows;

enum { CHORUS_Q8_0 = 8, CHORUS_Q8_1 = 9, CHORUS_Q8_K = 15 };

/* x [rows, columns] → the codes, scales and sums of `kind` (CHORUS_Q8_0, _1 or _K; columns a multiple of its
   block). Arrays the kind does not fill may be NULL. Returns 0, or -1 for arguments out of range. */
int chorus_q8_quantize(int kind, const float *x, ptrdiff_t rows, ptrdiff_t columns, int8_t *qs, float *scale,
                       float *offset, int32_t *sums);

/* The instruction set chorus_quant_matmul can use here: 2 AVX512-VNNI, 1 AVX2 + FMA + F16C, 0 none. */
int chorus_quant_matmul_level(void);

/* y[b · ldy + r] = Σ_c W[r, c] · A[b, c] for weight rows [r0, r1) and activation rows b < batch, where W
   [rows, columns] is in GGML blocks of `type` (2 Q4_0, 3 Q4_1, 6 Q5_0, 7 Q5_1, 8 Q8_0 against Q8_0
   activations except Q4_1 / Q5_1 against Q8_1; 12 Q4_K, 13 Q5_K, 14 Q6_K against Q8_K), each row
   columns / block_size blocks, and A the activations quantized by chorus_q8_quantize. `level` ≤
   chorus_quant_matmul_level() picks the instruction set (tests run both). Returns 0, or -1. */
int chorus_quant_matmul(int level, int type, const uint8_t *w, ptrdiff_t rows, ptrdiff_t columns,
                        const chorus_q8_rows *a, int batch, ptrdiff_t r0, ptrdiff_t r1, float *y, ptrdiff_t ldy);

#endif
