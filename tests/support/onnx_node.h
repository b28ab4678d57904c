/* Running ONNX node tests (libonnx-testdata's node/<name>/model.onnx with
 * test_data_set_N/{input,output}_K.pb) through q8's loader and executor. */
#ifndef Q8_TEST_ONNX_NODE_H
#define Q8_TEST_ONNX_NODE_H

#include <stdbool.h>
#include <stddef.h>

#include "quant/float_exec.h"
#include "quant/graph.h"

/* Node-test folder names starting with one of `prefixes`, sorted, as a
 * malloc'd array of malloc'd strings (q8t_names_free); NULL with count 0
 * when the folder cannot be read (*error then says why). */
char **q8t_node_tests(const char *const *prefixes, size_t n_prefixes, size_t *count, const char **error);
void q8t_names_free(char **names, size_t count);

/* Folder prefixes of the quantized-operator node tests (test_onnx_quant runs
 * them; the float node-test runner leaves them to it). */
extern const char *const q8t_quant_op_prefixes[];
extern const size_t q8t_n_quant_op_prefixes;
/* Whether name starts with one of prefixes. */
bool q8t_has_prefix(const char *name, const char *const *prefixes, size_t n_prefixes);

/* Compares one output with its expected .pb; on mismatch writes why. */
typedef bool (*q8t_output_match)(const q8_float_tensor *got, const q8_tensor *want, char *why, size_t size);
/* The type and shape part of every match: equal, else why. */
bool q8t_same_type_and_shape(const q8_float_tensor *got, const q8_tensor *want, char *why, size_t size);

/* Every test_data_set_N of the node test in folder `name` under the node
 * folder. Returns 1 when all match; 0 (skipped) when the loader refuses the
 * model, session create says Q8_ERR_UNSUPPORTED, or an input's type is not
 * in `input_types` (a mask of Q8_EXEC_TYPE bits); -1 on any other failure. */
int q8t_node_test_run(const char *name, unsigned input_types, q8t_output_match match, char *why, size_t size);

#endif
