/* The products of quant_matmul.c for one instruction set; included once per set with
     QM_TARGET        the target attribute,
     QM_SUFFIX        appended to every name defined here,
     QM_VNNI          1 where vpdpbusd exists (AVX512-VNNI on 256-bit registers), else 0 (AVX2 only),
     QM_TOKENS        tokens a prompt's panel takes at a time (4 with AVX2's 16 registers, 8 with 32).
   Weights stay in their GGML blocks; activations are quantized as llama.cpp quantizes them (chorus_q8_rows);
   the integer sums are llama.cpp's: unsigned weight codes times signed activation bytes, per block or
   sub-block, the code offset (8, 16, 32) taken out through the activation sums. Floats enter once per block
   (or super-block) and row, as in llama.cpp's own loops. A decoded token reads each row once (the _row
   kernels); a prompt unpacks 8 rows at a time into a panel that every token then passes (the _panel kernels). */

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

/* ---- One weight row against one token (a decoded token): the rows one after the other, one sequential stream
   (four rows side by side measured slower: the streams interleave), each row's blocks in two chains so each
   waits on its own multiply-adds only. ---- */

/* Codes of one 32-value block as unsigned bytes. */
QM_INLINE __m256i QM_FN(codes_q4_0)(const uint8_t *p) { return QM_FN(nibbles)(p + 2); }
QM_INLINE __m256i QM_FN(codes_q4_1)(const uint8_t *p) { return QM_FN(nibbles)(p + 4); }
QM_INLINE __m256i QM_FN(codes_q5_0)(const uint8_t *p) { return _mm256_or_si256(QM_FN(nibbles)(p + 6), QM_FN(fifth_bits)(p + 2)); }
QM_INLINE __m256i QM_FN(codes_q5_1)(const uint8_t *p) { return _mm256_or_si256(QM_FN(nibbles)(p + 8), QM_FN(fifth_bits)(p + 4)); }

/* Q4_0, Q5_0 against q8_0 (the code offset through the activation sums); Q4_1, Q5_1 against q8_1 (the
   block minimum through q8_1's s). */
#define QM_BLOCK_ROW(NAME, BYTES, OFFSET, HAS_MIN)                                                                  \
    /* One block against activation block ab: acc += scaled integer sum, *mins += m · s. */                        \
    QM_INLINE __m256 QM_FN(NAME##_step)(const uint8_t *blk, const chorus_q8_rows *a, ptrdiff_t ab, __m256 acc,      \
                                        float *mins) {                                                              \
        const __m256i s = _mm256_loadu_si256((const __m256i *)(a->qs + ab * 32));                                  \
        const __m256i start = (OFFSET) ? _mm256_setr_epi32(-(OFFSET) * a->sums[ab], 0, 0, 0, 0, 0, 0, 0)           \
                                       : _mm256_setzero_si256();                                                   \
        const __m256i p = QM_FN(dot_add)(start, QM_FN(codes_##NAME)(blk), s);                                      \
        if (HAS_MIN) *mins += QM_FN(half)(blk + 2) * a->offset[ab];                                                \
        return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(QM_FN(half)(blk) * a->scale[ab]), acc);       \
    }                                                                                                              \
    QM_INLINE float QM_FN(NAME##_row)(const uint8_t *w, size_t row_bytes, int blocks, const chorus_q8_rows *a,     \
                                      ptrdiff_t ab0) {                                                             \
        __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();                                              \
        float even_mins = 0, odd_mins = 0;                                                                         \
        int k = 0;                                                                                                 \
        for (; k + 2 <= blocks; k += 2) {                                                                          \
            const uint8_t *blk = w + (size_t)k * (BYTES);                                                          \
            _mm_prefetch((const char *)(blk + QM_AHEAD * row_bytes), _MM_HINT_T0);                                 \
            even = QM_FN(NAME##_step)(blk, a, ab0 + k, even, &even_mins);                                          \
            odd = QM_FN(NAME##_step)(blk + (BYTES), a, ab0 + k + 1, odd, &odd_mins);                               \
        }                                                                                                          \
        if (k < blocks) even = QM_FN(NAME##_step)(w + (size_t)k * (BYTES), a, ab0 + k, even, &even_mins);          \
        return QM_FN(hsum)(_mm256_add_ps(even, odd)) + (even_mins + odd_mins);                                     \
    }

QM_BLOCK_ROW(q4_0, 18, 8, 0)
QM_BLOCK_ROW(q4_1, 20, 0, 1)
QM_BLOCK_ROW(q5_0, 22, 16, 0)
QM_BLOCK_ROW(q5_1, 24, 0, 1)

/* Q8_0's codes are signed: |w| against the activations signed by w, as llama.cpp's mul_sum_i8_pairs. */
QM_INLINE __m256 QM_FN(q8_0_step)(const uint8_t *blk, const chorus_q8_rows *a, ptrdiff_t ab, __m256 acc) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 2));
    const __m256i s = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(a->qs + ab * 32)), q);
    const __m256i p = QM_FN(dot_add)(_mm256_setzero_si256(), _mm256_sign_epi8(q, q), s);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(QM_FN(half)(blk) * a->scale[ab]), acc);
}

