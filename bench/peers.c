#define _GNU_SOURCE /* sched_setaffinity, CPU_SET, RTLD_DEFAULT */
/* Peers: the GEMM qb_gemm_measure times, through oneDNN and XNNPACK on the
 * same inputs (qb_gemm_data), each on its fastest int8 path. Only the execute
 * call is timed; operator creation, weight reorders and packing are not. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bench/peers_internal.h"
#include "bench/qbench.h"

#if QB_HAVE_ONEDNN
#include <dlfcn.h>
#endif

#if QB_HAVE_XNNPACK
#include <pthread.h>
#endif

#ifndef QB_XNNPACK_VERSION
#define QB_XNNPACK_VERSION "unknown"
#endif

static const char *const peer_names[QB_PEER_COUNT] = {"onednn", "xnnpack"};

const char *qb_peer_name(qb_peer peer) {
  return (unsigned)peer < QB_PEER_COUNT ? peer_names[peer] : "unknown";
}

bool qb_peer_built(qb_peer peer, const char **reason) {
  const char *why = NULL;
  switch (peer) {
    case QB_PEER_ONEDNN:
#if !QB_HAVE_ONEDNN
      why = "qbench was built without oneDNN (install libdnnl-dev and rebuild)";
#endif
      break;
    case QB_PEER_XNNPACK:
#if !QB_HAVE_XNNPACK
      why = "qbench was built without XNNPACK (install libxnnpack-dev and libpthreadpool-dev and rebuild)";
#endif
      break;
    default:
      why = "unknown peer";
      break;
  }
  if (reason) *reason = why;
  return why == NULL;
}

const char *qb_peer_version(qb_peer peer) {
  if (!qb_peer_built(peer, NULL)) return "";
#if QB_HAVE_ONEDNN
  if (peer == QB_PEER_ONEDNN) {
    static char version[32];
    const dnnl_version_t *v = dnnl_version();
    snprintf(version, sizeof version, "%d.%d.%d", v->major, v->minor, v->patch);
    return version;
  }
#endif
  /* XNNPACK has no version API: the package version, read at configure time. */
  if (peer == QB_PEER_XNNPACK) return QB_XNNPACK_VERSION;
  return "";
}

__attribute__((format(printf, 3, 4))) bool qb_peer_fail(char *err, size_t err_size, const char *fmt, ...) {
  if (err && err_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
  }
  return false;
}

void qb_peer_time(void (*fn)(void *), void *ctx, const qb_peer_timing *timing, qb_peer_result *result) {
  if (timing->partner == NULL) {
    result->t = qb_measure(fn, ctx, timing->min_time, 5);
    return;
  }
  const qb_paired p = qb_measure_paired(timing->partner, timing->partner_ctx, fn, ctx, timing->min_time);
  result->t = p.b;
  result->partner_t = p.a;
  result->ratio = p.ratio;
  result->ratio_q1 = p.ratio_q1;
  result->ratio_q3 = p.ratio_q3;
  result->pairs = p.pairs;
}

#if QB_HAVE_ONEDNN || QB_HAVE_XNNPACK
/* Worker threads inherit the affinity of the thread that creates them. qbench
 * pins its main thread to one core, so a peer's pool started from it would put
 * every worker on that core: while a peer creates and runs its threads, the
 * calling thread may run anywhere (the kernel keeps it within the cpuset). */
void qb_unpin_for_workers(qb_affinity_guard *g, size_t threads) {
#ifdef __linux__
  g->restore = false;
  if (threads <= 1 || sched_getaffinity(0, sizeof g->saved, &g->saved) != 0) return;
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &all);
  g->restore = sched_setaffinity(0, sizeof all, &all) == 0;
#else
  (void)g;
  (void)threads;
#endif
}

void qb_restore_affinity(qb_affinity_guard *g) {
#ifdef __linux__
  if (g->restore) sched_setaffinity(0, sizeof g->saved, &g->saved);
#else
  (void)g;
#endif
}
#endif

