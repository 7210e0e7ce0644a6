/* The passes of the Sinkhorn (OptVQ) kernel on CPU, each fused into one sweep over a row block of the N x K
 * matrix; compiled at first use by sinkhorn_native.py and driven by sinkhorn_kernel.py, which holds the algorithm
 * (eqs. 8-12 of OptVQ in scaling-vector form). Every function works on `rows` consecutive rows of `K` float32
 * entries, splits them statically over `nth` OpenMP threads, and is deterministic for a given `nth`: column sums are
 * summed per thread (float32 over at most FLUSH_ROWS rows, then float64) and combined in thread order.
 *
 * Why compiled: in PyTorch each operation is one sweep over the block, so a Sinkhorn iteration (M b, the token
 * update, M^T a) reads the matrix twice and the first passes (sqrt, shift, exp, column sums) once each; here one
 * sweep does each group while a row is in L1. Built with -ffast-math (vectorised sqrtf and reductions); the
 * inputs are finite (checked by the callers).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* Subnormal floats as zero (flush-to-zero and denormals-are-zero) in each thread for the length of a pass, its
 * previous mode restored after. The kernel's tiny values (a far token's row factor a_n, products M_nk a_n below
 * FLT_MIN) make Intel cores take a ~100-cycle microcode assist per operation: on data with far tokens a pass
 * took up to 9x longer. Those values are below 1.2e-38 where every sum they enter is guarded by a 1e-8 term or
 * holds normal terms, so flushing them changes no assignment (tested against the oracle on such data). */
#if defined(__SSE__)
typedef unsigned int fpmode_t;
static inline fpmode_t subnormals_off(void) {
    const fpmode_t old = _mm_getcsr();
    _mm_setcsr(old | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
    return old;
}
static inline void fpmode_restore(fpmode_t old) { _mm_setcsr(old); }
#else
typedef int fpmode_t;
static inline fpmode_t subnormals_off(void) { return 0; }
static inline void fpmode_restore(fpmode_t old) { (void)old; }
#endif

#define FLUSH_ROWS 256

/* Thread tid's share [s, e) of `rows` rows split statically over nt threads. */
static inline void thread_rows(int64_t rows, int tid, int nt, int64_t *s, int64_t *e) {
    const int64_t chunk = (rows + nt - 1) / nt;
    *s = tid * chunk < rows ? tid * chunk : rows;
    *e = *s + chunk < rows ? *s + chunk : rows;
}

static inline int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int thread_count(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* exp(x) for the kernel's arguments (x <= 0): Cody-Waite reduction x = n ln2 + r and Cephes' expf polynomial
 * (about 1 ulp), 2^n from the exponent bits; 0 below -87 (where float32 leaves the normal range). All plain
 * arithmetic, so the loops that call it vectorise without a vector math library, ~2x faster than glibc's. */
static inline float kexp(float x) {
    const float n = rintf(x * 1.44269504088896341f);
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.f;
    const int32_t bits = ((int32_t)fmaxf(n, -126.f) + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < -87.f ? 0.f : p * scale;
}

/* v[i] = exp(scale * v[i]) for n entries (scale * v <= 0): the kernel M from D - rowmin D. With AVX-512, 16 at a time
 * by a shorter route than kexp: x = (i + j/16) ln2 + r (i + j/16 the nearest multiple of 1/16 of x log2(e), the same
 * two-part ln2), |r| <= ln2/32, so e^r needs only a cubic (truncation 0.15 ulp); 2^(j/16) from a 16-entry table
 * (vpermps) and 2^i by vscalefps, which also takes care of underflow (arguments clamped at -104, all giving 0). Within
 * 1.7 ulp of exp (kexp: 1 ulp; checked on every 8th float of [-87, 0]), ~1.4x faster than kexp on one core: the
 * second pass is the only one that is not bound by memory. */
#if defined(__AVX512F__)
static inline __m512 exp16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.f));
    const __m512 t = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          (4 << 4) | _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(t, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(t, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.f / 6.f), r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    const __m512i j = _mm512_cvtps_epi32(_mm512_mul_ps(t, _mm512_set1_ps(16.f))); /* vpermps reads its low 4 bits */
    const __m512 table = _mm512_setr_ps(1.0f, 1.0442737824274138f, 1.0905077326652577f, 1.1387886347566916f,
                                        1.189207115002721f, 1.2418578120734840f, 1.2968395546510096f,
                                        1.3542555469368927f, 1.4142135623730951f, 1.4768261459394993f,
                                        1.5422108254079407f, 1.6104903319492543f, 1.6817928305074290f,
                                        1.7562521603732995f, 1.8340080864093424f, 1.9152065613971474f);
    return _mm512_scalef_ps(_mm512_mul_ps(_mm512_permutexvar_ps(j, table), p), t);
}

static inline void exp_scaled(float *v, int64_t n, float scale) {
    const __m512 s = _mm512_set1_ps(scale);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(v + i, exp16(_mm512_mul_ps(s, _mm512_loadu_ps(v + i))));
    if (i < n) {
        const __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(v + i, tail, exp16(_mm512_mul_ps(s, _mm512_maskz_loadu_ps(tail, v + i))));
    }
}
#else
static inline void exp_scaled(float *v, int64_t n, float scale) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) v[i] = kexp(scale * v[i]);
}
#endif

