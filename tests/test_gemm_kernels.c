/* checkasm-style tests of every GEMM micro-kernel in the registry that this
 * CPU can run, against q8_ref_gemm with exact equality: tails in m, n and k,
 * both activation types, every output type and requantization mode, per-tensor
 * and per-channel, clamps, extreme values, unaligned and strided pointers,
 * guard bytes. Also the blocked driver and the threaded plan. */
#define _POSIX_C_SOURCE 200809L /* setenv, fork */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dispatch/registry.h"
#include "tests/support/q8test.h"

/* ---- a plain C micro-kernel with an awkward tile, to test the driver and
 * the packed layout on any machine (MR 3, NR 5, KR 3: nothing divides). ---- */
static void odd_run(size_t mr, size_t nr, size_t k, const void *a, size_t a_stride,
                    q8_dtype a_dtype, const void *packed, void *c, size_t c_stride,
                    const q8_requant_params *rq) {
  /* Blocks of an odd tile are not 4-byte multiples: read col_term by memcpy. */
  const int8_t *w = (const int8_t *)packed + 5 * sizeof(int32_t);
  for (size_t i = 0; i < mr; ++i) {
    for (size_t j = 0; j < nr; ++j) {
      int32_t term;
      memcpy(&term, (const unsigned char *)packed + j * sizeof(int32_t), sizeof term);
      uint32_t acc = (uint32_t)term;
      for (size_t q = 0; q < k; ++q) {
        const uint8_t *row = (const uint8_t *)a + i * a_stride;
        const int32_t av = a_dtype == Q8_UINT8 ? row[q] : (int8_t)row[q];
        acc += (uint32_t)(av * w[((q / 3) * 5 + j) * 3 + q % 3]);
      }
      unsigned char *out = (unsigned char *)c + i * c_stride;
      if (rq == NULL) {
        const int32_t v = (int32_t)acc;
        memcpy(out + j * 4, &v, 4);
      } else {
        out[j] = (unsigned char)q8_ref_requantize_one((int32_t)acc, rq, rq->channels == 1 ? 0 : j);
      }
    }
  }
}
static const q8_gemm_ukernel odd_kernel = {"q8_gemm_x8s8_3x5c3__testc", 3, 5, 3, 0,
                                           q8_gemm_pack_nrkr, odd_run, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0};

#define Q8T_COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct tcase {
  size_t m, n, k;
  q8_dtype a_dtype, out;  /* out: Q8_INT32 or 8-bit */
  q8_requant_mode mode;
  bool per_channel, clamp;
  int fill;               /* 0 random, -1 all minimum, +1 all maximum,
                           * 2 raw sign extremes: A -128 (int8) or 255 (uint8), W -128, za 0 */
  bool tight;             /* lda = k and ldc = n (rows back to back), else a few bytes more */
  bool a_page_end;        /* A's last byte is the last before an inaccessible page */
} tcase;

static int32_t rnd_a(q8t_rng *r, q8_dtype dt, int fill) {
  const int lo = dt == Q8_UINT8 ? 0 : -128, hi = dt == Q8_UINT8 ? 255 : 127;
  return fill == 0 ? q8t_range(r, lo, hi) : fill < 0 ? lo : hi;
}

/* One tile through run, or (panel) through the kernel's pack_a + run_panel,
 * with guard bytes after the panel to catch pack_a writing past its size. */
static void run_tile(const q8_gemm_ukernel *uk, bool panel, size_t m, size_t n, size_t k,
                     const void *a, size_t lda, q8_dtype a_dtype, const void *packed, void *c,
                     size_t c_stride, const q8_requant_params *rq) {
  if (!panel) {
    uk->run(m, n, k, a, lda, a_dtype, packed, c, c_stride, rq);
    return;
  }
  const size_t bytes = (uk->a_panel_bytes(k) + 63) / 64 * 64;
  unsigned char *buf = aligned_alloc(64, bytes + 64);
  cr_assert_not_null(buf);
  memset(buf, Q8T_GUARD_BYTE, bytes + 64);
  uk->pack_a(m, k, a, lda, a_dtype, buf);
  uk->run_panel(m, n, k, buf, packed, c, c_stride, rq);
  for (size_t i = bytes; i < bytes + 64; ++i) {
    cr_assert_eq(buf[i], Q8T_GUARD_BYTE, "%s: pack_a wrote past a_panel_bytes(%zu) = %zu", uk->name,
                 k, uk->a_panel_bytes(k));
  }
  free(buf);
}

static bool has_panel(const q8_gemm_ukernel *uk) {
  return uk->pack_a != NULL && uk->run_panel != NULL && uk->a_panel_bytes != NULL;
}

/* Runs uk on one tile (or, with nc, through q8_gemm_blocked) and compares
 * every byte with the reference. Returns false on the first mismatch. */
