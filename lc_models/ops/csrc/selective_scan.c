/* Selective-scan recurrence (Mamba-1), one sequential pass per (batch, channel) row.

   For rows r in [row0, row1) of the (batch * d_inner) grid, with b = r / d_inner, c = r % d_inner:
     h[j]   <- exp(dt[r,t] * A[c,j]) * h[j] + dt[r,t] * u[r,t] * Bt[b,t,j]
     y[r,t]  = sum_j Ct[b,t,j] * h[j]
   Shapes (all float32, C-contiguous):
     u, dt, y: (batch, d_inner, L)   A: (d_inner, n)   Bt, Ct: (batch, L, n)   h: (batch, d_inner, n)
   h holds the initial state on entry and the final state on return. The state stays in registers;
   the inner loop over n vectorises (expf maps to glibc's vector math library). Threads split rows,
   so callers may run disjoint row ranges concurrently. n must be <= LC_SCAN_MAX_STATE. */
#include <math.h>
#include <stdint.h>

#define LC_SCAN_MAX_STATE 256

int lc_scan_max_state(void) { return LC_SCAN_MAX_STATE; }

void lc_selective_scan_rows(const float *u, const float *dt, const float *A, const float *Bt,
                            const float *Ct, float *h, float *y, int64_t d_inner, int64_t L,
                            int64_t n, int64_t row0, int64_t row1) {
  float hs[LC_SCAN_MAX_STATE], a[LC_SCAN_MAX_STATE];
  for (int64_t r = row0; r < row1; ++r) {
    const int64_t b = r / d_inner, c = r % d_inner;
    const float *ur = u + r * L, *dr = dt + r * L;
    const float *Bb = Bt + b * L * n, *Cb = Ct + b * L * n;
    float *yr = y + r * L;
    for (int64_t j = 0; j < n; ++j) {
      hs[j] = h[r * n + j];
      a[j] = A[c * n + j];
    }
    for (int64_t t = 0; t < L; ++t) {
      const float dtt = dr[t], du = dtt * ur[t];
      const float *Bq = Bb + t * n, *Cq = Cb + t * n;
      float acc = 0.f;
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < n; ++j) {
        hs[j] = expf(dtt * a[j]) * hs[j] + du * Bq[j];
        acc += Cq[j] * hs[j];
      }
      yr[t] = acc;
    }
    for (int64_t j = 0; j < n; ++j) h[r * n + j] = hs[j];
  }
}
