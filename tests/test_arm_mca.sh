#!/usr/bin/env bash
# bench/arm-mca on tests/data/arm_mca_fixture.c: its table has the documented
# columns, it counts the MACs the fixture's loops hold (by hand, below), its
# arithmetic is consistent, and --kernel / --check / --help behave.
# usage: test_arm_mca.sh SOURCE_DIR [CC [LLVM_MCA]]
set -uo pipefail
source_dir="$1"
cc="${2:-aarch64-linux-gnu-gcc}"
mca="${3:-llvm-mca}"
fixture="$source_dir/tests/data/arm_mca_fixture.c"
arm_mca() { "$source_dir/bench/arm-mca" --cc "$cc" --llvm-mca "$mca" "$@" "$fixture"; }
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

arm_mca > "$out"; rc=$?
cat "$out"
[ "$rc" = 0 ] || fail "default run exited $rc"

# Expected rows: region, core, class, int8 MACs per iteration. sdot .4s = 16,
# smmla/usmmla = 32, smull/smull2 .8h = 8, smlal/smlal2 .4s = 4, sadalp = 0.
expected="fixture_sdot cortex-a76 dotprod 128
fixture_smull cortex-a76 neon 24
fixture_smmla cortex-a710 i8mm 96"
while read -r name core cls macs; do
  row="$(awk -v n="$name" -v c="$core" '$1 == n && $2 == c' "$out")"
  [ -n "$row" ] || { fail "no row for $name on $core"; continue; }
  read -r _ _ _ got_cls _ got_macs _ <<< "$row"
  [ "$got_cls" = "$cls" ] || fail "$name: class $got_cls, expected $cls"
  [ "$got_macs" = "$macs" ] || fail "$name: $got_macs MACs/iteration, expected $macs"
done <<< "$expected"
[ "$(awk 'NF && $1 !~ /^#/ && $1 != "kernel"' "$out" | wc -l)" = 3 ] || fail "expected exactly 3 rows"

grep -qx 'kernel *core *model *class *insts *MACs/iter *cycles/iter *rthru *MACs/cycle *peak *fraction *verdict' "$out" ||
  fail "header line missing or changed"
for cls in neon dotprod i8mm; do
  grep -Eq "^# peak [a-z0-9-]+ $cls: [0-9]+ independent .* -> [0-9.]+ int8 MACs/cycle$" "$out" || fail "no peak derivation for $cls"
done

# Each row: numbers where numbers belong, MACs/cycle = MACs / cycles, fraction
# = MACs/cycle / peak, verdict agrees with the fraction and the 85% target.
awk '
  NF == 0 || $1 ~ /^#/ || $1 == "kernel" { next }
  {
    if (NF != 12) { print "row has " NF " fields: " $0; bad = 1; next }
    for (i = 5; i <= 10; i++) if ($i !~ /^[0-9]+(\.[0-9]+)?$/) { print "field " i " not a number: " $0; bad = 1 }
    frac = $11; sub(/%$/, "", frac)
    if ($9 > 0 && ($9 - $6 / $7) ^ 2 > 0.01) { print "MACs/cycle != MACs/iter / cycles/iter: " $0; bad = 1 }
    if ((frac - 100 * $9 / $10) ^ 2 > 0.25) { print "fraction != MACs/cycle / peak: " $0; bad = 1 }
    if ((frac >= 85) != ($12 == "ok")) { print "verdict disagrees with fraction: " $0; bad = 1 }
  }
  END { exit bad }' "$out" || fail "row arithmetic"

# The fixture's 4x8 sdot tile keeps 8 chains in flight and meets the target;
# three smmla chains cannot hide the instruction's latency and must not.
arm_mca --kernel '^fixture_sdot$' --check 0.85 > "$out" || fail "--check 0.85 failed on fixture_sdot"
[ "$(grep -c '^fixture_' "$out")" = 1 ] || fail "--kernel did not select exactly fixture_sdot"
arm_mca --kernel smmla --check 0.85 > "$out" 2>&1 && fail "--check 0.85 passed fixture_smmla"
arm_mca --check 2 > /dev/null 2>&1 && fail "--check 2 passed (no loop reaches twice its peak)"

"$source_dir/bench/arm-mca" --help | grep -q -- '--check FRACTION' || fail "--help"
"$source_dir/bench/arm-mca" --bogus > /dev/null 2>&1; [ $? = 2 ] || fail "unknown option did not exit 2"
"$source_dir/bench/arm-mca" --core cortex-a57=i8mm > /dev/null 2>&1; [ $? = 2 ] || fail "cortex-a57 accepted i8mm"

if [ "$failures" = 0 ]; then echo "test_arm_mca: all checks passed"; else echo "test_arm_mca: $failures check(s) failed"; fi
[ "$failures" = 0 ]
