/* The blocked loop nest shared by every GEMM micro-kernel (BLIS-style: the
 * ISA contributes a micro-kernel and its tile, not a driver). */
#include "q8/kernels.h"

void q8_gemm_blocked(const q8_gemm_ukernel *uk, const q8_gemm_blocked_args *args,
                     size_t m0, size_t m1, size_t n0, size_t n1) {
  const size_t mr = uk->mr, nr = uk->nr;
  const size_t block = q8_gemm_block_bytes(uk->nr, uk->kr, args->k);
  const size_t c_elem = args->rq ? 1 : sizeof(int32_t);
  const size_t nc = args->nc >= nr ? args->nc / nr * nr : nr;
  q8_requant_params rq_tile;
  /* Column blocks outermost: a block of packed weights (nc x k bytes) stays in
   * L2 while every row tile of A (mr x k bytes, in L1) passes over it. */
  for (size_t nb = n0; nb < n1; nb += nc) {
    const size_t nb_end = nb + nc < n1 ? nb + nc : n1;
    for (size_t m = m0; m < m1; m += mr) {
      const size_t rows = m1 - m < mr ? m1 - m : mr;
      const unsigned char *a = (const unsigned char *)args->a + m * args->lda;
      for (size_t n = nb; n < nb_end; n += nr) {
        const size_t cols = nb_end - n < nr ? nb_end - n : nr;
        const q8_requant_params *rq = args->rq;
        if (rq != NULL && rq->channels > 1) {
          rq_tile = *rq;
          rq_tile.channels = rq->channels - n;
          if (rq->multiplier) rq_tile.multiplier = rq->multiplier + n;
          if (rq->shift) rq_tile.shift = rq->shift + n;
          if (rq->scale) rq_tile.scale = rq->scale + n;
          rq = &rq_tile;
        }
        uk->run(rows, cols, args->k, a, args->lda, args->a_dtype,
                (const unsigned char *)args->packed + (n / nr) * block,
                (unsigned char *)args->c + (m * args->ldc + n) * c_elem, args->ldc * c_elem, rq);
      }
    }
  }
}
