/* GEMM shapes: the named suites (taken from real models) and the user's own
 * lists. A shape is M x N x K: M rows of activations, N output channels, K
 * the reduction. Convolutions appear as their im2col GEMM at batch 1, 224x224:
 * M = output pixels, N = output channels, K = kernel height x width x input
 * channels. */
#define _POSIX_C_SOURCE 200809L /* getline */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"

typedef struct suite {
  const char *name;
  const size_t (*shapes)[3];
  size_t count;
} suite;

/* Squares 256..2048: the compute-bound corner, comparable across libraries. */
static const size_t square[][3] = {{256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024}, {2048, 2048, 2048}};

/* BERT-base / GPT-2 projections (768, 3072) and a 7B-class layer (4096) at
 * decode (M = 1, 8) and prefill (64, 256) batch sizes. Shapes are MxNxK, so
 * (K, N) = (768, 3072) is {M, 3072, 768}. */
static const size_t transformer[][3] = {
    {1, 768, 768},     {1, 3072, 768},     {1, 768, 3072},     {1, 4096, 4096},
    {8, 768, 768},     {8, 3072, 768},     {8, 768, 3072},     {8, 4096, 4096},
    {64, 768, 768},    {64, 3072, 768},    {64, 768, 3072},    {64, 4096, 4096},
    {256, 768, 768},   {256, 3072, 768},   {256, 768, 3072},   {256, 4096, 4096}};

/* ResNet-50 v1.5: every distinct convolution, then the classifier. */
static const size_t resnet50[][3] = {
    {12544, 64, 147}, {3136, 64, 64},    {3136, 64, 576},   {3136, 256, 64},  {3136, 64, 256},
    {3136, 128, 256}, {784, 128, 1152},  {784, 512, 128},   {784, 512, 256},  {784, 128, 512},
    {784, 256, 512},  {196, 256, 2304},  {196, 1024, 256},  {196, 1024, 512}, {196, 256, 1024},
    {196, 512, 1024}, {49, 512, 4608},   {49, 2048, 512},   {49, 2048, 1024}, {49, 512, 2048},
    {1, 1000, 2048}};

/* MobileNetV2 1.0: the stem and every distinct pointwise (1x1) convolution,
 * then the classifier. Its depthwise layers are not GEMMs (qbench conv). */
static const size_t mobilenetv2[][3] = {
    {12544, 32, 27}, {12544, 16, 32}, {12544, 96, 16}, {3136, 24, 96},  {3136, 144, 24},
    {3136, 24, 144}, {784, 32, 144},  {784, 192, 32},  {784, 32, 192},  {196, 64, 192},
    {196, 384, 64},  {196, 64, 384},  {196, 96, 384},  {196, 576, 96},  {196, 96, 576},
    {49, 160, 576},  {49, 960, 160},  {49, 160, 960},  {49, 320, 960},  {49, 1280, 320},
    {1, 1000, 1280}};

/* Latency-bound: call overhead, tails, edge tiles. */
static const size_t small[][3] = {{1, 8, 8},    {1, 16, 64},  {4, 16, 16},  {5, 17, 33},   {8, 32, 32},
                                  {16, 64, 64}, {1, 128, 128}, {32, 32, 32}, {64, 64, 64}, {128, 128, 128}};

#define SUITE(name) {#name, name, sizeof name / sizeof name[0]}
static const suite suites[] = {SUITE(square), SUITE(transformer), SUITE(resnet50), SUITE(mobilenetv2),
                               SUITE(small)};
#undef SUITE

const char *const qb_suite_names[] = {"square", "transformer", "resnet50", "mobilenetv2", "small",
                                      "all",    "default",     NULL};

static void add(qb_shapes *s, size_t m, size_t n, size_t k, const char *suite_name) {
  if (s->count == s->capacity) {
    s->capacity = s->capacity ? 2 * s->capacity : 64;
    s->items = realloc(s->items, s->capacity * sizeof *s->items);
    if (s->items == NULL) {
      fputs("qbench: out of memory\n", stderr);
      exit(1);
    }
  }
  s->items[s->count++] = (qb_shape){m, n, k, suite_name};
}

/* The default run: a few shapes of each model family, chosen so that even
 * the reference path times them in seconds. */
