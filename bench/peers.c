/* PLACEHOLDER so the tree links while bench/peers.c is being written: overwrite this file. */
#include "bench/qbench.h"
const char *qb_peer_name(qb_peer p) { return p == QB_PEER_ONEDNN ? "onednn" : "xnnpack"; }
bool qb_peer_built(qb_peer p, const char **r) { (void)p; if (r) *r = "stub"; return false; }
const char *qb_peer_version(qb_peer p) { (void)p; return ""; }
bool qb_peer_gemm_measure(qb_peer peer, const size_t shape[3], size_t threads, q8_dtype out, double min_time, bool check, qb_peer_result *result, char *err, size_t err_size) {
  (void)peer; (void)shape; (void)threads; (void)out; (void)min_time; (void)check; (void)result; snprintf(err, err_size, "stub"); return false; }