static void check_tile(const q8_gemm_ukernel *uk, q8t_rng *r, const tcase *t, size_t nc) {
  const size_t lda = t->k + (t->tight ? 0 : (size_t)q8t_range(r, 0, 5));
  const size_t esize = t->out == Q8_INT32 ? 4 : 1;
  const size_t ldc = t->n + (t->tight ? 0 : (size_t)q8t_range(r, 0, 3));
  q8t_buf abuf = q8t_buf_new(t->m * lda, (size_t)q8t_range(r, 0, 15));
  q8t_page_end a_end = {0};
  if (t->a_page_end) a_end = q8t_page_end_new(t->m * lda);
  unsigned char *const a_data = t->a_page_end ? a_end.data : abuf.data;
  const bool raw = t->fill == 2;
  for (size_t i = 0; i < t->m * lda; ++i) {
    a_data[i] = raw ? (t->a_dtype == Q8_INT8 ? 0x80u : 0xFFu) : (unsigned char)rnd_a(r, t->a_dtype, t->fill);
  }
  int8_t *w = malloc(t->n * t->k);
  for (size_t i = 0; i < t->n * t->k; ++i) w[i] = (int8_t)(t->fill == 0 ? q8t_range(r, -128, 127) : t->fill == -1 ? 127 : -128);
  /* Extreme zero points make |A - za| = 255 with the extreme fills. */
  const int32_t za = raw ? 0 : t->fill == 0 ? rnd_a(r, t->a_dtype, 0) : rnd_a(r, t->a_dtype, -t->fill);
  int32_t *bias = malloc(t->n * sizeof(int32_t));
  for (size_t j = 0; j < t->n; ++j) bias[j] = t->fill ? 0 : q8t_range(r, -100000, 100000);

  const size_t channels = t->per_channel ? t->n : 1;
  int32_t *mult = malloc(channels * sizeof(int32_t)), *shift = malloc(channels * sizeof(int32_t));
  float *scale = malloc(channels * sizeof(float)), *wscale = malloc(channels * sizeof(float));
  q8_requant_params rq;
  if (t->out != Q8_INT32) {
    for (size_t c = 0; c < channels; ++c) wscale[c] = q8t_uniform(r, 1e-4f, 4e-2f);
    const bool u8 = t->out == Q8_UINT8;
    const int32_t zp = u8 ? q8t_range(r, 0, 255) : q8t_range(r, -128, 127);
    int32_t qmin = u8 ? 0 : -128, qmax = u8 ? 255 : 127;
    if (t->clamp) {
      qmin = zp;
      qmax = zp + 40 > (u8 ? 255 : 127) ? (u8 ? 255 : 127) : zp + 40;
    }
    cr_assert_eq(q8_requant_params_init(&rq, t->mode, channels, 0.02f, wscale, 0.1f, t->out, zp,
                                        qmin, qmax, mult, shift, scale), Q8_OK, "%s", q8_error_detail());
  }
  const q8_requant_params *rqp = t->out == Q8_INT32 ? NULL : &rq;

  int32_t *col_term = malloc(t->n * sizeof(int32_t));
  const int32_t offset = q8_gemm_a_offset(uk, t->a_dtype);
  q8_gemm_col_terms(t->n, t->k, w, bias, za, offset, col_term);
  void *packed = malloc(q8_gemm_packed_bytes(uk->nr, uk->kr, t->n, t->k));
  uk->pack(uk->nr, uk->kr, t->n, t->k, w, col_term, packed);

  unsigned char *want = malloc(t->m * ldc * esize);
  memset(want, Q8T_GUARD_BYTE, t->m * ldc * esize);
  cr_assert_eq(q8_ref_gemm(t->m, t->n, t->k, a_data, lda, t->a_dtype, za, w, t->k, NULL, bias, rqp,
                           want, ldc), Q8_OK);
  /* A single tile runs through run and, where the kernel has one, through its
   * A panel; the blocked driver picks the panel itself. run_rows (where the
   * kernel has it) takes any number of rows, so it also gets this case. */
  /* With column blocks (nc), the blocked driver runs twice: as it chunks
   * rows by itself, and with chunks of A of mc_bytes (as the plans give for
   * requantized output), 3 row tiles here, so a tall case takes many chunks
   * and a partial one. */
  enum { VIA_RUN, VIA_PANEL, VIA_ROWS, VIA_CHUNKS, VIA_COLS };
  for (int via = VIA_RUN; via <= VIA_COLS; ++via) {
    /* run_cols (where the kernel has it) takes one row tile over any n. */
    if (via == VIA_COLS && (nc != 0 || uk->run_cols == NULL || t->m > uk->mr)) continue;
    if (via == VIA_PANEL && (nc != 0 || !has_panel(uk))) continue;
    if (via == VIA_ROWS && (nc != 0 || uk->run_rows == NULL)) continue;
    if (via == VIA_CHUNKS && (nc == 0 || uk->run_rows == NULL)) continue;
    /* run and the panel take one tile; run, the panel and run_rows one
     * column tile. */
    if ((via == VIA_RUN || via == VIA_PANEL) && nc == 0 && t->m > uk->mr) continue;
    if (via != VIA_COLS && nc == 0 && t->n > uk->nr) continue;
    const bool panel = via == VIA_PANEL;
    q8t_buf cbuf = q8t_buf_new(t->m * ldc * esize, esize == 4 ? 4 * (size_t)q8t_range(r, 0, 3) : (size_t)q8t_range(r, 0, 15));
    if (via == VIA_COLS) {
      uk->run_cols(t->m, t->n, t->k, a_data, lda, t->a_dtype, packed, cbuf.data, ldc * esize, rqp);
    } else if (via == VIA_ROWS) {
      uk->run_rows(t->m, t->n, t->k, a_data, lda, t->a_dtype, packed, cbuf.data, ldc * esize, rqp);
    } else if (nc == 0) {
      run_tile(uk, panel, t->m, t->n, t->k, a_data, lda, t->a_dtype, packed, cbuf.data, ldc * esize, rqp);
    } else {
      const q8_gemm_blocked_args args = {.k = t->k, .a = a_data, .lda = lda, .a_dtype = t->a_dtype,
                                         .packed = packed, .c = cbuf.data, .ldc = ldc, .rq = rqp, .nc = nc,
                                         .mc_bytes = via == VIA_CHUNKS ? 3 * uk->mr * t->k + 1 : 0};
      q8_gemm_blocked(uk, &args, 0, t->m, 0, t->n);
    }
    const int cmp = memcmp(cbuf.data, want, t->m * ldc * esize);
    if (cmp != 0) {
      size_t at = 0;
      while (cbuf.data[at] == want[at]) ++at;
      cr_assert_fail("%s%s: m=%zu n=%zu k=%zu a=%s out=%s mode=%d per_channel=%d clamp=%d fill=%d nc=%zu: "
                     "first difference at byte %zu (row %zu): got 0x%02x want 0x%02x",
                     uk->name, panel ? " (A panel)" : via == VIA_ROWS ? " (run_rows)" : via == VIA_CHUNKS ? " (L2 chunks)" : via == VIA_COLS ? " (run_cols)" : "", t->m, t->n, t->k, t->a_dtype == Q8_INT8 ? "s8" : "u8",
                     t->out == Q8_INT32 ? "s32" : t->out == Q8_INT8 ? "s8" : "u8", (int)t->mode,
                     t->per_channel, t->clamp, t->fill, nc, at, at / (ldc * esize), cbuf.data[at], want[at]);
    }
    cr_assert(q8t_buf_guards_ok(&cbuf), "%s wrote outside C (m=%zu n=%zu k=%zu)", uk->name, t->m, t->n, t->k);
    q8t_buf_free(&cbuf);
  }
  cr_assert(q8t_buf_guards_ok(&abuf), "%s wrote into A", uk->name);
  free(want);
  free(packed);
  free(col_term);
  free(mult);
  free(shift);
  free(scale);
  free(wscale);
  free(bias);
  free(w);
  q8t_buf_free(&abuf);
  q8t_page_end_free(&a_end);
}

#if defined(__x86_64__)
/* The AVX-VNNI kernel's source compiled with EVEX vpdpbusd on ymm (AVX-512VL):
 * not registered, but it lets a CPU without AVX-VNNI (Zen 4) test that
 * kernel's logic bit for bit. */
extern const q8_gemm_ukernel q8_gemm_x8s8_6x16c4__avxvnni_emu512;
/* The AMX kernel's source on a scalar model of the tile unit (its epilogue is
 * AVX-512): not registered; without AMX hardware (QEMU does not emulate it)
 * this is what tests that kernel's logic. */
