/* AVX-512 gather of indirect-conv row panels (see q8_conv_gather_fn).
 *
 * Few input channels make short segments (the MobileNetV2 stem: 3 of 9
 * bytes per row, ResNet-50 conv1: 7 of 21), where the portable gather's call
 * and length branches per copy cost about as much as the GEMM itself. Here a
 * segment is copied in pieces of at most 32 bytes, each one byte-masked load
 * (masked-off bytes are neither read nor faulted on, so no segment is read
 * past its last byte, even at the very end of the input) and one plain 16- or
 * 32-byte store whose bytes past the piece are overwritten by what follows.
 * Narrow pieces: on Zen 4 a 512-bit masked load or store is two operations,
 * and 64-byte pieces measured slower.
 *
 * Most row tiles are 8 pixels with one pattern (every interior pixel shares
 * one), so a tile whose rows share their pattern is copied segment by
 * segment, each piece for every row: the segment's offset, length and mask
 * are computed once per tile, not once per row. A piece whose plain store
 * would reach past its row is stored under a byte mask instead, since the
 * next row's earlier segments are already in place. Other tiles (image
 * borders) go row by row with plain stores throughout: rows are written in
 * order, so a store past a row's end lands in the next row before it is
 * written, and past the last row in the panel's Q8_CONV_PANEL_SLACK.
 *
 * Compiled for AVX-512 BW/VL through function attributes only; dispatch calls
 * it only where the chosen ISA is avx512vnni or amx. */
#include <stdbool.h>
#include <stdint.h>

#include <immintrin.h>

#include "q8/kernels.h"

#define Q8_GATHER_TARGET "avx512f,avx512bw,avx512vl"
#define Q8_GATHER_INLINE static inline __attribute__((always_inline, target(Q8_GATHER_TARGET)))

/* Pieces of a segment: at most this many bytes each. */
#define Q8_GATHER_PIECE 32

/* What a store of a piece of n bytes writes: 16 or 32 bytes. */
static inline size_t store_width(size_t n) { return n <= 16 ? 16 : 32; }

/* n bytes (1..32) of src xor flip to dst, read under a byte mask, stored
 * whole (store_width(n) bytes). */
Q8_GATHER_INLINE void copy_piece(unsigned char *dst, const unsigned char *src, size_t n,
                                 __m256i flip) {
  if (n <= 16) {
    const __mmask16 m = (__mmask16)((1u << n) - 1u);
    _mm_storeu_si128((__m128i *)(void *)dst,
                     _mm_xor_si128(_mm_maskz_loadu_epi8(m, src), _mm256_castsi256_si128(flip)));
  } else {
    const __mmask32 m = (__mmask32)(~0u >> (32 - n));
    _mm256_storeu_si256((__m256i *)(void *)dst,
                        _mm256_xor_si256(_mm256_maskz_loadu_epi8(m, src), flip));
  }
}

/* n bytes (1..32) of the flipped zero point. */
Q8_GATHER_INLINE void pad_piece(unsigned char *dst, size_t n, __m256i pad, bool exact) {
  if (exact) {
    _mm256_mask_storeu_epi8(dst, (__mmask32)(~0u >> (32 - n)), pad);
  } else if (n <= 16) {
    _mm_storeu_si128((__m128i *)(void *)dst, _mm256_castsi256_si128(pad));
  } else {
    _mm256_storeu_si256((__m256i *)(void *)dst, pad);
  }
}

/* A receptive field is image + anchor as an address: the anchor alone may
 * point before the image, only anchor + offset is inside it. */
static inline const unsigned char *at(uintptr_t field, int64_t offset) {
  return (const unsigned char *)(field + (uintptr_t)offset);
}

/* One row, plain stores only (see the file comment), then `tail` (< 16)
 * padded bytes up to the stride. */
Q8_GATHER_INLINE void gather_row(unsigned char *dst, size_t tail, uintptr_t field,
                                 const q8_conv_segment *seg, const q8_conv_segment *end,
                                 __m256i flip, __m256i pad) {
  for (; seg < end; ++seg) {
    size_t len = seg->len;
    if (seg->offset == Q8_CONV_PADDING) {
      for (; len > Q8_GATHER_PIECE; len -= Q8_GATHER_PIECE, dst += Q8_GATHER_PIECE) {
        pad_piece(dst, Q8_GATHER_PIECE, pad, false);
      }
      pad_piece(dst, len, pad, false);
      dst += len;
      continue;
    }
    const unsigned char *src = at(field, seg->offset);
    for (; len > Q8_GATHER_PIECE; len -= Q8_GATHER_PIECE) {
      copy_piece(dst, src, Q8_GATHER_PIECE, flip);
      dst += Q8_GATHER_PIECE;
      src += Q8_GATHER_PIECE;
    }
    copy_piece(dst, src, len, flip);
    dst += len;
  }
  if (tail) pad_piece(dst, tail, pad, false);
}