QM_INLINE float QM_FN(q8_0_row)(const uint8_t *w, size_t row_bytes, int blocks, const chorus_q8_rows *a, ptrdiff_t ab0) {
    __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
    int k = 0;
    for (; k + 2 <= blocks; k += 2) {
        const uint8_t *blk = w + (size_t)k * 34;
        _mm_prefetch((const char *)(blk + QM_AHEAD * row_bytes), _MM_HINT_T0);
        _mm_prefetch((const char *)(blk + QM_AHEAD * row_bytes + 64), _MM_HINT_T0);
        even = QM_FN(q8_0_step)(blk, a, ab0 + k, even);
        odd = QM_FN(q8_0_step)(blk + 34, a, ab0 + k + 1, odd);
    }
    if (k < blocks) even = QM_FN(q8_0_step)(w + (size_t)k * 34, a, ab0 + k, even);
    return QM_FN(hsum)(_mm256_add_ps(even, odd));
}

/* ---- 256-value super-blocks against q8_K rows ---- */

/* Q4_K / Q5_K: eight sub-blocks of 32 with 6-bit scales and mins (llama.cpp's get_scale_min_k4), as int32. */
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

/* Σ over the eight 32-value sub-blocks of scale · (codes · x), as 8 int32 lanes; `x` the q8_K codes. */
QM_INLINE __m256i QM_FN(k45_sum)(const uint8_t *blk, const int32_t *sc, const int8_t *x, int fifth) {
    __m256i sum = _mm256_setzero_si256();
    for (int q = 0; q < 8; q++)
        sum = _mm256_add_epi32(sum, QM_FN(dot_scaled)(QM_FN(k45_codes)(blk, q, fifth),
                                                      _mm256_loadu_si256((const __m256i *)(x + 32 * q)),
                                                      _mm256_set1_epi32(sc[q])));
    return sum;
}

#define QM_K45_ROW(NAME, BYTES, FIFTH)                                                                               \
    QM_INLINE float QM_FN(NAME##_row)(const uint8_t *w, size_t row_bytes, int blocks, const chorus_q8_rows *a,      \
                                      ptrdiff_t sb0) {                                                              \
        __m256 acc = _mm256_setzero_ps();                                                                            \
        float mins = 0;                                                                                              \
        for (int k = 0; k < blocks; k++) {                                                                           \
            const uint8_t *blk = w + (size_t)k * (BYTES);                                                            \
            for (int line = 0; line < (BYTES); line += 64)                                                           \
                _mm_prefetch((const char *)(blk + QM_AHEAD * row_bytes + line), _MM_HINT_T0);                        \
            int32_t sc[8], m[8];                                                                                     \
            QM_FN(k_scales)(blk + 4, sc, m);                                                                         \
            const ptrdiff_t sb = sb0 + k;                                                                            \
            const __m256i isum = QM_FN(k45_sum)(blk, sc, a->qs + sb * 256, FIFTH);                                   \
            const int32_t *bsums = a->sums + sb * 16;                                                                \
            int32_t summ = 0;                                                                                        \
            for (int q = 0; q < 8; q++) summ += m[q] * (bsums[2 * q] + bsums[2 * q + 1]);                            \
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(QM_FN(half)(blk) * a->scale[sb]), acc);  \
            mins += QM_FN(half)(blk + 2) * a->scale[sb] * (float)summ;                                               \
        }                                                                                                            \
        return QM_FN(hsum)(acc) - mins;                                                                              \
    }

