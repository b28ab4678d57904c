/* IDX reader (zlib: gzip'd or plain files) and the Fashion-MNIST split loader.
 * Every malformed file is an error naming the path and what was wrong; the
 * reader never trusts the header's sizes before the data is there. */
#include "quant/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dispatch/internal.h"

/* gzread takes an unsigned length; reading in bounded chunks also lets the
 * buffer grow with the data actually present, so a corrupt header announcing
 * gigabytes costs nothing before the file proves it holds them. */
#define IDX_CHUNK ((size_t)1 << 20)

static uint32_t be32(const unsigned char b[4]) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Reads up to want bytes; returns the count read, or -1 (message set) on a
 * read or decompression error. A short count means the data ended. */
static long long read_some(gzFile f, const char *path, void *dst, size_t want, q8_status *failure) {
  int n = gzread(f, dst, (unsigned)want);
  if (n >= 0) return n;
  int zerr = Z_OK;
  const char *msg = gzerror(f, &zerr);
  if (zerr == Z_ERRNO) {
    *failure = q8_fail(Q8_ERR_IO, "%s: read error: %s", path, strerror(errno));
  } else {
    *failure = q8_fail(Q8_ERR_FORMAT, "%s: corrupt gzip data: %s", path, msg);
  }
  return -1;
}

/* Z_BUF_ERROR after the data means the gzip stream stopped before its end
 * (trailer with CRC and length missing): the file was cut short. */
static bool stream_cut(gzFile f) {
  int zerr = Z_OK;
  gzerror(f, &zerr);
  return zerr == Z_BUF_ERROR;
}

static q8_status read_header(gzFile f, const char *path, q8_idx *idx) {
  q8_status failure = Q8_ERR_FORMAT;
  unsigned char b[4 * Q8_IDX_MAX_DIMS];
  long long got = read_some(f, path, b, 4, &failure);
  if (got < 0) return failure;
  if (got < 4) {
    return q8_fail(Q8_ERR_FORMAT, "%s: truncated: the IDX magic needs 4 bytes, the file has %lld",
                   path, got);
  }
  idx->magic = be32(b);
  /* Two zero bytes, type 0x08 (unsigned byte), then the number of dims. */
  if ((idx->magic & 0xFFFFFF00u) != 0x00000800u || (idx->magic & 0xFFu) == 0 ||
      (idx->magic & 0xFFu) > Q8_IDX_MAX_DIMS) {
    return q8_fail(Q8_ERR_FORMAT,
                   "%s: not an unsigned-byte IDX file: magic 0x%08x (expected 0x%08x for "
                   "labels or 0x%08x for images)",
                   path, (unsigned)idx->magic, Q8_IDX_MAGIC_LABELS, Q8_IDX_MAGIC_IMAGES);
  }
  idx->ndims = (int)(idx->magic & 0xFFu);
  const size_t dim_bytes = 4 * (size_t)idx->ndims;
  if ((got = read_some(f, path, b, dim_bytes, &failure)) < 0) return failure;
  if ((size_t)got < dim_bytes) {
    return q8_fail(Q8_ERR_FORMAT,
                   "%s: truncated: the header's %d dimensions need %zu bytes, the file has %lld "
                   "(%lld missing)",
                   path, idx->ndims, dim_bytes, got, (long long)dim_bytes - got);
  }
  size_t size = 1;
  for (int i = 0; i < idx->ndims; ++i) {
    idx->dims[i] = be32(b + 4 * i);
    if (idx->dims[i] != 0 && size > SIZE_MAX / idx->dims[i]) {
      return q8_fail(Q8_ERR_FORMAT, "%s: corrupt header: dimensions overflow size_t", path);
    }
    size *= idx->dims[i];
  }
  idx->size = size;
  return Q8_OK;
}

static void describe_dims(const q8_idx *idx, char *buf, size_t cap) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < idx->ndims && used < cap; ++i) {
    int w = snprintf(buf + used, cap - used, "%s%u", i ? "x" : "", (unsigned)idx->dims[i]);
    if (w < 0) break;
    used += (size_t)w;
  }
}