/* One piece of every row (at the same place in each), stored whole or, if
 * `exact`, only its n bytes; the choices are made outside the loops over
 * rows, the hot ones (measured: stem gather 3.8 -> 3.3 ns per row, Zen 4). */
Q8_GATHER_INLINE void copy_rows(unsigned char *dst, size_t k, size_t rows,
                                const uintptr_t *fields, int64_t offset, size_t n, __m256i flip,
                                bool exact) {
  if (n <= 16) {
    const __mmask16 m = (__mmask16)((1u << n) - 1u);
    const __m128i f = _mm256_castsi256_si128(flip);
    if (exact) {
      for (size_t r = 0; r < rows; ++r) {
        _mm_mask_storeu_epi8(dst + r * k, m,
                             _mm_xor_si128(_mm_maskz_loadu_epi8(m, at(fields[r], offset)), f));
      }
    } else {
      for (size_t r = 0; r < rows; ++r) {
        _mm_storeu_si128((__m128i *)(void *)(dst + r * k),
                         _mm_xor_si128(_mm_maskz_loadu_epi8(m, at(fields[r], offset)), f));
      }
    }
    return;
  }
  const __mmask32 m = (__mmask32)(~0u >> (32 - n));
  if (exact) {
    for (size_t r = 0; r < rows; ++r) {
      const __m256i v = _mm256_maskz_loadu_epi8(m, at(fields[r], offset));
      _mm256_mask_storeu_epi8(dst + r * k, m, _mm256_xor_si256(v, flip));
    }
  } else {
    for (size_t r = 0; r < rows; ++r) {
      const __m256i v = _mm256_maskz_loadu_epi8(m, at(fields[r], offset));
      _mm256_storeu_si256((__m256i *)(void *)(dst + r * k), _mm256_xor_si256(v, flip));
    }
  }
}

/* Rows sharing one pattern, rows `stride` bytes apart: segment by segment,
 * every row per piece, then the padded bytes [pos, stride) of every row. */
Q8_GATHER_INLINE void gather_shared(unsigned char *panel, size_t stride, size_t rows,
                                    const uintptr_t *fields,
                                    const q8_conv_segment *seg, const q8_conv_segment *end,
                                    __m256i flip, __m256i pad) {
  size_t pos = 0; /* the piece's first byte within a row */
  for (; seg < end; ++seg) {
    int64_t offset = seg->offset;
    for (size_t len = seg->len; len > 0;) {
      const size_t n = len < Q8_GATHER_PIECE ? len : Q8_GATHER_PIECE;
      const bool exact = pos + store_width(n) > stride;
      unsigned char *dst = panel + pos;
      if (offset == Q8_CONV_PADDING) {
        for (size_t r = 0; r < rows; ++r) pad_piece(dst + r * stride, n, pad, exact);
      } else {
        copy_rows(dst, stride, rows, fields, offset, n, flip, exact);
        offset += (int64_t)n;
      }
      pos += n;
      len -= n;
    }
  }
  if (pos < stride) {
    for (size_t r = 0; r < rows; ++r) pad_piece(panel + r * stride + pos, stride - pos, pad, true);
  }
}

/* Rows per call: the largest MR of any x86 micro-kernel. */
#define Q8_GATHER_MAX_ROWS 16

