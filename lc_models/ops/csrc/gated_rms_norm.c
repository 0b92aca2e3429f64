/* RMS norm over groups of channels, gated by SiLU first (Mamba-2's MambaRMSNormGated).

   For row r (a token) and channel c in group gi = c / group:
     v[c]  = x[r,c] * silu(g[r,c])            (v = x when g is NULL)
     y[r,c] = w[c] * v[c] / sqrt(mean over the group of v^2 + eps)
   x and g are (rows, C) with row strides sx, sg (in elements) and unit channel strides; w is
   (C,) float32; y (rows, C) contiguous. x, g and y are each float32, or bfloat16 where
   dtypes has bit 0 (x), 1 (g) or 2 (y) set; the arithmetic is float32 and y is rounded once.
   Rows are split across `threads` OpenMP threads; each row is read once and written once,
   through a float32 row buffer per thread. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "bf16.h"

void lc_gated_rms_norm(const void *x, const void *g, const float *w, void *y, int64_t sx,
                       int64_t sg, int64_t rows, int64_t C, int64_t group, float eps,
                       int32_t dtypes, int32_t threads) {
  const int32_t xb = dtypes & 1, gb = (dtypes >> 1) & 1, yb = (dtypes >> 2) & 1;
  const size_t xsize = xb ? 2 : 4, gsize = gb ? 2 : 4, ysize = yb ? 2 : 4;
#pragma omp parallel num_threads(threads)
  {
    float *v = malloc(2 * (size_t)C * sizeof(float)); /* row buffers: v, then the gate */
    if (!v) abort();
    float *gr = v + C;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      lc_load_row(v, (const char *)x + (size_t)(r * sx) * xsize, xb, C);
      if (g) {
        lc_load_row(gr, (const char *)g + (size_t)(r * sg) * gsize, gb, C);
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) v[c] *= gr[c] / (1.f + expf(-gr[c]));
      }
      for (int64_t c0 = 0; c0 < C; c0 += group) {
        float ss = 0.f;
#pragma omp simd reduction(+ : ss)
        for (int64_t c = c0; c < c0 + group; ++c) ss += v[c] * v[c];
        const float scale = 1.f / sqrtf(ss / (float)group + eps);
#pragma omp simd
        for (int64_t c = c0; c < c0 + group; ++c) v[c] = w[c] * (v[c] * scale);
      }
      lc_store_row((char *)y + (size_t)(r * C) * ysize, v, yb, C);
    }
    free(v);
  }
}
