/* The products of quant_matmul.c for one instruction set; included once per set with
     QM_TARGET        the target attribute,
     QM_SUFFIX        appended to every name defined here,
     QM_VNNI          1 where vpdpbusd exists (AVX512-VNNI on 256-bit registers), else 0 (AVX2 only).
   Every kernel multiplies one weight row, kept in its GGML blocks, by B ≤ 4 activation rows quantized as
   llama.cpp quantizes them (chorus_q8_rows), with the integer sums llama.cpp forms: unsigned weight
   codes times signed activation bytes, per block or sub-block, the code offset (8, 16, 32) taken out through
   the activation sums. Floats enter once per block (or super-block), as in llama.cpp's own loops. */

#define QM_CAT2(a, b) a##b
#define QM_CAT(a, b) QM_CAT2(a, b)
#define QM_FN(name) QM_CAT(name, QM_SUFFIX)
#define QM_INLINE __attribute__((target(QM_TARGET), always_inline)) static inline

/* acc (8 × int32) + Σ over each 4 adjacent bytes of u (unsigned) · s (signed). */
QM_INLINE __m256i QM_FN(dot_add)(__m256i acc, __m256i u, __m256i s) {
#if QM_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    /* At most 2 · 63 · 127 per pair for the codes here (6 bits at most): no int16 saturation. */
    const __m256i pairs = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
#endif
}

/* Σ of u · s over each 4 bytes, times the lane scales (int32 lanes of `scale`, equal within each 16 bytes'
   4 lanes, so the AVX2 path can take them as int16 pairs). */
QM_INLINE __m256i QM_FN(dot_scaled)(__m256i u, __m256i s, __m256i scale32) {
#if QM_VNNI
    return _mm256_mullo_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s), scale32);
#else
    /* Each lane's scale (|scale| ≤ 127) as the two int16 of that lane's pairs: packing keeps each 128-bit half,
       whose four lanes hold one scale. */
    const __m256i scale16 = _mm256_packs_epi32(scale32, scale32);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16);
#endif
}

QM_INLINE float QM_FN(hsum)(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

QM_INLINE float QM_FN(half)(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* 32 four-bit codes, low nibbles first (values 0‥15 of the block), then high nibbles (16‥31). */
QM_INLINE __m256i QM_FN(nibbles)(const uint8_t *p) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F));
}

/* 0x10 in byte j where bit j of the 32-bit word at p is set (Q5's fifth bits). */
QM_INLINE __m256i QM_FN(fifth_bits)(const uint8_t *p) {
    uint32_t bits;
    memcpy(&bits, p, 4);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
    const __m256i select = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

/* ---- 32-value blocks: Q4_0, Q5_0, Q8_0 (against q8_0 rows), Q4_1, Q5_1 (against q8_1 rows) ---- */

/* Codes of one block as unsigned bytes, with the offset subtracted from every code (0 where none). */
#define QM_BLOCK_KERNEL(NAME, BYTES, SCALE_AT, CODES, OFFSET, HAS_MIN)                                              \
    QM_INLINE void QM_FN(NAME##_row)(const uint8_t *w, int blocks, const chorus_q8_rows *a, ptrdiff_t columns,    \
                                     int b0, int B, float *out) {                                                 \
        __m256 acc[4];                                                                                            \
        float mins[4] = {0, 0, 0, 0};                                                                             \
        for (int j = 0; j < B; j++) acc[j] = _mm256_setzero_ps();                                                 \
        const ptrdiff_t per_row = columns / 32;                                                                   \
        for (int k = 0; k < blocks; k++, w += (BYTES)) {                                                          \
            const float dw = QM_FN(half)(w + (SCALE_AT));                                                         \
            const __m256i u = CODES;                                                                              \
            for (int j = 0; j < B; j++) {                                                                         \
                const ptrdiff_t blk = (ptrdiff_t)(b0 + j) * per_row + k;                                          \
                const __m256i s = _mm256_loadu_si256((const __m256i *)(a->qs + blk * 32));                        \
                const __m256i start = (OFFSET) ? _mm256_setr_epi32(-(OFFSET) * a->sums[blk], 0, 0, 0, 0, 0, 0, 0) \
                                               : _mm256_setzero_si256();                                          \
                const __m256i p = QM_FN(dot_add)(start, u, s);                                                    \
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * a->scale[blk]), acc[j]);      \
                if (HAS_MIN) mins[j] += QM_FN(half)(w + 2) * a->offset[blk];                                      \
            }                                                                                                     \
        }                                                                                                         \
        for (int j = 0; j < B; j++) out[j] = QM_FN(hsum)(acc[j]) + mins[j];                                       \
    }

