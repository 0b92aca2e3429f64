/* Depthwise causal conv along the tokens, continuing after earlier inputs, SiLU optional.

   For batch row b, token t and channel c, with K taps:
     y[b,t,c] = bias[c] + sum_k w[k,c] * in[b, t - (K - 1 - k), c],   then  y = silu(y)?
   where in[b,s,c] is x[b,s,c] for s >= 0 and hist[b, c, Kh + s] for s < 0 (the inputs before
   the chunk, most recent last; Kh >= K - 1). x is (batch, L, C) with strides st[0..1] for
   b, t (in elements) and a unit channel stride; hist (batch, C, Kh) contiguous, or NULL for
   zeros (a sequence start); w (K, C) contiguous (tap-major: a tap's weights are one vector);
   bias may be NULL; y (batch, L, C) contiguous. x and y are float32, or bfloat16 where
   dtypes has bit 0 (x) or 1 (y) set; hist, w and bias are float32, the arithmetic float32,
   and y is rounded once. The tokens are split in blocks across `threads` OpenMP threads;
   each reads x once and writes y once. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "bf16.h"

#define TOKENS_PER_TASK 32

/* y[c] += w[c] * src[c] for one tap: the loops the compiler vectorises. */
static inline void tap(float *restrict y, const float *restrict w, const float *restrict src,
                       int64_t C) {
  for (int64_t c = 0; c < C; ++c) y[c] += w[c] * src[c];
}

static inline void tap_bf16(float *restrict y, const float *restrict w,
                            const uint16_t *restrict src, int64_t C) {
  for (int64_t c = 0; c < C; ++c) y[c] += w[c] * lc_bf16_to_f32(src[c]);
}

void lc_causal_conv1d(const void *x, const float *hist, const float *w, const float *bias,
                      void *y, const int64_t *st, int64_t batch, int64_t L, int64_t C,
                      int64_t K, int64_t Kh, int32_t silu, int32_t dtypes, int32_t threads) {
  const int32_t xb = dtypes & 1, yb = (dtypes >> 1) & 1;
  const int64_t blocks = (L + TOKENS_PER_TASK - 1) / TOKENS_PER_TASK;
#pragma omp parallel num_threads(threads)
  {
    float *row = yb ? malloc((size_t)C * sizeof(float)) : NULL; /* y's row before rounding */
    if (yb && !row) abort();
#pragma omp for schedule(static)
    for (int64_t task = 0; task < batch * blocks; ++task) {
      const int64_t b = task / blocks, t0 = (task % blocks) * TOKENS_PER_TASK;
      const int64_t t1 = t0 + TOKENS_PER_TASK < L ? t0 + TOKENS_PER_TASK : L;
      for (int64_t t = t0; t < t1; ++t) {
        float *restrict yt = yb ? row : (float *)y + (b * L + t) * C;
        for (int64_t c = 0; c < C; ++c) yt[c] = bias ? bias[c] : 0.f;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t s = t - (K - 1 - k); /* the input this tap reads */
          if (s >= 0) {
            const int64_t at = b * st[0] + s * st[1];
            if (xb)
              tap_bf16(yt, w + k * C, (const uint16_t *)x + at, C);
            else
              tap(yt, w + k * C, (const float *)x + at, C);
          } else if (hist) { /* before the chunk: column Kh + s of the history, per channel */
            const float *h = hist + b * C * Kh + Kh + s;
            for (int64_t c = 0; c < C; ++c) yt[c] += w[k * C + c] * h[c * Kh];
          }
        }
        if (silu)
          for (int64_t c = 0; c < C; ++c) yt[c] = yt[c] / (1.f + expf(-yt[c]));
        if (yb) lc_store_row((uint16_t *)y + (b * L + t) * C, yt, 1, C);
      }
    }
    free(row);
  }
}
