/* GEMM shapes: the named suites (taken from real models) and the user's own
 * lists. A shape is M x N x K: M rows of activations, N output channels, K
 * the reduction. Convolutions appear as their im2col GEMM at batch 1, 224x224:
 * M = output pixels, N = output channels, K = kernel height x width x input
 * channels. */
#define _POSIX_C_SOURCE 200809L /* getline */
#include <errno.h>
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
