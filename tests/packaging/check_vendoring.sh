#!/usr/bin/env bash
# kernels/ must build on its own: copy kernels/ (all but hwy/) and the two
# kernel headers elsewhere, compile with the plain C compiler and no
# dependency, and link a program that runs the reference GEMM.
# usage: check_vendoring.sh SOURCE_DIR [CC [ARCH [EMULATOR...]]]
set -euo pipefail
source_dir="$1"
compiler="${2:-cc}"
arch="${3:-$(uname -m)}"
shift $(($# < 3 ? $# : 3))
emulator=("$@")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if grep -rnE '#include *"(dispatch|quant|bench)/' "$source_dir/kernels"; then
  echo "vendoring: kernels/ includes a higher layer" >&2
  exit 1
fi
mkdir -p "$work/include/q8"
cp "$source_dir/include/q8/types.h" "$source_dir/include/q8/kernels.h" "$work/include/q8/"
cp -r "$source_dir/kernels" "$work/kernels"
rm -rf "$work/kernels/hwy"
arch_dir=""
case "$arch" in
  x86_64) arch_dir="$work/kernels/x86" ;;
  aarch64) arch_dir="$work/kernels/arm" ;;
esac
cat > "$work/main.c" <<'C'
#include "q8/kernels.h"
#include <stdio.h>
int main(void) {
  const int8_t a[3] = {1, -2, 3}, b[3] = {4, 5, -6};
  int32_t c = 0;
  const q8_status s = q8_ref_gemm(1, 1, 3, a, 3, Q8_INT8, 0, b, 3, NULL, NULL, NULL, &c, 1);
  printf("vendored kernels: q8_ref_gemm -> %d\n", (int)c);
  return s == Q8_OK && c == 4 - 10 - 18 ? 0 : 1;
}
C
sources=("$work"/kernels/*.c "$work"/kernels/ref/*.c)
if [ -n "$arch_dir" ] && compgen -G "$arch_dir/*.c" >/dev/null; then sources+=("$arch_dir"/*.c); fi
"$compiler" -std=c17 -O2 -Wall -Wextra -Werror -I"$work" -I"$work/include" "${sources[@]}" "$work/main.c" -o "$work/vendored" -lm
"${emulator[@]}" "$work/vendored"
echo "vendoring: ${#sources[@]} kernel files built with $(basename "$compiler") alone"
