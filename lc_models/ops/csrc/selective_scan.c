/* Selective-scan recurrence (Mamba-1), with its discretisation and output gate fused in.

   For batch row b and channel c (d = d_inner), token by token:
     dt      = softplus?(delta[b,c,t] + bias[c])
     h[c,j]  = exp(dt * A[c,j]) * h[c,j] + dt * u[b,c,t] * B[b,j,t]
     y[b,c,t] = (sum_j C[b,j,t] * h[c,j] + D[c] * u[b,c,t]) * silu(z[b,c,t])
   bias, D and z may be NULL (left out). All tensors are float32. u, delta, z, y are
   (batch, d, L) and B, C are (batch, n, L), each with any strides, given in elements in
   st[18] = {u: b,c,t | delta: b,c,t | z: b,c,t | B: b,j,t | C: b,j,t | y: b,c,t}, so callers
   pass transposed views (channels last) without copies. A is (d, n) and h (batch, d, n),
   both contiguous; h holds the initial state on entry and the final state on return.

   Work is split in tasks of LANES adjacent channels of one batch row (16 with AVX-512, else
   8): task k covers batch k / blocks, channels (k % blocks) * LANES onwards. Each task runs
   its tokens in order with its state in L1, LANES channels per vector operation (the decay
   through lc_vexp inline, no calls); channels adjacent in memory load as one vector.
   Disjoint task ranges may run concurrently; lc_selective_scan_omp runs all tasks on an
   OpenMP team (torch's own, when libgomp is shared). n <= LC_SCAN_MAX_STATE. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define LC_SCAN_MAX_STATE 256
#if defined(__AVX512F__)
#define LANES 16
#else
#define LANES 8
#endif

typedef float vec __attribute__((vector_size(LANES * 4)));
typedef int32_t ivec __attribute__((vector_size(LANES * 4)));

static inline vec splat(float v) { return (vec){0} + v; }

/* exp(x) for x <= 0, LANES at a time: 2^(x log2 e) split into an integer k (rounded to
   nearest) and f in [-1/2, 1/2], 2^f by its Taylor polynomial, 2^k put into the exponent
   bits; 0 below -87 so that no subnormal ever enters the state. The error of x log2 e's
   rounding grows with |x|, but exp(x) shrinks faster: below 3e-8 absolute. `degree` is 6
   (about 2e-7 relative; the scan's decay, where it spends most of its time: 13 vector
   operations, no calls) or 7 (truncation below 1e-8, about as close as float32 rounding
   allows; the once-per-token softplus and gate). Callers pass a constant: it folds away. */
static inline vec lc_vexp_degree(vec x, int degree) {
  const ivec under = x < splat(-87.f);
  const vec y = x * splat(1.44269504088896341f);
  const ivec k = __builtin_convertvector(y - splat(0.5f), ivec); /* y <= 0: rounds */
  const vec f = y - __builtin_convertvector(k, vec);
  const vec top = degree > 6 ? splat(0.000154035304f) + f * splat(1.52527338e-05f)
                             : splat(0.000154035304f);
  const vec p = splat(1.f) + f * (splat(0.693147182f) + f * (splat(0.240226507f) +
                f * (splat(0.0555041087f) + f * (splat(0.00961812911f) +
                f * (splat(0.00133335581f) + f * top)))));
  return (vec)((ivec)(p * (vec)((k + 127) << 23)) & ~under);
}

static inline vec lc_vexp(vec x) { return lc_vexp_degree(x, 6); }
static inline vec lc_vexp_fine(vec x) { return lc_vexp_degree(x, 7); }

/* where mask: a, else b (mask lanes all ones or all zeros, as vector compares give) */
static inline vec blend(ivec mask, vec a, vec b) {
  return (vec)(((ivec)a & mask) | ((ivec)b & ~mask));
}

static inline vec vabs(vec x) { return (vec)((ivec)x & 0x7fffffff); }

/* softplus(x) = max(x, 0) + log(1 + e), e = exp(-|x|) in [0, 1], LANES at a time, to about
   2e-7 relative: log(1 + e) = 2 atanh(s), s = e / (2 + e) <= 1/3, by its odd series to s^13
   (the next term is below 2e-8 of the sum). Once per token and channel. */
static inline vec lc_vsoftplus(vec x) {
  const vec e = lc_vexp_fine(-vabs(x));
  const vec s = e / (splat(2.f) + e), s2 = s * s;
  const vec series = splat(1.f) + s2 * (splat(1.f / 3) + s2 * (splat(1.f / 5) + s2 *
                     (splat(1.f / 7) + s2 * (splat(1.f / 9) + s2 * (splat(1.f / 11) +
                     s2 * splat(1.f / 13))))));
  return blend(x > splat(0.f), x, splat(0.f)) + splat(2.f) * s * series;
}