/* ---- oneDNN ---------------------------------------------------------------
 * Inner product, not matmul: on oneDNN 2.6 both dispatch to the same brgemm
 * kernels (brgemm:avx512_core_vnni vs brg:avx512_core_vnni on an AVX-512 VNNI
 * CPU), but inner product is 15-20% faster for small M (1x768x768 on one
 * Zen 4 core: ~180 vs ~150 GOPS) and equal for large shapes. It takes no
 * zero-point attributes, so:
 *  - the src zero point is folded into the bias, bias - 3 * colsum(W), computed
 *    with the weights and not timed, as q8 folds it into its packed column
 *    terms (matmul's src zero point attribute is no faster: measured the same);
 *  - the dst zero point is an eltwise linear post-op (x + zp) after the
 *    per-channel output scales, applied in float before the rounding, where
 *    matmul's dst zero point also goes; q8 rounds first and then adds it, so
 *    exact .5 ties can differ by 1.
 * int32 output has neither: acc + folded bias, equal to q8's bit for bit.
 * Source stays s8: oneDNN compensates for VNNI's u8 x s8 itself, and u8 with
 * a shifted zero point measured no faster, so nothing is converted.
 * Threads: Debian's oneDNN uses OpenMP (libgomp); omp_set_num_threads is
 * looked up in the process (whichever OpenMP runtime libdnnl loaded), not
 * linked, so the call reaches the runtime oneDNN actually uses. */
#if QB_HAVE_ONEDNN

/* The requantization scale of channel j, computed as q8 computes it (in
 * double, rounded once to float), so oneDNN starts from the same floats. */
static float out_scale_of(const qb_gemm_data *d, size_t j) {
  return (float)((double)d->a_scale * d->w_scales[j] / d->out_scale);
}

typedef struct dnnl_run {
  dnnl_primitive_t prim;
  dnnl_stream_t stream;
  dnnl_exec_arg_t args[4];
} dnnl_run;

static void dnnl_execute(void *p) {
  dnnl_run *r = p;
  dnnl_primitive_execute(r->prim, r->stream, 4, r->args);
  dnnl_stream_wait(r->stream);
}

typedef void (*omp_set_fn)(int);
typedef int (*omp_get_fn)(void);

/* Sets oneDNN's thread count; false if it cannot be set or is not taken. */
static bool dnnl_threads(size_t threads, int *previous) {
  omp_set_fn set = (omp_set_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "omp_set_num_threads");
  omp_get_fn get = (omp_get_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "omp_get_max_threads");
  if (set == NULL || get == NULL) return false;
  *previous = get();
  set((int)threads);
  return get() == (int)threads;
}

static void dnnl_threads_restore(int previous) {
  omp_set_fn set = (omp_set_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "omp_set_num_threads");
  if (set && previous > 0) set(previous);
}

dnnl_status_t qb_dnnl_describe(const_dnnl_primitive_desc_t pd, qb_peer_result *result) {
  const char *impl = NULL;
  const dnnl_status_t s = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
  snprintf(result->impl, sizeof result->impl, "%s", impl ? impl : "");
  /* The ISA of the kernel it picked is the part of impl after ':'
   * ("brgemm:avx512_core_vnni"); without one, the most oneDNN may use here. */
  const char *colon = impl ? strrchr(impl, ':') : NULL;
  const char *isa = dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa());
  if (strncmp(isa, "cpu_isa_", 8) == 0) isa += 8;
  if (colon && colon[1]) isa = colon + 1;
  snprintf(result->isa, sizeof result->isa, "%s", isa);
  return s;
}

bool qb_dnnl_begin(size_t threads, qb_dnnl_env *env, char *err, size_t err_size) {
  /* One engine and stream for the process, like an application's. */
  static dnnl_engine_t engine;
  static dnnl_stream_t stream;
  bool ok = true;
  *env = (qb_dnnl_env){0};
  qb_unpin_for_workers(&env->affinity, threads);
  if (!dnnl_threads(threads, &env->previous_threads)) {
    ok = qb_peer_fail(err, err_size, "onednn: cannot set %zu OpenMP threads", threads);
    goto done;
  }
  if (engine == NULL) DNNL_TRY(dnnl_engine_create(&engine, dnnl_cpu, 0));
  if (stream == NULL) DNNL_TRY(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
  env->engine = engine;
  env->stream = stream;
done:
  if (!ok) qb_dnnl_end(env);
  return ok;
}

void qb_dnnl_end(qb_dnnl_env *env) {
  if (env->previous_threads > 0) dnnl_threads_restore(env->previous_threads);
  env->previous_threads = 0;
  qb_restore_affinity(&env->affinity);
}

dnnl_status_t qb_dnnl_requant_attr(dnnl_primitive_attr_t attr, const float *scales, size_t n, int32_t zero_point) {
  dnnl_status_t s = dnnl_primitive_attr_set_output_scales(attr, (dnnl_dim_t)n, 1 << 1, scales); /* per oc */
  dnnl_post_ops_t post_ops = NULL;
  if (s == dnnl_success) s = dnnl_post_ops_create(&post_ops);
  if (s == dnnl_success) s = dnnl_post_ops_append_eltwise(post_ops, 1.0f, dnnl_eltwise_linear, 1.0f, (float)zero_point);
  if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, post_ops); /* attr keeps a copy */
  dnnl_post_ops_destroy(post_ops);
  return s;
}

