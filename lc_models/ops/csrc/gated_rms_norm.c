/* RMS norm over groups of channels, gated by SiLU first (Mamba-2's MambaRMSNormGated).

   For row r (a token) and channel c in group gi = c / group:
     v[c]  = x[r,c] * silu(g[r,c])            (v = x when g is NULL)
     y[r,c] = w[c] * v[c] / sqrt(mean over the group of v^2 + eps)
   x and g are (rows, C) with row strides sx, sg (in elements) and unit channel strides; w is
   (C,); y (rows, C) contiguous. All float32. Rows are split across `threads` OpenMP threads;
   each row is read once and written once (v goes through y). */
#include <math.h>
#include <stdint.h>

void lc_gated_rms_norm(const float *x, const float *g, const float *w, float *y, int64_t sx,
                       int64_t sg, int64_t rows, int64_t C, int64_t group, float eps,
                       int32_t threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * sx;
    float *yr = y + r * C;
    if (g) {
      const float *gr = g + r * sg;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * (gr[c] / (1.f + expf(-gr[c])));
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) yr[c] = xr[c];
    }
    for (int64_t c0 = 0; c0 < C; c0 += group) {
      float ss = 0.f;
#pragma omp simd reduction(+ : ss)
      for (int64_t c = c0; c < c0 + group; ++c) ss += yr[c] * yr[c];
      const float scale = 1.f / sqrtf(ss / (float)group + eps);
#pragma omp simd
      for (int64_t c = c0; c < c0 + group; ++c) yr[c] = w[c] * (yr[c] * scale);
    }
  }
}