QM_K45_ROW(q4_K, 144, 0)
QM_K45_ROW(q5_K, 176, 1)

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

/* The lane scales of group q: the scale of its first 16 values in lanes 0‥3, of its second 16 in lanes 4‥7. */
QM_INLINE __m256i QM_FN(q6_lane_scales)(__m128i scales, int q) {
    const __m128i pick = _mm_setr_epi8(2 * q, 2 * q, 2 * q, 2 * q, 2 * q + 1, 2 * q + 1, 2 * q + 1, 2 * q + 1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm256_cvtepi8_epi32(_mm_shuffle_epi8(scales, pick));
}

/* −32 · Σ scale · (sum of x) over the 16 sub-blocks, as 8 int32 lanes: the code offset of a Q6_K super-block. */
QM_INLINE __m256i QM_FN(q6_offset)(__m128i scales, const int32_t *bsums) {
    const __m256i offset = _mm256_add_epi32(
        _mm256_mullo_epi32(_mm256_cvtepi8_epi32(scales), _mm256_loadu_si256((const __m256i *)bsums)),
        _mm256_mullo_epi32(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(scales, scales)), _mm256_loadu_si256((const __m256i *)(bsums + 8))));
    return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offset, 5));
}

/* Σ of scale · (codes − 32) · x over a Q6_K super-block as 8 int32 lanes. */
QM_INLINE __m256i QM_FN(q6_sum)(const uint8_t *blk, __m128i scales, const int8_t *x, const int32_t *bsums) {
    __m256i sum = QM_FN(q6_offset)(scales, bsums);
    for (int q = 0; q < 8; q++)
        sum = _mm256_add_epi32(sum, QM_FN(dot_scaled)(QM_FN(q6_codes)(blk, q), _mm256_loadu_si256((const __m256i *)(x + 32 * q)),
                                                      QM_FN(q6_lane_scales)(scales, q)));
    return sum;
}

QM_INLINE float QM_FN(q6_K_row)(const uint8_t *w, size_t row_bytes, int blocks, const chorus_q8_rows *a, ptrdiff_t sb0) {
    __m256 acc = _mm256_setzero_ps();
    for (int k = 0; k < blocks; k++) {
        const uint8_t *blk = w + (size_t)k * 210;
        for (int line = 0; line < 210; line += 64)
            _mm_prefetch((const char *)(blk + QM_AHEAD * row_bytes + line), _MM_HINT_T0);
        const ptrdiff_t sb = sb0 + k;
        const __m128i scales = _mm_loadu_si128((const __m128i *)(blk + 192));
        const __m256i isum = QM_FN(q6_sum)(blk, scales, a->qs + sb * 256, a->sums + sb * 16);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(QM_FN(half)(blk + 208) * a->scale[sb]), acc);
    }
    return QM_FN(hsum)(acc);
}

/* ---- Prompts, Q8_0: R weight rows against four tokens. The four tokens' integer sums of a block are folded
   into one vector — lanes j and 4 + j hold the two halves of token j's sum — so floats enter once per row and
   block (one convert, one multiply-add against the four tokens' scales). `tok[j]` is token j's first block (a
   last tile of fewer than four tokens repeats its last one). out[i · 4 + j]. ---- */

/* Lanes j and 4 + j: the sums of the low and high four lanes of p_j. */
QM_INLINE __m256i QM_FN(fold4)(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
    return _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
}