extern const q8_gemm_ukernel q8_gemm_x8s8_32x32c4__amx_emu;
#endif

/* The micro-kernels this CPU can run, plus the test kernels. */
static size_t runnable_ukernels(const q8_gemm_ukernel **out, size_t max) {
  size_t count, n = 0;
  const q8_kernel *all = q8_kernels(&count);
  out[n++] = &odd_kernel;
#if defined(__x86_64__)
  if (q8_isa_usable_on(Q8_ISA_AVX512VNNI, q8_cpu(), NULL)) {
    cr_log_info("testing %s (AVX-VNNI source, EVEX encoding)", q8_gemm_x8s8_6x16c4__avxvnni_emu512.name);
    out[n++] = &q8_gemm_x8s8_6x16c4__avxvnni_emu512;
    cr_log_info("testing %s (AMX source, emulated tile unit)", q8_gemm_x8s8_32x32c4__amx_emu.name);
    out[n++] = &q8_gemm_x8s8_32x32c4__amx_emu;
  }
#endif
  for (size_t i = 0; i < count && n < max; ++i) {
    if (all[i].ukernel == NULL) continue;
    const char *reason = NULL;
    if (q8_isa_usable_on(all[i].isa, q8_cpu(), &reason)) {
      cr_log_info("testing %s", all[i].name);
      out[n++] = all[i].ukernel;
    } else {
      cr_log_info("skipping %s: %s", all[i].name, reason);
    }
  }
  return n;
}

static void sweep_tails(const q8_gemm_ukernel *uk, q8t_rng *r, q8_dtype out, q8_requant_mode mode) {
  const size_t kr = uk->kr;
  const size_t ks[] = {1, 2, kr > 1 ? kr - 1 : 1, kr, kr + 1, 2 * kr, 2 * kr + 1, 7, 13, 31, 61, 127, 258};
  const size_t nrs[] = {1, 2, uk->nr > 1 ? uk->nr - 1 : 1, uk->nr, uk->nr / 2 + 1};
  for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ++ki) {
    for (size_t m = 1; m <= uk->mr; ++m) {
      for (size_t ni = 0; ni < sizeof nrs / sizeof nrs[0]; ++ni) {
        const tcase t = {.m = m, .n = nrs[ni], .k = ks[ki], .a_dtype = (m + ki) % 2 ? Q8_UINT8 : Q8_INT8,
                         .out = out, .mode = mode, .per_channel = (m + ni) % 2, .clamp = ki % 3 == 0};
        check_tile(uk, r, &t, 0);
      }
    }
  }
}


/* A ending right before an inaccessible page, every K tail of the last
 * block: a kernel that reads a byte past a row's k faults. Each path (run,
 * panel, run_rows, run_cols) reads the rows itself. */
Test(gemm_ukernels, a_ending_at_a_page_is_not_read_past) {
  q8t_rng r = q8t_rng_new(71);
  const q8_gemm_ukernel *uks[32];
  const size_t n = runnable_ukernels(uks, 32);
  for (size_t i = 0; i < n; ++i) {
    const size_t ks[] = {1, 3, 5, 24, 31, 33, 61, 100};
    const size_t ms[] = {1, uks[i]->mr};
    for (size_t ki = 0; ki < Q8T_COUNT(ks); ++ki) {
      for (size_t mi = 0; mi < Q8T_COUNT(ms); ++mi) {
        const tcase t = {.m = ms[mi], .n = uks[i]->nr, .k = ks[ki],
                         .a_dtype = ki % 2 ? Q8_UINT8 : Q8_INT8, .out = Q8_INT8,
                         .mode = Q8_REQUANT_FP32, .tight = true, .a_page_end = true};
        check_tile(uks[i], &r, &t, 0);
      }
    }
  }
}
Test(gemm_ukernels, tails_int32_output) {
  q8t_rng r = q8t_rng_new(31);
  const q8_gemm_ukernel *uks[32];
  const size_t n = runnable_ukernels(uks, 32);
  for (size_t i = 0; i < n; ++i) sweep_tails(uks[i], &r, Q8_INT32, Q8_REQUANT_FP32);
}

Test(gemm_ukernels, tails_requant_gemmlowp_int8) {
  q8t_rng r = q8t_rng_new(32);
  const q8_gemm_ukernel *uks[32];
  const size_t n = runnable_ukernels(uks, 32);
  for (size_t i = 0; i < n; ++i) sweep_tails(uks[i], &r, Q8_INT8, Q8_REQUANT_GEMMLOWP);
}

Test(gemm_ukernels, tails_requant_single_uint8) {
  q8t_rng r = q8t_rng_new(33);
  const q8_gemm_ukernel *uks[32];
  const size_t n = runnable_ukernels(uks, 32);
  for (size_t i = 0; i < n; ++i) sweep_tails(uks[i], &r, Q8_UINT8, Q8_REQUANT_SINGLE);
}

Test(gemm_ukernels, tails_requant_fp32_both_types) {
  q8t_rng r = q8t_rng_new(34);
  const q8_gemm_ukernel *uks[32];
  const size_t n = runnable_ukernels(uks, 32);
  for (size_t i = 0; i < n; ++i) {
    sweep_tails(uks[i], &r, Q8_INT8, Q8_REQUANT_FP32);
    sweep_tails(uks[i], &r, Q8_UINT8, Q8_REQUANT_FP32);
  }
}

Test(gemm_ukernels, extreme_values_every_output) {
  q8t_rng r = q8t_rng_new(35);
  const q8_gemm_ukernel *uks[32];
  const size_t n = runnable_ukernels(uks, 32);
  const q8_dtype outs[] = {Q8_INT32, Q8_INT8, Q8_UINT8};
  for (size_t i = 0; i < n; ++i) {
    for (int fill = -1; fill <= 1; fill += 2) {
      for (int dt = 0; dt < 2; ++dt) {
        for (int o = 0; o < 3; ++o) {
          for (int mode = 0; mode < 3; ++mode) {
            const tcase t = {.m = uks[i]->mr, .n = uks[i]->nr, .k = 259, .a_dtype = dt ? Q8_UINT8 : Q8_INT8,
                             .out = outs[o], .mode = (q8_requant_mode)mode, .per_channel = mode == 1, .fill = fill};
            check_tile(uks[i], &r, &t, 0);
            if (o == 0) break; /* int32 output has no mode */
          }
        }
      }
    }
  }
}