static q8_status read_data(gzFile f, const char *path, q8_idx *idx) {
  q8_status failure = Q8_ERR_FORMAT;
  size_t have = 0, cap = 0;
  while (have < idx->size) {
    if (have == cap) {
      size_t next = cap ? cap * 2 : IDX_CHUNK;
      if (next > idx->size || next < cap) next = idx->size;
      uint8_t *grown = realloc(idx->data, next);
      if (grown == NULL) {
        return q8_fail(Q8_ERR_NOMEM, "%s: cannot allocate %zu bytes for the data", path, next);
      }
      idx->data = grown;
      cap = next;
    }
    size_t want = cap - have < IDX_CHUNK ? cap - have : IDX_CHUNK;
    long long got = read_some(f, path, idx->data + have, want, &failure);
    if (got < 0) return failure;
    have += (size_t)got;
    if ((size_t)got < want) break;
  }
  if (have < idx->size) {
    char dims[64];
    describe_dims(idx, dims, sizeof dims);
    return q8_fail(Q8_ERR_FORMAT,
                   "%s: truncated: the header (%s) announces %zu data bytes, the file has %zu%s "
                   "(%zu missing)",
                   path, dims, idx->size, have, gzdirect(f) ? "" : " once decompressed",
                   idx->size - have);
  }
  /* Exactly the announced size: more data means a different file than the
   * header describes. */
  unsigned char extra[4096];
  size_t trailing = 0;
  for (;;) {
    long long got = read_some(f, path, extra, sizeof extra, &failure);
    if (got < 0) return failure;
    trailing += (size_t)got;
    if ((size_t)got < sizeof extra) break;
  }
  if (trailing > 0) {
    return q8_fail(Q8_ERR_FORMAT,
                   "%s: %zu%s bytes after the %zu data bytes the header announces", path,
                   trailing, trailing >= (size_t)1 << 20 ? "+" : "", idx->size);
  }
  if (stream_cut(f)) {
    return q8_fail(Q8_ERR_FORMAT, "%s: truncated: the gzip stream ends before its trailer", path);
  }
  return Q8_OK;
}

q8_status q8_idx_load(const char *path, q8_idx *idx) {
  q8_clear_error();
  if (idx == NULL) return q8_fail(Q8_ERR_NULL, "idx load: output pointer is NULL");
  memset(idx, 0, sizeof *idx);
  if (path == NULL) return q8_fail(Q8_ERR_NULL, "idx load: path is NULL");
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (f == NULL) {
    return q8_fail(errno ? Q8_ERR_IO : Q8_ERR_NOMEM, "cannot open %s: %s", path,
                   errno ? strerror(errno) : "out of memory");
  }
  gzbuffer(f, 1u << 17);
  q8_status s = read_header(f, path, idx);
  if (s == Q8_OK) s = read_data(f, path, idx);
  gzclose(f);
  if (s != Q8_OK) q8_idx_free(idx);
  return s;
}

void q8_idx_free(q8_idx *idx) {
  if (idx == NULL) return;
  free(idx->data);
  memset(idx, 0, sizeof *idx);
}

/* <dir>/<split>-<kind>-idxN-ubyte, gzip'd copy first (that is what Debian and
 * the Fashion-MNIST site ship), then the plain file. */
static q8_status find_file(const char *dir, const char *split, const char *kind, char *out,
                           size_t cap) {
  char plain[4096];
  int w = snprintf(plain, sizeof plain, "%s/%s-%s-ubyte", dir, split, kind);
  if (w < 0 || (size_t)w + 3 >= sizeof plain || (size_t)w + 3 >= cap) {
    return q8_fail(Q8_ERR_ARG, "dataset directory path too long: %s", dir);
  }
  snprintf(out, cap, "%s.gz", plain);
  FILE *probe = fopen(out, "rb");
  if (probe == NULL) {
    snprintf(out, cap, "%s", plain);
    probe = fopen(out, "rb");
  }
  if (probe == NULL) {
    return q8_fail(Q8_ERR_IO, "dataset %s: neither %s.gz nor %s exists (or is readable)",
                   split, plain, plain);
  }
  fclose(probe);
  return Q8_OK;
}