QM_INLINE void QM_FN(q8_0_tile)(const uint8_t *w, size_t row_bytes, int R, int blocks, const chorus_q8_rows *a,
                                const ptrdiff_t *tok, float *out) {
    __m256 acc[4];
    for (int i = 0; i < R; i++) acc[i] = _mm256_setzero_ps();
    for (int k = 0; k < blocks; k++) {
        const __m256i s0 = _mm256_loadu_si256((const __m256i *)(a->qs + (tok[0] + k) * 32));
        const __m256i s1 = _mm256_loadu_si256((const __m256i *)(a->qs + (tok[1] + k) * 32));
        const __m256i s2 = _mm256_loadu_si256((const __m256i *)(a->qs + (tok[2] + k) * 32));
        const __m256i s3 = _mm256_loadu_si256((const __m256i *)(a->qs + (tok[3] + k) * 32));
        const __m128 scales = _mm_setr_ps(a->scale[tok[0] + k], a->scale[tok[1] + k], a->scale[tok[2] + k], a->scale[tok[3] + k]);
        const __m256 da = _mm256_set_m128(scales, scales);
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = w + i * row_bytes + (size_t)k * 34;
            const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 2));
            const __m256i u = _mm256_sign_epi8(q, q), zero = _mm256_setzero_si256();
            const __m256i p = QM_FN(fold4)(QM_FN(dot_add)(zero, u, _mm256_sign_epi8(s0, q)), QM_FN(dot_add)(zero, u, _mm256_sign_epi8(s1, q)),
                                           QM_FN(dot_add)(zero, u, _mm256_sign_epi8(s2, q)), QM_FN(dot_add)(zero, u, _mm256_sign_epi8(s3, q)));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(da, _mm256_set1_ps(QM_FN(half)(blk))), acc[i]);
        }
    }
    for (int i = 0; i < R; i++)
        _mm_storeu_ps(out + i * 4, _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1)));
}

__attribute__((target(QM_TARGET))) static void QM_FN(q8_0_rows)(const uint8_t *w, ptrdiff_t columns, const chorus_q8_rows *a,
                                                              int batch, ptrdiff_t r0, ptrdiff_t r1, float *y, ptrdiff_t ldy) {
    const int blocks = (int)(columns / 32);
    const size_t row_bytes = (size_t)blocks * 34;
    if (batch == 1) {
        for (ptrdiff_t r = r0; r < r1; r++) y[r] = QM_FN(q8_0_row)(w + (size_t)r * row_bytes, row_bytes, blocks, a, 0);
        return;
    }
    float out[16];
    for (ptrdiff_t r = r0; r < r1;) {
        const int R = r + 4 <= r1 ? 4 : 1;
        for (int b = 0; b < batch; b += 4) {
            const int B = batch - b >= 4 ? 4 : batch - b;
            ptrdiff_t tok[4];
            for (int j = 0; j < 4; j++) tok[j] = (ptrdiff_t)(b + (j < B ? j : B - 1)) * blocks;
            if (R == 4) QM_FN(q8_0_tile)(w + (size_t)r * row_bytes, row_bytes, 4, blocks, a, tok, out);
            else QM_FN(q8_0_tile)(w + (size_t)r * row_bytes, row_bytes, 1, blocks, a, tok, out);
            for (int i = 0; i < R; i++)
                for (int j = 0; j < B; j++) y[(b + j) * ldy + r + i] = out[i * 4 + j];
        }
        r += R;
    }
}

/* ---- Prompts, the other types: panels of 8 weight rows. A panel holds up to QM_PANEL_UNITS 32-value units of
   8 rows unpacked once into unsigned codes, laid out so that one vector holds 4 codes of each of the 8 rows
   (qm_panel), with their scales as vectors over the rows. Every token of the prompt then takes one
   dot-product instruction per 4 codes of 8 rows, its 4 activation bytes broadcast, and lane i of its sum is
   row i's: the scales apply as vectors, and the 8 results store side by side. The panel stays in L1 while
   the tokens pass, QM_TOKENS at a time (independent chains for the multiply-adds). ---- */