QM_BLOCK_KERNEL(q4_0, 18, 0, QM_FN(nibbles)(w + 2), 8, 0)
QM_BLOCK_KERNEL(q4_1, 20, 0, QM_FN(nibbles)(w + 4), 0, 1)
QM_BLOCK_KERNEL(q5_0, 22, 0, _mm256_or_si256(QM_FN(nibbles)(w + 6), QM_FN(fifth_bits)(w + 2)), 16, 0)
QM_BLOCK_KERNEL(q5_1, 24, 0, _mm256_or_si256(QM_FN(nibbles)(w + 8), QM_FN(fifth_bits)(w + 4)), 0, 1)

/* Q8_0's codes are signed: |w| against the activations signed by w, as llama.cpp's mul_sum_i8_pairs. */
QM_INLINE void QM_FN(q8_0_row)(const uint8_t *w, int blocks, const chorus_q8_rows *a, ptrdiff_t columns,
                               int b0, int B, float *out) {
    __m256 acc[4];
    for (int j = 0; j < B; j++) acc[j] = _mm256_setzero_ps();
    const ptrdiff_t per_row = columns / 32;
    for (int k = 0; k < blocks; k++, w += 34) {
        const float dw = QM_FN(half)(w);
        const __m256i q = _mm256_loadu_si256((const __m256i *)(w + 2));
        const __m256i u = _mm256_sign_epi8(q, q);
        for (int j = 0; j < B; j++) {
            const ptrdiff_t blk = (ptrdiff_t)(b0 + j) * per_row + k;
            const __m256i s = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(a->qs + blk * 32)), q);
            const __m256i p = QM_FN(dot_add)(_mm256_setzero_si256(), u, s);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * a->scale[blk]), acc[j]);
        }
    }
    for (int j = 0; j < B; j++) out[j] = QM_FN(hsum)(acc[j]);
}

/* ---- 256-value super-blocks against q8_K rows ---- */

