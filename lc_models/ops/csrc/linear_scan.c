/* First-order linear recurrence per channel (RecurrentGemma's RG-LRU scan):
     h[c] = a[b,t,c] * h[c] + x[b,t,c],   y[b,t,c] = h[c]
   a, x and y are (batch, L, C) contiguous; h (batch, C) contiguous holds the initial state on
   entry and the final one on return. All float32. A task is one batch row and a block of
   BLOCK channels, its tokens in order; the channel loop vectorises. */
#include <stdint.h>

#define BLOCK 256

void lc_linear_scan(const float *a, const float *x, float *h, float *y, int64_t batch,
                    int64_t L, int64_t C, int32_t threads) {
  const int64_t blocks = (C + BLOCK - 1) / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t task = 0; task < batch * blocks; ++task) {
    const int64_t b = task / blocks, c0 = (task % blocks) * BLOCK;
    const int64_t c1 = c0 + BLOCK < C ? c0 + BLOCK : C;
    float state[BLOCK];
    for (int64_t c = c0; c < c1; ++c) state[c - c0] = h[b * C + c];
    for (int64_t t = 0; t < L; ++t) {
      const int64_t row = (b * L + t) * C;
      for (int64_t c = c0; c < c1; ++c) {
        state[c - c0] = a[row + c] * state[c - c0] + x[row + c];
        y[row + c] = state[c - c0];
      }
    }
    for (int64_t c = c0; c < c1; ++c) h[b * C + c] = state[c - c0];
  }
}