/* The 8 rows' 32 codes (c[i]) as 8 vectors of 4-byte groups: group g of rows 0‥7 at dst + 32 g. */
QM_INLINE void QM_FN(transpose8)(const __m256i *c, uint8_t *dst) {
    const __m256i t0 = _mm256_unpacklo_epi32(c[0], c[1]), t1 = _mm256_unpackhi_epi32(c[0], c[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(c[2], c[3]), t3 = _mm256_unpackhi_epi32(c[2], c[3]);
    const __m256i t4 = _mm256_unpacklo_epi32(c[4], c[5]), t5 = _mm256_unpackhi_epi32(c[4], c[5]);
    const __m256i t6 = _mm256_unpacklo_epi32(c[6], c[7]), t7 = _mm256_unpackhi_epi32(c[6], c[7]);
    const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    __m256i *out = (__m256i *)dst;
    _mm256_storeu_si256(out + 0, _mm256_permute2x128_si256(u0, u4, 0x20));
    _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(u1, u5, 0x20));
    _mm256_storeu_si256(out + 2, _mm256_permute2x128_si256(u2, u6, 0x20));
    _mm256_storeu_si256(out + 3, _mm256_permute2x128_si256(u3, u7, 0x20));
    _mm256_storeu_si256(out + 4, _mm256_permute2x128_si256(u0, u4, 0x31));
    _mm256_storeu_si256(out + 5, _mm256_permute2x128_si256(u1, u5, 0x31));
    _mm256_storeu_si256(out + 6, _mm256_permute2x128_si256(u2, u6, 0x31));
    _mm256_storeu_si256(out + 7, _mm256_permute2x128_si256(u3, u7, 0x31));
}

/* Σ over unit u of the panel for T tokens: s[j] points at token j's 32 activation codes of that unit. Lane i of
   sum[j] is row i's integer sum; `first` and `groups` pick 4-byte groups (Q6_K scales each 16 values apart). */
QM_INLINE void QM_FN(panel_dot)(const qm_panel *p, int u, int first, int groups, const int8_t *const *s, __m256i *sum) {
    for (int j = 0; j < QM_TOKENS; j++) sum[j] = _mm256_setzero_si256();
    for (int g = first; g < first + groups; g++) {
        const __m256i w = _mm256_loadu_si256((const __m256i *)(p->codes[u] + 32 * g));
        for (int j = 0; j < QM_TOKENS; j++) {
            int32_t x;
            memcpy(&x, s[j] + 4 * g, 4);
            sum[j] = QM_FN(dot_add)(sum[j], w, _mm256_set1_epi32(x));
        }
    }
}

/* Q4_0, Q5_0, Q4_1, Q5_1: rows [0, n) of the 8 at w, blocks [k0, k0 + count). Rows past n are zero. */
#define QM_BLOCK_PANEL(NAME, BYTES, OFFSET, HAS_MIN)                                                                 \
    QM_INLINE void QM_FN(NAME##_panel)(const uint8_t *w, size_t row_bytes, int n, int k0, int count, qm_panel *p) { \
        for (int u = 0; u < count; u++) {                                                                           \
            __m256i c[8];                                                                                           \
            for (int i = 0; i < 8; i++) {                                                                           \
                const uint8_t *blk = w + i * row_bytes + (size_t)(k0 + u) * (BYTES);                                \
                c[i] = i < n ? QM_FN(codes_##NAME)(blk) : _mm256_setzero_si256();                                   \
                p->scale[u][i] = i < n ? QM_FN(half)(blk) : 0.0f;                                                   \
                if (HAS_MIN) p->min[u][i] = i < n ? QM_FN(half)(blk + 2) : 0.0f;                                    \
            }                                                                                                       \
            QM_FN(transpose8)(c, p->codes[u]);                                                                      \
        }                                                                                                           \
    }                                                                                                               \
    /* acc[j] += the panel's products with tokens whose first blocks are tok[j]. */                                 \
    QM_INLINE void QM_FN(NAME##_panel_tile)(const qm_panel *p, int k0, int count, const chorus_q8_rows *a,         \
                                            const ptrdiff_t *tok, __m256 *acc) {                                    \
        for (int u = 0; u < count; u++) {                                                                           \
            const int8_t *s[QM_TOKENS];                                                                             \
            for (int j = 0; j < QM_TOKENS; j++) s[j] = a->qs + (tok[j] + k0 + u) * 32;                              \
            __m256i sum[QM_TOKENS];                                                                                 \
            QM_FN(panel_dot)(p, u, 0, 8, s, sum);                                                                   \
            const __m256 dw = _mm256_loadu_ps(p->scale[u]);                                                         \
            for (int j = 0; j < QM_TOKENS; j++) {                                                                   \
                const ptrdiff_t ab = tok[j] + k0 + u;                                                               \
                if (OFFSET) sum[j] = _mm256_sub_epi32(sum[j], _mm256_set1_epi32((OFFSET) * a->sums[ab]));           \
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[j]), _mm256_mul_ps(dw, _mm256_set1_ps(a->scale[ab])), acc[j]); \
                if (HAS_MIN) acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(p->min[u]), _mm256_set1_ps(a->offset[ab]), acc[j]); \
            }                                                                                                       \
        }                                                                                                           \
    }

QM_BLOCK_PANEL(q4_0, 18, 8, 0)
QM_BLOCK_PANEL(q4_1, 20, 0, 1)
QM_BLOCK_PANEL(q5_0, 22, 16, 0)
QM_BLOCK_PANEL(q5_1, 24, 0, 1)

