/* qbench: measures q8 on the machine it runs on. */
#include <string.h>

#include "bench/qbench.h"
#include "q8/q8.h"

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "info") == 0) return qb_cmd_info(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "gemm") == 0) return qb_cmd_gemm(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "conv") == 0) return qb_cmd_conv(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "compare") == 0) return qb_cmd_compare(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "peak") == 0) return qb_cmd_peak(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "plot") == 0) return qb_cmd_plot(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "requant") == 0) return qb_cmd_requant(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "accuracy") == 0) return qb_cmd_accuracy(argc - 1, argv + 1);
  if (argc >= 2 && (strcmp(argv[1], "--version") == 0)) {
    printf("qbench %s\n", q8_version());
    return 0;
  }
  return qb_cmd_suite(argc, argv);
}
