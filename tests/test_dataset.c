/* IDX reader and dataset loader: the real Fashion-MNIST t10k split (pixel and
 * label values checked independently with Python's gzip + numpy), and every
 * malformed file written to a temporary directory. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "quant/dataset.h"

/* ---- temporary files ------------------------------------------------------ */

#define MAX_FILES 8
static char tmp_dir[512];
static char tmp_files[MAX_FILES][600];
static int tmp_count;

static void tmp_setup(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmp_dir, sizeof tmp_dir, "%s/q8_dataset_XXXXXX", base && *base ? base : "/tmp");
  cr_assert_not_null(mkdtemp(tmp_dir), "mkdtemp %s", tmp_dir);
  tmp_count = 0;
}

static void tmp_teardown(void) {
  for (int i = 0; i < tmp_count; ++i) remove(tmp_files[i]);
  rmdir(tmp_dir);
}

/* dir/name, remembered once for the teardown however often it is rewritten. */
static const char *tmp_path(const char *name) {
  char path[sizeof tmp_files[0]];
  snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
  for (int i = 0; i < tmp_count; ++i) {
    if (strcmp(tmp_files[i], path) == 0) return tmp_files[i];
  }
  cr_assert_lt(tmp_count, MAX_FILES);
  return strcpy(tmp_files[tmp_count++], path);
}

/* Writes bytes to dir/name, gzip'd when the name ends in ".gz". */
static const char *write_file(const char *name, const void *bytes, size_t n) {
  const char *path = tmp_path(name);
  const size_t len = strlen(name);
  if (len > 3 && strcmp(name + len - 3, ".gz") == 0) {
    gzFile f = gzopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(gzwrite(f, bytes, (unsigned)n), (int)n);
    cr_assert_eq(gzclose(f), Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
  }
  return path;
}

static size_t put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
  return 4;
}

/* A small IDX file in memory: n images of r x c with pixel i*7+j, or n labels
 * i % 10. Returns the total size (header + data). */
static size_t make_images(unsigned char *buf, uint32_t n, uint32_t r, uint32_t c) {
  size_t o = put_be32(buf, Q8_IDX_MAGIC_IMAGES);
  o += put_be32(buf + o, n);
  o += put_be32(buf + o, r);
  o += put_be32(buf + o, c);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint32_t j = 0; j < r * c; ++j) buf[o++] = (unsigned char)(i * 7 + j);
  }
  return o;
}

static size_t make_labels(unsigned char *buf, uint32_t n) {
  size_t o = put_be32(buf, Q8_IDX_MAGIC_LABELS);
  o += put_be32(buf + o, n);
  for (uint32_t i = 0; i < n; ++i) buf[o++] = (unsigned char)(i % 10);
  return o;
}

#define EXPECT_DETAIL(word)                                                            \
  cr_expect(strstr(q8_error_detail(), (word)) != NULL, "detail '%s' should contain '%s'", \
            q8_error_detail(), (word))

/* ---- the real t10k split ------------------------------------------------- */

static bool have_fashion_mnist(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", Q8_DATASET_DEFAULT_DIR);
  if (access(path, R_OK) == 0) return true;
  cr_log_info("%s not installed (Debian dataset-fashion-mnist): skipping", Q8_DATASET_DEFAULT_DIR);
  return false;
}