/* The eight 32-value sums of q8_K super-block sb as int16 pairs: 32-bit lane p holds sums 2p and 2p + 1. */
QM_INLINE __m256i QM_FN(k_sum_pairs16)(const chorus_q8_rows *a, ptrdiff_t sb) {
    const int32_t *bsums = a->sums + sb * 16;
    /* hadd leaves [0 1 4 5 | 2 3 6 7]; the 64-bit permute restores 0‥7; each |sum| ≤ 32 · 127 fits int16. */
    const __m256i eight = _mm256_permute4x64_epi64(
        _mm256_hadd_epi32(_mm256_loadu_si256((const __m256i *)bsums), _mm256_loadu_si256((const __m256i *)(bsums + 8))), 0xD8);
    const __m256i packed = _mm256_packs_epi32(eight, eight); /* [0 1 2 3 0 1 2 3 | 4 5 6 7 4 5 6 7] */
    return _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 1, 4, 5, 0, 1, 4, 5));
}

/* The sixteen 16-value sums of q8_K super-block sb as int16 pairs: 32-bit lane p holds sums 2p and 2p + 1. */
QM_INLINE __m256i QM_FN(q6_sum_pairs16)(const chorus_q8_rows *a, ptrdiff_t sb) {
    const int32_t *bsums = a->sums + sb * 16;
    /* packs leaves [0‥3 8‥11 | 4‥7 12‥15]; the 64-bit permute restores 0‥15; each |sum| ≤ 16 · 127. */
    return _mm256_permute4x64_epi64(_mm256_packs_epi32(_mm256_loadu_si256((const __m256i *)bsums),
                                                       _mm256_loadu_si256((const __m256i *)(bsums + 8))), 0xD8);
}

/* Σ_p pair[p] · (lane p of sums16) over `pairs` pairs: lane i is row i's Σ of its int16 pair weights times the
   token's pair sums (Q4_K / Q5_K mins, Q6_K scales). */
QM_INLINE __m256i QM_FN(pair_products)(const int32_t (*pair)[8], int pairs, __m256i sums16) {
    __m256i total = _mm256_setzero_si256();
    for (int q = 0; q < pairs; q++)
        total = _mm256_add_epi32(total, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)pair[q]),
                                                          _mm256_permutevar8x32_epi32(sums16, _mm256_set1_epi32(q))));
    return total;
}

/* Q4_K / Q5_K: rows [0, n) of the 8 at w, super-blocks [k0, k0 + count); units are sub-blocks. */
#define QM_K45_PANEL(NAME, BYTES, FIFTH)                                                                              \
    QM_INLINE void QM_FN(NAME##_panel)(const uint8_t *w, size_t row_bytes, int n, int k0, int count, qm_panel *p) { \
        for (int k = 0; k < count; k++) {                                                                           \
            for (int i = 0; i < 8; i++) {                                                                           \
                const uint8_t *blk = w + i * row_bytes + (size_t)(k0 + k) * (BYTES);                                \
                int32_t sc[8] = {0}, m[8] = {0};                                                                    \
                if (i < n) QM_FN(k_scales)(blk + 4, sc, m);                                                         \
                p->d[k][i] = i < n ? QM_FN(half)(blk) : 0.0f;                                                       \
                p->dmin[k][i] = i < n ? QM_FN(half)(blk + 2) : 0.0f;                                                \
                for (int q = 0; q < 8; q++) p->sub[8 * k + q][0][i] = sc[q];                                        \
                for (int q = 0; q < 4; q++) p->pair[k][q][i] = m[2 * q] | (m[2 * q + 1] << 16);                     \
            }                                                                                                       \
            for (int q = 0; q < 8; q++) {                                                                           \
                __m256i c[8];                                                                                       \
                for (int i = 0; i < 8; i++)                                                                         \
                    c[i] = i < n ? QM_FN(k45_codes)(w + i * row_bytes + (size_t)(k0 + k) * (BYTES), q, FIFTH)        \
                                 : _mm256_setzero_si256();                                                          \
                QM_FN(transpose8)(c, p->codes[8 * k + q]);                                                          \
            }                                                                                                       \
        }                                                                                                           \
    }                                                                                                               \
    QM_INLINE void QM_FN(NAME##_panel_tile)(const qm_panel *p, int k0, int count, const chorus_q8_rows *a,         \
                                            const ptrdiff_t *tok, __m256 *acc) {                                    \
        for (int k = 0; k < count; k++) {                                                                           \
            __m256i isum[QM_TOKENS];                                                                                \
            for (int j = 0; j < QM_TOKENS; j++) isum[j] = _mm256_setzero_si256();                                  \
            for (int q = 0; q < 8; q++) {                                                                           \
                const int8_t *s[QM_TOKENS];                                                                         \
                for (int j = 0; j < QM_TOKENS; j++) s[j] = a->qs + (tok[j] + k0 + k) * 256 + 32 * q;                \
                __m256i sum[QM_TOKENS];                                                                             \
                QM_FN(panel_dot)(p, 8 * k + q, 0, 8, s, sum);                                                       \
                const __m256i sc = _mm256_loadu_si256((const __m256i *)p->sub[8 * k + q][0]);                       \
                for (int j = 0; j < QM_TOKENS; j++) isum[j] = _mm256_add_epi32(isum[j], _mm256_mullo_epi32(sum[j], sc)); \
            }                                                                                                       \
            const __m256 d = _mm256_loadu_ps(p->d[k]), dmin = _mm256_loadu_ps(p->dmin[k]);                          \
            for (int j = 0; j < QM_TOKENS; j++) {                                                                   \
                const ptrdiff_t sb = tok[j] + k0 + k;                                                               \
                const __m256 da = _mm256_set1_ps(a->scale[sb]);                                                     \
                const __m256i mins = QM_FN(pair_products)(p->pair[k], 4, QM_FN(k_sum_pairs16)(a, sb));              \
                acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(d, da), acc[j]);                \
                acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_mul_ps(dmin, da), acc[j]);               \
            }                                                                                                       \
        }                                                                                                           \
    }