Test(gemm_ukernels, largest_k_with_extremes) {
  /* |A - za| = |W - zb| = 255 over Q8_GEMM_MAX_K: the sum is +-2147450625. */
  q8t_rng r = q8t_rng_new(36);
  const q8_gemm_ukernel *uks[32];
  const size_t n = runnable_ukernels(uks, 32);
  for (size_t i = 0; i < n; ++i) {
    for (int dt = 0; dt < 2; ++dt) {
      const tcase t = {.m = 2, .n = 3, .k = Q8_GEMM_MAX_K, .a_dtype = dt ? Q8_UINT8 : Q8_INT8,
                       .out = Q8_INT32, .fill = dt ? 1 : -1};
      check_tile(uks[i], &r, &t, 0);
      const tcase t8 = {.m = 1, .n = uks[i]->nr, .k = Q8_GEMM_MAX_K - 3, .a_dtype = dt ? Q8_INT8 : Q8_UINT8,
                        .out = Q8_INT8, .mode = Q8_REQUANT_GEMMLOWP, .fill = dt ? -1 : 1};
      check_tile(uks[i], &r, &t8, 0);
    }
  }
}

/* The raw operands at their sign extremes with no zero point: -128 x -128
 * (int8) and 255 x -128 (uint8) in every product, the cases where s8 x s8
 * or u8 x s8 multiply-adds could saturate, and where reading uint8 as
 * A - 128 (sdot kernels) meets the largest correction. */
Test(gemm_ukernels, raw_sign_extremes_everywhere) {
  q8t_rng r = q8t_rng_new(38);
  const q8_gemm_ukernel *uks[32];
  const size_t n = runnable_ukernels(uks, 32);
  for (size_t i = 0; i < n; ++i) {
    const size_t ks[] = {1, uks[i]->kr, 259, Q8_GEMM_MAX_K};
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ++ki) {
      for (int dt = 0; dt < 2; ++dt) {
        for (int o = 0; o < 2; ++o) {
          const bool big = ks[ki] == Q8_GEMM_MAX_K;
          const tcase t = {.m = big ? 1 : uks[i]->mr, .n = uks[i]->nr, .k = ks[ki],
                           .a_dtype = dt ? Q8_UINT8 : Q8_INT8, .out = o ? Q8_UINT8 : Q8_INT32,
                           .mode = Q8_REQUANT_GEMMLOWP, .fill = 2};
          check_tile(uks[i], &r, &t, 0);
        }
      }
    }
  }
}

/* ---- -128 x -128 products (armneon) ----------------------------------------
 * The extreme fills above pair A = -128 with W = 127 and A = 127 with W = -128.
 * Two -128 x -128 products (32768) overflow an int16 lane: a kernel summing
 * int8 products in int16 before widening (smull + smlal) fails only here. A
 * and W are drawn from {-128, -127, 0, 127} (uint8 A: {0, 1, 128, 255}), the
 * first row and column all -128 (uint8: 255), zero points at the extremes.
 * With `limits`, A is constant and |A - za| = 255, W columns alternate -128 and
 * 127, and the bias puts every accumulator on INT32_MAX or INT32_MIN. */
static int32_t extreme_value(q8t_rng *r, bool u8, bool first) {
  static const int32_t s8[] = {-128, -127, 0, 127}, u8v[] = {255, 0, 1, 128};
  const int32_t i = first ? 0 : q8t_range(r, 0, 3);
  return u8 ? u8v[i] : s8[i];
}

static void check_extreme_products(const q8_gemm_ukernel *uk, q8t_rng *r, size_t m, size_t n,
                                   size_t k, q8_dtype a_dtype, q8_dtype out, int mode, bool limits) {
  const bool u8 = a_dtype == Q8_UINT8;
  uint8_t *a = malloc(m * k);
  int8_t *w = malloc(n * k);
  int32_t *col_term = malloc(n * sizeof(int32_t)), mult[1], shift[1];
  int32_t *bias = malloc(n * sizeof(int32_t));
  for (size_t i = 0; i < m * k; ++i) a[i] = (uint8_t)extreme_value(r, u8, limits || i < k);
  for (size_t i = 0; i < n * k; ++i) {
    w[i] = (int8_t)(limits ? (i / k % 2 ? 127 : -128) : extreme_value(r, false, i < k));
  }
  const int32_t za = limits ? (u8 ? 0 : 127) : u8 ? (mode % 2 ? 0 : 255) : (mode % 2 ? -128 : 127);
  for (size_t j = 0; j < n; ++j) {
    const int64_t acc = limits ? (int64_t)k * (a[0] - (u8 ? 0 : 256 * (a[0] > 127)) - za) * w[j * k] : 0;
    bias[j] = (int32_t)(limits ? (acc >= 0 ? INT32_MAX : INT32_MIN) - acc : 0);
  }
  q8_gemm_col_terms(n, k, w, bias, za, q8_gemm_a_offset(uk, a_dtype), col_term);
  void *packed = malloc(q8_gemm_packed_bytes(uk->nr, uk->kr, n, k));
  uk->pack(uk->nr, uk->kr, n, k, w, col_term, packed);
  const size_t esize = out == Q8_INT32 ? 4 : 1;
  q8_requant_params rq;
  float wscale = 1e-4f, scale[1];
  cr_assert_eq(q8_requant_params_init(&rq, (q8_requant_mode)mode, 1, 0.01f, &wscale, 0.5f, Q8_INT8,
                                      -3, -128, 127, mult, shift, scale), Q8_OK);
  unsigned char *want = malloc(m * n * esize);
  const q8_requant_params *rqp = out == Q8_INT32 ? NULL : &rq;
  cr_assert_eq(q8_ref_gemm(m, n, k, a, k, a_dtype, za, w, k, NULL, bias, rqp, want, n), Q8_OK);
  if (limits && out == Q8_INT32) {
    int32_t first;
    memcpy(&first, want, sizeof first);
    cr_assert(first == INT32_MAX || first == INT32_MIN, "the accumulator is at an int32 limit");
  }
  for (int panel = 0; panel < (has_panel(uk) ? 2 : 1); ++panel) {
    q8t_buf got = q8t_buf_new(m * n * esize, (size_t)q8t_range(r, 0, 3) * esize);
    run_tile(uk, panel, m, n, k, a, k, a_dtype, packed, got.data, n * esize, rqp);
    cr_assert(memcmp(got.data, want, m * n * esize) == 0,
              "%s%s: extreme products m=%zu n=%zu k=%zu a=%s out=%s mode=%d limits=%d", uk->name,
              panel ? " (A panel)" : "", m, n, k, u8 ? "u8" : "s8", esize == 4 ? "s32" : "s8", mode, limits);
    cr_assert(q8t_buf_guards_ok(&got), "%s wrote outside C", uk->name);
    q8t_buf_free(&got);
  }
  free(want);
  free(packed);
  free(bias);
  free(col_term);
  free(w);
  free(a);
}