static const struct {
  const char *suite;
  size_t shape[3];
} default_shapes[] = {
    {"transformer", {1, 768, 768}},  {"transformer", {8, 3072, 768}},  {"transformer", {64, 768, 768}},
    {"transformer", {256, 768, 768}}, {"resnet50", {3136, 64, 576}},   {"resnet50", {196, 256, 2304}},
    {"mobilenetv2", {784, 32, 144}},  {"mobilenetv2", {196, 96, 576}}, {"mobilenetv2", {1, 1000, 1280}}};

bool qb_shapes_add_suite(qb_shapes *s, const char *name) {
  if (strcmp(name, "default") == 0) {
    for (size_t i = 0; i < sizeof default_shapes / sizeof default_shapes[0]; ++i) {
      add(s, default_shapes[i].shape[0], default_shapes[i].shape[1], default_shapes[i].shape[2],
          default_shapes[i].suite);
    }
    return true;
  }
  const bool all = strcmp(name, "all") == 0;
  bool found = all;
  for (size_t i = 0; i < sizeof suites / sizeof suites[0]; ++i) {
    if (!all && strcmp(name, suites[i].name) != 0) continue;
    found = true;
    for (size_t j = 0; j < suites[i].count; ++j) {
      add(s, suites[i].shapes[j][0], suites[i].shapes[j][1], suites[i].shapes[j][2], suites[i].name);
    }
  }
  return found;
}

/* One "MxNxK": positive integers, K within Q8_GEMM_MAX_K, M*N and N*K within
 * what a benchmark can allocate. */
static bool parse_one(const char *text, size_t shape[3], char *err, size_t err_size) {
  const char *p = text;
  for (int i = 0; i < 3; ++i) {
    char *end;
    if (*p < '0' || *p > '9') goto bad;
    errno = 0;
    const unsigned long long v = strtoull(p, &end, 10);
    if (errno != 0 || v == 0 || v > (1ull << 31)) goto bad;
    shape[i] = (size_t)v;
    if (i < 2 && *end != 'x' && *end != 'X') goto bad;
    if (i == 2 && *end != '\0') goto bad;
    p = end + 1;
  }
  if (shape[2] > Q8_GEMM_MAX_K) {
    snprintf(err, err_size, "shape '%s': K = %zu exceeds Q8_GEMM_MAX_K (%d)", text, shape[2], Q8_GEMM_MAX_K);
    return false;
  }
  const double bytes = (double)shape[0] * (double)shape[1] * 4.0 + (double)shape[1] * (double)shape[2] +
                       (double)shape[0] * (double)shape[2];
  if (bytes > 8.0 * (1u << 30)) {
    snprintf(err, err_size, "shape '%s': needs %.0f GiB of buffers (limit 8 GiB)", text, bytes / (1u << 30));
    return false;
  }
  return true;
bad:
  snprintf(err, err_size, "shape '%s': expected MxNxK with positive integers up to 2^31, e.g. 64x768x768", text);
  return false;
}

/* Suites a shape may be labelled with ("small:1x8x8"), as gemm rows' repro
 * commands do so the rerun row keeps its name. */
static const char *const labels[] = {"square", "transformer", "resnet50", "mobilenetv2", "small", "shapes", "cli"};

bool qb_shapes_add_list(qb_shapes *s, const char *list, const char *suite_name, char *err, size_t err_size) {
  const char *p = list;
  do {
    const char *comma = strchr(p, ',');
    const size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char one[96];
    if (len >= sizeof one) {
      snprintf(err, err_size, "shape '%.40s...': too long", p);
      return false;
    }
    memcpy(one, p, len);
    one[len] = '\0';
    const char *label = suite_name, *dims = one;
    char *colon = strchr(one, ':');
    if (colon) {
      *colon = '\0';
      label = NULL;
      for (size_t i = 0; i < sizeof labels / sizeof labels[0]; ++i) {
        if (strcmp(one, labels[i]) == 0) label = labels[i];
      }
      if (label == NULL) {
        snprintf(err, err_size, "shape '%s:%s': unknown suite '%s' (square, transformer, resnet50, mobilenetv2, "
                 "small, shapes or cli)", one, colon + 1, one);
        return false;
      }
      dims = colon + 1;
    }
    size_t shape[3];
    if (!parse_one(dims, shape, err, err_size)) return false;
    add(s, shape[0], shape[1], shape[2], label);
    p = comma ? comma + 1 : NULL;
  } while (p);
  return true;
}