QM_K45_PANEL(q4_K, 144, 0)
QM_K45_PANEL(q5_K, 176, 1)

/* Q6_K: units are 32-value groups; each has two scales (sub[u][0] for its first 16 values, sub[u][1]). */
QM_INLINE void QM_FN(q6_K_panel)(const uint8_t *w, size_t row_bytes, int n, int k0, int count, qm_panel *p) {
    for (int k = 0; k < count; k++) {
        for (int i = 0; i < 8; i++) {
            const uint8_t *blk = w + i * row_bytes + (size_t)(k0 + k) * 210;
            int32_t sc[16] = {0};
            if (i < n)
                for (int g = 0; g < 16; g++) sc[g] = ((const int8_t *)(blk + 192))[g];
            p->d[k][i] = i < n ? QM_FN(half)(blk + 208) : 0.0f;
            for (int q = 0; q < 8; q++) {
                p->sub[8 * k + q][0][i] = sc[2 * q];
                p->sub[8 * k + q][1][i] = sc[2 * q + 1];
                p->pair[k][q][i] = (int32_t)((uint32_t)(uint16_t)sc[2 * q] | ((uint32_t)(uint16_t)sc[2 * q + 1] << 16));
            }
        }
        for (int q = 0; q < 8; q++) {
            __m256i c[8];
            for (int i = 0; i < 8; i++)
                c[i] = i < n ? QM_FN(q6_codes)(w + i * row_bytes + (size_t)(k0 + k) * 210, q) : _mm256_setzero_si256();
            QM_FN(transpose8)(c, p->codes[8 * k + q]);
        }
    }
}

