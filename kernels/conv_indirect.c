/* Indirect convolution: the GEMM micro-kernels over row panels gathered
 * through an indirection table (see include/q8/kernels.h). The panel is MR x K
 * bytes, reused by every column tile: never an im2col of the whole input. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "q8/kernels.h"

/* Builds segments one pattern at a time: a tap joins the open segment when
 * both are padding or its bytes follow the segment's in memory (only possible
 * for one group: taps of a group are in_channels apart, Cg bytes long). */
typedef struct row_builder {
  q8_conv_segment *out; /* NULL: count only */
  size_t count;
  bool open;
  q8_conv_segment last;
} row_builder;

static void flush(row_builder *b) {
  if (!b->open) return;
  if (b->out) b->out[b->count] = b->last;
  ++b->count;
  b->open = false;
}

static void add_tap(row_builder *b, int64_t offset, size_t len) {
  if (b->open) {
    const bool both_padding = b->last.offset == Q8_CONV_PADDING && offset == Q8_CONV_PADDING;
    const bool contiguous = b->last.offset != Q8_CONV_PADDING && offset != Q8_CONV_PADDING &&
                            b->last.offset + (int64_t)b->last.len == offset;
    if (both_padding || contiguous) {
      b->last.len += len;
      return;
    }
    flush(b);
  }
  b->last = (q8_conv_segment){offset, len};
  b->open = true;
}

/* The taps [lo, hi) of a kernel axis that land inside the input for a
 * receptive field starting at `start` (lo == hi: none); the valid taps are
 * always one range. Equal ranges come in runs of consecutive output
 * positions (both bounds only fall as start grows), so a pattern is built at
 * the start of each run (a repeated range would only cost a duplicate). */
typedef struct tap_range {
  size_t lo, hi;
} tap_range;

static tap_range valid_taps(int64_t start, size_t kernel, size_t dilation, size_t in) {
  tap_range r = {0, 0};
  bool found = false;
  for (size_t t = 0; t < kernel; ++t) {
    const int64_t pos = start + (int64_t)(t * dilation);
    if (pos < 0 || pos >= (int64_t)in) continue;
    if (!found) r.lo = t;
    found = true;
    r.hi = t + 1;
  }
  return r;
}

/* The valid taps of each of `count` output positions along one axis, and the
 * unpadded positions [*first, *last), every tap valid: one range (both
 * bounds of the valid taps fall as the position grows), possibly empty. */
static void axis_taps(size_t count, size_t stride, size_t pad, size_t kernel, size_t dilation,
                      size_t in, tap_range *taps, size_t *first, size_t *last) {
  *first = count;
  *last = 0;
  for (size_t i = 0; i < count; ++i) {
    taps[i] = valid_taps((int64_t)(i * stride) - (int64_t)pad, kernel, dilation, in);
    if (taps[i].lo == 0 && taps[i].hi == kernel) {
      if (i < *first) *first = i;
      *last = i + 1;
    }
  }
  if (*first > *last) *first = *last = 0;
}

static bool same_taps(tap_range a, tap_range b) { return a.lo == b.lo && a.hi == b.hi; }

/* Whether tap (ky, kx) lands inside the input, given the valid taps of each axis. */
static bool tap_inside(size_t ky, size_t kx, tap_range rows, tap_range cols) {
  return ky >= rows.lo && ky < rows.hi && kx >= cols.lo && kx < cols.hi;
}

/* A pattern: every tap of the kernel, relative to the anchor, or padding. */
static void add_pattern(row_builder *b, const q8_conv_shape *s, tap_range rows, tap_range cols) {
  const size_t cg = s->in_channels / s->groups;
  for (size_t ky = 0; ky < s->kernel_h; ++ky) {
    for (size_t kx = 0; kx < s->kernel_w; ++kx) {
      const int64_t offset =
          tap_inside(ky, kx, rows, cols) ? (int64_t)((ky * s->dilation_h * s->in_w + kx * s->dilation_w) * s->in_channels)
                 : Q8_CONV_PADDING;
      add_tap(b, offset, cg);
    }
  }
  flush(b);
}