/* Row n of the squared distances, |x_n|^2 + |c_k|^2 - 2 x_n . c_k (the matrix-product form of torch.cdist), from the
 * codebook transposed (ct: D x K) so that the loop over codes vectorises; for small D, where a GEMM with an inner size
 * of D + 2 is slow and this row can be used while it is in L1. One sweep over the row for the D of up to 4 (D a
 * constant in each copy the switch inlines, so the loop over features unrolls), one per feature above. */
static inline __attribute__((always_inline)) void row_distances_d(float *r, const float *xr, const float *ct, float xn,
                                                                  const float *cn, int64_t K, int64_t D) {
    float w[4];
    for (int64_t j = 0; j < D; j++) w[j] = -2.f * xr[j];
#pragma omp simd
    for (int64_t k = 0; k < K; k++) {
        float v = xn + cn[k];
        for (int64_t j = 0; j < D; j++) v += w[j] * ct[j * K + k];
        r[k] = v;
    }
}

static inline void row_distances(float *r, const float *xr, const float *ct, float xn, const float *cn, int64_t K,
                                 int64_t D) {
    switch (D) {
    case 1: row_distances_d(r, xr, ct, xn, cn, K, 1); return;
    case 2: row_distances_d(r, xr, ct, xn, cn, K, 2); return;
    case 3: row_distances_d(r, xr, ct, xn, cn, K, 3); return;
    case 4: row_distances_d(r, xr, ct, xn, cn, K, 4); return;
    default: break;
    }
#pragma omp simd
    for (int64_t k = 0; k < K; k++) r[k] = xn + cn[k];
    for (int64_t j = 0; j < D; j++) {
        const float w = -2.f * xr[j], *cj = ct + j * K;
#pragma omp simd
        for (int64_t k = 0; k < K; k++) r[k] += w * cj[k];
    }
}

/* Row n of d, holding the squared distances: computed here when x is given (small D), else already written by the
 * GEMM. */
static inline float *squared_row(float *d, int64_t n, int64_t K, const float *x, const float *ct, const float *xn,
                                 const float *cn, int64_t D) {
    float *r = d + n * K;
    if (x) row_distances(r, x + n * D, ct, xn[n], cn, K, D);
    return r;
}

/* The largest magnitude in x (n floats) as the bits of |x_i| (sign cleared) compared as integers: for finite floats
 * the order of their magnitudes, and Inf (0x7f800000) and NaN (above it) above every finite one; integer operations,
 * so -ffast-math cannot drop the test for NaN. One read of x, no temporary. */
uint32_t mmq_max_abs_bits(const float *x, int64_t n, int nth) {
    uint32_t m = 0;
#pragma omp parallel for simd schedule(static) num_threads(nth) reduction(max : m)
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, x + i, sizeof bits);
        bits &= 0x7fffffffu;
        m = bits > m ? bits : m;
    }
    return m;
}

/* The rows' GEMM operand of the distances in torch.cdist's matrix-product form: xa[n] = [-2 x_n, xn_n, 1] (rows x
 * (D + 2)), xn the squared norms as PyTorch sums them, so the distances round as torch.cdist's. One sweep where
 * PyTorch takes three operations writing columns of xa. */
