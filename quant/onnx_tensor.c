/* ONNX TensorProto -> IR tensor: type, shape and data from raw_data or the
 * typed fields; serialized TensorProto files (.pb); whole-file reading. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/internal.h"
#include "quant/onnx_internal.h"

static q8_status read_file(const char *path, const char *what, unsigned char **bytes,
                           size_t *size) {
  *bytes = NULL;
  *size = 0;
  if (path == NULL) return q8_fail(Q8_ERR_NULL, "path is NULL");
  FILE *file = fopen(path, "rb");
  if (file == NULL) return q8_fail(Q8_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  /* Grown while reading rather than sized by seeking, so pipes and files
   * that change size while read are handled alike. */
  size_t capacity = 0, used = 0;
  unsigned char *buffer = NULL;
  for (;;) {
    if (used == capacity) {
      const size_t grown = capacity ? capacity * 2 : 64 * 1024;
      unsigned char *bigger = grown > capacity ? realloc(buffer, grown) : NULL;
      if (bigger == NULL) {
        free(buffer);
        fclose(file);
        return q8_fail(Q8_ERR_NOMEM, "%s: out of memory after reading %zu bytes", path, used);
      }
      buffer = bigger;
      capacity = grown;
    }
    const size_t got = fread(buffer + used, 1, capacity - used, file);
    used += got;
    if (got == 0) break;
  }
  const int read_error = ferror(file) ? errno : 0;
  fclose(file);
  if (read_error != 0) {
    free(buffer);
    return q8_fail(Q8_ERR_IO, "%s: cannot read: %s", path, strerror(read_error));
  }
  if (used == 0) {
    free(buffer);
    return q8_fail(Q8_ERR_FORMAT, "%s: empty file (0 bytes), not %s", path, what);
  }
  *bytes = buffer;
  *size = used;
  return Q8_OK;
}

q8_status q8_load_file(const char *path, const char *what, q8_bytes_loader load, void *out) {
  unsigned char *bytes;
  size_t size;
  q8_status status = read_file(path, what, &bytes, &size);
  if (status != Q8_OK) return status;
  status = load(bytes, size, path, out);
  free(bytes);
  return status;
}

/* raw_data is little-endian whatever the host; scalar_size is that of one
 * number (a complex value is two). */
static void little_endian_to_host(unsigned char *data, size_t bytes, size_t scalar_size) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  for (size_t at = 0; at + scalar_size <= bytes; at += scalar_size) {
    for (size_t i = 0; i < scalar_size / 2; ++i) {
      const unsigned char t = data[at + i];
      data[at + i] = data[at + scalar_size - 1 - i];
      data[at + scalar_size - 1 - i] = t;
    }
  }
#else
  (void)data, (void)bytes, (void)scalar_size;
#endif
}

static size_t scalars_per_element(q8_elem_type type) {
  return type == Q8_ELEM_COMPLEX64 || type == Q8_ELEM_COMPLEX128 ? 2 : 1;
}

/* The typed field that holds a type's values when raw_data is absent, as
 * ONNX's TensorProto comments assign them. */
typedef enum typed_field { FIELD_NONE, FIELD_FLOAT, FIELD_INT32, FIELD_INT64, FIELD_DOUBLE, FIELD_UINT64 } typed_field;

static typed_field field_of(q8_elem_type type) {
  switch (type) {
    case Q8_ELEM_FLOAT: case Q8_ELEM_COMPLEX64: return FIELD_FLOAT;
    case Q8_ELEM_UINT8: case Q8_ELEM_INT8: case Q8_ELEM_UINT16: case Q8_ELEM_INT16:
    case Q8_ELEM_INT32: case Q8_ELEM_BOOL: case Q8_ELEM_FLOAT16: case Q8_ELEM_BFLOAT16:
      return FIELD_INT32;
    case Q8_ELEM_INT64: return FIELD_INT64;
    case Q8_ELEM_FLOAT64: case Q8_ELEM_COMPLEX128: return FIELD_DOUBLE;
    case Q8_ELEM_UINT32: case Q8_ELEM_UINT64: return FIELD_UINT64;
    case Q8_ELEM_UNDEFINED: case Q8_ELEM_STRING: return FIELD_NONE;
  }
  return FIELD_NONE;
}