/* Q4_K / Q5_K: eight sub-blocks of 32 with 6-bit scales and mins (llama.cpp's get_scale_min_k4). */
QM_INLINE void QM_FN(k_scales)(const uint8_t *q, int32_t *sc, int32_t *m) {
    for (int j = 0; j < 4; j++) {
        sc[j] = q[j] & 63;
        m[j] = q[j + 4] & 63;
    }
    for (int j = 4; j < 8; j++) {
        sc[j] = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        m[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

#define QM_K45_KERNEL(NAME, BYTES, FIFTH)                                                                             \
    QM_INLINE void QM_FN(NAME##_row)(const uint8_t *w, int blocks, const chorus_q8_rows *a, ptrdiff_t columns,      \
                                     int b0, int B, float *out) {                                                   \
        __m256 acc[4];                                                                                              \
        float mins[4] = {0, 0, 0, 0};                                                                               \
        for (int j = 0; j < B; j++) acc[j] = _mm256_setzero_ps();                                                   \
        const ptrdiff_t per_row = columns / 256;                                                                    \
        const __m256i low = _mm256_set1_epi8(0x0F);                                                                 \
        for (int k = 0; k < blocks; k++, w += (BYTES)) {                                                            \
            const float d = QM_FN(half)(w), dmin = QM_FN(half)(w + 2);                                              \
            int32_t sc[8], m[8];                                                                                    \
            QM_FN(k_scales)(w + 4, sc, m);                                                                          \
            const uint8_t *qs = w + 16 + ((FIFTH) ? 32 : 0);                                                        \
            __m256i codes[8];                                                                                       \
            const __m256i high = (FIFTH) ? _mm256_loadu_si256((const __m256i *)(w + 16)) : _mm256_setzero_si256();  \
            for (int c = 0; c < 4; c++) {                                                                           \
                const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));                             \
                codes[2 * c] = _mm256_and_si256(raw, low);                                                          \
                codes[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);                                \
                if (FIFTH) {                                                                                        \
                    const __m256i one = _mm256_set1_epi8(1);                                                        \
                    codes[2 * c] = _mm256_or_si256(codes[2 * c],                                                    \
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 2 * c), one), 4));               \
                    codes[2 * c + 1] = _mm256_or_si256(codes[2 * c + 1],                                            \
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 2 * c + 1), one), 4));           \
                }                                                                                                   \
            }                                                                                                       \
            for (int j = 0; j < B; j++) {                                                                           \
                const ptrdiff_t sb = (ptrdiff_t)(b0 + j) * per_row + k;                                             \
                const int8_t *s = a->qs + sb * 256;                                                                 \
                const int32_t *bsums = a->sums + sb * 16;                                                           \
                __m256i isum = _mm256_setzero_si256();                                                              \
                int32_t summ = 0;                                                                                   \
                for (int q = 0; q < 8; q++) {                                                                       \
                    const __m256i x = _mm256_loadu_si256((const __m256i *)(s + 32 * q));                            \
                    isum = _mm256_add_epi32(isum, QM_FN(dot_scaled)(codes[q], x, _mm256_set1_epi32(sc[q])));         \
                    summ += m[q] * (bsums[2 * q] + bsums[2 * q + 1]);                                               \
                }                                                                                                   \
                const float da = a->scale[sb];                                                                      \
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * da), acc[j]);                 \
                mins[j] += dmin * da * (float)summ;                                                                 \
            }                                                                                                       \
        }                                                                                                           \
        for (int j = 0; j < B; j++) out[j] = QM_FN(hsum)(acc[j]) - mins[j];                                         \
    }

QM_K45_KERNEL(q4_K, 144, 0)
QM_K45_KERNEL(q5_K, 176, 1)

/* Q6_K: sixteen sub-blocks of 16 with int8 scales; codes 0‥63, offset 32. */
QM_INLINE void QM_FN(q6_K_row)(const uint8_t *w, int blocks, const chorus_q8_rows *a, ptrdiff_t columns,
                               int b0, int B, float *out) {
    __m256 acc[4];
    for (int j = 0; j < B; j++) acc[j] = _mm256_setzero_ps();
    const ptrdiff_t per_row = columns / 256;
    const __m256i low = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3);
    for (int k = 0; k < blocks; k++, w += 210) {
        const int8_t *scales = (const int8_t *)(w + 192);
        const float d = QM_FN(half)(w + 208);
        __m256i codes[8], lane_scales[8];
        for (int n = 0; n < 2; n++) {
            const uint8_t *ql = w + 64 * n, *qh = w + 128 + 32 * n;
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            codes[4 * n + 0] = _mm256_or_si256(_mm256_and_si256(l0, low), _mm256_slli_epi16(_mm256_and_si256(h, three), 4));
            codes[4 * n + 1] = _mm256_or_si256(_mm256_and_si256(l1, low),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), three), 4));
            codes[4 * n + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), three), 4));
            codes[4 * n + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), three), 4));
            for (int i = 0; i < 4; i++) {
                const int32_t first = scales[8 * n + 2 * i], second = scales[8 * n + 2 * i + 1];
                lane_scales[4 * n + i] = _mm256_setr_epi32(first, first, first, first, second, second, second, second);
            }
        }
        for (int j = 0; j < B; j++) {
            const ptrdiff_t sb = (ptrdiff_t)(b0 + j) * per_row + k;
            const int8_t *s = a->qs + sb * 256;
            const int32_t *bsums = a->sums + sb * 16;
            int32_t offset = 0;
            for (int g = 0; g < 16; g++) offset += scales[g] * bsums[g];
            __m256i isum = _mm256_setr_epi32(-32 * offset, 0, 0, 0, 0, 0, 0, 0);
            for (int q = 0; q < 8; q++) {
                const __m256i x = _mm256_loadu_si256((const __m256i *)(s + 32 * q));
                isum = _mm256_add_epi32(isum, QM_FN(dot_scaled)(codes[q], x, lane_scales[q]));
            }
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * a->scale[sb]), acc[j]);
        }
    }
    for (int j = 0; j < B; j++) out[j] = QM_FN(hsum)(acc[j]);
}