bool qb_shapes_add_file(qb_shapes *s, const char *path, char *err, size_t err_size) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    snprintf(err, err_size, "cannot read '%s': %s", path, strerror(errno));
    return false;
  }
  char *line = NULL;
  size_t cap = 0, line_no = 0, added = 0;
  bool ok = true;
  while (getline(&line, &cap, f) >= 0) {
    ++line_no;
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    /* Trim blanks at both ends; a blank line is skipped. */
    char *start = line;
    while (*start == ' ' || *start == '\t') ++start;
    size_t len = strlen(start);
    while (len > 0 && strchr(" \t\r\n", start[len - 1])) start[--len] = '\0';
    if (len == 0) continue;
    size_t shape[3];
    char why[192];
    if (!parse_one(start, shape, why, sizeof why)) {
      snprintf(err, err_size, "%s:%zu: %s", path, line_no, why);
      ok = false;
      break;
    }
    add(s, shape[0], shape[1], shape[2], "shapes");
    ++added;
  }
  free(line);
  fclose(f);
  if (ok && added == 0) {
    snprintf(err, err_size, "%s: no shapes (one MxNxK per line)", path);
    ok = false;
  }
  return ok;
}

void qb_shapes_free(qb_shapes *s) {
  free(s->items);
  *s = (qb_shapes){0};
}

/* ---- convolution specs and suites (qbench conv) ---- */

/* ResNet-50 v1.5 at batch 1, 224x224: conv1, then every distinct convolution
 * of each stage (stride 2 in the first 3x3 of stages 2-4, and the 1x1/2
 * downsample projections). */
static const char *const conv_resnet50[] = {
    "224x224x3:64:7x7:s2:p3",
    "56x56x64:64:1x1:s1:p0",     "56x56x64:64:3x3:s1:p1",     "56x56x64:256:1x1:s1:p0",
    "56x56x256:64:1x1:s1:p0",
    "56x56x256:128:1x1:s1:p0",   "56x56x128:128:3x3:s2:p1",   "28x28x128:512:1x1:s1:p0",
    "56x56x256:512:1x1:s2:p0",   "28x28x512:128:1x1:s1:p0",   "28x28x128:128:3x3:s1:p1",
    "28x28x512:256:1x1:s1:p0",   "28x28x256:256:3x3:s2:p1",   "14x14x256:1024:1x1:s1:p0",
    "28x28x512:1024:1x1:s2:p0",  "14x14x1024:256:1x1:s1:p0",  "14x14x256:256:3x3:s1:p1",
    "14x14x1024:512:1x1:s1:p0",  "14x14x512:512:3x3:s2:p1",   "7x7x512:2048:1x1:s1:p0",
    "14x14x1024:2048:1x1:s2:p0", "7x7x2048:512:1x1:s1:p0",    "7x7x512:512:3x3:s1:p1"};

/* MobileNetV2 1.0 at batch 1, 224x224 (PyTorch/ONNX padding): the stem, then
 * every distinct expansion 1x1, depthwise 3x3 (stride 1 and 2) and projection
 * 1x1 in network order, and the last 1x1 to 1280 channels. */
static const char *const conv_mobilenetv2[] = {
    "224x224x3:32:3x3:s2:p1",
    "112x112x32:32:3x3:s1:p1:dw",  "112x112x32:16:1x1:s1:p0",
    "112x112x16:96:1x1:s1:p0",     "112x112x96:96:3x3:s2:p1:dw",  "56x56x96:24:1x1:s1:p0",
    "56x56x24:144:1x1:s1:p0",      "56x56x144:144:3x3:s1:p1:dw",  "56x56x144:24:1x1:s1:p0",
    "56x56x144:144:3x3:s2:p1:dw",  "28x28x144:32:1x1:s1:p0",
    "28x28x32:192:1x1:s1:p0",      "28x28x192:192:3x3:s1:p1:dw",  "28x28x192:32:1x1:s1:p0",
    "28x28x192:192:3x3:s2:p1:dw",  "14x14x192:64:1x1:s1:p0",
    "14x14x64:384:1x1:s1:p0",      "14x14x384:384:3x3:s1:p1:dw",  "14x14x384:64:1x1:s1:p0",
    "14x14x384:96:1x1:s1:p0",
    "14x14x96:576:1x1:s1:p0",      "14x14x576:576:3x3:s1:p1:dw",  "14x14x576:96:1x1:s1:p0",
    "14x14x576:576:3x3:s2:p1:dw",  "7x7x576:160:1x1:s1:p0",
    "7x7x160:960:1x1:s1:p0",       "7x7x960:960:3x3:s1:p1:dw",    "7x7x960:160:1x1:s1:p0",
    "7x7x960:320:1x1:s1:p0",       "7x7x320:1280:1x1:s1:p0"};