size_t q8_conv_indirection(const q8_conv_shape *s, size_t out_h, size_t out_w,
                           q8_conv_pixel *pixels, q8_conv_segment *segments) {
  row_builder b = {.out = segments};
  tap_range prev_rows = {0, 0};
  for (size_t y = 0; y < out_h; ++y) {
    const int64_t iy = (int64_t)(y * s->stride_h) - (int64_t)s->pad_top;
    const tap_range rows = valid_taps(iy, s->kernel_h, s->dilation_h, s->in_h);
    /* A row of output pixels padded like the one above reuses its patterns. */
    const bool new_rows = y == 0 || !same_taps(rows, prev_rows);
    prev_rows = rows;
    tap_range prev_cols = {0, 0};
    size_t first = 0, count = 0;
    for (size_t x = 0; x < out_w; ++x) {
      const int64_t ix = (int64_t)(x * s->stride_w) - (int64_t)s->pad_left;
      const size_t p = y * out_w + x;
      if (new_rows) {
        const tap_range cols = valid_taps(ix, s->kernel_w, s->dilation_w, s->in_w);
        if (x == 0 || !same_taps(cols, prev_cols)) {
          first = b.count;
          add_pattern(&b, s, rows, cols);
          count = b.count - first;
        }
        prev_cols = cols;
      } else if (pixels) {
        first = pixels[p - out_w].first;
        count = pixels[p - out_w].count;
      }
      if (pixels) {
        pixels[p] = (q8_conv_pixel){
            .anchor = (iy * (int64_t)s->in_w + ix) * (int64_t)s->in_channels,
            .first = first, .count = count};
      }
    }
  }
  return b.count;
}

size_t q8_conv_indirect_panel_stride(const q8_gemm_ukernel *uk, size_t k) {
  return (k + uk->kr - 1) / uk->kr * uk->kr;
}

size_t q8_conv_indirect_chunk_rows(const q8_gemm_ukernel *uk, size_t k) {
  /* A kernel with its own A panel runs the gathered rows through it, never
   * in chunks (q8_conv_indirect). */
  if (uk->run_rows == NULL || uk->pack_a != NULL) return uk->mr;
  const size_t rows = 8192 / q8_conv_indirect_panel_stride(uk, k) / uk->mr * uk->mr;
  return rows > uk->mr ? rows : uk->mr;
}

size_t q8_conv_indirect_panel_bytes(const q8_gemm_ukernel *uk, size_t k) {
  /* Also a K-range tile's rows: the tiled driver gathers its border tiles. */
  const size_t chunk = q8_conv_indirect_chunk_rows(uk, k), tile = q8_gemm_k_ranges_mr(uk);
  return (chunk > tile ? chunk : tile) * q8_conv_indirect_panel_stride(uk, k) +
         Q8_CONV_PANEL_SLACK;
}

bool q8_conv_strided_build(const q8_conv_segment *segments, size_t pattern, size_t count,
                           size_t rows, int64_t step, size_t panel_stride,
                           q8_conv_strided *out) {
  memset(out, 0, sizeof *out);
  if (rows == 0 || step <= 0 || count > Q8_CONV_STRIDED_MAX_SOURCES) return false;
  const size_t chunks = (rows * panel_stride + 63) / 64;
  if (chunks > Q8_CONV_STRIDED_MAX_CHUNKS) return false;
  /* Sources: each data segment's bytes for all rows, at most 64. */
  size_t position[Q8_CONV_STRIDED_MAX_SOURCES], length[Q8_CONV_STRIDED_MAX_SOURCES];
  size_t pos = 0;
  for (size_t i = 0; i < count; ++i) {
    const q8_conv_segment *seg = &segments[pattern + i];
    if (seg->offset != Q8_CONV_PADDING) {
      const uint64_t span = (uint64_t)(rows - 1) * (uint64_t)step + seg->len;
      if (span > 64) return false;
      out->source_offset[out->sources] = seg->offset;
      out->source_mask[out->sources] = span == 64 ? ~UINT64_C(0) : (UINT64_C(1) << span) - 1u;
      position[out->sources] = pos;
      length[out->sources] = seg->len;
      ++out->sources;
    }
    pos += seg->len;
  }
  out->entries = malloc(chunks * (out->sources ? out->sources : 1) * sizeof *out->entries);
  if (out->entries == NULL) return false;
  out->pattern = pattern;
  out->rows = rows;
  out->step = step;
  out->chunks = chunks;
  size_t n = 0;
  for (size_t c = 0; c < chunks; ++c) {
    out->chunk_first[c] = n;
    for (size_t src = 0; src < out->sources; ++src) {
      q8_conv_strided_entry *e = &out->entries[n];
      memset(e, 0, sizeof *e);
      e->source = src;
      for (size_t b = 0; b < 64; ++b) {
        const size_t at = 64 * c + b, row = at / panel_stride, col = at % panel_stride;
        if (row < rows && col >= position[src] && col < position[src] + length[src]) {
          e->index[b] = (uint8_t)((int64_t)row * step + (int64_t)(col - position[src]));
          e->mask |= UINT64_C(1) << b;
        }
      }
      if (e->mask) ++n;
    }
  }
  out->chunk_first[chunks] = n;
  return true;
}

void q8_conv_strided_free(q8_conv_strided *s) {
  if (s == NULL) return;
  free(s->entries);
  memset(s, 0, sizeof *s);
}