/* Weight rows [r0, r1) against every activation row, four at a time; y[b · ldy + r]. */
#define QM_ROWS(NAME, BLOCK_VALUES, BLOCK_BYTES)                                                                       \
    __attribute__((target(QM_TARGET))) static void QM_FN(NAME##_rows)(                                                \
        const uint8_t *w, ptrdiff_t columns, const chorus_q8_rows *a, int batch, ptrdiff_t r0, ptrdiff_t r1,          \
        float *y, ptrdiff_t ldy) {                                                                                    \
        const int blocks = (int)(columns / (BLOCK_VALUES));                                                           \
        const size_t row_bytes = (size_t)blocks * (BLOCK_BYTES);                                                      \
        float out[4];                                                                                                 \
        for (ptrdiff_t r = r0; r < r1; r++) {                                                                         \
            const uint8_t *row = w + (size_t)r * row_bytes;                                                           \
            int b = 0;                                                                                                \
            for (; b + 4 <= batch; b += 4) {                                                                          \
                QM_FN(NAME##_row)(row, blocks, a, columns, b, 4, out);                                                \
                for (int j = 0; j < 4; j++) y[(b + j) * ldy + r] = out[j];                                            \
            }                                                                                                         \
            switch (batch - b) {                                                                                      \
            case 3: QM_FN(NAME##_row)(row, blocks, a, columns, b, 3, out); break;                                     \
            case 2: QM_FN(NAME##_row)(row, blocks, a, columns, b, 2, out); break;                                     \
            case 1: QM_FN(NAME##_row)(row, blocks, a, columns, b, 1, out); break;                                     \
            default: break;                                                                                           \
            }                                                                                                         \
            for (int j = 0; j < batch - b; j++) y[(b + j) * ldy + r] = out[j];                                        \
        }                                                                                                             \
    }

QM_ROWS(q4_0, 32, 18)
QM_ROWS(q4_1, 32, 20)
QM_ROWS(q5_0, 32, 22)
QM_ROWS(q5_1, 32, 24)
QM_ROWS(q8_0, 32, 34)
QM_ROWS(q4_K, 256, 144)
QM_ROWS(q5_K, 256, 176)
QM_ROWS(q6_K, 256, 210)

__attribute__((target(QM_TARGET))) static int QM_FN(matmul)(int type, const uint8_t *w, ptrdiff_t columns,
                                                            const chorus_q8_rows *a, int batch, ptrdiff_t r0,
                                                            ptrdiff_t r1, float *y, ptrdiff_t ldy) {
    switch (type) {
    case 2: QM_FN(q4_0_rows)(w, columns, a, batch, r0, r1, y, ldy); return 0;
    case 3: QM_FN(q4_1_rows)(w, columns, a, batch, r0, r1, y, ldy); return 0;
    case 6: QM_FN(q5_0_rows)(w, columns, a, batch, r0, r1, y, ldy); return 0;
    case 7: QM_FN(q5_1_rows)(w, columns, a, batch, r0, r1, y, ldy); return 0;
    case 8: QM_FN(q8_0_rows)(w, columns, a, batch, r0, r1, y, ldy); return 0;
    case 12: QM_FN(q4_K_rows)(w, columns, a, batch, r0, r1, y, ldy); return 0;
    case 13: QM_FN(q5_K_rows)(w, columns, a, batch, r0, r1, y, ldy); return 0;
    case 14: QM_FN(q6_K_rows)(w, columns, a, batch, r0, r1, y, ldy); return 0;
    default: return -1;
    }
}