__attribute__((target(Q8_GATHER_TARGET))) void q8_conv_gather_x8__avx512vnni(
    const q8_conv_indirect_args *args, size_t m, size_t rows, uint8_t flip) {
  if (rows > Q8_GATHER_MAX_ROWS) {
    q8_conv_gather_x8__avx512vnni(args, m, Q8_GATHER_MAX_ROWS, flip);
    q8_conv_indirect_args rest = *args;
    rest.panel += Q8_GATHER_MAX_ROWS * args->panel_stride;
    q8_conv_gather_x8__avx512vnni(&rest, m + Q8_GATHER_MAX_ROWS, rows - Q8_GATHER_MAX_ROWS, flip);
    return;
  }
  const __m256i flip_v = _mm256_set1_epi8((char)flip);
  const __m256i pad = _mm256_set1_epi8((char)((uint8_t)args->in_zero_point ^ flip));
  /* Each row's receptive field and whether all rows share a pattern. */
  uintptr_t fields[Q8_GATHER_MAX_ROWS];
  size_t pixel = m % args->image_pixels;
  const unsigned char *image =
      (const unsigned char *)args->input + m / args->image_pixels * args->image_bytes;
  const q8_conv_pixel *first = &args->pixels[pixel];
  bool shared = true;
  for (size_t r = 0; r < rows; ++r) {
    const q8_conv_pixel *p = &args->pixels[pixel];
    fields[r] = (uintptr_t)image + (uintptr_t)p->anchor;
    shared = shared && p->first == first->first;
    if (++pixel == args->image_pixels) {
      pixel = 0;
      image += args->image_bytes;
    }
  }
  const size_t stride = args->panel_stride;
  if (shared) {
    const q8_conv_segment *seg = args->segments + first->first;
    gather_shared(args->panel, stride, rows, fields, seg, seg + first->count, flip_v, pad);
    return;
  }
  pixel = m % args->image_pixels;
  for (size_t r = 0; r < rows; ++r) {
    const q8_conv_pixel *p = &args->pixels[pixel];
    const q8_conv_segment *seg = args->segments + p->first;
    gather_row(args->panel + r * stride, stride - args->k, fields[r], seg, seg + p->count,
               flip_v, pad);
    if (++pixel == args->image_pixels) pixel = 0;
  }
}

/* ---- strided tiles: byte permutes (AVX-512 VBMI) ----------------------------
 * The stem's row tile is 8 pixels whose 3 segments of 9 bytes each lie within
 * 51 bytes per kernel row: 3 loads and 12 vpermb make the 8 x 28-byte panel,
 * where copying takes 24 loads and 8-24 stores. Rows are checked to be a
 * strided run of the table's pattern (an output row's interior); any other
 * tile goes the general way. */
#define Q8_GATHER_VBMI_TARGET Q8_GATHER_TARGET ",avx512vbmi"

__attribute__((target(Q8_GATHER_VBMI_TARGET))) void q8_conv_gather_x8__avx512vbmi(
    const q8_conv_indirect_args *args, size_t m, size_t rows, uint8_t flip) {
  const q8_conv_strided *st = args->strided;
  const size_t pixel = m % args->image_pixels;
  if (st == NULL || rows != st->rows || pixel + rows > args->image_pixels) {
    q8_conv_gather_x8__avx512vnni(args, m, rows, flip);
    return;
  }
  const q8_conv_pixel *p = &args->pixels[pixel];
  for (size_t r = 0; r < rows; ++r) {
    if (p[r].first != st->pattern || p[r].anchor != p[0].anchor + (int64_t)r * st->step) {
      q8_conv_gather_x8__avx512vnni(args, m, rows, flip);
      return;
    }
  }
  const uintptr_t field = (uintptr_t)args->input + m / args->image_pixels * args->image_bytes +
                          (uintptr_t)p[0].anchor;
  __m512i src[Q8_CONV_STRIDED_MAX_SOURCES];
  for (size_t i = 0; i < st->sources; ++i) {
    src[i] = _mm512_maskz_loadu_epi8(st->source_mask[i], at(field, st->source_offset[i]));
  }
  const __m512i zp = _mm512_set1_epi8((char)(uint8_t)args->in_zero_point);
  const __m512i flip_v = _mm512_set1_epi8((char)flip);
  unsigned char *dst = args->panel;
  for (size_t c = 0; c < st->chunks; ++c, dst += 64) {
    __m512i v = zp;
    for (size_t e = st->chunk_first[c]; e < st->chunk_first[c + 1]; ++e) {
      const q8_conv_strided_entry *en = &st->entries[e];
      v = _mm512_mask_permutexvar_epi8(v, en->mask, _mm512_loadu_si512(en->index), src[en->source]);
    }
    /* Past the last row: the panel's slack. */
    _mm512_storeu_si512(dst, _mm512_xor_si512(v, flip_v));
  }
}
