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

/* Weights are read once per product: each block's cache line is prefetched this many tiles ahead (Q4_K
   products from memory ran 1.8× faster with it, the others 0–30%). */
#define QM_AHEAD 2

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

/* ---- Tiles: R weight rows (row_bytes apart) against B activation rows, R·B ≤ 8 accumulators, out[i · 4 + j].
   A decoded token (one activation row) reads the weight rows one after the other, one sequential stream
   (four rows side by side measured slower: the streams interleave); a prompt takes two weight rows against
   four activation rows, so each unpacked weight block serves four rows and each activation load two. ---- */

/* Codes of one 32-value block as unsigned bytes. */
QM_INLINE __m256i QM_FN(codes_q4_0)(const uint8_t *p) { return QM_FN(nibbles)(p + 2); }
QM_INLINE __m256i QM_FN(codes_q4_1)(const uint8_t *p) { return QM_FN(nibbles)(p + 4); }
QM_INLINE __m256i QM_FN(codes_q5_0)(const uint8_t *p) { return _mm256_or_si256(QM_FN(nibbles)(p + 6), QM_FN(fifth_bits)(p + 2)); }
QM_INLINE __m256i QM_FN(codes_q5_1)(const uint8_t *p) { return _mm256_or_si256(QM_FN(nibbles)(p + 8), QM_FN(fifth_bits)(p + 4)); }

/* Q4_0, Q5_0 against q8_0 (the code offset through the activation sums); Q4_1, Q5_1 against q8_1 (the
   block minimum through q8_1's s). */
#define QM_BLOCK_KERNEL(NAME, BYTES, OFFSET, HAS_MIN)                                                               \
    /* One block of one weight row against activation block ab: acc += scaled integer sum, *mins += m · s. */      \
    QM_INLINE __m256 QM_FN(NAME##_step)(const uint8_t *blk, __m256i u, float dw, const chorus_q8_rows *a,           \
                                        ptrdiff_t ab, __m256 acc, float *mins) {                                    \
        const __m256i s = _mm256_loadu_si256((const __m256i *)(a->qs + ab * 32));                                  \
        const __m256i start = (OFFSET) ? _mm256_setr_epi32(-(OFFSET) * a->sums[ab], 0, 0, 0, 0, 0, 0, 0)           \
                                       : _mm256_setzero_si256();                                                   \
        const __m256i p = QM_FN(dot_add)(start, u, s);                                                             \
        if (HAS_MIN) *mins += QM_FN(half)(blk + 2) * a->offset[ab];                                                \
        return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * a->scale[ab]), acc);                     \
    }                                                                                                              \
    QM_INLINE void QM_FN(NAME##_tile)(const uint8_t *w, size_t row_bytes, int R, int blocks,                       \
                                      const chorus_q8_rows *a, ptrdiff_t per_row, int b0, int B, float *out) {      \
        if (R == 1 && B == 1) {                                                                                    \
            /* A decoded token: two chains of blocks, so each waits on its own multiply-adds only. */             \
            __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();                                          \
            float even_mins = 0, odd_mins = 0;                                                                     \
            const ptrdiff_t ab0 = (ptrdiff_t)b0 * per_row;                                                         \
            int k = 0;                                                                                             \
            for (; k + 2 <= blocks; k += 2) {                                                                      \
                const uint8_t *blk = w + (size_t)k * (BYTES);                                                      \
                _mm_prefetch((const char *)(blk + QM_AHEAD * row_bytes), _MM_HINT_T0);                             \
                even = QM_FN(NAME##_step)(blk, QM_FN(codes_##NAME)(blk), QM_FN(half)(blk), a, ab0 + k, even, &even_mins); \
                odd = QM_FN(NAME##_step)(blk + (BYTES), QM_FN(codes_##NAME)(blk + (BYTES)), QM_FN(half)(blk + (BYTES)), \
                                         a, ab0 + k + 1, odd, &odd_mins);                                          \
            }                                                                                                      \
            if (k < blocks) {                                                                                      \
                const uint8_t *blk = w + (size_t)k * (BYTES);                                                      \
                even = QM_FN(NAME##_step)(blk, QM_FN(codes_##NAME)(blk), QM_FN(half)(blk), a, ab0 + k, even, &even_mins); \
            }                                                                                                      \
            out[0] = QM_FN(hsum)(_mm256_add_ps(even, odd)) + (even_mins + odd_mins);                               \
            return;                                                                                                \
        }                                                                                                          \
        __m256 acc[4][4];                                                                                          \
        float mins[4][4];                                                                                          \
        for (int i = 0; i < R; i++)                                                                                \
            for (int j = 0; j < B; j++) { acc[i][j] = _mm256_setzero_ps(); mins[i][j] = 0; }                       \
        for (int k = 0; k < blocks; k++) {                                                                         \
            for (int i = 0; i < R; i++) {                                                                          \
                const uint8_t *blk = w + i * row_bytes + (size_t)k * (BYTES);                                      \
                _mm_prefetch((const char *)(blk + QM_AHEAD * R * row_bytes), _MM_HINT_T0);                         \
                const float dw = QM_FN(half)(blk);                                                                 \
                const __m256i u = QM_FN(codes_##NAME)(blk);                                                        \
                for (int j = 0; j < B; j++)                                                                        \
                    acc[i][j] = QM_FN(NAME##_step)(blk, u, dw, a, (ptrdiff_t)(b0 + j) * per_row + k, acc[i][j], &mins[i][j]); \
            }                                                                                                      \
        }                                                                                                          \
        for (int i = 0; i < R; i++)                                                                                \
            for (int j = 0; j < B; j++) out[i * 4 + j] = QM_FN(hsum)(acc[i][j]) + mins[i][j];                      \
    }

QM_BLOCK_KERNEL(q4_0, 18, 8, 0)
QM_BLOCK_KERNEL(q4_1, 20, 0, 1)
QM_BLOCK_KERNEL(q5_0, 22, 16, 0)
QM_BLOCK_KERNEL(q5_1, 24, 0, 1)

/* Q8_0's codes are signed: |w| against the activations signed by w, as llama.cpp's mul_sum_i8_pairs. */
QM_INLINE __m256 QM_FN(q8_0_step)(const uint8_t *blk, const chorus_q8_rows *a, ptrdiff_t ab, __m256 acc) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 2));
    const __m256i s = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(a->qs + ab * 32)), q);
    const __m256i p = QM_FN(dot_add)(_mm256_setzero_si256(), _mm256_sign_epi8(q, q), s);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(QM_FN(half)(blk) * a->scale[ab]), acc);
}