/* EfficientNet-B0 at batch 1, 224x224 (torchvision's symmetric padding): the
 * stem, then every distinct expansion 1x1, depthwise 3x3 and 5x5 (stride 1
 * and 2) and projection 1x1 in network order, and the head 1x1 to 1280
 * channels. The squeeze-excitation layers (1x1 convolutions of a 1x1
 * input, GEMVs of at most 1152 x 48) are left out. */
static const char *const conv_efficientnet_b0[] = {
    "224x224x3:32:3x3:s2:p1",
    "112x112x32:32:3x3:s1:p1:dw",  "112x112x32:16:1x1:s1:p0",
    "112x112x16:96:1x1:s1:p0",     "112x112x96:96:3x3:s2:p1:dw",  "56x56x96:24:1x1:s1:p0",
    "56x56x24:144:1x1:s1:p0",      "56x56x144:144:3x3:s1:p1:dw",  "56x56x144:24:1x1:s1:p0",
    "56x56x144:144:5x5:s2:p2:dw",  "28x28x144:40:1x1:s1:p0",
    "28x28x40:240:1x1:s1:p0",      "28x28x240:240:5x5:s1:p2:dw",  "28x28x240:40:1x1:s1:p0",
    "28x28x240:240:3x3:s2:p1:dw",  "14x14x240:80:1x1:s1:p0",
    "14x14x80:480:1x1:s1:p0",      "14x14x480:480:3x3:s1:p1:dw",  "14x14x480:80:1x1:s1:p0",
    "14x14x480:480:5x5:s1:p2:dw",  "14x14x480:112:1x1:s1:p0",
    "14x14x112:672:1x1:s1:p0",     "14x14x672:672:5x5:s1:p2:dw",  "14x14x672:112:1x1:s1:p0",
    "14x14x672:672:5x5:s2:p2:dw",  "7x7x672:192:1x1:s1:p0",
    "7x7x192:1152:1x1:s1:p0",      "7x7x1152:1152:5x5:s1:p2:dw",  "7x7x1152:192:1x1:s1:p0",
    "7x7x1152:1152:3x3:s1:p1:dw",  "7x7x1152:320:1x1:s1:p0",
    "7x7x320:1280:1x1:s1:p0"};

static const struct {
  const char *name;
  const char *const *specs;
  size_t count;
} conv_suites[] = {
    {"resnet50", conv_resnet50, sizeof conv_resnet50 / sizeof conv_resnet50[0]},
    {"mobilenetv2", conv_mobilenetv2, sizeof conv_mobilenetv2 / sizeof conv_mobilenetv2[0]},
    {"efficientnet_b0", conv_efficientnet_b0,
     sizeof conv_efficientnet_b0 / sizeof conv_efficientnet_b0[0]}};

bool qb_conv_is_depthwise(const q8_conv_shape *s) { return s->groups > 1 && s->groups == s->in_channels; }

/* Reads up to `max` integers separated by `sep` from *p, each in [min, 2^31]:
 * how many were read, 0 when the text is not such a list. */
static size_t read_numbers(const char **p, char sep, size_t *v, size_t max, size_t min) {
  size_t n = 0;
  while (n < max) {
    if (**p < '0' || **p > '9') return 0;
    char *end;
    errno = 0;
    const unsigned long long x = strtoull(*p, &end, 10);
    if (errno != 0 || x < min || x > (1ull << 31)) return 0;
    v[n++] = (size_t)x;
    *p = end;
    if (**p != sep || n == max) break;
    ++*p;
  }
  return n;
}