QM_INLINE void QM_FN(q6_K_panel_tile)(const qm_panel *p, int k0, int count, const chorus_q8_rows *a, const ptrdiff_t *tok,
                                      __m256 *acc) {
    for (int k = 0; k < count; k++) {
        __m256i isum[QM_TOKENS];
        for (int j = 0; j < QM_TOKENS; j++)
            /* The code offset 32 through the token's 16-value sums: −32 Σ scale · sum. */
            isum[j] = _mm256_slli_epi32(QM_FN(pair_products)(p->pair[k], 8, QM_FN(q6_sum_pairs16)(a, tok[j] + k0 + k)), 5);
        for (int j = 0; j < QM_TOKENS; j++) isum[j] = _mm256_sub_epi32(_mm256_setzero_si256(), isum[j]);
        for (int q = 0; q < 8; q++) {
            const int8_t *s[QM_TOKENS];
            for (int j = 0; j < QM_TOKENS; j++) s[j] = a->qs + (tok[j] + k0 + k) * 256 + 32 * q;
            __m256i low[QM_TOKENS], high[QM_TOKENS];
            QM_FN(panel_dot)(p, 8 * k + q, 0, 4, s, low);
            QM_FN(panel_dot)(p, 8 * k + q, 4, 4, s, high);
            const __m256i sc0 = _mm256_loadu_si256((const __m256i *)p->sub[8 * k + q][0]);
            const __m256i sc1 = _mm256_loadu_si256((const __m256i *)p->sub[8 * k + q][1]);
            for (int j = 0; j < QM_TOKENS; j++)
                isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(_mm256_mullo_epi32(low[j], sc0), _mm256_mullo_epi32(high[j], sc1)));
        }
        const __m256 d = _mm256_loadu_ps(p->d[k]);
        for (int j = 0; j < QM_TOKENS; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[j]), _mm256_mul_ps(d, _mm256_set1_ps(a->scale[tok[j] + k0 + k])), acc[j]);
    }
}

/* Weight rows [r0, r1) against every activation row; y[b · ldy + r]. One activation row: a row at a time;
   more: panels of 8 rows × up to QM_PANEL_UNITS units, QM_TOKENS tokens at a time (a last tile of fewer tokens
   repeats its last one); a matrix wider than a panel adds each panel's share into y. */
#define QM_ROWS(NAME, BLOCK_VALUES, BLOCK_BYTES)                                                                       \
    __attribute__((target(QM_TARGET))) static void QM_FN(NAME##_rows)(                                                \
        const uint8_t *w, ptrdiff_t columns, const chorus_q8_rows *a, int batch, ptrdiff_t r0, ptrdiff_t r1,          \
        float *y, ptrdiff_t ldy) {                                                                                    \
        const int blocks = (int)(columns / (BLOCK_VALUES));                                                           \
        const size_t row_bytes = (size_t)blocks * (BLOCK_BYTES);                                                      \
        if (batch == 1) {                                                                                             \
            for (ptrdiff_t r = r0; r < r1; r++) y[r] = QM_FN(NAME##_row)(w + (size_t)r * row_bytes, row_bytes, blocks, a, 0); \
            return;                                                                                                   \
        }                                                                                                             \
        const int per_panel = QM_PANEL_UNITS / ((BLOCK_VALUES) / 32);                                                 \
        qm_panel panel;                                                                                               \
        for (ptrdiff_t r = r0; r < r1; r += 8) {                                                                      \
            const int n = r1 - r >= 8 ? 8 : (int)(r1 - r);                                                            \
            for (int k0 = 0; k0 < blocks; k0 += per_panel) {                                                          \
                const int count = blocks - k0 < per_panel ? blocks - k0 : per_panel;                                  \
                QM_FN(NAME##_panel)(w + (size_t)r * row_bytes, row_bytes, n, k0, count, &panel);                      \
                for (int b = 0; b < batch; b += QM_TOKENS) {                                                          \
                    const int B = batch - b >= QM_TOKENS ? QM_TOKENS : batch - b;                                     \
                    ptrdiff_t tok[QM_TOKENS];                                                                         \
                    __m256 acc[QM_TOKENS];                                                                            \
                    for (int j = 0; j < QM_TOKENS; j++) {                                                             \
                        tok[j] = (ptrdiff_t)(b + (j < B ? j : B - 1)) * blocks;                                       \
                        acc[j] = _mm256_setzero_ps();                                                                 \
                    }                                                                                                 \
                    QM_FN(NAME##_panel_tile)(&panel, k0, count, a, tok, acc);                                         \
                    for (int j = 0; j < B; j++) {                                                                     \
                        float out[8];                                                                                 \
                        _mm256_storeu_ps(out, acc[j]);                                                                \
                        float *row = y + (b + j) * ldy + r;                                                           \
                        for (int i = 0; i < n; i++) row[i] = k0 == 0 ? out[i] : row[i] + out[i];                      \
                    }                                                                                                 \
                }                                                                                                     \
            }                                                                                                         \
        }                                                                                                             \
    }

QM_ROWS(q4_0, 32, 18)
QM_ROWS(q4_1, 32, 20)
QM_ROWS(q5_0, 32, 22)
QM_ROWS(q5_1, 32, 24)
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