static size_t typed_count(const Onnx__TensorProto *p, typed_field field) {
  switch (field) {
    case FIELD_FLOAT: return p->n_float_data;
    case FIELD_INT32: return p->n_int32_data;
    case FIELD_INT64: return p->n_int64_data;
    case FIELD_DOUBLE: return p->n_double_data;
    case FIELD_UINT64: return p->n_uint64_data;
    case FIELD_NONE: return 0;
  }
  return 0;
}

/* Typed values -> host layout of `type`. Narrow integer types travel in
 * int32_data (float16/bfloat16 as their bits), so they are truncated to
 * their width here; bool is normalised to 0/1. */
static void decode_typed(const Onnx__TensorProto *p, q8_elem_type type, size_t values,
                         void *out) {
  unsigned char *u8 = out;
  uint16_t *u16 = out;
  switch (type) {
    case Q8_ELEM_FLOAT: case Q8_ELEM_COMPLEX64:
      memcpy(out, p->float_data, values * sizeof(float));
      return;
    case Q8_ELEM_FLOAT64: case Q8_ELEM_COMPLEX128:
      memcpy(out, p->double_data, values * sizeof(double));
      return;
    case Q8_ELEM_INT32:
      memcpy(out, p->int32_data, values * sizeof(int32_t));
      return;
    case Q8_ELEM_INT64:
      memcpy(out, p->int64_data, values * sizeof(int64_t));
      return;
    case Q8_ELEM_UINT64:
      memcpy(out, p->uint64_data, values * sizeof(uint64_t));
      return;
    case Q8_ELEM_UINT32:
      for (size_t i = 0; i < values; ++i) ((uint32_t *)out)[i] = (uint32_t)p->uint64_data[i];
      return;
    case Q8_ELEM_UINT8: case Q8_ELEM_INT8:
      for (size_t i = 0; i < values; ++i) u8[i] = (unsigned char)(uint32_t)p->int32_data[i];
      return;
    case Q8_ELEM_BOOL:
      for (size_t i = 0; i < values; ++i) u8[i] = p->int32_data[i] != 0;
      return;
    case Q8_ELEM_UINT16: case Q8_ELEM_INT16: case Q8_ELEM_FLOAT16: case Q8_ELEM_BFLOAT16:
      for (size_t i = 0; i < values; ++i) u16[i] = (uint16_t)(uint32_t)p->int32_data[i];
      return;
    case Q8_ELEM_UNDEFINED: case Q8_ELEM_STRING:
      return;
  }
}

static bool known_type(int32_t code) {
  return code > Q8_ELEM_UNDEFINED && code <= Q8_ELEM_BFLOAT16;
}

/* Everything but the data, which needs the shape checked first. */
static q8_status decode_header(const Onnx__TensorProto *p, const char *where, q8_tensor *t,
                               size_t *elements) {
  if (p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL || p->n_external_data > 0) {
    return q8_fail(Q8_ERR_UNSUPPORTED,
                   "%s: data is stored in an external file; q8 loads only self-contained "
                   "models (external data is not supported)", where);
  }
  if (p->segment != NULL) {
    return q8_fail(Q8_ERR_UNSUPPORTED, "%s: is a segment of a larger tensor (not supported)",
                   where);
  }
  if (!p->has_data_type || p->data_type == Q8_ELEM_UNDEFINED) {
    return q8_fail(Q8_ERR_FORMAT, "%s: has no data type", where);
  }
  if (!known_type(p->data_type)) {
    return q8_fail(Q8_ERR_UNSUPPORTED, "%s: has data type %d, which q8 does not know", where,
                   (int)p->data_type);
  }
  t->type = (q8_elem_type)p->data_type;
  if (p->n_dims > Q8_MAX_RANK) {
    return q8_fail(Q8_ERR_UNSUPPORTED, "%s: has rank %zu; q8 handles rank <= %d", where,
                   p->n_dims, Q8_MAX_RANK);
  }
  t->rank = (int)p->n_dims;
  /* Bounded so that count x 16 bytes (complex128) cannot overflow size_t. */
  const size_t limit = SIZE_MAX / 16;
  size_t count = 1;
  for (size_t d = 0; d < p->n_dims; ++d) {
    const int64_t dim = p->dims[d];
    if (dim < 0) return q8_fail(Q8_ERR_FORMAT, "%s: dimension %zu is %lld", where, d, (long long)dim);
    t->dims[d] = dim;
    if (dim != 0 && count > limit / (uint64_t)dim) {
      return q8_fail(Q8_ERR_FORMAT, "%s: shape has more elements than memory can hold", where);
    }
    count *= (size_t)dim;
  }
  if (t->type == Q8_ELEM_STRING && (count > 0 || p->n_string_data > 0)) {
    return q8_fail(Q8_ERR_UNSUPPORTED, "%s: holds strings; q8 loads numeric tensors only", where);
  }
  *elements = count;
  return Q8_OK;
}

