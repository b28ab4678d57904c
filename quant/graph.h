/* q8 graph IR — the in-memory form of an ONNX model that the float executor,
 * calibration, the quantizer and the int8 executor all work on (internal, not
 * installed).
 *
 * The loader (quant/onnx_load.c) turns an ONNX ModelProto into a q8_graph and
 * has already checked what every later pass would otherwise re-check: each
 * node input names a tensor that exists, no tensor has two producers, nodes
 * are in topological order, initializer data matches its shape, every node
 * is in the default domain, and the default domain's opset is within 11..17
 * (an older opset only when none of the model's operators changed between it
 * and 11: ONNX's quantized operator tests are opset 10).
 *
 * Tensors are referred to by index into q8_graph.tensors (int32_t, -1 for an
 * omitted optional input or output), never by pointer, so later passes may
 * append tensors. Every string is NUL-terminated and owned by the graph. */
#ifndef Q8_QUANT_GRAPH_H
#define Q8_QUANT_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "q8/types.h"

/* Highest tensor rank q8 handles; fixed so shapes live inside the tensor. */
#define Q8_MAX_RANK 8
/* Opsets of the default domain whose operator definitions q8 implements. */
#define Q8_OPSET_MIN 11
#define Q8_OPSET_MAX 17

/* Element types. The values are ONNX's TensorProto.DataType codes, so a
 * model's code is its q8 type and messages can quote either. */
typedef enum q8_elem_type {
  Q8_ELEM_UNDEFINED = 0, /* no declared type (an intermediate without value_info) */
  Q8_ELEM_FLOAT = 1,
  Q8_ELEM_UINT8 = 2,
  Q8_ELEM_INT8 = 3,
  Q8_ELEM_UINT16 = 4,
  Q8_ELEM_INT16 = 5,
  Q8_ELEM_INT32 = 6,
  Q8_ELEM_INT64 = 7,
  Q8_ELEM_STRING = 8,    /* type only: string data is not loaded */
  Q8_ELEM_BOOL = 9,      /* one byte, 0 or 1 */
  Q8_ELEM_FLOAT16 = 10,  /* IEEE half, as its 16 bits */
  Q8_ELEM_FLOAT64 = 11,  /* loaded, but executors refuse it: see q8_graph_cast_float64 */
  Q8_ELEM_UINT32 = 12,
  Q8_ELEM_UINT64 = 13,
  Q8_ELEM_COMPLEX64 = 14,  /* (real, imaginary) float pairs */
  Q8_ELEM_COMPLEX128 = 15, /* (real, imaginary) double pairs */
  Q8_ELEM_BFLOAT16 = 16    /* as its 16 bits */
} q8_elem_type;

/* Name as ONNX spells it ("float", "int8", "double", ...); "unknown" outside the enum. */
const char *q8_elem_type_name(q8_elem_type type);
/* Bytes per element; 0 for UNDEFINED, STRING and unknown codes. */
size_t q8_elem_size(q8_elem_type type);

typedef enum q8_tensor_kind {
  Q8_TENSOR_VALUE = 0,       /* produced by a node at run time */
  Q8_TENSOR_INPUT = 1,       /* graph input the caller feeds */
  Q8_TENSOR_INITIALIZER = 2, /* constant with data (also an input of the same
                                name: ONNX lets a model list both) */
  Q8_TENSOR_CONSTANT = 3     /* data outside the graph: a TENSOR attribute, a .pb file */
} q8_tensor_kind;

typedef struct q8_tensor {
  char *name;
  q8_tensor_kind kind;
  q8_elem_type type;       /* UNDEFINED when nothing declared it */
  int rank;                /* -1: unknown (no shape declared); 0: scalar */
  int64_t dims[Q8_MAX_RANK]; /* rank entries; -1: unknown or symbolic ("N") */
  /* Contents of initializers and constants, little-endian-decoded to the host
   * layout whatever ONNX field held them (raw_data or the typed fields);
   * NULL for run-time values and for empty tensors. */
  void *data;
  size_t data_bytes;       /* element count x q8_elem_size(type) */
  int32_t producer;        /* index of the node that outputs it, -1 if none */
} q8_tensor;

typedef enum q8_attr_type {
  /* Values are ONNX's AttributeProto.AttributeType codes. */
  Q8_ATTR_FLOAT = 1,
  Q8_ATTR_INT = 2,
  Q8_ATTR_STRING = 3,
  Q8_ATTR_TENSOR = 4,
  Q8_ATTR_FLOATS = 6,
  Q8_ATTR_INTS = 7,
  Q8_ATTR_STRINGS = 8
} q8_attr_type;

const char *q8_attr_type_name(q8_attr_type type);

typedef struct q8_attr {
  char *name;
  q8_attr_type type;
  int64_t i;         /* INT */
  float f;           /* FLOAT */
  char *s;           /* STRING (NUL-terminated; s_len excludes the NUL) */
  size_t s_len;
  size_t count;      /* entries of ints, floats or strings */
  int64_t *ints;     /* INTS */
  float *floats;     /* FLOATS */
  char **strings;    /* STRINGS */
  q8_tensor *tensor; /* TENSOR: kind Q8_TENSOR_CONSTANT, with data */
} q8_attr;

typedef struct q8_node {
  char *op_type;
  char *name;        /* the model's, or "<op_type>_<index in the file>" when empty */
  char *domain;      /* "" (the loader admits only the default domain) */
  size_t n_inputs;
  int32_t *inputs;   /* tensor indices; -1 for an omitted optional input ("") */
  size_t n_outputs;
  int32_t *outputs;  /* tensor indices; -1 for an omitted optional output */
  size_t n_attrs;
  q8_attr *attrs;
} q8_node;

