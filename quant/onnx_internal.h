/* What the ONNX readers (onnx_load.c, onnx_tensor.c) share; the only quant/
 * header that sees protobuf-c, so the rest of q8 works on the IR alone. */
#ifndef Q8_QUANT_ONNX_INTERNAL_H
#define Q8_QUANT_ONNX_INTERNAL_H

#include "onnx/onnx.pb-c.h"
#include "quant/graph.h"

/* Decodes a TensorProto's type, shape and data into *tensor (name copied,
 * kind left to the caller). `where` starts every message, e.g.
 * "m.onnx: initializer 'W'". On failure *tensor is left empty. */
q8_status q8_tensor_from_proto(const Onnx__TensorProto *proto, const char *where,
                               q8_tensor *tensor);

/* Parses size bytes into out; source (a path) starts its messages. */
typedef q8_status (*q8_bytes_loader)(const void *bytes, size_t size, const char *source,
                                     void *out);
/* Reads the whole file and hands it to load. Q8_ERR_IO names the path and
 * the errno text; an empty file is Q8_ERR_FORMAT ("empty file ..., not
 * <what>"). */
q8_status q8_load_file(const char *path, const char *what, q8_bytes_loader load, void *out);

#endif