q8_status q8_tensor_from_proto(const Onnx__TensorProto *p, const char *where, q8_tensor *t) {
  *t = (q8_tensor){.kind = Q8_TENSOR_CONSTANT, .rank = -1, .producer = -1};
  t->name = q8_str_dup(p->name);
  if (t->name == NULL) return q8_fail(Q8_ERR_NOMEM, "%s: out of memory", where);
  size_t count = 0;
  q8_status status = decode_header(p, where, t, &count);
  if (status != Q8_OK) {
    q8_tensor_free(t);
    return status;
  }
  const size_t per_element = scalars_per_element(t->type);
  const size_t bytes = count * q8_elem_size(t->type);
  char shape[160];
  q8_tensor_shape_str(t, shape, sizeof shape);
  /* ONNX: raw_data, when present, is the data; the typed fields otherwise. */
  if (p->has_raw_data && p->raw_data.len != bytes) {
    status = q8_fail(Q8_ERR_FORMAT,
                     "%s: holds %zu bytes of data, but its shape %s of %s needs %zu bytes", where,
                     p->raw_data.len, shape, q8_elem_type_name(t->type), bytes);
  } else if (!p->has_raw_data && typed_count(p, field_of(t->type)) != count * per_element) {
    status = q8_fail(Q8_ERR_FORMAT, "%s: holds %zu values, but its shape %s of %s needs %zu",
                     where, typed_count(p, field_of(t->type)), shape,
                     q8_elem_type_name(t->type), count * per_element);
  }
  if (status != Q8_OK) {
    q8_tensor_free(t);
    return status;
  }
  if (bytes == 0) return Q8_OK;
  t->data = malloc(bytes);
  if (t->data == NULL) {
    q8_tensor_free(t);
    return q8_fail(Q8_ERR_NOMEM, "%s: out of memory for %zu bytes of data", where, bytes);
  }
  t->data_bytes = bytes;
  if (p->has_raw_data) {
    memcpy(t->data, p->raw_data.data, bytes);
    little_endian_to_host(t->data, bytes, q8_elem_size(t->type) / per_element);
  } else {
    decode_typed(p, t->type, count * per_element, t->data);
  }
  return Q8_OK;
}

/* A q8_bytes_loader: `out` is the q8_tensor to fill. */
static q8_status load_pb(const void *bytes, size_t size, const char *source, void *out) {
  q8_tensor *tensor = out;
  if (size == 0) return q8_fail(Q8_ERR_FORMAT, "%s: empty (0 bytes), not a TensorProto", source);
  Onnx__TensorProto *proto = onnx__tensor_proto__unpack(NULL, size, bytes);
  if (proto == NULL) {
    return q8_fail(Q8_ERR_FORMAT, "%s: truncated or corrupt TensorProto (protobuf parsing failed)",
                   source);
  }
  char where[400];
  snprintf(where, sizeof where, "%s: tensor '%s'", source, proto->name ? proto->name : "");
  const q8_status status = q8_tensor_from_proto(proto, where, tensor);
  onnx__tensor_proto__free_unpacked(proto, NULL);
  return status;
}

q8_status q8_tensor_load_pb_memory(const void *bytes, size_t size, q8_tensor *tensor) {
  q8_clear_error();
  if (tensor == NULL) return q8_fail(Q8_ERR_NULL, "tensor is NULL");
  *tensor = (q8_tensor){.kind = Q8_TENSOR_CONSTANT, .rank = -1, .producer = -1};
  if (bytes == NULL && size > 0) return q8_fail(Q8_ERR_NULL, "bytes is NULL");
  return load_pb(bytes, size, "TensorProto in memory", tensor);
}

q8_status q8_tensor_load_pb(const char *path, q8_tensor *tensor) {
  q8_clear_error();
  if (tensor == NULL) return q8_fail(Q8_ERR_NULL, "tensor is NULL");
  *tensor = (q8_tensor){.kind = Q8_TENSOR_CONSTANT, .rank = -1, .producer = -1};
  return q8_load_file(path, "a TensorProto", load_pb, tensor);
}