/* 16 bytes in a vector register (GCC/Clang vector extension: SSE2 on any
 * x86-64, NEON on Arm), loaded and stored without alignment. */
typedef uint8_t bytes16 __attribute__((vector_size(16)));

static inline bytes16 load16(const unsigned char *p) {
  bytes16 v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void store16(unsigned char *p, bytes16 v) { memcpy(p, &v, sizeof v); }

/* Segments are often short and odd (conv1: 21 bytes), so the tail is one
 * more 16-byte copy overlapping the previous one rather than a byte loop: it
 * reads and writes only bytes of [0, len), some of them twice with the same
 * value. Every tail is loaded before the first store, so dst may be src. */
void q8_copy_flip(unsigned char *dst, const unsigned char *src, size_t len, uint8_t flip) {
  if (len >= 16) {
    const bytes16 f = (bytes16){0} + flip;
    const bytes16 last = load16(src + len - 16);
    size_t i = 0;
    for (; i + 64 <= len; i += 64) {
      const bytes16 a = load16(src + i), b = load16(src + i + 16);
      const bytes16 c = load16(src + i + 32), d = load16(src + i + 48);
      store16(dst + i, a ^ f);
      store16(dst + i + 16, b ^ f);
      store16(dst + i + 32, c ^ f);
      store16(dst + i + 48, d ^ f);
    }
    for (; i + 16 <= len; i += 16) store16(dst + i, load16(src + i) ^ f);
    if (i < len) store16(dst + len - 16, last ^ f);
    return;
  }
  if (len >= 8) {
    const uint64_t f = UINT64_C(0x0101010101010101) * flip;
    uint64_t head, tail;
    memcpy(&head, src, 8);
    memcpy(&tail, src + len - 8, 8);
    head ^= f;
    tail ^= f;
    memcpy(dst, &head, 8);
    memcpy(dst + len - 8, &tail, 8);
    return;
  }
  for (size_t i = 0; i < len; ++i) dst[i] = (unsigned char)(src[i] ^ flip);
}

/* One row of A: the pixel's pattern from `image + anchor` (summed before
 * use: the anchor alone may point before the image), then pad bytes up to
 * the stride. */
static void gather_row(unsigned char *dst, size_t tail, const unsigned char *image,
                       const q8_conv_pixel *pixel, const q8_conv_segment *segments,
                       uint8_t flip, unsigned char pad) {
  const q8_conv_segment *seg = segments + pixel->first, *end = seg + pixel->count;
  for (; seg < end; ++seg) {
    if (seg->offset == Q8_CONV_PADDING) {
      memset(dst, pad, seg->len);
    } else {
      q8_copy_flip(dst, image + (pixel->anchor + seg->offset), seg->len, flip);
    }
    dst += seg->len;
  }
  memset(dst, pad, tail);
}

void q8_conv_gather(const q8_conv_indirect_args *args, size_t m, size_t rows, uint8_t flip) {
  const unsigned char pad = (unsigned char)((uint8_t)args->in_zero_point ^ flip);
  /* One division per tile, not per row. */
  size_t pixel = m % args->image_pixels;
  const unsigned char *image =
      (const unsigned char *)args->input + m / args->image_pixels * args->image_bytes;
  for (size_t r = 0; r < rows; ++r) {
    gather_row(args->panel + r * args->panel_stride, args->panel_stride - args->k, image,
               &args->pixels[pixel], args->segments, flip, pad);
    if (++pixel == args->image_pixels) {
      pixel = 0;
      image += args->image_bytes;
    }
  }
}

/* The type the driver hands the kernel: in_dtype, or the other one where
 * the kernel's offset for in_dtype is not 0 and the driver flips the bytes
 * on their way into the panel or buffer (col_term holds the +-128). */
static q8_dtype kernel_a_dtype(const q8_gemm_ukernel *uk, q8_dtype in_dtype) {
  if (q8_gemm_a_offset(uk, in_dtype) == 0) return in_dtype;
  return in_dtype == Q8_INT8 ? Q8_UINT8 : Q8_INT8;
}

/* The most bytes of rows q8_conv_indirect gathers at once (see there); as
 * the GEMM driver's single flip (Q8_WHOLE_PANEL_BYTES), within glibc's
 * dynamic mmap threshold, so the buffer comes from the heap after a run. */
#define Q8_CONV_GATHER_ONCE_BYTES ((size_t)8 << 20)

void q8_conv_indirect(const q8_gemm_ukernel *uk, const q8_conv_indirect_args *args,
                      size_t m0, size_t m1, size_t n0, size_t n1) {
  /* The kernels run over whole panel rows (see q8_conv_indirect_args). */
  const size_t mr = uk->mr, nr = uk->nr, k = args->panel_stride;
  const size_t nc = args->nc >= nr ? args->nc / nr * nr : nr;
  /* int8 for a u8 x s8 kernel, uint8 for an s8 x s8 one: flip while
   * gathering (col_term holds the +-128) and pass the other type. */
  const bool flip = q8_gemm_a_offset(uk, args->in_dtype) != 0;
  const uint8_t flip_byte = flip ? 0x80u : 0u;
  const q8_conv_gather_fn gather = args->gather ? args->gather : q8_conv_gather;
  const q8_dtype a_dtype = kernel_a_dtype(uk, args->in_dtype);
  /* The kernel's own panel, if it has one (AVX2: int16 pairs), made from the
   * gathered rows once per row tile. */
  void *a_panel = q8_gemm_a_panel_new(uk, k);
  const q8_gemm_blocked_args tiles = {.k = k, .packed = args->packed, .c = args->c,
                                      .ldc = args->ldc, .rq = args->rq, .nc = nc};
  /* Chunks of row tiles gathered one tile after the other into the panel,
   * then each column tile over the chunk in one run_rows call (a gather may
   * write past its tile's rows: the next tile's gather overwrites them). */
  /* No L2-sized chunks here: the panel holds at most `capacity` rows. */
  size_t mc = q8_gemm_chunk_rows(uk, k, nc < n1 - n0 ? nc : n1 - n0, args->rq ? 1 : sizeof(int32_t), 0);
  const size_t capacity = q8_conv_indirect_chunk_rows(uk, args->k);
  if (mc > capacity) mc = capacity;
  const bool by_chunks = a_panel == NULL && mc >= 4 * mr && m1 - m0 >= 2 * mr;
  /* Tall row tiles as in q8_gemm_blocked (the panel holds k_ranges_mr rows,
   * see q8_conv_indirect_panel_bytes); not where the strided gather, built
   * for MR rows, would then fall back to copies. Zen 5, u8 in, s8 out,
   * paired A/B (median of 30 alternating slots): 14x14x1024:2048 1x1 s2
   * (M = 49) 1.8 % less time. */
  const size_t tall = by_chunks || a_panel || args->strided || m1 - m0 <= mr
                          ? 0 : q8_gemm_tall_rows(uk, k);
  /* Weights of several column blocks: the first row tile of each block is an
   * MR tile, whose weight prefetch brings the block into L2; and every row
   * is gathered once, tile by tile into one buffer (up to
   * Q8_CONV_GATHER_ONCE_BYTES), not once per block (no memory: per block).
   * Zen 5, u8 in, s8 out, paired A/B: 14x14x1024:2048 1x1 s2 (5 blocks)
   * 1.5 % less time; AVX2 level. */
  const bool streamed = n1 - n0 > nc;
  const size_t step = by_chunks ? mc : tall ? tall : mr;
  q8_conv_indirect_args sub = *args;
  unsigned char *gathered = NULL;
  if (streamed && (m1 - m0) * k <= Q8_CONV_GATHER_ONCE_BYTES) {
    gathered = malloc((m1 - m0) * k + Q8_CONV_PANEL_SLACK);
    for (size_t t = 0; gathered && t < m1 - m0; t += mr) {
      sub.panel = gathered + t * k;
      gather(&sub, m0 + t, m1 - m0 - t < mr ? m1 - m0 - t : mr, flip_byte);
    }
  }
  for (size_t nb = n0; nb < n1; nb += nc) {
    const size_t nb_end = nb + nc < n1 ? nb + nc : n1;
    for (size_t m = m0, m_step; m < m1; m += m_step) {
      const bool tall_tile = tall && !(streamed && m == m0);
      m_step = tall && !tall_tile ? mr : step;
      const size_t rows = m1 - m < m_step ? m1 - m : m_step;
      const unsigned char *a = gathered ? gathered + (m - m0) * k : args->panel;
      if (gathered == NULL && !by_chunks) {
        gather(args, m, rows, flip_byte);
      } else if (gathered == NULL) {
        for (size_t t = 0; t < rows; t += mr) {
          sub.panel = args->panel + t * k;
          gather(&sub, m + t, rows - t < mr ? rows - t : mr, flip_byte);
        }
      }
      if (by_chunks) {
        q8_gemm_row_chunk(uk, &tiles, m, rows, a, k, a_dtype, nb, nb_end);
      } else if (tall_tile) {
        q8_gemm_tall_tile(uk, &tiles, m, rows, a, k, a_dtype, nb, nb_end);
      } else {
        q8_gemm_row_tile(uk, &tiles, m, rows, a, k, a_dtype, a_panel, nb, nb_end);
      }
    }
  }
  free(gathered);
  free(a_panel);
}

/* ---- tap-skipping tiles ---------------------------------------------------- */

/* Bit ky * kernel_w + kx for each tap outside rows x cols. */
static uint64_t padded_taps(const q8_conv_shape *s, tap_range rows, tap_range cols) {
  uint64_t mask = 0;
  for (size_t ky = 0; ky < s->kernel_h; ++ky) {
    for (size_t kx = 0; kx < s->kernel_w; ++kx) {
      if (!tap_inside(ky, kx, rows, cols)) mask |= UINT64_C(1) << (ky * s->kernel_w + kx);
    }
  }
  return mask;
}

typedef struct tiling_builder {
  const q8_conv_shape *s;
  size_t out_w;
  unsigned mr;
  const q8_conv_pixel *table;
  tap_range *row_taps, *col_taps; /* per output row / column */
  q8_conv_tiling *t;
  size_t rows_placed;             /* pixels placed in tile order so far */
  size_t ranges_used, sets_cap;
  bool direct;                    /* tiles may read the input in place */
  bool any_skip, any_direct, no_memory;
} tiling_builder;

static size_t skip_set_index(tiling_builder *b, uint64_t skipped) {
  q8_conv_tiling *t = b->t;
  for (size_t i = 0; i < t->skip_sets; ++i) {
    if (t->skipped[i] == skipped) return i;
  }
  if (t->skip_sets == b->sets_cap) {
    const size_t cap = b->sets_cap * 2;
    uint64_t *grown = realloc(t->skipped, cap * sizeof *grown);
    if (grown == NULL) {
      b->no_memory = true;
      return 0;
    }
    t->skipped = grown;
    b->sets_cap = cap;
  }
  t->skipped[t->skip_sets] = skipped;
  return t->skip_sets++;
}

/* The K ranges of the taps not in `skipped`, adjacent taps merged. */
static void add_ranges(tiling_builder *b, q8_conv_tile *tile, uint64_t skipped) {
  const q8_conv_shape *s = b->s;
  const size_t taps = s->kernel_h * s->kernel_w, cg = s->in_channels / s->groups;
  q8_conv_tiling *t = b->t;
  tile->range_first = b->ranges_used;
  size_t first = SIZE_MAX;
  size_t count = 0;
  for (size_t tap = 0; tap <= taps; ++tap) {
    const bool read = tap < taps && !(skipped >> tap & 1u);
    if (read && first == SIZE_MAX) first = tap;
    if (!read && first != SIZE_MAX) {
      t->ranges[tile->range_first + count] =
          (q8_k_range){first * cg, (tap - first) * cg, first * cg};
      ++count;
      first = SIZE_MAX;
    }
  }
  tile->range_count = count;
  b->ranges_used += count;
}

/* A direct tile's ranges: the taps rows x cols that every row reads, in
 * place in the input. Taps adjacent in memory (one group, no horizontal
 * dilation) share a range; a_offset is the input offset from the first
 * read byte, which becomes the tile's a_first (from the first row's anchor). */
static void add_direct_ranges(tiling_builder *b, q8_conv_tile *tile, tap_range rows,
                              tap_range cols, int64_t anchor) {
  const q8_conv_shape *s = b->s;
  const size_t cg = s->in_channels / s->groups;
  const bool merge = s->dilation_w == 1 && s->groups == 1;
  q8_conv_tiling *t = b->t;
  tile->range_first = b->ranges_used;
  size_t count = 0, first_offset = 0;
  for (size_t ky = rows.lo; ky < rows.hi; ++ky) {
    for (size_t kx = cols.lo; kx < cols.hi; kx += merge ? cols.hi - cols.lo : 1) {
      const size_t taps = merge ? cols.hi - cols.lo : 1;
      const size_t offset = (ky * s->dilation_h * s->in_w + kx * s->dilation_w) * s->in_channels;
      if (count == 0) first_offset = offset;
      t->ranges[tile->range_first + count++] =
          (q8_k_range){(ky * s->kernel_w + kx) * cg, taps * cg, offset - first_offset};
    }
  }
  tile->range_count = count;
  tile->a_first = anchor + (int64_t)first_offset;
  b->ranges_used += count;
}

/* One output line: `count` pixels from (y, x), `step` pixels apart in the
 * table (1 along a row, out_w down a column), cut into balanced tiles. */
static void add_line(tiling_builder *b, size_t y, size_t x, size_t count, bool down) {
  if (count == 0 || b->no_memory) return;
  q8_conv_tiling *t = b->t;
  const size_t tiles = (count + b->mr - 1) / b->mr;
  const size_t step = down ? b->out_w : 1;
  size_t done = 0;
  for (size_t i = 0; i < tiles; ++i) {
    const size_t rows = count / tiles + (i < count % tiles ? 1 : 0);
    q8_conv_tile *tile = &t->tiles[t->count++];
    const size_t p0 = y * b->out_w + x + done * step;
    *tile = (q8_conv_tile){.first = b->rows_placed, .rows = rows, .out_pixel = p0,
                           .out_step = step};
    uint64_t skipped = ~UINT64_C(0), padded = 0;
    for (size_t r = 0; r < rows; ++r) {
      const size_t p = p0 + r * step;
      const size_t py = p / b->out_w, px = p % b->out_w;
      const uint64_t mask = padded_taps(b->s, b->row_taps[py], b->col_taps[px]);
      skipped &= mask;
      padded |= mask;
      t->pixels[b->rows_placed++] = b->table[p];
    }
    if (skipped) b->any_skip = true;
    tile->skip_set = skip_set_index(b, skipped);
    const tap_range taps_y = b->row_taps[p0 / b->out_w], taps_x = b->col_taps[p0 % b->out_w];
    /* In place when every row reads the same taps (and some). */
    tile->direct = b->direct && skipped == padded && taps_y.lo < taps_y.hi && taps_x.lo < taps_x.hi;
    if (tile->direct) {
      b->any_direct = true;
      tile->a_stride = rows > 1 ? (size_t)(b->table[p0 + step].anchor - b->table[p0].anchor) : 0;
      add_direct_ranges(b, tile, taps_y, taps_x, b->table[p0].anchor);
    } else {
      add_ranges(b, tile, skipped);
    }
    done += rows;
  }
}

void q8_conv_tiling_free(q8_conv_tiling *t) {
  free(t->tiles);
  free(t->pixels);
  free(t->ranges);
  free(t->skipped);
  *t = (q8_conv_tiling){0};
}

bool q8_conv_tiling_build(const q8_conv_shape *s, size_t out_h, size_t out_w, unsigned mr,
                          const q8_conv_pixel *pixels, bool direct, q8_conv_tiling *out) {
  *out = (q8_conv_tiling){0};
  const size_t taps = s->kernel_h * s->kernel_w, image = out_h * out_w;
  /* A line of n pixels makes ceil(n / mr) <= n / mr + 1 tiles, and there
   * are at most 2 out_h + out_w lines (padded rows, padded columns, interior
   * rows); each tile has at most one K range per tap. Both arrays are
   * shrunk to what is used at the end. */
  const size_t max_tiles = image / mr + 2 * out_h + out_w + 1;
  tiling_builder b = {.s = s, .out_w = out_w, .mr = mr, .table = pixels, .t = out,
                      .sets_cap = 8, .direct = direct};
  b.row_taps = malloc(out_h * sizeof *b.row_taps);
  b.col_taps = malloc(out_w * sizeof *b.col_taps);
  out->tiles = malloc(max_tiles * sizeof *out->tiles);
  out->pixels = malloc(image * sizeof *out->pixels);
  out->ranges = malloc(max_tiles * taps * sizeof *out->ranges);
  out->skipped = malloc(b.sets_cap * sizeof *out->skipped);
  bool ok = b.row_taps && b.col_taps && out->tiles && out->pixels && out->ranges && out->skipped;
  if (ok) {
    out->skipped[0] = 0; /* set 0: nothing skipped */
    out->skip_sets = 1;
    size_t y0, y1, x0, x1; /* unpadded rows [y0, y1), columns [x0, x1) */
    axis_taps(out_h, s->stride_h, s->pad_top, s->kernel_h, s->dilation_h, s->in_h, b.row_taps,
              &y0, &y1);
    axis_taps(out_w, s->stride_w, s->pad_left, s->kernel_w, s->dilation_w, s->in_w, b.col_taps,
              &x0, &x1);
    for (size_t y = 0; y < out_h; ++y) {
      if (y < y0 || y >= y1) add_line(&b, y, 0, out_w, false);
    }
    for (size_t x = 0; x < out_w; ++x) {
      if (x < x0 || x >= x1) add_line(&b, y0, x, y1 - y0, true);
    }
    for (size_t y = y0; y < y1; ++y) add_line(&b, y, x0, x1 - x0, false);
    ok = !b.no_memory;
  }
  free(b.row_taps);
  free(b.col_taps);
  /* Without padding to skip, reading in place must not cost many more tiles
   * than consecutive pixels make (lines cut into MR-pixel tiles: a 28-pixel
   * row takes 4 where 3.5 would do, and every tile streams the weights). */
  const size_t plain_tiles = (image + mr - 1) / mr;
  const bool worth_it = b.any_skip || (b.any_direct && out->count * 16 <= plain_tiles * 17);
  if (!ok || !worth_it) {
    q8_conv_tiling_free(out);
    return ok;
  }
  q8_k_range *fit = realloc(out->ranges, (b.ranges_used ? b.ranges_used : 1) * sizeof *fit);
  if (fit) out->ranges = fit;
  q8_conv_tile *tiles_fit = realloc(out->tiles, out->count * sizeof *tiles_fit);
  if (tiles_fit) out->tiles = tiles_fit;
  return true;
}

void q8_conv_indirect_tiled(const q8_gemm_ukernel *uk, const q8_conv_indirect_args *args,
                            const q8_conv_tiling *tiling, const int32_t *col_adjust,
                            size_t adjust_stride, size_t t0, size_t t1, size_t n0, size_t n1) {
  const size_t nr = uk->nr, k = args->panel_stride;
  const size_t nc = args->nc >= nr ? args->nc / nr * nr : nr;
  const bool flip = q8_gemm_a_offset(uk, args->in_dtype) != 0;
  const uint8_t flip_byte = flip ? 0x80u : 0u;
  const q8_conv_gather_fn gather = args->gather ? args->gather : q8_conv_gather;
  const size_t block = q8_gemm_block_bytes(uk->nr, uk->kr, k);
  const size_t c_elem = args->rq ? 1 : sizeof(int32_t);
  q8_conv_indirect_args ordered = *args;
  ordered.pixels = tiling->pixels;
  q8_requant_params rq_tile;
  /* Kernels with an A panel (AVX2) read the ranges from it. */
  const q8_dtype a_dtype = kernel_a_dtype(uk, args->in_dtype);
  void *a_panel = q8_gemm_a_panel_new(uk, k);
  const void *a = a_panel ? a_panel : args->panel;
  /* No memory for that panel: run every tap over the gathered rows (their
   * padded bytes are in place, col_term accounts for them). */
  const bool all_taps = uk->pack_a != NULL && a_panel == NULL;
  for (size_t nb = n0; nb < n1; nb += nc) {
    const size_t nb_end = nb + nc < n1 ? nb + nc : n1;
    for (size_t t = t0; t < t1; ++t) {
      const size_t image = t / tiling->count;
      const q8_conv_tile *tile = &tiling->tiles[t % tiling->count];
      const void *a_tile = a;
      size_t a_stride = k;
      if (tile->direct) {
        /* The receptive fields in place: no gather. */
        a_tile = (const unsigned char *)args->input + image * args->image_bytes + tile->a_first;
        a_stride = tile->a_stride;
      } else {
        gather(&ordered, image * args->image_pixels + tile->first, tile->rows, flip_byte);
        if (a_panel) uk->pack_a(tile->rows, k, args->panel, k, a_dtype, a_panel);
      }
      const q8_k_range *ranges = tiling->ranges + tile->range_first;
      const int32_t *adjust =
          col_adjust && tile->skip_set ? col_adjust + tile->skip_set * adjust_stride : NULL;
      unsigned char *c_row = (unsigned char *)args->c +
                             (image * args->image_pixels + tile->out_pixel) * args->ldc * c_elem;
      const size_t c_stride = tile->out_step * args->ldc * c_elem;
      for (size_t n = nb; n < nb_end; n += nr) {
        const size_t cols = nb_end - n < nr ? nb_end - n : nr;
        const void *packed = (const unsigned char *)args->packed + (n / nr) * block;
        const q8_requant_params *rq = q8_requant_params_at(args->rq, n, &rq_tile);
        if (all_taps) {
          uk->run(tile->rows, cols, k, args->panel, k, a_dtype, packed, c_row + n * c_elem,
                  c_stride, rq);
        } else {
          uk->run_k_ranges(tile->rows, cols, ranges, tile->range_count, a_tile, a_stride,
                           a_dtype, packed,
                           adjust ? adjust + n : NULL, c_row + n * c_elem, c_stride, rq);
        }
      }
    }
  }
  free(a_panel);
}

/* ---- kernel-row windows ------------------------------------------------------ */

size_t q8_conv_window_bytes(const q8_gemm_ukernel *uk, const q8_conv_shape *s) {
  return (s->kernel_w * s->in_channels + uk->kr - 1) / uk->kr * uk->kr;
}

bool q8_conv_windows_suit(const q8_gemm_ukernel *uk, const q8_conv_shape *s) {
  if (s->groups != 1 || s->dilation_w != 1 || uk->run_k_ranges == NULL || uk->pack_a != NULL ||
      s->in_channels % uk->kr == 0) {
    return false;
  }
  const size_t windows_k = s->kernel_h * q8_conv_window_bytes(uk, s);
  const size_t gathered_k =
      q8_conv_indirect_panel_stride(uk, s->kernel_h * s->kernel_w * s->in_channels);
  return 3 * windows_k <= 4 * gathered_k;
}

void q8_conv_windows_weights(const q8_conv_shape *s, size_t window, const int8_t *ohwi,
                             int8_t *out) {
  const size_t row = s->kernel_w * s->in_channels;
  for (size_t i = 0; i < s->out_channels * s->kernel_h; ++i) {
    memcpy(out + i * window, ohwi + i * row, row);
    memset(out + i * window + row, 0, window - row);
  }
}

/* A buffer row: the padded input row, plus the KR - 1 bytes the last window
 * may read past it, rounded up to a cache line. */
static size_t window_row_stride(const q8_gemm_ukernel *uk, const q8_conv_shape *s) {
  const size_t padded = (s->pad_left + s->in_w + s->pad_right) * s->in_channels;
  return (padded + uk->kr + 63) / 64 * 64;
}

/* The K ranges (kernel_h of them) first, then the rows. */
static size_t window_ranges_bytes(const q8_conv_shape *s) {
  return (s->kernel_h * sizeof(q8_k_range) + 63) / 64 * 64;
}

size_t q8_conv_windows_buffer_bytes(const q8_gemm_ukernel *uk, const q8_conv_shape *s) {
  return window_ranges_bytes(s) + s->kernel_h * window_row_stride(uk, s);
}

void q8_conv_windows(const q8_gemm_ukernel *uk, const q8_conv_windows_args *args, size_t l0,
                     size_t l1, size_t n0, size_t n1) {
  const q8_conv_shape *s = args->shape;
  const size_t mr = uk->mr, nr = uk->nr, ch = s->in_channels;
  const size_t nc = args->nc >= nr ? args->nc / nr * nr : nr;
  const bool flip = q8_gemm_a_offset(uk, args->in_dtype) != 0;
  const uint8_t flip_byte = flip ? 0x80u : 0u;
  const q8_dtype a_dtype = kernel_a_dtype(uk, args->in_dtype);
  const unsigned char pad = (unsigned char)((uint8_t)args->in_zero_point ^ flip_byte);
  const size_t row_stride = window_row_stride(uk, s), in_row = s->in_w * ch;
  const size_t left = s->pad_left * ch;
  const size_t window = q8_conv_window_bytes(uk, s), k = s->kernel_h * window;
  const size_t block = q8_gemm_block_bytes(uk->nr, uk->kr, k);
  const size_t c_elem = args->rq ? 1 : sizeof(int32_t);
  const size_t ldc = s->out_channels * c_elem, a_stride = s->stride_w * ch;
  q8_k_range *ranges = (q8_k_range *)(void *)args->buffer;
  unsigned char *rows = args->buffer + window_ranges_bytes(s);
  for (size_t ky = 0; ky < s->kernel_h; ++ky) {
    ranges[ky] = (q8_k_range){ky * window, window, ky * row_stride};
  }
  q8_requant_params rq_tile;
  for (size_t nb = n0; nb < n1; nb += nc) {
    const size_t nb_end = nb + nc < n1 ? nb + nc : n1;
    for (size_t l = l0; l < l1; ++l) {
      const size_t image = l / args->out_h, y = l % args->out_h;
      const unsigned char *in =
          (const unsigned char *)args->input + image * s->in_h * in_row;
      for (size_t ky = 0; ky < s->kernel_h; ++ky) {
        unsigned char *dst = rows + ky * row_stride;
        const int64_t iy = (int64_t)(y * s->stride_h + ky * s->dilation_h) - (int64_t)s->pad_top;
        if (iy < 0 || iy >= (int64_t)s->in_h) {
          memset(dst, pad, row_stride);
          continue;
        }
        memset(dst, pad, left);
        q8_copy_flip(dst + left, in + (size_t)iy * in_row, in_row, flip_byte);
        memset(dst + left + in_row, pad, row_stride - left - in_row);
      }
      unsigned char *c_line = (unsigned char *)args->c + l * args->out_w * ldc;
      for (size_t n = nb; n < nb_end; n += nr) {
        const size_t cols = nb_end - n < nr ? nb_end - n : nr;
        const void *packed = (const unsigned char *)args->packed + (n / nr) * block;
        const q8_requant_params *rq = q8_requant_params_at(args->rq, n, &rq_tile);
        unsigned char *c_tile = c_line + n * c_elem;
        if (uk->run_rows_k_ranges) {
          uk->run_rows_k_ranges(args->out_w, cols, ranges, s->kernel_h, rows, a_stride, a_dtype,
                                packed, c_tile, ldc, rq);
          continue;
        }
        for (size_t x = 0; x < args->out_w; x += mr) {
          const size_t tile_rows = args->out_w - x < mr ? args->out_w - x : mr;
          uk->run_k_ranges(tile_rows, cols, ranges, s->kernel_h, rows + x * a_stride, a_stride,
                           a_dtype, packed, NULL, c_tile + x * ldc, ldc, rq);
        }
      }
    }
  }
}
