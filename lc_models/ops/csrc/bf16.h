/* bfloat16 <-> float32 for the kernels that take half-precision activations. A bf16 value is
   the top 16 bits of a float32: widening is a shift, narrowing rounds to nearest even (NaN
   kept a quiet NaN, Inf kept), as torch's own conversion does. Both loops vectorise. */
#ifndef LC_BF16_H
#define LC_BF16_H
#include <stdint.h>
#include <string.h>

static inline float lc_bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline uint16_t lc_f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  /* NaN tested on the bits: -ffast-math lets the compiler assume f == f */
  return (u & 0x7FFFFFFFu) > 0x7F800000u ? (uint16_t)((u >> 16) | 0x40u) : (uint16_t)rounded;
}

/* dst[0..n) = src[0..n) as float32; src float32 (bf16 == 0) or bfloat16 (bf16 == 1). */
static inline void lc_load_row(float *restrict dst, const void *restrict src, int32_t bf16,
                               int64_t n) {
  if (bf16) {
    const uint16_t *s = (const uint16_t *)src;
    for (int64_t c = 0; c < n; ++c) dst[c] = lc_bf16_to_f32(s[c]);
  } else {
    memcpy(dst, src, (size_t)n * sizeof(float));
  }
}

/* dst[0..n) = src[0..n), stored as float32 (bf16 == 0) or rounded to bfloat16 (bf16 == 1). */
static inline void lc_store_row(void *restrict dst, const float *restrict src, int32_t bf16,
                                int64_t n) {
  if (bf16) {
    uint16_t *d = (uint16_t *)dst;
    for (int64_t c = 0; c < n; ++c) d[c] = lc_f32_to_bf16(src[c]);
  } else {
    memcpy(dst, src, (size_t)n * sizeof(float));
  }
}
#endif