QM_INLINE void QM_FN(q8_0_tile)(const uint8_t *w, size_t row_bytes, int R, int blocks, const chorus_q8_rows *a,
                                ptrdiff_t per_row, int b0, int B, float *out) {
    if (R == 1 && B == 1) {
        __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
        const ptrdiff_t ab0 = (ptrdiff_t)b0 * per_row;
        int k = 0;
        for (; k + 2 <= blocks; k += 2) {
            const uint8_t *blk = w + (size_t)k * 34;
            _mm_prefetch((const char *)(blk + QM_AHEAD * row_bytes), _MM_HINT_T0);
            _mm_prefetch((const char *)(blk + QM_AHEAD * row_bytes + 64), _MM_HINT_T0);
            even = QM_FN(q8_0_step)(blk, a, ab0 + k, even);
            odd = QM_FN(q8_0_step)(blk + 34, a, ab0 + k + 1, odd);
        }
        if (k < blocks) even = QM_FN(q8_0_step)(w + (size_t)k * 34, a, ab0 + k, even);
        out[0] = QM_FN(hsum)(_mm256_add_ps(even, odd));
        return;
    }
    __m256 acc[4][4];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < B; j++) acc[i][j] = _mm256_setzero_ps();
    for (int k = 0; k < blocks; k++) {
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = w + i * row_bytes + (size_t)k * 34;
            _mm_prefetch((const char *)(blk + QM_AHEAD * R * row_bytes), _MM_HINT_T0);
            const float dw = QM_FN(half)(blk);
            const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 2));
            const __m256i u = _mm256_sign_epi8(q, q);
            for (int j = 0; j < B; j++) {
                const ptrdiff_t ab = (ptrdiff_t)(b0 + j) * per_row + k;
                const __m256i s = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(a->qs + ab * 32)), q);
                const __m256i p = QM_FN(dot_add)(_mm256_setzero_si256(), u, s);
                acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * a->scale[ab]), acc[i][j]);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < B; j++) out[i * 4 + j] = QM_FN(hsum)(acc[i][j]);
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

/* Sub-block q (values 32q‥32q+31) of a Q4_K / Q5_K super-block as unsigned codes. */
QM_INLINE __m256i QM_FN(k45_codes)(const uint8_t *blk, int q, int fifth) {
    const uint8_t *qs = blk + 16 + (fifth ? 32 : 0);
    const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * (q / 2)));
    __m256i codes = _mm256_and_si256(q % 2 ? _mm256_srli_epi16(raw, 4) : raw, _mm256_set1_epi8(0x0F));
    if (fifth) {
        const __m256i high = _mm256_loadu_si256((const __m256i *)(blk + 16));
        codes = _mm256_or_si256(codes, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, q), _mm256_set1_epi8(1)), 4));
    }
    return codes;
}