__attribute__((format(printf, 4, 5))) static bool spec_fail(char *err, size_t err_size, const char *text,
                                                            const char *fmt, ...) {
  char why[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  snprintf(err, err_size, "conv shape '%s': %s", text, why);
  return false;
}

bool qb_conv_spec_parse(const char *text, const char *suite_name, qb_conv_spec *spec, char *err, size_t err_size) {
  const char *p = text;
  q8_conv_shape s = {.batch = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .groups = 1};
  bool depthwise = false;
  spec->suite = suite_name;
  const char *colon = strchr(p, ':');
  if (colon && (*p < '0' || *p > '9')) {
    const size_t len = (size_t)(colon - p);
    spec->suite = NULL;
    for (size_t i = 0; i < sizeof conv_suites / sizeof conv_suites[0]; ++i) {
      if (strlen(conv_suites[i].name) == len && strncmp(p, conv_suites[i].name, len) == 0) spec->suite = conv_suites[i].name;
    }
    if (len == 3 && strncmp(p, "cli", 3) == 0) spec->suite = "cli";
    if (spec->suite == NULL) {
      return spec_fail(err, err_size, text, "unknown suite '%.*s' (resnet50, mobilenetv2, efficientnet_b0 or cli)", (int)len, p);
    }
    p = colon + 1;
  }
  size_t dims[4];
  const char *start = p;
  const size_t nd = read_numbers(&p, 'x', dims, 4, 1);
  if ((nd != 3 && nd != 4) || *p != ':') {
    return spec_fail(err, err_size, text, "'%.*s' is not [N]xHxWxC (positive integers, e.g. 56x56x64)",
                     (int)strcspn(start, ":"), start);
  }
  const size_t *hwc = nd == 4 ? dims + 1 : dims;
  if (nd == 4) s.batch = dims[0];
  s.in_h = hwc[0];
  s.in_w = hwc[1];
  s.in_channels = hwc[2];
  start = ++p;
  if (read_numbers(&p, ',', &s.out_channels, 1, 1) != 1 || *p != ':') {
    return spec_fail(err, err_size, text, "output channels '%.*s' are not a positive integer",
                     (int)strcspn(start, ":"), start);
  }
  start = ++p;
  size_t kernel[2];
  if (read_numbers(&p, 'x', kernel, 2, 1) != 2 || (*p != ':' && *p != '\0')) {
    return spec_fail(err, err_size, text, "kernel '%.*s' is not KHxKW (e.g. 3x3)", (int)strcspn(start, ":"),
                     start);
  }
  s.kernel_h = kernel[0];
  s.kernel_w = kernel[1];
  bool seen[4] = {false}; /* s p d g/dw */
  while (*p == ':') {
    start = ++p;
    const int len = (int)strcspn(start, ":");
    const char key = *p++;
    const int slot = key == 's' ? 0 : key == 'p' ? 1 : key == 'd' && *p != 'w' ? 2 : 3;
    if (strchr("spdg", key) == NULL || (key == 'd' && *p == 'w' && p[1] != ':' && p[1] != '\0')) {
      return spec_fail(err, err_size, text, "':%.*s' is not one of sS, pP, pT,L,B,R, dD, gG, dw", len, start);
    }
    if (seen[slot]) return spec_fail(err, err_size, text, "':%.*s' repeats an option given before", len, start);
    seen[slot] = true;
    size_t v[4] = {0}, n = 0;
    if (key == 'd' && *p == 'w') {
      depthwise = true;
      ++p;
    } else if (key == 'p') {
      n = read_numbers(&p, ',', v, 4, 0);
      if (n == 1) s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = v[0];
      if (n == 4) {
        s.pad_top = v[0];
        s.pad_left = v[1];
        s.pad_bottom = v[2];
        s.pad_right = v[3];
      }
      if (n != 1 && n != 4) n = 0;
    } else {
      n = read_numbers(&p, ',', v, 1, 1);
      if (key == 's') s.stride_h = s.stride_w = v[0];
      if (key == 'd') s.dilation_h = s.dilation_w = v[0];
      if (key == 'g') s.groups = v[0];
    }
    if ((n == 0 && !(key == 'd' && depthwise && slot == 3)) || (*p != ':' && *p != '\0')) {
      return spec_fail(err, err_size, text, "':%.*s': %s", len, start,
                       key == 'p' ? "padding is pP or pT,L,B,R (integers >= 0)"
                                  : "expected a positive integer after the letter");
    }
  }
  if (*p != '\0') return spec_fail(err, err_size, text, "unexpected '%s'", p);
  if (depthwise) {
    s.groups = s.in_channels;
    if (s.out_channels % s.in_channels != 0) {
      return spec_fail(err, err_size, text, "':dw' needs output channels (%zu) a multiple of input channels (%zu)",
                       s.out_channels, s.in_channels);
    }
  }
  size_t out_h = 0, out_w = 0;
  if (q8_conv_output_shape(&s, &out_h, &out_w) != Q8_OK) {
    return spec_fail(err, err_size, text, "%s", q8_error_detail());
  }
  const double bytes = (double)s.batch * (double)s.in_h * (double)s.in_w * (double)s.in_channels +
                       4.0 * (double)s.batch * (double)out_h * (double)out_w * (double)s.out_channels +
                       (double)s.out_channels * (double)s.kernel_h * (double)s.kernel_w * (double)(s.in_channels / s.groups);
  if (bytes > 4.0 * (1u << 30)) {
    return spec_fail(err, err_size, text, "needs %.1f GiB of buffers (limit 4 GiB)", bytes / (1u << 30));
  }
  spec->shape = s;
  return true;
}

static void add_spec(qb_conv_spec **specs, size_t *count, const qb_conv_spec *spec) {
  qb_conv_spec *grown = realloc(*specs, (*count + 1) * sizeof *grown);
  if (grown == NULL) {
    fputs("qbench: out of memory\n", stderr);
    exit(1);
  }
  grown[(*count)++] = *spec;
  *specs = grown;
}

bool qb_conv_specs_add_list(qb_conv_spec **specs, size_t *count, const char *list, const char *suite_name, char *err,
                            size_t err_size) {
  const char *p = list;
  while (p) {
    /* A comma followed by digits up to the next ',' or ':' or the end is a
     * padding value (:pT,L,B,R), not the start of the next spec. */
    const char *end = p;
    for (;;) {
      end = strchr(end, ',');
      if (end == NULL) break;
      const size_t digits = strspn(end + 1, "0123456789");
      if (digits == 0 || strchr(",:", end[1 + digits]) == NULL) break; /* strchr finds '\0' too */
      ++end;
    }
    char one[160];
    const size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len >= sizeof one) {
      snprintf(err, err_size, "conv shape '%.40s...': too long", p);
      return false;
    }
    memcpy(one, p, len);
    one[len] = '\0';
    qb_conv_spec spec;
    if (!qb_conv_spec_parse(one, suite_name, &spec, err, err_size)) return false;
    add_spec(specs, count, &spec);
    p = end ? end + 1 : NULL;
  }
  return true;
}