Test(gemm_ukernels, minus128_squared_products) {
  q8t_rng r = q8t_rng_new(40);
  const q8_gemm_ukernel *uks[32];
  const size_t count = runnable_ukernels(uks, 32);
  for (size_t i = 0; i < count; ++i) {
    const size_t mr = uks[i]->mr, nr = uks[i]->nr, kr = uks[i]->kr;
    const size_t ks[] = {1, kr + 1, 2 * kr, 67, 1031, 2053, Q8_GEMM_MAX_K};
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ++ki) {
      for (int dt = 0; dt < 2; ++dt) {
        const q8_dtype a_dtype = dt ? Q8_UINT8 : Q8_INT8;
        check_extreme_products(uks[i], &r, mr, nr, ks[ki], a_dtype, Q8_INT32, (int)ki % 2, false);
        check_extreme_products(uks[i], &r, mr, nr, ks[ki], a_dtype, Q8_INT32, 0, true);
        for (int mode = 0; mode < 3; ++mode) {
          check_extreme_products(uks[i], &r, mr, nr, ks[ki], a_dtype, Q8_INT8, mode, true);
          if (ks[ki] > 2053) continue; /* the random values: requantization does not depend on k */
          check_extreme_products(uks[i], &r, ki % 2 ? mr : 1, ki % 2 || nr == 1 ? nr : nr - 1,
                                 ks[ki], a_dtype, Q8_INT8, mode, false);
        }
      }
    }
  }
}
/* ---- end of -128 x -128 products (armneon) ---- */

Test(gemm_ukernels, blocked_driver_over_many_tiles) {
  q8t_rng r = q8t_rng_new(37);
  const q8_gemm_ukernel *uks[32];
  const size_t n = runnable_ukernels(uks, 32);
  for (size_t i = 0; i < n; ++i) {
    const size_t mr = uks[i]->mr, nr = uks[i]->nr;
    /* {3001, ...}: run_rows chunks of up to 64 KiB of A and output (q8_gemm_chunk_rows),
     * several of them and a partial one. The last four: tall row tiles where
     * the kernel has them (q8_gemm_tall_rows), a ragged last one, the first
     * of each column block an MR tile; the depth at the tall tiles' A limit
     * and just past it (MR tiles again). The last two: N at the eighth over
     * nc the driver keeps as one block (nc 2 NR), and one column past it (nc
     * NR: two blocks). */
    const size_t shapes[][3] = {{2 * mr + 1, 3 * nr + 2, 33}, {mr * 4, nr * 5, 64}, {1, 7 * nr - 1, 100}, {37, 41, 17},
                                {3001, nr + 3, 12}, {49, 3 * nr + 5, 2048}, {mr + 1, 2 * nr, 64},
                                {29, nr + 1, 2340}, {30, 2 * nr + 1, 2344}, {2 * mr + 3, 2 * nr + 2 * nr / 8, 40},
                                {2 * mr + 3, nr + nr / 8 + 1, 40}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
      for (int o = 0; o < 2; ++o) {
        const tcase t = {.m = shapes[s][0], .n = shapes[s][1], .k = shapes[s][2], .a_dtype = s % 2 ? Q8_UINT8 : Q8_INT8,
                         .out = o ? Q8_INT8 : Q8_INT32, .mode = (q8_requant_mode)(s % 3), .per_channel = true};
        check_tile(uks[i], &r, &t, 0 == s % 2 ? nr : 2 * nr); /* small column blocks: many of them */
        if (s >= 5) check_tile(uks[i], &r, &t, 1024 * nr);  /* one block: every row tile tall */
      }
    }
  }
}


/* Every (m, n, k) of the three lists on uk, the other fields of the case
 * cycling with its number: activation and output type, mode, per-channel,
 * clamp, extreme and raw fills, tight or padded strides. With nc, every third
 * case also runs through the blocked driver with column blocks of nc. */
static void sweep_grid(const q8_gemm_ukernel *uk, q8t_rng *r, const size_t *ms, size_t nms,
                       const size_t *ns, size_t nns, const size_t *ks, size_t nks, size_t nc) {
  const q8_dtype outs[] = {Q8_INT32, Q8_INT8, Q8_UINT8};
  size_t count = 0;
  for (size_t mi = 0; mi < nms; ++mi) {
    for (size_t ni = 0; ni < nns; ++ni) {
      for (size_t ki = 0; ki < nks; ++ki, ++count) {
        const tcase t = {.m = ms[mi], .n = ns[ni], .k = ks[ki],
                         .a_dtype = count % 5 == 0 ? Q8_INT8 : Q8_UINT8,
                         .out = outs[count % 3], .mode = (q8_requant_mode)(count / 3 % 3),
                         .per_channel = count % 2, .clamp = count % 7 == 0,
                         .fill = count % 11 == 0 ? -1 : count % 13 == 0 ? 1 : count % 17 == 0 ? 2 : 0,
                         .tight = count % 4 != 3};
        check_tile(uk, r, &t, 0);
        if (nc != 0 && count % 3 == 0) check_tile(uk, r, &t, nc);
      }
    }
  }
}

/* run_rows over many row tiles and a row tail, at every output type and
 * mode, with rows back to back (the kernel's contiguous-output path) and
 * with padded strides, full and partial column tiles, extreme values. */
Test(gemm_ukernels, run_rows_over_many_row_tiles) {
  q8t_rng r = q8t_rng_new(39);
  const q8_gemm_ukernel *uks[32];
  const size_t n = runnable_ukernels(uks, 32);
  bool any = false;
  for (size_t i = 0; i < n; ++i) {
    if (uks[i]->run_rows == NULL) continue;
    any = true;
    const size_t mr = uks[i]->mr, nr = uks[i]->nr;
    const size_t ms[] = {mr, mr + 1, 2 * mr, 3 * mr - 1, 5 * mr + 3, 37, 101};
    const size_t ns[] = {1, nr / 2 - 1, nr / 2, nr / 2 + 1, nr - 1, nr};
    const size_t ks[] = {1, 3, 4, 16, 32, 61, 258};
    sweep_grid(uks[i], &r, ms, Q8T_COUNT(ms), ns, Q8T_COUNT(ns), ks, Q8T_COUNT(ks), 0);
  }
  if (!any) cr_log_info("no runnable kernel has run_rows: nothing to test here");
}

/* run_cols over many column tiles and a column tail (pairs of tiles and an
 * odd one, for the kernels that pair them), one row (the batch-1 GEMV) and
 * more; also through the blocked driver with column blocks of three tiles
 * (a pair and one in each block). */