bool qb_dnnl_run(const qb_dnnl_env *env, const_dnnl_primitive_desc_t pd, const dnnl_memory_desc_t *w_user_md,
                 const void *weights, const void *src_data, const int32_t *bias_data, void *dst_data,
                 const qb_peer_timing *timing, qb_peer_result *result, char *err, size_t err_size) {
  bool ok = true;
  dnnl_engine_t engine = env->engine;
  dnnl_stream_t stream = env->stream;
  dnnl_primitive_desc_t reorder_pd = NULL;
  dnnl_primitive_t prim = NULL, reorder = NULL;
  dnnl_memory_t src = NULL, user_w = NULL, w = NULL, bias = NULL, dst = NULL;
  const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  /* The primitive reads but does not write src, weights and bias. */
  DNNL_TRY(dnnl_memory_create(&src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), engine, (void *)src_data));
  DNNL_TRY(dnnl_memory_create(&user_w, w_user_md, engine, (void *)weights));
  DNNL_TRY(dnnl_memory_create(&w, w_md, engine, DNNL_MEMORY_ALLOCATE));
  DNNL_TRY(dnnl_memory_create(&bias, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1), engine,
                              (void *)bias_data));
  DNNL_TRY(dnnl_memory_create(&dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), engine, dst_data));

  /* Weights into the layout the primitive chose: not timed. */
  DNNL_TRY(dnnl_reorder_primitive_desc_create(&reorder_pd, w_user_md, engine, w_md, engine, NULL));
  DNNL_TRY(dnnl_primitive_create(&reorder, reorder_pd));
  const dnnl_exec_arg_t reorder_args[] = {{DNNL_ARG_FROM, user_w}, {DNNL_ARG_TO, w}};
  DNNL_TRY(dnnl_primitive_execute(reorder, stream, 2, reorder_args));
  DNNL_TRY(dnnl_stream_wait(stream));

  DNNL_TRY(dnnl_primitive_create(&prim, pd));
  dnnl_run run = {.prim = prim, .stream = stream,
                  .args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, bias},
                           {DNNL_ARG_DST, dst}}};
  /* One checked call first: qb_measure ignores the execute status. */
  DNNL_TRY(dnnl_primitive_execute(prim, stream, 4, run.args));
  DNNL_TRY(dnnl_stream_wait(stream));
  qb_peer_time(dnnl_execute, &run, timing, result);
  DNNL_TRY(qb_dnnl_describe(pd, result));
done:
  dnnl_primitive_destroy(prim);
  dnnl_primitive_destroy(reorder);
  dnnl_primitive_desc_destroy(reorder_pd);
  dnnl_memory_destroy(src);
  dnnl_memory_destroy(user_w);
  dnnl_memory_destroy(w);
  dnnl_memory_destroy(bias);
  dnnl_memory_destroy(dst);
  return ok;
}

static bool onednn_measure(const qb_gemm_data *d, q8_dtype out, size_t threads, const qb_peer_timing *timing,
                           void *c, qb_peer_result *result, char *err, size_t err_size) {
  bool ok = true;
  const dnnl_dim_t m = (dnnl_dim_t)d->m, n = (dnnl_dim_t)d->n, k = (dnnl_dim_t)d->k;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL;
  float *scales = malloc((size_t)n * sizeof(float));
  int32_t *folded = malloc((size_t)n * sizeof(int32_t));
  qb_dnnl_env env;
  if (!qb_dnnl_begin(threads, &env, err, err_size)) {
    free(scales);
    free(folded);
    return false;
  }
  if (scales == NULL || folded == NULL) {
    ok = qb_peer_fail(err, err_size, "onednn: out of memory");
    goto done;
  }

  dnnl_memory_desc_t src_md, w_any_md, w_user_md, bias_md, dst_md;
  const dnnl_dims_t src_dims = {m, k}, w_dims = {n, k}, bias_dims = {n}, dst_dims = {m, n};
  const dnnl_data_type_t dst_type = out == Q8_INT32 ? dnnl_s32 : out == Q8_INT8 ? dnnl_s8 : dnnl_u8;
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, dnnl_s8, dnnl_ab));
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_any_md, 2, w_dims, dnnl_s8, dnnl_format_tag_any));
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&w_user_md, 2, w_dims, dnnl_s8, dnnl_ab)); /* W[n][k] */
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&bias_md, 1, bias_dims, dnnl_s32, dnnl_a));
  DNNL_TRY(dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dst_type, dnnl_ab));

  DNNL_TRY(dnnl_primitive_attr_create(&attr));
  if (out != Q8_INT32) {
    for (dnnl_dim_t j = 0; j < n; ++j) scales[j] = out_scale_of(d, (size_t)j);
    DNNL_TRY(qb_dnnl_requant_attr(attr, scales, d->n, d->out_zero_point));
  }
  dnnl_inner_product_desc_t ip;
  DNNL_TRY(dnnl_inner_product_forward_desc_init(&ip, dnnl_forward_inference, &src_md, &w_any_md,
                                                &bias_md, &dst_md));
  DNNL_TRY(dnnl_primitive_desc_create(&pd, &ip, attr, env.engine, NULL));

  /* bias - za * sum_k W[j][k]: the src zero point, folded (see above). */
  for (size_t j = 0; j < d->n; ++j) {
    int64_t sum = 0;
    for (size_t q = 0; q < d->k; ++q) sum += d->w[j * d->k + q];
    folded[j] = (int32_t)(d->bias[j] - (int64_t)d->a_zero_point * sum);
  }
  ok = qb_dnnl_run(&env, pd, &w_user_md, d->w, d->a, folded, c, timing, result, err, err_size);

