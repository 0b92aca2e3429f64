/* RWKV-6 WKV recurrence, token by token, with the state held in registers.

   For batch row b, head h, key channel i and value channel j (N of each):
     o[b,t,h,j] = sum_i r[i] * S[i,j] + (sum_i r[i] * u[h,i] * k[i]) * v[j]
     S[i,j]     = w[b,t,h,i] * S[i,j] + k[i] * v[j]
   with r, k, v, w = exp(log_w) of token t. r, k, v, w are (batch, L, H, N) with strides st[0..2]
   for b, t, h (in elements, shared by the four) and a unit channel stride; u is (H, N); h
   (batch, H, N, N) contiguous holds the initial state on entry and the final one on return;
   o (batch, L, H, N) contiguous. All float32.

   This is the oracle's loop (lc_models.ops.wkv6.wkv6_ref), reordered: a task is one (b, h)
   and a tile of PV vectors of value channels; for each tile of NT key channels the kernel
   keeps that NT x (PV * VL) block of S in registers and runs every token through it, adding
   its part of o[t] (the first tile also the bonus term). Per token and state element: a
   fused multiply-add into o and a multiply and a fused multiply-add into S. */
#include <stdint.h>

#if defined(__AVX512F__)
#define VL 16
#else
#define VL 8
#endif
#define PV 2 /* vectors of value channels per tile */
#define NT 8 /* key channels per tile */

typedef float vec __attribute__((vector_size(VL * 4)));
typedef float uvec __attribute__((vector_size(VL * 4), aligned(4))); /* unaligned access */

static inline vec splat(float v) { return (vec){0} + v; }

/* sum_i r[i] u[i] k[i] for one token of one head */
static inline float bonus(const float *r, const float *k, const float *u, int64_t N) {
  float s = 0.f;
  for (int64_t i = 0; i < N; ++i) s += r[i] * u[i] * k[i];
  return s;
}

static void tile_pass(const float *r, const float *k, const float *v, const float *w,
                      const float *u, float *S, float *o, const int64_t *st, int64_t b,
                      int64_t h, int64_t j0, int64_t L, int64_t H, int64_t N) {
  const int64_t base = b * st[0] + h * st[2];
  const float *uh = u + h * N;
  float *ob = o + (b * L * H + h) * N + j0;
  int64_t i0 = 0;
  for (; i0 + NT <= N; i0 += NT) {
    vec s[NT][PV];
    for (int i = 0; i < NT; ++i)
      for (int p = 0; p < PV; ++p) s[i][p] = *(uvec *)(S + (i0 + i) * N + j0 + p * VL);
    for (int64_t t = 0; t < L; ++t) {
      const int64_t at = base + t * st[1];
      const float *rt = r + at, *kt = k + at, *wt = w + at;
      float *ot = ob + t * H * N;
      vec vv[PV], acc[PV];
      const vec first = i0 == 0 ? splat(bonus(rt, kt, uh, N)) : splat(0.f);
      for (int p = 0; p < PV; ++p) {
        vv[p] = *(const uvec *)(v + at + j0 + p * VL);
        acc[p] = i0 == 0 ? first * vv[p] : *(uvec *)(ot + p * VL);
      }
      for (int i = 0; i < NT; ++i) {
        const vec ri = splat(rt[i0 + i]), ki = splat(kt[i0 + i]), wi = splat(wt[i0 + i]);
        for (int p = 0; p < PV; ++p) {
          acc[p] += ri * s[i][p];
          s[i][p] = wi * s[i][p] + ki * vv[p];
        }
      }
      for (int p = 0; p < PV; ++p) *(uvec *)(ot + p * VL) = acc[p];
    }
    for (int i = 0; i < NT; ++i)
      for (int p = 0; p < PV; ++p) *(uvec *)(S + (i0 + i) * N + j0 + p * VL) = s[i][p];
  }
  for (; i0 < N; ++i0) { /* the last N % NT key channels, one at a time */
    vec s[PV];
    for (int p = 0; p < PV; ++p) s[p] = *(uvec *)(S + i0 * N + j0 + p * VL);
    for (int64_t t = 0; t < L; ++t) {
      const int64_t at = base + t * st[1];
      float *ot = ob + t * H * N;
      const vec ri = splat(r[at + i0]), ki = splat(k[at + i0]), wi = splat(w[at + i0]);
      const vec first = i0 == 0 ? splat(bonus(r + at, k + at, uh, N)) : splat(0.f);
      for (int p = 0; p < PV; ++p) {
        const vec vv = *(const uvec *)(v + at + j0 + p * VL);
        vec acc = i0 == 0 ? first * vv : *(uvec *)(ot + p * VL);
        acc += ri * s[p];
        s[p] = wi * s[p] + ki * vv;
        *(uvec *)(ot + p * VL) = acc;
      }
    }
    for (int p = 0; p < PV; ++p) *(uvec *)(S + i0 * N + j0 + p * VL) = s[p];
  }
}

/* The value channels j >= j0 that do not fill a tile, one at a time (scalar). */
static void scalar_pass(const float *r, const float *k, const float *v, const float *w,
                        const float *u, float *S, float *o, const int64_t *st, int64_t b,
                        int64_t h, int64_t j0, int64_t L, int64_t H, int64_t N) {
  const int64_t base = b * st[0] + h * st[2];
  for (int64_t j = j0; j < N; ++j) {
    for (int64_t t = 0; t < L; ++t) {
      const int64_t at = base + t * st[1];
      const float vj = v[at + j];
      float acc = bonus(r + at, k + at, u + h * N, N) * vj;
      for (int64_t i = 0; i < N; ++i) {
        acc += r[at + i] * S[i * N + j];
        S[i * N + j] = w[at + i] * S[i * N + j] + k[at + i] * vj;
      }
      o[((b * L + t) * H + h) * N + j] = acc;
    }
  }
}

void lc_wkv6_scan(const float *r, const float *k, const float *v, const float *w,
                  const float *u, float *h, float *o, const int64_t *st, int64_t batch,
                  int64_t L, int64_t H, int64_t N, int32_t threads) {
  const int64_t tiles = N / (PV * VL) + (N % (PV * VL) != 0); /* the last may be partial */
  const int64_t tasks = batch * H * tiles;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t q = 0; q < tasks; ++q) {
    const int64_t b = q / (H * tiles), hh = (q / tiles) % H, j0 = (q % tiles) * PV * VL;
    float *S = h + (b * H + hh) * N * N;
    if (j0 + PV * VL <= N)
      tile_pass(r, k, v, w, u, S, o, st, b, hh, j0, L, H, N);
    else
      scalar_pass(r, k, v, w, u, S, o, st, b, hh, j0, L, H, N);
  }
}