static q8_status check_pair(const q8_idx *images, const char *ipath, const q8_idx *labels,
                            const char *lpath) {
  if (images->magic != Q8_IDX_MAGIC_IMAGES) {
    return q8_fail(Q8_ERR_FORMAT, "%s: magic 0x%08x, expected 0x%08x (3-D images)", ipath,
                   (unsigned)images->magic, Q8_IDX_MAGIC_IMAGES);
  }
  if (labels->magic != Q8_IDX_MAGIC_LABELS) {
    return q8_fail(Q8_ERR_FORMAT, "%s: magic 0x%08x, expected 0x%08x (1-D labels)", lpath,
                   (unsigned)labels->magic, Q8_IDX_MAGIC_LABELS);
  }
  if (images->dims[0] == 0 || images->dims[1] == 0 || images->dims[2] == 0) {
    return q8_fail(Q8_ERR_FORMAT, "%s: empty: %ux%ux%u images", ipath, (unsigned)images->dims[0],
                   (unsigned)images->dims[1], (unsigned)images->dims[2]);
  }
  if (images->dims[0] != labels->dims[0]) {
    return q8_fail(Q8_ERR_FORMAT, "count mismatch: %s has %u images, %s has %u labels", ipath,
                   (unsigned)images->dims[0], lpath, (unsigned)labels->dims[0]);
  }
  for (size_t i = 0; i < labels->size; ++i) {
    if (labels->data[i] >= Q8_DATASET_CLASSES) {
      return q8_fail(Q8_ERR_FORMAT, "%s: label %u at index %zu, expected 0..%d", lpath,
                     (unsigned)labels->data[i], i, Q8_DATASET_CLASSES - 1);
    }
  }
  return Q8_OK;
}

q8_status q8_dataset_load(const char *dir, const char *split, q8_dataset *ds) {
  q8_clear_error();
  if (ds == NULL) return q8_fail(Q8_ERR_NULL, "dataset load: output pointer is NULL");
  memset(ds, 0, sizeof *ds);
  if (split == NULL) return q8_fail(Q8_ERR_NULL, "dataset load: split is NULL");
  /* The two splits Fashion-MNIST has; a typo ("test") gets this message
   * rather than a file-not-found one. */
  if (strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0) {
    return q8_fail(Q8_ERR_ARG, "dataset split '%s': expected 'train' or 't10k'", split);
  }
  if (dir == NULL) dir = Q8_DATASET_DEFAULT_DIR;

  char ipath[4100], lpath[4100];
  q8_status s = find_file(dir, split, "images-idx3", ipath, sizeof ipath);
  if (s == Q8_OK) s = find_file(dir, split, "labels-idx1", lpath, sizeof lpath);
  if (s != Q8_OK) return s;

  q8_idx images = {0}, labels = {0};
  if ((s = q8_idx_load(ipath, &images)) != Q8_OK) return s;
  if ((s = q8_idx_load(lpath, &labels)) != Q8_OK ||
      (s = check_pair(&images, ipath, &labels, lpath)) != Q8_OK) {
    q8_idx_free(&images);
    q8_idx_free(&labels);
    return s;
  }
  /* The dataset takes over both buffers. */
  *ds = (q8_dataset){.count = images.dims[0],
                     .rows = images.dims[1],
                     .cols = images.dims[2],
                     .images = images.data,
                     .labels = labels.data};
  return Q8_OK;
}

void q8_dataset_free(q8_dataset *ds) {
  if (ds == NULL) return;
  free(ds->images);
  free(ds->labels);
  memset(ds, 0, sizeof *ds);
}

q8_status q8_dataset_batch(const q8_dataset *ds, size_t first, size_t n, float *out) {
  q8_clear_error();
  if (ds == NULL || out == NULL) return q8_fail(Q8_ERR_NULL, "dataset batch: ds or out is NULL");
  if (first > ds->count || n > ds->count - first) {
    return q8_fail(Q8_ERR_ARG, "dataset batch: images [%zu, %zu + %zu) outside the %zu images",
                   first, first, n, ds->count);
  }
  const size_t pixels = ds->rows * ds->cols;
  const uint8_t *src = ds->images + first * pixels;
  for (size_t i = 0; i < n * pixels; ++i) out[i] = q8_dataset_pixel_to_input(src[i]);
  return Q8_OK;
}