done:
  dnnl_primitive_desc_destroy(pd);
  dnnl_primitive_attr_destroy(attr);
  qb_dnnl_end(&env);
  free(scales);
  free(folded);
  return ok;
}
#endif /* QB_HAVE_ONEDNN */

/* ---- XNNPACK ---------------------------------------------------------------
 * The 2022 XNNPACK's qs8 fully-connected operator has one kernel scale for
 * the whole tensor; q8's GEMM has one per output channel. The qc8 operator
 * (per-channel kernel scales) is a convolution, so the GEMM is a 1x1 qc8
 * convolution over m pixels, which XNNPACK runs as a plain GEMM (the same qc8
 * GEMM micro-kernels, no indirection). Its requantization is fp32 with
 * round-to-nearest-even and the zero point added after rounding, as q8's.
 * Output: qc8 writes only s8, and qu8 (the only u8 path) has a per-tensor
 * kernel scale, so u8 is the s8 result with the zero point moved by -128 and
 * the sign bit flipped (x ^ 0x80 = x + 128 exactly, clamps included); the
 * flip is timed with the GEMM. No int32 output exists. The operator is
 * driven by bench/peers_conv.c, which times convolutions the same way. */
#if QB_HAVE_XNNPACK

void qb_flip_sign_bits(unsigned char *c, size_t bytes) {
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t v;
    memcpy(&v, c + i, 8);
    v ^= 0x8080808080808080ull;
    memcpy(c + i, &v, 8);
  }
  for (; i < bytes; ++i) c[i] ^= 0x80;
}

void qb_xnn_execute(void *p) {
  qb_xnn_run *r = p;
  xnn_run_operator(r->op, r->pool);
  if (r->flip) qb_flip_sign_bits(r->c, r->bytes);
}

static enum xnn_status xnn_init_status = xnn_status_uninitialized;
static void xnn_init_once(void) { xnn_init_status = xnn_initialize(NULL); }

enum xnn_status qb_xnn_init(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, xnn_init_once);
  return xnn_init_status;
}

/* XNNPACK does not report what it selected. Its 2022 init picks the x86 qc8
 * GEMM kernels from cpuinfo's flags in this order, and the library holds
 * exactly these kernels (an MR-row one, and a 1-row one it uses when M = 1);
 * the compiler's CPU detection reads the same flags. Profiling a run on an
 * AVX-512 VNNI machine showed the avx512skx kernels (vpmaddwd on zmm): this
 * version has no VNNI kernels at all. Elsewhere: "auto (cpuinfo)". */
void qb_xnn_describe(size_t m, qb_peer_result *result) {
  const char *isa = "auto (cpuinfo)", *kernel = NULL;
#if defined(__x86_64__) || defined(__i386__)
  const bool one = m == 1;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
    isa = "avx512skx";
    kernel = one ? "1x16c8__avx512skx" : "4x16c8__avx512skx";
  } else if (__builtin_cpu_supports("xop")) { /* before AVX2, as XNNPACK does */
    isa = "xop";
    kernel = one ? "1x4c8__xop_ld64" : "2x4c8__xop_ld64";
  } else if (__builtin_cpu_supports("avx2")) {
    isa = "avx2";
    kernel = one ? "1x8c8__avx2" : "3x8c8__avx2";
  } else if (__builtin_cpu_supports("avx")) {
    isa = "avx";
    kernel = one ? "1x4c8__avx_ld128" : "2x4c8__avx_ld128";
  } else if (__builtin_cpu_supports("sse4.1")) {
    isa = "sse41";
    kernel = one ? "1x4c8__sse41_ld64" : "3x4c8__sse41_ld64";
  } else {
    isa = "sse2";
    kernel = one ? "1x4c8__sse2_ld64" : "3x4c8__sse2_ld64";
  }