bool qb_conv_specs_add_suite(qb_conv_spec **specs, size_t *count, const char *name) {
  for (size_t i = 0; i < sizeof conv_suites / sizeof conv_suites[0]; ++i) {
    if (strcmp(name, conv_suites[i].name) != 0) continue;
    for (size_t j = 0; j < conv_suites[i].count; ++j) {
      qb_conv_spec spec;
      char err[256];
      if (!qb_conv_spec_parse(conv_suites[i].specs[j], conv_suites[i].name, &spec, err, sizeof err)) {
        fprintf(stderr, "qbench: built-in %s\n", err); /* a bug in the table above */
        exit(1);
      }
      add_spec(specs, count, &spec);
    }
    return true;
  }
  return false;
}

void qb_conv_spec_format(const q8_conv_shape *s, char *buf, size_t size) {
  size_t len = 0;
#define PUT(...) len += (size_t)snprintf(buf + len, len < size ? size - len : 0, __VA_ARGS__)
  if (s->batch != 1) PUT("%zux", s->batch);
  PUT("%zux%zux%zu:%zu:%zux%zu:s%zu", s->in_h, s->in_w, s->in_channels, s->out_channels, s->kernel_h, s->kernel_w,
      s->stride_h);
  if (s->pad_top == s->pad_left && s->pad_top == s->pad_bottom && s->pad_top == s->pad_right) PUT(":p%zu", s->pad_top);
  else PUT(":p%zu,%zu,%zu,%zu", s->pad_top, s->pad_left, s->pad_bottom, s->pad_right);
  if (s->dilation_h != 1 || s->dilation_w != 1) PUT(":d%zu", s->dilation_h);
  if (qb_conv_is_depthwise(s)) PUT(":dw");
  else if (s->groups != 1) PUT(":g%zu", s->groups);
#undef PUT
}