Test(gemm_ukernels, run_cols_over_many_column_tiles) {
  q8t_rng r = q8t_rng_new(53);
  const q8_gemm_ukernel *uks[32];
  const size_t n = runnable_ukernels(uks, 32);
  size_t tested = 0;
  for (size_t i = 0; i < n; ++i) {
    if (uks[i]->run_cols == NULL) continue;
    ++tested;
    const size_t mr = uks[i]->mr, nr = uks[i]->nr;
    const size_t ms[] = {1, 1, 2, mr - 1 ? mr - 1 : 1, mr};
    const size_t ns[] = {1, nr - 1, nr, nr + 1, 2 * nr - 1, 2 * nr, 2 * nr + 1, 3 * nr + 5, 4 * nr, 97, 131};
    const size_t ks[] = {1, 3, 4, 5, 16, 61, 258};
    sweep_grid(uks[i], &r, ms, Q8T_COUNT(ms), ns, Q8T_COUNT(ns), ks, Q8T_COUNT(ks), 3 * nr);
  }
  if (tested == 0) cr_log_info("no runnable kernel has run_cols: nothing to test here");
  cr_log_info("run_cols tested on %zu kernels", tested);
}

/* run_k_ranges over random K ranges (and none) equals the reference GEMM
 * over A with the bytes outside the ranges zeroed, zero point 0 and
 * col_term + col_adjust as the bias (with offset 0, col_term is the bias);
 * A's bytes outside the ranges are random, so reading one shows. fill: 0
 * random, -1 / +1 A at its minimum / maximum with every weight -128. */
static void check_k_ranges(const q8_gemm_ukernel *uk, q8t_rng *r, size_t m, size_t n, size_t k,
                           q8_dtype out, bool adjust, int fill, bool via_rows) {
  /* A as the kernel reads it as is: the type whose offset is 0. */
  q8_dtype native = uk->uint8_a_offset == 0 ? Q8_UINT8 : Q8_INT8;
  if (uk->uint8_a_offset == 0 && uk->int8_a_offset == 0 && q8t_range(r, 0, 1)) native = Q8_INT8;
  const size_t kr = uk->kr, groups = k / kr;
  /* Panel kernels read A laid out along K (a_offset = begin); the others
   * get each range at its own offset, unaligned gaps between them. */
  const bool along_k = has_panel(uk);
  q8_k_range ranges[64];
  size_t nranges = 0, row_bytes = k;
  for (size_t g = 0, gap = 0; g < groups;) {
    size_t len = (size_t)q8t_range(r, 1, 5);
    if (len > groups - g) len = groups - g;
    if (q8t_range(r, 0, 2) != 0 && nranges < 64) { /* two of three runs read */
      if (!along_k) gap += (size_t)q8t_range(r, 0, 9);
      ranges[nranges++] = (q8_k_range){g * kr, len * kr, g * kr + gap};
      if (g * kr + gap + len * kr > row_bytes) row_bytes = g * kr + gap + len * kr;
    }
    g += len;
  }
  const size_t lda = row_bytes + (size_t)q8t_range(r, 0, 7);
  q8t_buf a = q8t_buf_new(m * lda, (size_t)q8t_range(r, 0, 15));
  for (size_t i = 0; i < m * lda; ++i) {
    a.data[i] = fill == 0 ? (unsigned char)q8t_range(r, 0, 255) : (unsigned char)rnd_a(r, native, fill);
  }
  /* The same rows along K for the reference, zero outside the ranges. */
  unsigned char *zeroed = calloc(m * k, 1);
  for (size_t row = 0; row < m; ++row) {
    for (size_t i = 0; i < nranges; ++i) {
      memcpy(zeroed + row * k + ranges[i].begin, a.data + row * lda + ranges[i].a_offset,
             ranges[i].len);
    }
  }
  int8_t *w = malloc(n * k);
  for (size_t i = 0; i < n * k; ++i) w[i] = (int8_t)(fill == 0 ? q8t_range(r, -128, 127) : -128);
  int32_t *col_term = malloc(n * sizeof(int32_t)), *folded = malloc(n * sizeof(int32_t));
  int32_t *col_adjust = adjust ? malloc(n * sizeof(int32_t)) : NULL; /* exactly nr entries */
  for (size_t j = 0; j < n; ++j) {
    col_term[j] = q8t_range(r, -2000000, 2000000);
    if (col_adjust) col_adjust[j] = q8t_range(r, -2000000, 2000000);
    folded[j] = col_term[j] + (col_adjust ? col_adjust[j] : 0);
  }
  void *packed = malloc(q8_gemm_packed_bytes(uk->nr, kr, n, k));
  uk->pack(uk->nr, kr, n, k, w, col_term, packed);
  int32_t mult[64], shift[64];
  float scale[64], wscale[64];
  for (size_t c = 0; c < n; ++c) wscale[c] = q8t_uniform(r, 1e-5f, 1e-3f);
  q8_requant_params rq;
  if (out != Q8_INT32) {
    cr_assert_eq(q8_requant_params_init(&rq, (q8_requant_mode)q8t_range(r, 0, 2), n, 0.02f, wscale,
                                        0.1f, out, 5, out == Q8_UINT8 ? 0 : -128,
                                        out == Q8_UINT8 ? 255 : 127, mult, shift, scale),
                 Q8_OK, "%s", q8_error_detail());
  }
  const q8_requant_params *rqp = out == Q8_INT32 ? NULL : &rq;
  const size_t esize = out == Q8_INT32 ? 4 : 1, ldc = n + (size_t)q8t_range(r, 0, 3);
  q8t_buf got = q8t_buf_new(m * ldc * esize, esize == 4 ? 4 : (size_t)q8t_range(r, 0, 15));
  q8t_buf want = q8t_buf_new(m * ldc * esize, esize == 4 ? 4 : 0);
  memcpy(want.data, got.data, m * ldc * esize); /* same bytes between the rows */
  /* Kernels with an A panel read the ranges from the panel of the rows. */
  void *panel = NULL;
  if (has_panel(uk)) {
    const size_t panel_bytes = (uk->a_panel_bytes(k) + 63) / 64 * 64;
    panel = aligned_alloc(64, panel_bytes);
    cr_assert_not_null(panel);
    uk->pack_a(m, k, a.data, lda, native, panel);
  }
  if (via_rows) { /* any m, no col_adjust */
    uk->run_rows_k_ranges(m, n, ranges, nranges, a.data, lda, native, packed, got.data,
                          ldc * esize, rqp);
  } else {
    uk->run_k_ranges(m, n, ranges, nranges, panel ? panel : a.data, lda, native, packed,
                     col_adjust, got.data, ldc * esize, rqp);
  }
  free(panel);
  cr_assert_eq(q8_ref_gemm(m, n, k, zeroed, k, native, 0, w, k, NULL, folded, rqp, want.data, ldc),
               Q8_OK);
  cr_assert(memcmp(got.data, want.data, m * ldc * esize) == 0,
            "%s %s: m=%zu n=%zu k=%zu, %zu ranges, adjust %d, fill %d, out %s differs "
            "from the reference",
            uk->name, via_rows ? "run_rows_k_ranges" : "run_k_ranges", m, n, k, nranges, adjust,
            fill, out == Q8_INT32 ? "s32" : "8-bit");
  cr_assert(q8t_buf_guards_ok(&got), "%s run_k_ranges wrote outside C (m=%zu n=%zu)", uk->name, m,
            n);
  cr_assert(q8t_buf_guards_ok(&a), "%s run_k_ranges wrote into A", uk->name);
  q8t_buf_free(&got);
  q8t_buf_free(&want);
  free(packed);
  free(col_adjust);
  free(folded);
  free(col_term);
  free(w);
  free(zeroed);
  q8t_buf_free(&a);
}