/* silu(z) = z sigmoid(z), LANES at a time: with e = exp(-|z|), sigmoid is 1 / (1 + e) for
   z >= 0 and e / (1 + e) below. */
static inline vec lc_vsilu(vec z) {
  const vec e = lc_vexp_fine(-vabs(z));
  const vec r = splat(1.f) / (splat(1.f) + e);
  return z * blend(z >= splat(0.f), r, e * r);
}

int lc_scan_max_state(void) { return LC_SCAN_MAX_STATE; }

int64_t lc_scan_tasks(int64_t batch, int64_t d) { return batch * ((d + LANES - 1) / LANES); }

/* LANES values of one token: a vector load where the channels are adjacent and all present,
   else one by one from their offsets. */
static inline vec lanes_at(const float *base, const int64_t *off, int64_t t, int64_t stride_t,
                           int adjacent) {
  vec v;
  if (adjacent) {
    memcpy(&v, base + off[0] + t * stride_t, sizeof v);
  } else {
    for (int l = 0; l < LANES; ++l) v[l] = base[off[l] + t * stride_t];
  }
  return v;
}

void lc_selective_scan(const float *u, const float *delta, const float *z, const float *B,
                       const float *C, const float *A, const float *D, const float *bias,
                       float *h, float *y, const int64_t *st, int64_t d, int64_t L, int64_t n,
                       int32_t softplus, int64_t task0, int64_t task1) {
  const int64_t blocks = (d + LANES - 1) / LANES;
  vec state[LC_SCAN_MAX_STATE], a[LC_SCAN_MAX_STATE];
  for (int64_t task = task0; task < task1; ++task) {
    const int64_t b = task / blocks, c0 = (task % blocks) * LANES;
    const int64_t width = d - c0 < LANES ? d - c0 : LANES;
    int64_t ch[LANES], uo[LANES], dto[LANES], zo[LANES], yo[LANES];
    vec dl, bl;
    for (int l = 0; l < LANES; ++l) {  /* spare lanes repeat the last channel, never stored */
      ch[l] = c0 + (l < width ? l : width - 1);
      uo[l] = b * st[0] + ch[l] * st[1];
      dto[l] = b * st[3] + ch[l] * st[4];
      zo[l] = b * st[6] + ch[l] * st[7];
      yo[l] = b * st[15] + ch[l] * st[16];
      dl[l] = D ? D[ch[l]] : 0.f;
      bl[l] = bias ? bias[ch[l]] : 0.f;
      for (int64_t j = 0; j < n; ++j) {
        state[j][l] = h[(b * d + ch[l]) * n + j];
        a[j][l] = A[ch[l] * n + j];
      }
    }
    const int full = width == LANES;
    const int u_adj = full && st[1] == 1, dt_adj = full && st[4] == 1, z_adj = full && st[7] == 1;
    const float *Bb = B + b * st[9], *Cb = C + b * st[12];
    for (int64_t t = 0; t < L; ++t) {
      const vec ut = lanes_at(u, uo, t, st[2], u_adj);
      vec dt = lanes_at(delta, dto, t, st[5], dt_adj) + bl;
      if (softplus) dt = lc_vsoftplus(dt);
      const vec du = dt * ut;
      vec acc = dl * ut;
      const float *Bt = Bb + t * st[11], *Ct = Cb + t * st[14];
      for (int64_t j = 0; j < n; ++j) {
        state[j] = lc_vexp(dt * a[j]) * state[j] + du * splat(Bt[j * st[10]]);
        acc += splat(Ct[j * st[13]]) * state[j];
      }
      if (z) {
        acc *= lc_vsilu(lanes_at(z, zo, t, st[8], z_adj));
      }
      if (full && st[16] == 1) {
        memcpy(y + yo[0] + t * st[17], &acc, sizeof acc);
      } else {
        for (int l = 0; l < width; ++l) y[yo[l] + t * st[17]] = acc[l];
      }
    }
    for (int l = 0; l < width; ++l)
      for (int64_t j = 0; j < n; ++j) h[(b * d + ch[l]) * n + j] = state[j][l];
  }
}

/* All tasks, split across `threads` OpenMP threads. */
void lc_selective_scan_omp(const float *u, const float *delta, const float *z, const float *B,
                           const float *C, const float *A, const float *D, const float *bias,
                           float *h, float *y, const int64_t *st, int64_t batch, int64_t d,
                           int64_t L, int64_t n, int32_t softplus, int32_t threads) {
  const int64_t tasks = lc_scan_tasks(batch, d);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t k = 0; k < tasks; ++k)
    lc_selective_scan(u, delta, z, B, C, A, D, bias, h, y, st, d, L, n, softplus, k, k + 1);
}
