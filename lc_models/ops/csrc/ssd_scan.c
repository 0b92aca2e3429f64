/* Mamba-2 (SSD) recurrence, token by token, with the state held in registers.

   For batch row b, head h (group g = h / (nheads / ngroups)), head channel p, state index n:
     S[p,n]   = decay[b,t,h] * S[p,n] + (dt[b,t,h] * x[b,t,h,p]) * B[b,t,g,n]
     y[b,t,h,p] = sum_n C[b,t,g,n] * S[p,n] + D[h] * x[b,t,h,p]
   decay = exp(dt * A) and dt are (batch, L, nheads), contiguous; x is (batch, L, nheads, P)
   and B, C are (batch, L, ngroups, N), each with any strides (in elements, in st[12] =
   {x: b,t,h,p | B: b,t,g,n | C: b,t,g,n}) except that x's p stride must be 1. y is
   (batch, L, nheads, P) contiguous; h (batch, nheads, P, N) contiguous holds the initial state
   on entry and the final state on return. D may be NULL. All float32.

   This is the oracle's loop (lc_models.ops.ssd.ssd_ref), reordered: a task is one (b, h) and
   a tile of PV vectors of p; for each tile of NT state indices the kernel keeps that
   PV x NT block of S in registers and runs every token through it, adding its part of
   y[t] (the first tile also adds D x). Per token and state element: a multiply and two fused
   multiply-adds, no exp, nothing but x, B, C and y moving through memory. */
#include <stdint.h>

#if defined(__AVX512F__)
#define VL 16
#else
#define VL 8
#endif
#define PV 2 /* vectors of p per tile */
#define NT 8 /* state indices per tile */

typedef float vec __attribute__((vector_size(VL * 4)));
typedef float uvec __attribute__((vector_size(VL * 4), aligned(4))); /* unaligned access */

static inline vec splat(float v) { return (vec){0} + v; }

/* One (b, h): tokens [0, L), p in [p0, p0 + PV * VL), every n. Full vector tiles only. */
static inline __attribute__((always_inline)) void
tile_pass(const float *x, const float *dt, const float *decay, const float *B, const float *C,
          const float *D, float *S, float *y, const int64_t *st, int64_t b, int64_t h,
          int64_t g, int64_t p0, int64_t L, int64_t H, int64_t P, int64_t N) {
  const float *xb = x + b * st[0] + h * st[2] + p0;
  const float *Bb = B + b * st[4] + g * st[6], *Cb = C + b * st[8] + g * st[10];
  const float *dtb = dt + b * L * H + h, *ab = decay + b * L * H + h;
  float *yb = y + (b * L * H + h) * P + p0;
  const float d = D ? D[h] : 0.f;
  int64_t n0 = 0;
  for (; n0 + NT <= N; n0 += NT) {
    vec s[NT][PV];
    for (int j = 0; j < NT; ++j)
      for (int v = 0; v < PV; ++v)
        for (int l = 0; l < VL; ++l) s[j][v][l] = S[(p0 + v * VL + l) * N + n0 + j];
    for (int64_t t = 0; t < L; ++t) {
      const vec a = splat(ab[t * H]), dtt = splat(dtb[t * H]);
      const float *Bt = Bb + t * st[5] + n0 * st[7], *Ct = Cb + t * st[9] + n0 * st[11];
      vec u[PV], acc[PV];
      for (int v = 0; v < PV; ++v) {
        const vec xv = *(const uvec *)(xb + t * st[1] + v * VL);
        u[v] = dtt * xv;
        acc[v] = n0 == 0 ? splat(d) * xv : *(uvec *)(yb + t * H * P + v * VL);
      }
      for (int j = 0; j < NT; ++j) {
        const vec bj = splat(Bt[j * st[7]]), cj = splat(Ct[j * st[11]]);
        for (int v = 0; v < PV; ++v) {
          s[j][v] = s[j][v] * a + u[v] * bj;
          acc[v] += s[j][v] * cj;
        }
      }
      for (int v = 0; v < PV; ++v) *(uvec *)(yb + t * H * P + v * VL) = acc[v];
    }
    for (int j = 0; j < NT; ++j)
      for (int v = 0; v < PV; ++v)
        for (int l = 0; l < VL; ++l) S[(p0 + v * VL + l) * N + n0 + j] = s[j][v][l];
  }
  for (; n0 < N; ++n0) { /* the last N % NT state indices, one at a time */
    vec s[PV];
    for (int v = 0; v < PV; ++v)
      for (int l = 0; l < VL; ++l) s[v][l] = S[(p0 + v * VL + l) * N + n0];
    for (int64_t t = 0; t < L; ++t) {
      const vec a = splat(ab[t * H]), dtt = splat(dtb[t * H]);
      const vec bj = splat(Bb[t * st[5] + n0 * st[7]]), cj = splat(Cb[t * st[9] + n0 * st[11]]);
      for (int v = 0; v < PV; ++v) {
        const vec xv = *(const uvec *)(xb + t * st[1] + v * VL);
        vec acc = n0 == 0 ? splat(d) * xv : *(uvec *)(yb + t * H * P + v * VL);
        s[v] = s[v] * a + (dtt * xv) * bj;
        acc += s[v] * cj;
        *(uvec *)(yb + t * H * P + v * VL) = acc;
      }
    }
    for (int v = 0; v < PV; ++v)
      for (int l = 0; l < VL; ++l) S[(p0 + v * VL + l) * N + n0] = s[v][l];
  }
}

/* The channels p >= p0 that do not fill a tile, one at a time (scalar). */
static void scalar_pass(const float *x, const float *dt, const float *decay, const float *B,
                        const float *C, const float *D, float *S, float *y, const int64_t *st,
                        int64_t b, int64_t h, int64_t g, int64_t p0, int64_t L, int64_t H,
                        int64_t P, int64_t N) {
  for (int64_t p = p0; p < P; ++p) {
    float *s = S + p * N;
    for (int64_t t = 0; t < L; ++t) {
      const int64_t bt = (b * L + t) * H + h;
      const float xv = x[b * st[0] + t * st[1] + h * st[2] + p * st[3]];
      const float u = dt[bt] * xv, a = decay[bt];
      const float *Bt = B + b * st[4] + t * st[5] + g * st[6];
      const float *Ct = C + b * st[8] + t * st[9] + g * st[10];
      float acc = D ? D[h] * xv : 0.f;
      for (int64_t n = 0; n < N; ++n) {
        s[n] = s[n] * a + u * Bt[n * st[7]];
        acc += s[n] * Ct[n * st[11]];
      }
      y[bt * P + p] = acc;
    }
  }
}

void lc_ssd_scan(const float *x, const float *dt, const float *decay, const float *B,
                 const float *C, const float *D, float *h, float *y, const int64_t *st,
                 int64_t batch, int64_t L, int64_t H, int64_t P, int64_t G, int64_t N,
                 int32_t threads) {
  const int64_t tiles = P / (PV * VL) + (P % (PV * VL) != 0);  /* the last may be partial */
  const int64_t tasks = batch * H * tiles;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t k = 0; k < tasks; ++k) {
    const int64_t b = k / (H * tiles), hh = (k / tiles) % H, p0 = (k % tiles) * PV * VL;
    const int64_t g = hh / (H / G);
    float *S = h + (b * H + hh) * P * N;
    if (p0 + PV * VL <= P)
      tile_pass(x, dt, decay, B, C, D, S, y, st, b, hh, g, p0, L, H, P, N);
    else
      scalar_pass(x, dt, decay, B, C, D, S, y, st, b, hh, g, p0, L, H, P, N);
  }
}