void mmq_sk_operands(const float *x, const float *xn, int64_t rows, int64_t D, float *xa, int nth) {
#pragma omp parallel for schedule(static) num_threads(nth)
    for (int64_t n = 0; n < rows; n++) {
        const float *xr = x + n * D;
        float *o = xa + n * (D + 2);
        for (int64_t j = 0; j < D; j++) o[j] = -2.f * xr[j];
        o[D] = xn[n];
        o[D + 1] = 1.f;
    }
}

/* A distance from its square (clamped: rounding can make a squared distance slightly negative). */
static inline float distance(float squared) { return sqrtf(fmaxf(squared, 1e-30f)); }

/* The first pass on row n of d (squared distances): it becomes D - rowmin D (D = distance); rowmin[n] the row's
 * minimum, and (rowsum not NULL) rowsum[n], rowsq[n] the row's sum and sum of squares of D - rowmin D (for std(D),
 * eq. 11). */
static inline void prep_row(float *d, int64_t n, int64_t K, float *rowmin, double *rowsum, double *rowsq) {
    float *r = d + n * K, mn = FLT_MAX;
#pragma omp simd reduction(min : mn)
    for (int64_t k = 0; k < K; k++) {
        float v = distance(r[k]);
        r[k] = v;
        mn = fminf(mn, v);
    }
    float s = 0.f, q = 0.f;
#pragma omp simd reduction(+ : s, q)
    for (int64_t k = 0; k < K; k++) {
        float v = r[k] - mn;
        r[k] = v;
        s += v;
        q += v * v;
    }
    rowmin[n] = mn;
    if (rowsum) {
        rowsum[n] = s;
        rowsq[n] = q;
    }
}

/* First pass: d (squared distances, or computed here from x when x is not NULL: x rows x D, ct D x K, xn and cn the
 * squared norms) becomes D - rowmin D (prep_row); rowmin, and the row statistics when rowsum is not NULL. */
void mmq_sk_prep(float *d, int64_t rows, int64_t K, const float *x, const float *ct, const float *xn, const float *cn,
                 int64_t D, float *rowmin, double *rowsum, double *rowsq, int nth) {
#pragma omp parallel num_threads(nth)
    {
        const fpmode_t mode = subnormals_off();
#pragma omp for schedule(static)
        for (int64_t n = 0; n < rows; n++) {
            squared_row(d, n, K, x, ct, xn, cn, D);
            prep_row(d, n, K, rowmin, rowsum, rowsq);
        }
        fpmode_restore(mode);
    }
}

/* The squared distances as a GEMM of the operands xa (rows x L, [-2x, |x|^2, 1]) and ca (K x L, [c, 1, |c|^2]), L =
 * D + 2: d[n, k] = the dot product of xa[n] and ca[k] by fused multiply-adds in the order l = 0 .. L-1 from 0 (tests/
 * quantizers check that order bit for bit). That is how a BLAS micro-kernel sums an inner size this small: equal to
 * torch.mm's products, so to torch.cdist's, where measured (compiled_gemm_equals_torch_mm in
 * benchmarks/results/bench_quantizers.json). Doing it here lets the first pass take each row block while the GEMM
 * has just written it to L2, instead of torch.mm writing the whole matrix out and the pass reading it back: the
 * assignment at N=4096, K=1024, D=64 took 4% / 9% / 14% less time (warm caches / cold / after other BLAS work; paired
 * calls, AMD EPYC, 2 cores).
 * AVX-512 only; elsewhere mmq_sk_gemm_available() is 0 and torch.mm does it.
 * The codes' operand is packed first (mmq_sk_pack_codes): panels of GEMM_PANEL codes, each L x GEMM_PANEL (l-major),
 * the last one zero-padded. A tile of GEMM_MR rows x GEMM_PANEL codes is held in 24 vector registers over the l loop. */
#if defined(__AVX512F__)
#define GEMM_PANEL 64
#define GEMM_MR 6

int mmq_sk_gemm_available(void) { return 1; }

static inline int64_t gemm_panels(int64_t K) { return (K + GEMM_PANEL - 1) / GEMM_PANEL; }

