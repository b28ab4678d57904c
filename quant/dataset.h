/* IDX datasets (MNIST, Fashion-MNIST): the images the accuracy benchmark and
 * the calibrators read. Files may be gzip'd or plain; zlib reads both.
 *
 * Errors are q8_status codes with a q8_error_detail() message naming the
 * file: Q8_ERR_IO for a missing or unreadable file, Q8_ERR_FORMAT for a
 * truncated or malformed one (wrong magic, dims, size, counts, labels),
 * Q8_ERR_ARG for a bad split name or batch range, Q8_ERR_NOMEM for allocation. */
#ifndef Q8_QUANT_DATASET_H
#define Q8_QUANT_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "q8/q8.h"

/* Where Debian's dataset-fashion-mnist package installs the four files. */
#define Q8_DATASET_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
/* Fashion-MNIST (and MNIST) have ten classes; labels are 0..9. */
#define Q8_DATASET_CLASSES 10

/* IDX magic: two zero bytes, the element type (0x08 = unsigned byte), the
 * number of dimensions. Only unsigned-byte files are read. */
#define Q8_IDX_MAGIC_LABELS 0x00000801u /* 1-D: count */
#define Q8_IDX_MAGIC_IMAGES 0x00000803u /* 3-D: count x rows x cols */
#define Q8_IDX_MAX_DIMS 4

typedef struct q8_idx {
  uint32_t magic;
  int ndims;                      /* 1..Q8_IDX_MAX_DIMS, the low byte of magic */
  uint32_t dims[Q8_IDX_MAX_DIMS]; /* dims[0] is the outermost (item count) */
  size_t size;                    /* product of dims: bytes in data */
  uint8_t *data;                  /* row-major, malloc'd; q8_idx_free releases it */
} q8_idx;

/* Reads an unsigned-byte IDX file (.gz or plain) whole. The data must be
 * exactly what the header announces: a shorter file is reported as
 * truncated (with the number of bytes missing), a longer one as trailing
 * bytes. On failure *idx is zeroed. */
q8_status q8_idx_load(const char *path, q8_idx *idx);
void q8_idx_free(q8_idx *idx);

typedef struct q8_dataset {
  size_t count;     /* images (= labels) */
  size_t rows;      /* image height */
  size_t cols;      /* image width */
  uint8_t *images;  /* count x rows x cols pixels, 0..255, row-major */
  uint8_t *labels;  /* count class indices, each < Q8_DATASET_CLASSES */
} q8_dataset;

/* Loads split "train" or "t10k" from dir (NULL: Q8_DATASET_DEFAULT_DIR),
 * file names as Fashion-MNIST ships them: <split>-images-idx3-ubyte and
 * <split>-labels-idx1-ubyte, each with ".gz" (preferred) or without.
 * Checks that the image and label counts agree and every label < 10.
 * On failure *ds is zeroed. */
q8_status q8_dataset_load(const char *dir, const char *split, q8_dataset *ds);
void q8_dataset_free(q8_dataset *ds);

/* The model input of pixel p: exactly what tools/train_fashion_mnist.py
 * feeds the network (float32 p / 255, so inputs lie in [0, 1]). A division,
 * not a multiplication by 1/255, so the float values are bit-identical to
 * PyTorch's `x.float() / 255`. */
static inline float q8_dataset_pixel_to_input(uint8_t p) { return (float)p / 255.0f; }

/* Writes images [first, first + n) as a float NCHW batch of shape
 * [n, 1, rows, cols] into out (n * rows * cols floats), normalized by
 * q8_dataset_pixel_to_input. The range must lie inside the dataset. */
q8_status q8_dataset_batch(const q8_dataset *ds, size_t first, size_t n, float *out);

#endif
