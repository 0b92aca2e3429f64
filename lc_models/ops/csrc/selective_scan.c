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

   Work is split in tasks of LANES adjacent channels of one batch row: task k covers batch
   k / blocks, channels (k % blocks) * LANES onwards. Each task runs its tokens in order with
   its state in L1; the lane loops vectorise (log1pf and expf map to glibc's libmvec, the decay
   uses lc_expf inline). Disjoint task ranges may run concurrently; lc_selective_scan_omp runs
   all tasks on an OpenMP team (torch's own, when libgomp is shared). n <= LC_SCAN_MAX_STATE. */
#include <math.h>
#include <stdint.h>

#define LC_SCAN_MAX_STATE 256
#define LANES 8

/* exp(x) to about 2e-7 relative (range reduction by ln 2, degree-6 Taylor on |r| <= ln2 / 2),
   0 below -87 so that no subnormal ever enters the state. It vectorises inline, about a
   third cheaper than a libmvec call; the scan spends most of its time here. */
static inline float lc_expf(float x) {
  const float xc = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);
  const float k = __builtin_rintf(xc * 1.44269504088896341f);
  const float r = (xc - k * 0.693145751953125f) - k * 1.42860682030941723e-06f;
  const float p = 1.f + r * (1.f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f +
                  r * (0.00833333377f + r * 0.00138888892f)))));
  union { int32_t i; float f; } scale;
  scale.i = ((int32_t)k + 127) << 23;
  return x < -87.f ? 0.f : p * scale.f;
}

int lc_scan_max_state(void) { return LC_SCAN_MAX_STATE; }

int64_t lc_scan_tasks(int64_t batch, int64_t d) { return batch * ((d + LANES - 1) / LANES); }

void lc_selective_scan(const float *u, const float *delta, const float *z, const float *B,
                       const float *C, const float *A, const float *D, const float *bias,
                       float *h, float *y, const int64_t *st, int64_t d, int64_t L, int64_t n,
                       int32_t softplus, int64_t task0, int64_t task1) {
  const int64_t blocks = (d + LANES - 1) / LANES;
  float state[LC_SCAN_MAX_STATE][LANES], a[LC_SCAN_MAX_STATE][LANES];
  for (int64_t task = task0; task < task1; ++task) {
    const int64_t b = task / blocks, c0 = (task % blocks) * LANES;
    const int64_t width = d - c0 < LANES ? d - c0 : LANES;
    int64_t ch[LANES], uo[LANES], dto[LANES], zo[LANES], yo[LANES];
    float dl[LANES], bl[LANES];
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
    const float *Bb = B + b * st[9], *Cb = C + b * st[12];
    for (int64_t t = 0; t < L; ++t) {
      float dt[LANES], du[LANES], ut[LANES], acc[LANES];
      for (int l = 0; l < LANES; ++l) {
        ut[l] = u[uo[l] + t * st[2]];
        dt[l] = delta[dto[l] + t * st[5]] + bl[l];
      }
      if (softplus) {
#pragma omp simd
        for (int l = 0; l < LANES; ++l) dt[l] = dt[l] > 20.f ? dt[l] : log1pf(expf(dt[l]));
      }
#pragma omp simd
      for (int l = 0; l < LANES; ++l) {
        du[l] = dt[l] * ut[l];
        acc[l] = dl[l] * ut[l];
      }
      const float *Bt = Bb + t * st[11], *Ct = Cb + t * st[14];
      for (int64_t j = 0; j < n; ++j) {
        const float bj = Bt[j * st[10]], cj = Ct[j * st[13]];
#pragma omp simd
        for (int l = 0; l < LANES; ++l) {
          state[j][l] = lc_expf(dt[l] * a[j][l]) * state[j][l] + du[l] * bj;
          acc[l] += cj * state[j][l];
        }
      }
      if (z) {
        float zt[LANES];
        for (int l = 0; l < LANES; ++l) zt[l] = z[zo[l] + t * st[8]];
#pragma omp simd
        for (int l = 0; l < LANES; ++l) acc[l] *= zt[l] / (1.f + expf(-zt[l]));
      }
      for (int l = 0; l < width; ++l) y[yo[l] + t * st[17]] = acc[l];
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