Test(gemm_ukernels, k_ranges_match_the_reference) {
  q8t_rng r = q8t_rng_new(41);
  const q8_gemm_ukernel *uks[32];
  const size_t count = runnable_ukernels(uks, 32);
  size_t tested = 0;
  for (size_t i = 0; i < count; ++i) {
    const q8_gemm_ukernel *uk = uks[i];
    if (uk->run_k_ranges == NULL) continue;
    ++tested;
    const size_t ns[] = {1, 15, 16, 17, uk->nr};
    const size_t ks[] = {uk->kr, 9 * uk->kr, 36 * uk->kr, 144 * uk->kr};
    for (size_t m = 1; m <= q8_gemm_k_ranges_mr(uk); ++m) { /* the K-range tile may be taller */
      for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ++ni) {
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ++ki) {
          const q8_dtype out = (m + ni + ki) % 3 == 0 ? Q8_INT32 : (m + ki) % 2 ? Q8_INT8 : Q8_UINT8;
          for (int fill = -1; fill <= 1; ++fill) {
            check_k_ranges(uk, &r, m, ns[ni] < uk->nr ? ns[ni] : uk->nr, ks[ki], out,
                           (m + ni + (fill != 0)) % 2, fill, false);
          }
        }
      }
    }
  }
  cr_log_info("run_k_ranges tested on %zu kernels", tested);
}

/* run_rows_k_ranges over many row tiles and a row tail, every output type,
 * column counts around one and two vectors, ranges at unaligned offsets. */
Test(gemm_ukernels, rows_k_ranges_match_the_reference) {
  q8t_rng r = q8t_rng_new(43);
  const q8_gemm_ukernel *uks[32];
  const size_t count = runnable_ukernels(uks, 32);
  size_t tested = 0;
  for (size_t i = 0; i < count; ++i) {
    const q8_gemm_ukernel *uk = uks[i];
    if (uk->run_rows_k_ranges == NULL) continue;
    ++tested;
    const size_t ms[] = {1, uk->mr - 1, uk->mr, uk->mr + 1, 3 * (size_t)uk->mr, 37, 112};
    const size_t ns[] = {1, 15, 16, 17, 31, 32};
    const size_t ks[] = {uk->kr, 3 * uk->kr, 9 * uk->kr, 42 * uk->kr};
    const q8_dtype outs[] = {Q8_INT32, Q8_INT8, Q8_UINT8};
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; ++mi) {
      if (ms[mi] == 0) continue;
      for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ++ni) {
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ++ki) {
          for (size_t oi = 0; oi < 3; ++oi) {
            const int fill = (int)((mi + ni + ki + oi) % 3) - 1;
            check_k_ranges(uk, &r, ms[mi], ns[ni] < uk->nr ? ns[ni] : uk->nr, ks[ki], outs[oi],
                           false, fill, true);
          }
        }
      }
    }
  }
  if (tested == 0) cr_log_info("no runnable kernel has run_rows_k_ranges: nothing to test here");
  cr_log_info("run_rows_k_ranges tested on %zu kernels", tested);
}

