/* gemm_amx.c's source on the scalar tile model of amx_emulate.h:
 * q8_gemm_x8s8_32x32c4__amx_emu, not registered, which the tests run on any
 * CPU with AVX-512 (the epilogue's ISA) to check the AMX kernel's logic bit
 * for bit where there is no AMX to run it. */
#define Q8_AMX_EMULATE 1
#include "gemm_amx.c"