Test(dataset, fashion_mnist_t10k) {
  if (!have_fashion_mnist()) cr_skip_test();
  q8_dataset ds;
  cr_assert_eq(q8_dataset_load(NULL, "t10k", &ds), Q8_OK, "%s", q8_error_detail());
  cr_assert_eq(ds.count, 10000);
  cr_assert_eq(ds.rows, 28);
  cr_assert_eq(ds.cols, 28);

  /* Reference values from gzip + numpy on the same files. */
  const uint8_t first_labels[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  cr_expect_arr_eq(ds.labels, first_labels, sizeof first_labels);
  cr_expect_eq(ds.labels[9999], 5);
  size_t per_class[Q8_DATASET_CLASSES] = {0};
  for (size_t i = 0; i < ds.count; ++i) per_class[ds.labels[i]]++;
  for (int c = 0; c < Q8_DATASET_CLASSES; ++c) {
    cr_expect_eq(per_class[c], 1000, "class %d has %zu images", c, per_class[c]);
  }
#define PIXEL(i, r, c) ds.images[((size_t)(i) * 28 + (r)) * 28 + (c)]
  cr_expect_eq(PIXEL(0, 14, 14), 110);
  cr_expect_eq(PIXEL(0, 20, 10), 126);
  cr_expect_eq(PIXEL(0, 20, 17), 255);
  cr_expect_eq(PIXEL(1, 5, 14), 242);
  cr_expect_eq(PIXEL(1234, 10, 20), 179);
  cr_expect_eq(PIXEL(9999, 14, 14), 132);
#undef PIXEL
  uint64_t sum0 = 0, total = 0;
  for (size_t i = 0; i < 784; ++i) sum0 += ds.images[i];
  for (size_t i = 0; i < ds.count * 784; ++i) total += ds.images[i];
  cr_expect_eq(sum0, 33456);
  cr_expect_eq(total, 573469082);

  /* The float batch: NCHW [2, 1, 28, 28], pixel / 255 as the training script. */
  float *batch = malloc(2 * 784 * sizeof *batch);
  cr_assert_not_null(batch);
  cr_assert_eq(q8_dataset_batch(&ds, 9998, 2, batch), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(batch[784 + 14 * 28 + 14], 132.0f / 255.0f);
  for (size_t i = 0; i < 2 * 784; ++i) {
    cr_assert(batch[i] >= 0.0f && batch[i] <= 1.0f);
    cr_assert_eq(batch[i], (float)ds.images[9998 * 784 + i] / 255.0f);
  }
  cr_expect_eq(q8_dataset_batch(&ds, 9999, 2, batch), Q8_ERR_ARG);
  EXPECT_DETAIL("10000 images");
  cr_expect_eq(q8_dataset_batch(&ds, 10001, 0, batch), Q8_ERR_ARG);
  cr_expect_eq(q8_dataset_batch(&ds, 10000, 0, batch), Q8_OK);
  cr_expect_eq(q8_dataset_batch(NULL, 0, 1, batch), Q8_ERR_NULL);
  free(batch);
  q8_dataset_free(&ds);
  cr_expect_null(ds.images);
  q8_dataset_free(&ds); /* twice is harmless */
}

/* ---- small files: both encodings, every error ---------------------------- */

TestSuite(idx, .init = tmp_setup, .fini = tmp_teardown);

static void expect_small_split(const char *dir) {
  q8_dataset ds;
  cr_assert_eq(q8_dataset_load(dir, "train", &ds), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(ds.count, 3);
  cr_expect_eq(ds.rows, 2);
  cr_expect_eq(ds.cols, 5);
  for (uint32_t i = 0; i < 3; ++i) {
    cr_expect_eq(ds.labels[i], i);
    for (uint32_t j = 0; j < 10; ++j) cr_expect_eq(ds.images[i * 10 + j], (uint8_t)(i * 7 + j));
  }
  q8_dataset_free(&ds);
}

Test(idx, uncompressed_and_gzip_split) {
  unsigned char img[16 + 30], lab[8 + 3];
  const size_t ni = make_images(img, 3, 2, 5), nl = make_labels(lab, 3);
  write_file("train-images-idx3-ubyte", img, ni);
  write_file("train-labels-idx1-ubyte", lab, nl);
  expect_small_split(tmp_dir);
  /* The .gz copies are preferred: make them differ to see which was read. */
  img[16] = 99;
  write_file("train-images-idx3-ubyte.gz", img, ni);
  write_file("train-labels-idx1-ubyte.gz", lab, nl);
  q8_dataset ds;
  cr_assert_eq(q8_dataset_load(tmp_dir, "train", &ds), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(ds.images[0], 99);
  q8_dataset_free(&ds);
}

Test(idx, load_fields) {
  unsigned char img[16 + 30];
  const size_t ni = make_images(img, 3, 2, 5);
  q8_idx idx;
  cr_assert_eq(q8_idx_load(write_file("a.gz", img, ni), &idx), Q8_OK, "%s", q8_error_detail());
  cr_expect_eq(idx.magic, Q8_IDX_MAGIC_IMAGES);
  cr_expect_eq(idx.ndims, 3);
  cr_expect_eq(idx.dims[0], 3);
  cr_expect_eq(idx.dims[1], 2);
  cr_expect_eq(idx.dims[2], 5);
  cr_expect_eq(idx.size, 30);
  cr_expect_arr_eq(idx.data, img + 16, 30);
  q8_idx_free(&idx);
}

Test(idx, missing_file) {
  const char *path = tmp_path("absent-idx1-ubyte");
  q8_idx idx;
  cr_expect_eq(q8_idx_load(path, &idx), Q8_ERR_IO);
  EXPECT_DETAIL(path);
  EXPECT_DETAIL("No such file");
  cr_expect_null(idx.data);

  q8_dataset ds;
  cr_expect_eq(q8_dataset_load(tmp_dir, "t10k", &ds), Q8_ERR_IO);
  EXPECT_DETAIL("t10k-images-idx3-ubyte.gz");
  EXPECT_DETAIL(tmp_dir);
  cr_expect_null(ds.images);
  cr_expect_eq(q8_dataset_load(tmp_dir, "test", &ds), Q8_ERR_ARG);
  EXPECT_DETAIL("'train' or 't10k'");
  cr_expect_eq(q8_dataset_load(tmp_dir, NULL, &ds), Q8_ERR_NULL);
  cr_expect_eq(q8_idx_load(NULL, &idx), Q8_ERR_NULL);
  cr_expect_eq(q8_idx_load(path, NULL), Q8_ERR_NULL);
}

Test(idx, wrong_magic) {
  unsigned char img[16 + 30];
  const size_t ni = make_images(img, 3, 2, 5);
  put_be32(img, 0x12345678u);
  q8_idx idx;
  const char *path = write_file("bad.gz", img, ni);
  cr_expect_eq(q8_idx_load(path, &idx), Q8_ERR_FORMAT);
  EXPECT_DETAIL(path);
  EXPECT_DETAIL("0x12345678");
  /* float IDX (type 0x0D) is a real format, but not one q8 reads. */
  put_be32(img, 0x00000D03u);
  path = write_file("float", img, ni);
  cr_expect_eq(q8_idx_load(path, &idx), Q8_ERR_FORMAT);
  EXPECT_DETAIL("0x00000d03");
  /* A gzip'd text file. */
  path = write_file("text.gz", "hello, world", 12);
  cr_expect_eq(q8_idx_load(path, &idx), Q8_ERR_FORMAT);
  EXPECT_DETAIL("0x68656c6c");
}

Test(idx, images_and_labels_swapped) {
  unsigned char img[16 + 30], lab[8 + 3];
  write_file("train-images-idx3-ubyte", lab, make_labels(lab, 3));
  write_file("train-labels-idx1-ubyte", img, make_images(img, 3, 2, 5));
  q8_dataset ds;
  cr_expect_eq(q8_dataset_load(tmp_dir, "train", &ds), Q8_ERR_FORMAT);
  EXPECT_DETAIL("train-images-idx3-ubyte");
  EXPECT_DETAIL("0x00000801");
}

Test(idx, truncated) {
  unsigned char img[16 + 30];
  const size_t ni = make_images(img, 3, 2, 5);
  q8_idx idx;
  const char *path = write_file("short", img, ni - 12);
  cr_expect_eq(q8_idx_load(path, &idx), Q8_ERR_FORMAT);
  EXPECT_DETAIL(path);
  EXPECT_DETAIL("truncated");
  EXPECT_DETAIL("12 missing");
  cr_expect_null(idx.data);
  path = write_file("short.gz", img, ni - 12);
  cr_expect_eq(q8_idx_load(path, &idx), Q8_ERR_FORMAT);
  EXPECT_DETAIL("12 missing");
  path = write_file("header", img, 10);
  cr_expect_eq(q8_idx_load(path, &idx), Q8_ERR_FORMAT);
  EXPECT_DETAIL("truncated");
  EXPECT_DETAIL("6 missing");
  path = write_file("empty", img, 0);
  cr_expect_eq(q8_idx_load(path, &idx), Q8_ERR_FORMAT);
  EXPECT_DETAIL("truncated");
}

/* A gzip file cut inside its compressed stream or trailer: the reader must
 * notice even when all the data decompressed before the cut. */
Test(idx, truncated_gzip_stream) {
  unsigned char img[16 + 30];
  const size_t ni = make_images(img, 3, 2, 5);
  const char *full = write_file("full.gz", img, ni);
  FILE *f = fopen(full, "rb");
  cr_assert_not_null(f);
  unsigned char gz[512];
  const size_t ngz = fread(gz, 1, sizeof gz, f);
  fclose(f);
  cr_assert_gt(ngz, 20);
  q8_idx idx;
  for (size_t cut = 1; cut <= 8; ++cut) {
    const char *path = write_file("cut", gz, ngz - cut);
    cr_expect_eq(q8_idx_load(path, &idx), Q8_ERR_FORMAT, "cut %zu bytes", cut);
    EXPECT_DETAIL("truncated");
  }
}

Test(idx, trailing_bytes) {
  unsigned char img[16 + 30 + 5];
  const size_t ni = make_images(img, 3, 2, 5);
  memset(img + ni, 0, 5);
  q8_idx idx;
  const char *path = write_file("long.gz", img, ni + 5);
  cr_expect_eq(q8_idx_load(path, &idx), Q8_ERR_FORMAT);
  EXPECT_DETAIL("5 bytes after the 30 data bytes");
}

Test(idx, counts_mismatch) {
  unsigned char img[16 + 30], lab[8 + 3];
  write_file("t10k-images-idx3-ubyte", img, make_images(img, 3, 2, 5));
  write_file("t10k-labels-idx1-ubyte.gz", lab, make_labels(lab, 2));
  q8_dataset ds;
  cr_expect_eq(q8_dataset_load(tmp_dir, "t10k", &ds), Q8_ERR_FORMAT);
  EXPECT_DETAIL("count mismatch");
  EXPECT_DETAIL("3 images");
  EXPECT_DETAIL("t10k-labels-idx1-ubyte.gz has 2 labels");
  cr_expect_null(ds.images);
  cr_expect_null(ds.labels);
}

Test(idx, label_out_of_range) {
  unsigned char img[16 + 30], lab[8 + 3];
  write_file("train-images-idx3-ubyte", img, make_images(img, 3, 2, 5));
  make_labels(lab, 3);
  lab[8 + 2] = 10;
  write_file("train-labels-idx1-ubyte", lab, sizeof lab);
  q8_dataset ds;
  cr_expect_eq(q8_dataset_load(tmp_dir, "train", &ds), Q8_ERR_FORMAT);
  EXPECT_DETAIL("label 10 at index 2");
}

/* Every prefix of a valid file is an error, never a crash or a success. */
Test(idx, every_prefix) {
  unsigned char img[16 + 30];
  const size_t ni = make_images(img, 3, 2, 5);
  q8_idx idx;
  for (size_t n = 0; n < ni; ++n) {
    const char *path = write_file("prefix", img, n);
    cr_expect_eq(q8_idx_load(path, &idx), Q8_ERR_FORMAT, "prefix of %zu bytes", n);
    cr_expect_null(idx.data);
  }
}