/* ---- through the public API, every usable ISA forced, threads 1 and 2 ---- */
static void plan_run(const q8_gemm_desc *d, const void *a, void *c, size_t ldc) {
  q8_gemm_plan *plan = NULL;
  cr_assert_eq(q8_gemm_plan_create(d, &plan), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(q8_gemm_run(plan, a, d->k, c, ldc), Q8_OK, "%s", q8_error_detail());
  q8_gemm_plan_destroy(plan);
}

/* Runs d (its threads replaced by 1..max_threads) on every usable ISA and
 * compares the output bytes with ref's. */
static void every_isa_agrees_with_ref(const q8_gemm_desc *desc, const void *a, size_t max_threads) {
  static const char *isas[] = {"ref", "hwy", "avx2", "avxvnni", "avx512vnni", "amx", "neon", "neondot", "neoni8mm"};
  q8_gemm_desc d = *desc;
  const size_t bytes = d.m * d.n * (d.out_dtype == Q8_INT32 ? 4 : 1);
  unsigned char *want = malloc(bytes), *got = malloc(bytes);
  cr_assert_eq(q8_set_isa("ref"), Q8_OK);
  plan_run(&d, a, want, d.n);
  for (size_t i = 0; i < sizeof isas / sizeof isas[0]; ++i) {
    if (!q8_isa_usable(isas[i], NULL)) continue;
    cr_assert_eq(q8_set_isa(isas[i]), Q8_OK);
    for (size_t threads = 1; threads <= max_threads; ++threads) {
      d.threads = threads;
      memset(got, 0xA5, bytes);
      plan_run(&d, a, got, d.n);
      cr_assert(memcmp(got, want, bytes) == 0, "Q8_ISA=%s threads=%zu shape %zux%zux%zu out=%s differs from ref",
                isas[i], threads, d.m, d.n, d.k, d.out_dtype == Q8_INT32 ? "s32" : "s8");
    }
  }
  free(want);
  free(got);
  q8_set_isa(NULL);
}

Test(gemm_plan, every_isa_and_thread_count_agree_with_ref) {
  q8t_rng r = q8t_rng_new(38);
  const size_t shapes[][3] = {{1, 768, 96}, {5, 33, 70}, {64, 130, 129}, {130, 64, 200}};
  for (size_t s = 0; s < 4; ++s) {
    const size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
    int8_t *a = malloc(m * k), *w = malloc(n * k);
    q8t_fill_bytes(&r, a, m * k);
    q8t_fill_bytes(&r, w, n * k);
    float ws[768];
    int32_t bias[768];
    for (size_t j = 0; j < n; ++j) {
      ws[j] = q8t_uniform(&r, 1e-3f, 1e-2f);
      bias[j] = q8t_range(&r, -9999, 9999);
    }
    /* out 2: fp32 with scales near 10^6, where float(acc) * scale leaves
     * int32 and the upper clamp must stay (q8_requant_params.fp32_clamp_free). */
    for (int out = 0; out < 3; ++out) {
      q8_gemm_desc d = {.m = m, .n = n, .k = k, .a_dtype = s % 2 ? Q8_UINT8 : Q8_INT8, .a_zero_point = s % 2 ? 128 : -5,
                        .a_scale = 0.05f, .weights = w, .w_channels = n, .w_scales = ws, .bias = bias,
                        .out_dtype = out ? Q8_INT8 : Q8_INT32,
                        .requant = out == 2 ? Q8_REQUANT_FP32 : (q8_requant_mode)(s % 3),
                        .out_scale = out == 2 ? 1e-10f : 0.3f, .out_zero_point = 3, .threads = 1};
      every_isa_agrees_with_ref(&d, a, 3);
    }
    free(a);
    free(w);
  }
}

/* Packed weights of 2 MiB and more take the plan's huge-page allocation, and
 * at small M the weight stream runs through many whole column tiles (the
 * kernels prefetch across tile ends): still bit-identical to ref. */
Test(gemm_plan, small_m_with_huge_packed_weights_agrees_with_ref) {
  q8t_rng r = q8t_rng_new(39);
  const size_t n = 1061, k = 2111; /* > 2 MiB packed; n, k off the tiles */
  int8_t *w = malloc(n * k), *a = malloc(9 * k);
  int32_t *bias = malloc(n * sizeof(int32_t));
  float *ws = malloc(n * sizeof(float));
  q8t_fill_bytes(&r, w, n * k);
  q8t_fill_bytes(&r, a, 9 * k);
  for (size_t j = 0; j < n; ++j) {
    ws[j] = q8t_uniform(&r, 1e-4f, 1e-3f);
    bias[j] = q8t_range(&r, -9999, 9999);
  }
  const size_t ms[] = {1, 8, 9};
  for (size_t s = 0; s < 3; ++s) {
    for (int out = 0; out < 2; ++out) {
      const q8_gemm_desc d = {.m = ms[s], .n = n, .k = k, .a_dtype = s == 1 ? Q8_UINT8 : Q8_INT8,
                              .a_zero_point = s == 1 ? 131 : 7, .a_scale = 0.05f, .weights = w, .w_channels = n,
                              .w_scales = ws, .bias = bias, .out_dtype = out ? Q8_INT8 : Q8_INT32,
                              .requant = Q8_REQUANT_FP32, .out_scale = 0.3f, .out_zero_point = -3, .threads = 1};
      every_isa_agrees_with_ref(&d, a, 1);
    }
  }
  free(w);
  free(a);
  free(bias);
  free(ws);
}

Test(gemm_plan, amx_denied_falls_back_cleanly) {
  setenv("Q8_AMX_DENY", "1", 1);
  cr_expect(!q8_isa_usable("amx", NULL), "AMX must not be usable when permission is refused");
  const char *reason = NULL;
  q8_isa_usable("amx", &reason);
  cr_expect_eq(q8_set_isa("amx"), Q8_ERR_ISA, "forcing AMX without permission is an error (%s)", reason);
  int8_t w[64 * 64] = {0}, a[64 * 64] = {0};
  int32_t c[64 * 64];
  const q8_gemm_desc d = {.m = 64, .n = 64, .k = 64, .a_dtype = Q8_INT8, .weights = w, .out_dtype = Q8_INT32};
  q8_gemm_plan *plan = NULL;
  cr_assert_eq(q8_gemm_plan_create(&d, &plan), Q8_OK, "%s", q8_error_detail());
  cr_expect(strstr(q8_gemm_plan_kernel(plan), "__amx") == NULL, "picked %s", q8_gemm_plan_kernel(plan));
  cr_expect_eq(q8_gemm_run(plan, a, 64, c, 64), Q8_OK);
  q8_gemm_plan_destroy(plan);
}

Test(gemm_ukernels, hwy_kernel_on_every_highway_target) {
  q8t_rng r = q8t_rng_new(39);
  size_t count;
  const q8_kernel *all = q8_kernels(&count);
  const q8_gemm_ukernel *hwy = NULL;
  for (size_t i = 0; i < count; ++i) {
    if (all[i].op == Q8_OP_GEMM && all[i].isa == Q8_ISA_HWY) hwy = all[i].ukernel;
  }
  if (hwy == NULL) cr_skip_test("no Highway GEMM kernel registered");
  const char *targets[32];
  const size_t n = q8_hwy_supported_targets(targets, 32);
  for (size_t t = 0; t < n && t < 32; ++t) {
    cr_assert_eq(q8_hwy_force_target(targets[t]), 0, "%s", targets[t]);
    cr_log_info("Highway target %s", targets[t]);
    sweep_tails(hwy, &r, Q8_INT32, Q8_REQUANT_FP32);
    sweep_tails(hwy, &r, Q8_INT8, Q8_REQUANT_GEMMLOWP);
    sweep_tails(hwy, &r, Q8_UINT8, Q8_REQUANT_SINGLE);
  }
  q8_hwy_force_target(NULL);
}

Test(gemm_plan, threaded_runs_work_after_fork) {
  /* The child of a fork has no pool workers: a threaded run there must start
   * new ones, not wait for the parent's. alarm() turns a hang into a failure. */
  if (q8_cpu()->emulated[0]) {
    /* qemu-user aborts in the child of a fork taken while threads exist. */
    cr_skip_test("fork after threads is not emulated: %s", q8_cpu()->emulated);
  }
  int8_t w[64 * 128], a[96 * 128];
  for (size_t i = 0; i < sizeof w; ++i) w[i] = (int8_t)(i * 7);
  for (size_t i = 0; i < sizeof a; ++i) a[i] = (int8_t)(i * 13);
  const q8_gemm_desc d = {.m = 96, .n = 64, .k = 128, .a_dtype = Q8_INT8, .weights = w,
                          .out_dtype = Q8_INT32, .threads = 2};
  q8_gemm_plan *plan = NULL;
  cr_assert_eq(q8_gemm_plan_create(&d, &plan), Q8_OK, "%s", q8_error_detail());
  static int32_t before[96 * 64], after[96 * 64];
  cr_assert_eq(q8_gemm_run(plan, a, 128, before, 64), Q8_OK);
  const pid_t child = fork();
  cr_assert_neq(child, -1);
  if (child == 0) {
    alarm(20);
    const bool ok = q8_gemm_run(plan, a, 128, after, 64) == Q8_OK &&
                    memcmp(before, after, sizeof before) == 0;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  cr_assert_eq(waitpid(child, &status, 0), child);
  cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "threaded run in a forked child failed or hung (status 0x%x)", status);
  q8_gemm_plan_destroy(plan);
}