#define QM_K45_KERNEL(NAME, BYTES, FIFTH)                                                                             \
    QM_INLINE void QM_FN(NAME##_tile)(const uint8_t *w, size_t row_bytes, int R, int blocks,                         \
                                      const chorus_q8_rows *a, ptrdiff_t per_row, int b0, int B, float *out) {        \
        __m256 acc[4][4];                                                                                            \
        float mins[4][4];                                                                                            \
        for (int i = 0; i < R; i++)                                                                                  \
            for (int j = 0; j < B; j++) { acc[i][j] = _mm256_setzero_ps(); mins[i][j] = 0; }                         \
        for (int k = 0; k < blocks; k++) {                                                                           \
            int32_t sc[4][8], m[4][8];                                                                               \
            float d[4], dmin[4];                                                                                     \
            __m256i isum[4][4];                                                                                      \
            for (int i = 0; i < R; i++) {                                                                            \
                const uint8_t *blk = w + i * row_bytes + (size_t)k * (BYTES);                                        \
                for (int line = 0; line < (BYTES); line += 64)                                                       \
                    _mm_prefetch((const char *)(blk + QM_AHEAD * R * row_bytes + line), _MM_HINT_T0);                \
                d[i] = QM_FN(half)(blk);                                                                             \
                dmin[i] = QM_FN(half)(blk + 2);                                                                      \
                QM_FN(k_scales)(blk + 4, sc[i], m[i]);                                                               \
                for (int j = 0; j < B; j++) isum[i][j] = _mm256_setzero_si256();                                     \
            }                                                                                                        \
            for (int q = 0; q < 8; q++) {                                                                            \
                for (int i = 0; i < R; i++) {                                                                        \
                    const __m256i codes = QM_FN(k45_codes)(w + i * row_bytes + (size_t)k * (BYTES), q, FIFTH);      \
                    const __m256i scale = _mm256_set1_epi32(sc[i][q]);                                               \
                    for (int j = 0; j < B; j++) {                                                                    \
                        const ptrdiff_t sb = (ptrdiff_t)(b0 + j) * per_row + k;                                      \
                        const __m256i x = _mm256_loadu_si256((const __m256i *)(a->qs + sb * 256 + 32 * q));         \
                        isum[i][j] = _mm256_add_epi32(isum[i][j], QM_FN(dot_scaled)(codes, x, scale));              \
                    }                                                                                                \
                }                                                                                                    \
            }                                                                                                        \
            for (int j = 0; j < B; j++) {                                                                            \
                const ptrdiff_t sb = (ptrdiff_t)(b0 + j) * per_row + k;                                              \
                const int32_t *bsums = a->sums + sb * 16;                                                            \
                const float da = a->scale[sb];                                                                       \
                for (int i = 0; i < R; i++) {                                                                        \
                    int32_t summ = 0;                                                                                \
                    for (int q = 0; q < 8; q++) summ += m[i][q] * (bsums[2 * q] + bsums[2 * q + 1]);                 \
                    acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][j]), _mm256_set1_ps(d[i] * da), acc[i][j]); \
                    mins[i][j] += dmin[i] * da * (float)summ;                                                        \
                }                                                                                                    \
            }                                                                                                        \
        }                                                                                                            \
        for (int i = 0; i < R; i++)                                                                                  \
            for (int j = 0; j < B; j++) out[i * 4 + j] = QM_FN(hsum)(acc[i][j]) - mins[i][j];                        \
    }

QM_K45_KERNEL(q4_K, 144, 0)
QM_K45_KERNEL(q5_K, 176, 1)

/* Q6_K: sixteen sub-blocks of 16 with int8 scales; codes 0‥63, offset 32. Group q (values 32q‥32q+31) is
   part q % 4 of half q / 4: low nibbles of ql[0‥31] or ql[32‥63], or their high nibbles, with two bits of qh. */
QM_INLINE __m256i QM_FN(q6_codes)(const uint8_t *blk, int q) {
    const int n = q / 4, part = q % 4;
    const __m256i l = _mm256_loadu_si256((const __m256i *)(blk + 64 * n + 32 * (part % 2)));
    const __m256i h = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * n));
    const __m256i low = _mm256_and_si256(part < 2 ? l : _mm256_srli_epi16(l, 4), _mm256_set1_epi8(0x0F));
    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(h, 2 * part), _mm256_set1_epi8(3));
    return _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
}