#else
  (void)m;
#endif
  snprintf(result->isa, sizeof result->isa, "%s", isa);
  /* Short for xnn_qc8_gemm_minmax_fp32_ukernel_<kernel>, behind the 1x1 conv. */
  snprintf(result->impl, sizeof result->impl, "qc8_gemm_%s", kernel ? kernel : "(cpuinfo)");
}

#endif /* QB_HAVE_XNNPACK */

int qb_max_abs_diff(const void *got, const void *want, size_t count, q8_dtype out) {
  int64_t worst = 0;
  for (size_t i = 0; i < count; ++i) {
    int64_t a, b;
    if (out == Q8_INT32) {
      int32_t x, y;
      memcpy(&x, (const char *)got + 4 * i, 4);
      memcpy(&y, (const char *)want + 4 * i, 4);
      a = x;
      b = y;
    } else if (out == Q8_INT8) {
      a = ((const int8_t *)got)[i];
      b = ((const int8_t *)want)[i];
    } else {
      a = ((const uint8_t *)got)[i];
      b = ((const uint8_t *)want)[i];
    }
    const int64_t diff = a > b ? a - b : b - a;
    if (diff > worst) worst = diff;
  }
  return worst > INT32_MAX ? INT32_MAX : (int)worst;
}

bool qb_peer_gemm_measure(qb_peer peer, const size_t shape[3], size_t threads, q8_dtype out,
                          const qb_peer_timing *timing, bool check, qb_peer_result *result, char *err,
                          size_t err_size) {
  *result = (qb_peer_result){0};
  if (err && err_size) err[0] = '\0';
  const char *why = NULL;
  if (!qb_peer_built(peer, &why)) return qb_peer_fail(err, err_size, "%s", why);
  if (threads == 0) threads = 1;
  qb_gemm_data d;
  qb_gemm_data_init(&d, shape[0], shape[1], shape[2], out);
  const size_t esize = out == Q8_INT32 ? 4 : 1;
  void *c = malloc(d.m * d.n * esize);
  bool ok = d.a && d.w && d.w_scales && d.bias && c;
  if (!ok) {
    qb_peer_fail(err, err_size, "%s: out of memory", qb_peer_name(peer));
  } else {
    (void)timing;
#if QB_HAVE_ONEDNN
    if (peer == QB_PEER_ONEDNN) ok = onednn_measure(&d, out, threads, timing, c, result, err, err_size);
#endif
    if (peer == QB_PEER_XNNPACK && out == Q8_INT32) {
      ok = qb_peer_fail(err, err_size, "xnnpack has no int32-output GEMM");
    } else if (peer == QB_PEER_XNNPACK) {
      /* m pixels of one row each: M = batch * height * width = m. */
      const qb_conv_data view = {
          .shape = {.batch = d.m, .in_h = 1, .in_w = 1, .in_channels = d.k, .out_channels = d.n, .kernel_h = 1,
                    .kernel_w = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .groups = 1},
          .out_h = 1, .out_w = 1, .m = d.m, .n = d.n, .k = d.k, .in_dtype = Q8_INT8, .input = d.a, .weights = d.w,
          .w_scales = d.w_scales, .bias = d.bias, .in_zero_point = d.a_zero_point, .out_zero_point = d.out_zero_point,
          .in_scale = d.a_scale, .out_scale = d.out_scale};
      ok = qb_peer_conv_measure(peer, &view, threads, out, timing, c, result, err, err_size);
    }
  }
  if (ok && check) {
    void *want = malloc(d.m * d.n * esize);
    if (want == NULL || !qb_gemm_reference(&d, out, want)) {
      ok = qb_peer_fail(err, err_size, "%s: the q8 reference could not be computed", qb_peer_name(peer));
    } else {
      result->checked = true;
      result->max_abs_diff = qb_max_abs_diff(c, want, d.m * d.n, out);
    }
    free(want);
  }
  free(c);
  qb_gemm_data_free(&d);
  return ok;
}