/* bp = the codes' operand [c, 1, |c|^2] (c: K x D, cn: the squared norms) in panels, L = D + 2. */
void mmq_sk_pack_codes(const float *c, const float *cn, int64_t K, int64_t D, float *bp, int nth) {
    const int64_t L = D + 2;
#pragma omp parallel for schedule(static) num_threads(nth)
    for (int64_t p = 0; p < gemm_panels(K); p++) {
        float *panel = bp + p * L * GEMM_PANEL;
        for (int64_t j = 0; j < GEMM_PANEL; j++) {
            const int64_t k = p * GEMM_PANEL + j;
            for (int64_t l = 0; l < D; l++) panel[l * GEMM_PANEL + j] = k < K ? c[k * D + l] : 0.f;
            panel[D * GEMM_PANEL + j] = k < K ? 1.f : 0.f;
            panel[(D + 1) * GEMM_PANEL + j] = k < K ? cn[k] : 0.f;
        }
    }
}

static inline __mmask16 lanes_below(int64_t n) { return n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* c[r, 0:64] (r < rows <= GEMM_MR, row stride ldc; lanes past K masked off) = a[r] . b[:, j] over l. */
static inline __attribute__((always_inline)) void gemm_tile(const float *a, int64_t L, const float *b, float *c,
                                                            int64_t ldc, int rows, const __mmask16 *mask) {
    __m512 acc[GEMM_MR][4];
    for (int r = 0; r < GEMM_MR; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
    for (int64_t l = 0; l < L; l++) {
        __m512 bv[4];
        for (int q = 0; q < 4; q++) bv[q] = _mm512_loadu_ps(b + l * GEMM_PANEL + 16 * q);
        for (int r = 0; r < rows; r++) {
            const __m512 av = _mm512_set1_ps(a[r * L + l]);
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int q = 0; q < 4; q++) _mm512_mask_storeu_ps(c + r * ldc + 16 * q, mask[q], acc[r][q]);
}

/* Rows [r0, r1) of d, panel by panel (a panel of codes stays in L1 while the rows' tiles pass over it). */
static void gemm_rows(const float *xa, int64_t r0, int64_t r1, int64_t L, const float *bp, int64_t K, float *d) {
    for (int64_t p = 0; p < gemm_panels(K); p++) {
        __mmask16 mask[4];
        for (int q = 0; q < 4; q++) mask[q] = lanes_below(K - p * GEMM_PANEL - 16 * q);
        const float *b = bp + p * L * GEMM_PANEL;
        float *c = d + p * GEMM_PANEL;
        int64_t n = r0;
        for (; n + GEMM_MR <= r1; n += GEMM_MR) gemm_tile(xa + n * L, L, b, c + n * K, K, GEMM_MR, mask);
        if (n < r1) gemm_tile(xa + n * L, L, b, c + n * K, K, (int)(r1 - n), mask);
    }
}
#else
int mmq_sk_gemm_available(void) { return 0; }
void mmq_sk_pack_codes(const float *c, const float *cn, int64_t K, int64_t D, float *bp, int nth) { abort(); }
static void gemm_rows(const float *xa, int64_t r0, int64_t r1, int64_t L, const float *bp, int64_t K, float *d) {
    abort();
}
#endif

#define GEMM_ROWS 60 /* rows per block of the fused first pass: 240 KiB of a row block at K = 1024, in L2 */

/* d (rows x K) = the squared distances of rows xa (see gemm_rows); with rowmin not NULL, the first pass too: each
 * thread's rows GEMM_ROWS at a time, each block through prep_row while it is in L2. */
void mmq_sk_gemm_prep(const float *xa, const float *bp, int64_t rows, int64_t K, int64_t L, float *d, float *rowmin,
                      double *rowsum, double *rowsq, int nth) {
#pragma omp parallel num_threads(nth)
    {
        int64_t s, e;
        thread_rows(rows, thread_id(), thread_count(), &s, &e);
        for (int64_t t0 = s; t0 < e; t0 += GEMM_ROWS) {
            const int64_t t1 = t0 + GEMM_ROWS < e ? t0 + GEMM_ROWS : e;
            gemm_rows(xa, t0, t1, L, bp, K, d); /* in the caller's float mode, as torch.mm */
            if (!rowmin) continue;
            const fpmode_t mode = subnormals_off();
            for (int64_t n = t0; n < t1; n++) prep_row(d, n, K, rowmin, rowsum, rowsq);
            fpmode_restore(mode);
        }
    }
}

/* The moments of D over all rows from mmq_sk_prep's per-row statistics (D = t + m, t = D - rowmin D, m = rowmin):
 * out = [count, sum D, sum D^2] with sum D = sum t + K sum m and sum D^2 = sum t^2 + 2 sum m t + K sum m^2. */
void mmq_sk_moments(const float *rowmin, const double *rowsum, const double *rowsq, int64_t rows, int64_t K,
                    double *out) {
    double m = 0.0, m2 = 0.0, t = 0.0, t2 = 0.0, mt = 0.0;
    for (int64_t n = 0; n < rows; n++) {
        const double mn = rowmin[n];
        m += mn;
        m2 += mn * mn;
        t += rowsum[n];
        t2 += rowsq[n];
        mt += mn * rowsum[n];
    }
    out[0] = (double)rows * (double)K;
    out[1] = t + (double)K * m;
    out[2] = t2 + 2.0 * mt + (double)K * m2;
}

/* A recomputed block: d (squared distances, or from x as in mmq_sk_prep) becomes
 * M = exp(scale * (sqrt(max(d, 1e-30)) - rowmin)). */
void mmq_sk_kernel(float *d, int64_t rows, int64_t K, const float *x, const float *ct, const float *xn,
                   const float *cn, int64_t D, const float *rowmin, float scale, int nth) {
#pragma omp parallel num_threads(nth)
    {
        const fpmode_t mode = subnormals_off();
#pragma omp for schedule(static)
        for (int64_t n = 0; n < rows; n++) {
            float *r = squared_row(d, n, K, x, ct, xn, cn, D);
            float mn = rowmin[n];
#pragma omp simd
            for (int64_t k = 0; k < K; k++) r[k] = distance(r[k]) - mn;
            exp_scaled(r, K, scale); /* as the kept blocks: prep, then the second pass */
        }
        fpmode_restore(mode);
    }
}

/* The thread-local column sums: float32 over FLUSH_ROWS rows, then into float64; combined in thread order. */
typedef struct {
    float *part;
    double *acc;
} cols_t;

static void cols_flush(cols_t *t, int64_t K) {
    for (int64_t k = 0; k < K; k++) {
        t->acc[k] += t->part[k];
        t->part[k] = 0.f;
    }
}

/* The token update of a Sinkhorn iteration: a / (N a r + N 1e-8), each token receiving mass 1/N. */
static inline float token_update(float an, float dot, float n_glob) { return an / (n_glob * an * dot + n_glob * 1e-8f); }

/* col = the threads' float64 column sums (one row of K per thread) added in thread order. */
static void cols_combine(const double *acc, int nth, int64_t K, double *col) {
    for (int64_t k = 0; k < K; k++) col[k] = 0.0; /* col is written, not added to */
    for (int i = 0; i < nth; i++)
        for (int64_t k = 0; k < K; k++) col[k] += acc[(size_t)i * K + k];
}

/* Second pass (b NULL): m = exp(scale * m) in place when do_exp (M from D - rowmin D), and the column sums of
 * diag(a) M. Iteration pass (b not NULL): r = M b, a = token_update(a, r), and the column sums of diag(a) M.
 * One thread's rows [s, e), its column sums added to t->acc.
 * Rows go four at a time: four independent dot products (one would wait on each add's latency) and one read and
 * write of the column partial sums per four rows; the last rows of a thread's share one at a time. */
#define GROUP 4
static void sweep_rows(float *m, int64_t s, int64_t e, int64_t K, int do_exp, float scale, const float *b, float *a,
                       float n_glob, cols_t *t) {
    float *p = t->part;
    int count = 0;
    int64_t n = s;
    for (; n + GROUP <= e; n += GROUP) {
        float *r0 = m + n * K, *r1 = r0 + K, *r2 = r1 + K, *r3 = r2 + K;
        float a0 = a[n], a1 = a[n + 1], a2 = a[n + 2], a3 = a[n + 3];
        if (do_exp) exp_scaled(r0, 4 * K, scale);
        if (b) {
            float d0 = 0.f, d1 = 0.f, d2 = 0.f, d3 = 0.f;
#pragma omp simd reduction(+ : d0, d1, d2, d3)
            for (int64_t k = 0; k < K; k++) {
                const float bk = b[k];
                d0 += r0[k] * bk;
                d1 += r1[k] * bk;
                d2 += r2[k] * bk;
                d3 += r3[k] * bk;
            }
            a[n] = a0 = token_update(a0, d0, n_glob);
            a[n + 1] = a1 = token_update(a1, d1, n_glob);
            a[n + 2] = a2 = token_update(a2, d2, n_glob);
            a[n + 3] = a3 = token_update(a3, d3, n_glob);
        }
#pragma omp simd
        for (int64_t k = 0; k < K; k++) p[k] += (a0 * r0[k] + a1 * r1[k]) + (a2 * r2[k] + a3 * r3[k]);
        if ((count += GROUP) >= FLUSH_ROWS) {
            cols_flush(t, K);
            count = 0;
        }
    }
    for (; n < e; n++) {
        float *r = m + n * K;
        float an = a[n];
        if (do_exp) exp_scaled(r, K, scale);
        if (b) {
            float dot = 0.f;
#pragma omp simd reduction(+ : dot)
            for (int64_t k = 0; k < K; k++) dot += r[k] * b[k];
            a[n] = an = token_update(an, dot, n_glob);
        }
#pragma omp simd
        for (int64_t k = 0; k < K; k++) p[k] += an * r[k];
    }
    cols_flush(t, K);
}

/* Per-thread column sums for a parallel region of up to nth threads: acc zeroed (float64), part zeroed (float32). */
typedef struct {
    double *acc;
    float *part;
} cols_scratch_t;

static int cols_scratch(cols_scratch_t *c, int nth, int64_t K) {
    c->acc = (double *)calloc((size_t)nth * (size_t)K, sizeof(double));
    c->part = (float *)calloc((size_t)nth * (size_t)K, sizeof(float));
    return c->acc && c->part;
}

static void cols_scratch_free(cols_scratch_t *c) {
    free(c->acc);
    free(c->part);
}

/* Inside a parallel region: the calling thread's rows [s, e) and its column sums in c. */
static inline cols_t thread_share(const cols_scratch_t *c, int64_t rows, int64_t K, int64_t *s, int64_t *e) {
    const int tid = thread_id();
    thread_rows(rows, tid, thread_count(), s, e);
    cols_t t = {c->part + (size_t)tid * K, c->acc + (size_t)tid * K};
    return t;
}

static void sweep(float *m, int64_t rows, int64_t K, int do_exp, float scale, const float *b, float *a, float n_glob,
                  double *col, int nth) {
    cols_scratch_t c;
    if (!cols_scratch(&c, nth, K)) abort();
#pragma omp parallel num_threads(nth)
    {
        const fpmode_t mode = subnormals_off();
        int64_t s, e;
        cols_t t = thread_share(&c, rows, K, &s, &e);
        sweep_rows(m, s, e, K, do_exp, scale, b, a, n_glob, &t);
        fpmode_restore(mode);
    }
    cols_combine(c.acc, nth, K, col);
    cols_scratch_free(&c);
}

void mmq_sk_exp_cols(float *m, int64_t rows, int64_t K, int do_exp, float scale, const float *a, double *col,
                     int nth) {
    sweep(m, rows, K, do_exp, scale, NULL, (float *)a, 0.f, col, nth);
}

void mmq_sk_iterate(const float *m, int64_t rows, int64_t K, const float *b, float *a, float n_glob, double *col,
                    int nth) {
    sweep((float *)m, rows, K, 0, 0.f, b, a, n_glob, col, nth);
}

/* The code update of a Sinkhorn iteration (each code receives mass 1/K), in float64 as the PyTorch loop does it:
 * b = b / (b col + 1e-8) / K, with b32 its float32 copy (what the sweeps read). Each operation rounded on its own
 * (volatile: no fused multiply-add or merged divisions under -ffast-math), so b is PyTorch's to the bit. */
static void update_b(double *b, const double *col, float *b32, int64_t K) {
    for (int64_t k = 0; k < K; k++) {
        volatile double prod = b[k] * col[k];
        volatile double ratio = b[k] / (prod + 1e-8);
        b[k] = ratio / (double)K;
        b32[k] = (float)b[k];
    }
}

void mmq_sk_update_b(double *b, const double *col, float *b32, int64_t K) { update_b(b, col, b32, K); }

/* Last pass: out[n] = argmax_k m[n, k] b[k], the first index on ties (as torch.argmax). One sweep: each of LANES
 * lanes keeps its own maximum and the first index where it occurs (a strict >, so a later equal value does not
 * replace it), then the lanes are combined: the largest value, and among lanes holding it the smallest index. */
#define LANES 16
static inline int64_t argmax_row(const float *r, int64_t K, const float *b) {
    float lane_max[LANES];
    int32_t lane_at[LANES];
    for (int l = 0; l < LANES; l++) {
        lane_max[l] = -FLT_MAX;
        lane_at[l] = INT32_MAX;
    }
    int64_t k = 0;
    for (; k + LANES <= K; k += LANES) {
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            const float v = r[k + l] * b[k + l];
            const int better = v > lane_max[l];
            lane_max[l] = better ? v : lane_max[l];
            lane_at[l] = better ? (int32_t)(k + l) : lane_at[l];
        }
    }
    float best = -FLT_MAX;
    int64_t first = K;
    for (int l = 0; l < LANES; l++) {
        if (lane_max[l] > best || (lane_max[l] == best && lane_at[l] < first)) {
            best = lane_max[l];
            first = lane_at[l];
        }
    }
    for (; k < K; k++) { /* the tail: later indices than every lane's */
        const float v = r[k] * b[k];
        if (v > best) {
            best = v;
            first = k;
        }
    }
    return first < K ? first : 0;
}

void mmq_sk_argmax(const float *m, int64_t rows, int64_t K, const float *b, int64_t *out, int nth) {
#pragma omp parallel num_threads(nth)
    {
        const fpmode_t mode = subnormals_off();
#pragma omp for schedule(static)
        for (int64_t n = 0; n < rows; n++) out[n] = argmax_row(m + n * K, K, b);
        fpmode_restore(mode);
    }
}

/* Every pass after the first, over a matrix m that holds all `rows` rows, in one call and one parallel region (the
 * threads meet at barriers between the passes instead of starting a region per pass from Python): the second pass
 * (M = exp(scale m) in place, col = M^T a), the division of a and col by the total mass (the reference's
 * "Q /= sum(Q)"), then n_iters code updates of b (from ones) with an iteration pass between each two, and
 * out = argmax_k M[n, k] b_k. The operations of the per-pass functions, in their order and on the same rows per
 * thread; only the total is summed here rather than by PyTorch (float64, so it may differ in its last bit). b (float64)
 * and b32 (its float32 copy) receive the last code factors; col is scratch. */
void mmq_sk_solve(float *m, int64_t rows, int64_t K, float scale, float *a, int n_iters, float n_glob, double *col,
                  double *b, float *b32, int64_t *out, int nth) {
    cols_scratch_t c;
    if (!cols_scratch(&c, nth, K)) abort();
    for (int64_t k = 0; k < K; k++) b[k] = 1.0;
    volatile float total32 = 1.f;
#pragma omp parallel num_threads(nth)
    {
        const fpmode_t mode = subnormals_off();
        int64_t s, e;
        cols_t t = thread_share(&c, rows, K, &s, &e);
        for (int it = 0; it < n_iters; it++) {
            if (it > 0)
                for (int64_t k = 0; k < K; k++) t.acc[k] = 0.0;
            sweep_rows(m, s, e, K, it == 0, scale, it == 0 ? NULL : b32, a, n_glob, &t);
#pragma omp barrier
#pragma omp single
            {
                cols_combine(c.acc, nth, K, col);
                if (it == 0) {
                    double total = 0.0;
                    for (int64_t k = 0; k < K; k++) total += col[k];
                    volatile double total64 = total + 1e-8;
                    for (int64_t k = 0; k < K; k++) col[k] = col[k] / total64;
                    total32 = (float)total64;
                }
                update_b(b, col, b32, K);
            } /* the single's barrier: b32 and total32 are seen by every thread */
            if (it == 0) /* each thread its own rows, which only it reads in the next pass */
                for (int64_t n = s; n < e; n++) a[n] = a[n] / total32;
        }
#pragma omp for schedule(static)
        for (int64_t n = 0; n < rows; n++) out[n] = argmax_row(m + n * K, K, b32);
        fpmode_restore(mode);
    }
    cols_scratch_free(&c);
}