QM_INLINE void QM_FN(q6_K_tile)(const uint8_t *w, size_t row_bytes, int R, int blocks, const chorus_q8_rows *a,
                                ptrdiff_t per_row, int b0, int B, float *out) {
    __m256 acc[4][4];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < B; j++) acc[i][j] = _mm256_setzero_ps();
    for (int k = 0; k < blocks; k++) {
        __m256i isum[4][4];
        for (int i = 0; i < R; i++) {
            for (int line = 0; line < 210; line += 64)
                _mm_prefetch((const char *)(w + (QM_AHEAD * R + i) * row_bytes + (size_t)k * 210 + line), _MM_HINT_T0);
            const int8_t *scales = (const int8_t *)(w + i * row_bytes + (size_t)k * 210 + 192);
            for (int j = 0; j < B; j++) {
                const int32_t *bsums = a->sums + ((ptrdiff_t)(b0 + j) * per_row + k) * 16;
                int32_t offset = 0;
                for (int g = 0; g < 16; g++) offset += scales[g] * bsums[g];
                isum[i][j] = _mm256_setr_epi32(-32 * offset, 0, 0, 0, 0, 0, 0, 0);
            }
        }
        for (int q = 0; q < 8; q++) {
            for (int i = 0; i < R; i++) {
                const uint8_t *blk = w + i * row_bytes + (size_t)k * 210;
                const int8_t *scales = (const int8_t *)(blk + 192);
                const int32_t first = scales[2 * q], second = scales[2 * q + 1];
                const __m256i lane_scales = _mm256_setr_epi32(first, first, first, first, second, second, second, second);
                const __m256i codes = QM_FN(q6_codes)(blk, q);
                for (int j = 0; j < B; j++) {
                    const ptrdiff_t sb = (ptrdiff_t)(b0 + j) * per_row + k;
                    const __m256i x = _mm256_loadu_si256((const __m256i *)(a->qs + sb * 256 + 32 * q));
                    isum[i][j] = _mm256_add_epi32(isum[i][j], QM_FN(dot_scaled)(codes, x, lane_scales));
                }
            }
        }
        for (int i = 0; i < R; i++) {
            const float d = QM_FN(half)(w + i * row_bytes + (size_t)k * 210 + 208);
            for (int j = 0; j < B; j++) {
                const float da = a->scale[(ptrdiff_t)(b0 + j) * per_row + k];
                acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][j]), _mm256_set1_ps(d * da), acc[i][j]);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < B; j++) out[i * 4 + j] = QM_FN(hsum)(acc[i][j]);
}

/* Weight rows [r0, r1) against every activation row; y[b · ldy + r]. One activation row: a row at a time;
   more: tiles of 2 × 4 (then 2 × the rest), and a last odd row alone. */
#define QM_ROWS(NAME, BLOCK_VALUES, BLOCK_BYTES)                                                                       \
    __attribute__((target(QM_TARGET))) static void QM_FN(NAME##_rows)(                                                \
        const uint8_t *w, ptrdiff_t columns, const chorus_q8_rows *a, int batch, ptrdiff_t r0, ptrdiff_t r1,          \
        float *y, ptrdiff_t ldy) {                                                                                    \
        const int blocks = (int)(columns / (BLOCK_VALUES));                                                           \
        const size_t row_bytes = (size_t)blocks * (BLOCK_BYTES);                                                      \
        const ptrdiff_t per_row = columns / (BLOCK_VALUES);                                                           \
        float out[16];                                                                                                \
        ptrdiff_t r = r0;                                                                                             \
        while (r < r1) {                                                                                              \
            const int R = r + 2 <= r1 && batch > 1 ? 2 : 1;                                                           \
            const uint8_t *rows = w + (size_t)r * row_bytes;                                                          \
            int b = 0;                                                                                                \
            for (; b < batch; b += 4) {                                                                               \
                const int B = batch - b >= 4 ? 4 : batch - b;                                                         \
                if (R == 2) {                                                                                         \
                    switch (B) {                                                                                      \
                    case 4: QM_FN(NAME##_tile)(rows, row_bytes, 2, blocks, a, per_row, b, 4, out); break;             \
                    case 3: QM_FN(NAME##_tile)(rows, row_bytes, 2, blocks, a, per_row, b, 3, out); break;             \
                    case 2: QM_FN(NAME##_tile)(rows, row_bytes, 2, blocks, a, per_row, b, 2, out); break;             \
                    default: QM_FN(NAME##_tile)(rows, row_bytes, 2, blocks, a, per_row, b, 1, out); break;            \
                    }                                                                                                 \
                } else {                                                                                              \
                    switch (B) {                                                                                      \
                    case 4: QM_FN(NAME##_tile)(rows, row_bytes, 1, blocks, a, per_row, b, 4, out); break;             \
                    case 3: QM_FN(NAME##_tile)(rows, row_bytes, 1, blocks, a, per_row, b, 3, out); break;             \
                    case 2: QM_FN(NAME##_tile)(rows, row_bytes, 1, blocks, a, per_row, b, 2, out); break;             \
                    default: QM_FN(NAME##_tile)(rows, row_bytes, 1, blocks, a, per_row, b, 1, out); break;            \
                    }                                                                                                 \
                }                                                                                                     \
                for (int i = 0; i < R; i++)                                                                           \
                    for (int j = 0; j < B; j++) y[(b + j) * ldy + r + i] = out[i * 4 + j];                            \
            }                                                                                                         \
            r += R;                                                                                                   \
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