typedef struct q8_graph {
  char *name;
  char *producer_name; /* tool that wrote the model, "" if unknown */
  int64_t ir_version;
  int64_t opset;       /* version of the default domain (ai.onnx), as declared */
  size_t n_tensors;
  q8_tensor *tensors;
  size_t n_nodes;
  q8_node *nodes;      /* in topological order */
  size_t n_inputs;
  int32_t *inputs;     /* graph inputs the caller feeds (initializers excluded) */
  size_t n_outputs;
  int32_t *outputs;
} q8_graph;

/* ---- loading ---------------------------------------------------------------
 * On success *graph is a new graph for q8_graph_destroy; on failure it is
 * NULL and q8_error_detail() names the problem (and the path):
 *   Q8_ERR_IO          the file is missing or unreadable
 *   Q8_ERR_FORMAT      not a well-formed ONNX model: truncated or corrupt bytes,
 *                      initializer data not matching its shape, an input no
 *                      one produces, a name produced twice, a cycle, an
 *                      attribute of the wrong kind
 *   Q8_ERR_UNSUPPORTED well-formed, but beyond q8: opset above 17, or below
 *                      11 with an operator defined differently there, a
 *                      node outside the default domain, external or sparse
 *                      data, string data, control flow (GRAPH attributes),
 *                      rank above Q8_MAX_RANK, non-tensor values
 * float64 tensors load (see q8_graph_check_float64). Nodes that are not in
 * topological order are sorted. */
q8_status q8_graph_load_file(const char *path, q8_graph **graph);
q8_status q8_graph_load_memory(const void *bytes, size_t size, q8_graph **graph);
void q8_graph_destroy(q8_graph *graph);

/* A serialized TensorProto (the input_K.pb / output_K.pb files of ONNX's
 * test_data_set_N folders) as a Q8_TENSOR_CONSTANT tensor. On failure the
 * tensor is left empty. Release with q8_tensor_free. */
q8_status q8_tensor_load_pb(const char *path, q8_tensor *tensor);
q8_status q8_tensor_load_pb_memory(const void *bytes, size_t size, q8_tensor *tensor);
/* Frees what the tensor owns (name, data) and leaves it empty; not the
 * q8_tensor itself, which usually lives in an array. NULL is ignored. */
void q8_tensor_free(q8_tensor *tensor);

/* ---- float64 -----------------------------------------------------------------
 * Models exported from float64 frameworks load as they are; executors call
 * q8_graph_check_float64 first, which fails (Q8_ERR_UNSUPPORTED) with
 * "tensor X is float64; rerun with --cast-float64". q8_graph_cast_float64
 * turns every float64 tensor (declared type and data, TENSOR attributes
 * included) into float32, rounding to nearest, and Cast/EyeLike/Random*
 * nodes that would create float64 into float32 ones. */
q8_status q8_graph_check_float64(const q8_graph *graph);
q8_status q8_graph_cast_float64(q8_graph *graph);

/* ---- lookups -------------------------------------------------------------- */
/* Index of the tensor called name, or -1. Linear: resolve names once. */
int32_t q8_graph_tensor_index(const q8_graph *graph, const char *name);
/* The tensor called name, or NULL. */
const q8_tensor *q8_graph_find_tensor(const q8_graph *graph, const char *name);

/* Elements of a tensor with a fully known shape, else -1 (also on overflow). */
int64_t q8_tensor_elements(const q8_tensor *tensor);
/* Whether rank and every dimension are known. */
bool q8_tensor_shape_static(const q8_tensor *tensor);
/* Writes "[1,3,-1,224]" (or "[?]" for an unknown rank) for messages; returns buf. */
char *q8_tensor_shape_str(const q8_tensor *tensor, char *buf, size_t size);

/* The node's attribute called name, or NULL. */
const q8_attr *q8_node_attr(const q8_node *node, const char *name);
/* Typed getters: an absent attribute gives the default (Q8_OK); one of
 * another type is Q8_ERR_FORMAT naming node, attribute and both types. */
q8_status q8_node_attr_int(const q8_node *node, const char *name, int64_t default_value,
                           int64_t *value);
q8_status q8_node_attr_float(const q8_node *node, const char *name, float default_value,
                             float *value);
q8_status q8_node_attr_string(const q8_node *node, const char *name,
                              const char *default_value, const char **value);
/* INTS / FLOATS: absent gives *values NULL and *count 0 (the default often
 * depends on the input's rank, which the caller knows). */
q8_status q8_node_attr_ints(const q8_node *node, const char *name, const int64_t **values,
                            size_t *count);
q8_status q8_node_attr_floats(const q8_node *node, const char *name, const float **values,
                              size_t *count);
/* INTS copied into out[count]: absent fills every entry with default_each;
 * present with another length is Q8_ERR_FORMAT (e.g. Conv strides for 2
 * spatial axes, pads for 4 ends). */
q8_status q8_node_attr_ints_n(const q8_node *node, const char *name, size_t count,
                              int64_t default_each, int64_t *out);
/* TENSOR: absent gives *tensor NULL. */
q8_status q8_node_attr_tensor(const q8_node *node, const char *name, const q8_tensor **tensor);

/* ---- building ----------------------------------------------------------------
 * For passes that add to a graph: copies the graph can own (NULL when out of
 * memory; NULL s copies as ""). */
char *q8_str_dup(const char *s);
char *q8_str_dup_n(const char *s, size_t len); /* len bytes, then a NUL */
void q8_attr_free(q8_attr *attr);
void q8_node_free(q8_node *node);

#endif
