#!/usr/bin/env bash
# Arm dispatch under qemu's CPU models: getauxval must report each model's
# features, automatic selection must pick the best ISA the model has, and
# Q8_ISA must force each ISA or refuse it, naming the missing feature.
# usage: check_cpu_models.sh QBENCH EMULATOR...
set -uo pipefail
qbench="$1"
shift
# The emulator's own -cpu would override QEMU_CPU: drop it.
emulator=()
while [ $# -gt 0 ]; do
  if [ "$1" = -cpu ]; then shift 2; continue; fi
  emulator+=("$1")
  shift
done
unset Q8_ISA # the automatic choice is checked first; each forced one below
failures=0

# The CPU feature each Arm ISA needs beyond the previous one.
feature_of() {
  case "$1" in neon) echo neon ;; neondot) echo dotprod ;; neoni8mm) echo i8mm ;; esac
}

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# model | features qbench must list (in order) | ISA the gemm kernel must be
models=(
  "cortex-a53|neon|neon"
  "cortex-a76|neon dotprod|neondot"
  "max|neon dotprod i8mm sve|neoni8mm"
)

for entry in "${models[@]}"; do
  IFS='|' read -r model want_features want_isa <<<"$entry"
  json="$(QEMU_CPU="$model" "${emulator[@]}" "$qbench" info --json)" || { fail "$model: qbench info failed"; continue; }
  features="$(printf '%s\n' "$json" | sed -n '/"features": \[/,/\]/p' | sed 1d | grep -oE '"[a-z0-9_]+"' | tr -d '"' | tr '\n' ' ')"
  [ "${features% }" = "$want_features" ] || fail "$model: features '${features% }', want '$want_features'"
  gemm="$(printf '%s\n' "$json" | grep -oE '"gemm": "[^"]+"' | head -1 | cut -d'"' -f4)"
  [ "${gemm##*__}" = "$want_isa" ] || fail "$model: automatic gemm kernel $gemm, want one for $want_isa"
  printf '%s\n' "$json" | grep -q '"emulated": "qemu-user' || fail "$model: emulation not reported"
  echo "$model: features [${features% }], gemm $gemm"

  # Every Arm ISA forced in turn: selected if the model has it, else refused.
  for isa in neon neondot neoni8mm; do
    out="$(QEMU_CPU="$model" Q8_ISA="$isa" "${emulator[@]}" "$qbench" info --json 2>&1)"
    code=$?
    case " $want_features " in
      *" $(feature_of "$isa") "*)
        forced="$(printf '%s\n' "$out" | grep -oE '"gemm": "[^"]+"' | head -1 | cut -d'"' -f4)"
        [ $code -eq 0 ] && [ "${forced##*__}" = "$isa" ] || fail "$model: Q8_ISA=$isa gave '$forced' (exit $code)" ;;
      *)
        [ $code -ne 0 ] && printf '%s\n' "$out" | grep -q "cannot run here (CPU lacks" ||
          fail "$model: Q8_ISA=$isa was not refused with a reason: $out" ;;
    esac
  done
done

[ "$failures" -eq 0 ] && echo "cpu models: all checks passed"
exit $((failures != 0))
