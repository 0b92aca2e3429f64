/* RWKV-7 WKV recurrence (the generalized delta rule), token by token.

   For batch row b, head h, value channel i and key channel j (N of each), token t:
     sa[i]  = sum_j S[i,j] * a[j]
     S[i,j] = w[j] * S[i,j] + sa[i] * b[j] + v[i] * k[j]
     o[i]   = sum_j S[i,j] * r[j]            (the updated S)
   r, w (the decay itself, not its log), k, v, a, b are (batch, L, H, N) with strides st[0..2]
   for b, t, h (in elements, shared by the six) and a unit channel stride; h (batch, H, N, N)
   contiguous, S[i,j] at i * N + j, holds the initial state on entry and the final one on
   return; o (batch, L, H, N) contiguous. All float32.

   This is the oracle's loop (lc_models.ops.wkv7.wkv7_ref), reordered: a task is one (b, h)
   and a tile of PV vectors of value channels, which sit in the vector lanes, so both sums
   over key channels are fused multiply-adds with a broadcast key scalar and no horizontal
   sum. The tile's N x (PV * VL) block of S stays in a local array (L1) for every token: one
   pass over the key channels for sa, one for the update and o. Rows that do not fill a tile
   run the same loop one value channel at a time. */
#include <stdint.h>

#if defined(__AVX512F__)
#define VL 16
#else
#define VL 8
#endif
#define PV 2        /* vectors of value channels per tile */
#define MAX_N 256   /* largest head size (RWKV-7 uses 64); lc_wkv7_max_n() tells Python */

typedef float vec __attribute__((vector_size(VL * 4)));
typedef float uvec __attribute__((vector_size(VL * 4), aligned(4))); /* unaligned access */

static inline vec splat(float v) { return (vec){0} + v; }

static void tile_pass(const float *r, const float *w, const float *k, const float *v,
                      const float *a, const float *bb, float *S, float *o, const int64_t *st,
                      int64_t b, int64_t h, int64_t i0, int64_t L, int64_t H, int64_t N) {
  const int64_t base = b * st[0] + h * st[2];
  float *ob = o + (b * L * H + h) * N + i0;
  vec s[MAX_N][PV]; /* s[j][p][lane] = S[i0 + p * VL + lane, j] */
  for (int64_t j = 0; j < N; ++j)
    for (int p = 0; p < PV; ++p)
      for (int l = 0; l < VL; ++l) s[j][p][l] = S[(i0 + p * VL + l) * N + j];
  for (int64_t t = 0; t < L; ++t) {
    const int64_t at = base + t * st[1];
    const float *rt = r + at, *wt = w + at, *kt = k + at, *aa = a + at, *bt = bb + at;
    vec vv[PV], sa[PV], acc[PV];
    for (int p = 0; p < PV; ++p) {
      vv[p] = *(const uvec *)(v + at + i0 + p * VL);
      sa[p] = splat(0.f);
      acc[p] = splat(0.f);
    }
    for (int64_t j = 0; j < N; ++j) {
      const vec aj = splat(aa[j]);
      for (int p = 0; p < PV; ++p) sa[p] += s[j][p] * aj;
    }
    for (int64_t j = 0; j < N; ++j) {
      const vec wj = splat(wt[j]), bj = splat(bt[j]), kj = splat(kt[j]), rj = splat(rt[j]);
      for (int p = 0; p < PV; ++p) {
        const vec x = s[j][p] * wj + sa[p] * bj + vv[p] * kj;
        s[j][p] = x;
        acc[p] += x * rj;
      }
    }
    float *ot = ob + t * H * N;
    for (int p = 0; p < PV; ++p) *(uvec *)(ot + p * VL) = acc[p];
  }
  for (int64_t j = 0; j < N; ++j)
    for (int p = 0; p < PV; ++p)
      for (int l = 0; l < VL; ++l) S[(i0 + p * VL + l) * N + j] = s[j][p][l];
}

/* Value channels i >= i0 that do not fill a tile, one at a time: row i of S is contiguous. */
static void row_pass(const float *r, const float *w, const float *k, const float *v,
                     const float *a, const float *bb, float *S, float *o, const int64_t *st,
                     int64_t b, int64_t h, int64_t i0, int64_t L, int64_t H, int64_t N) {
  const int64_t base = b * st[0] + h * st[2];
  for (int64_t i = i0; i < N; ++i) {
    float *row = S + i * N;
    for (int64_t t = 0; t < L; ++t) {
      const int64_t at = base + t * st[1];
      const float *rt = r + at, *wt = w + at, *kt = k + at, *aa = a + at, *bt = bb + at;
      const float vi = v[at + i];
      float sa = 0.f, acc = 0.f;
      for (int64_t j = 0; j < N; ++j) sa += row[j] * aa[j];
      for (int64_t j = 0; j < N; ++j) {
        row[j] = row[j] * wt[j] + sa * bt[j] + vi * kt[j];
        acc += row[j] * rt[j];
      }
      o[((b * L + t) * H + h) * N + i] = acc;
    }
  }
}

int lc_wkv7_max_n(void) { return MAX_N; }

void lc_wkv7_scan(const float *r, const float *w, const float *k, const float *v,
                  const float *a, const float *b, float *h, float *o, const int64_t *st,
                  int64_t batch, int64_t L, int64_t H, int64_t N, int32_t threads) {
  const int64_t tiles = N / (PV * VL) + (N % (PV * VL) != 0); /* the last may be partial */
  const int64_t tasks = batch * H * tiles;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t q = 0; q < tasks; ++q) {
    const int64_t bi = q / (H * tiles), hh = (q / tiles) % H, i0 = (q % tiles) * PV * VL;
    float *S = h + (bi * H + hh) * N * N;
    if (i0 + PV * VL <= N)
      tile_pass(r, w, k, v, a, b, S, o, st, bi, hh, i0, L, H, N);
    else
      row_pass(r, w, k, v, a, b, S, o, st, bi, hh, i0, L, H, N);
  }
}
