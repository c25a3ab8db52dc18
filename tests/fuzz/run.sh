#!/bin/sh
# run.sh PREFIX SECONDS -- runs every libFuzzer target PREFIX_* for SECONDS each.
#
# Each target fuzz_NAME starts from the seed corpus tests/fuzz/corpus/NAME
# (committed) and grows a working corpus under build/ (not committed).
# A crash stops the run with the reproducer's path in libFuzzer's output.
set -eu
prefix=${1:?usage: run.sh PREFIX SECONDS}
secs=${2:?usage: run.sh PREFIX SECONDS}
found=0
for bin in "$prefix"_*; do
    [ -x "$bin" ] || continue
    found=1
    name=${bin##*/fuzz_}
    seeds=tests/fuzz/corpus/$name
    work=$(dirname "$bin")/corpus/$name
    mkdir -p "$work" "$seeds"
    echo "fuzz: $name for ${secs}s"
    "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$(dirname "$bin")/crash-$name-" \
        "$work" "$seeds" 2>"$(dirname "$bin")/$name.log" \
        || { tail -n 60 "$(dirname "$bin")/$name.log"; exit 1; }
    grep -E '^stat::number_of_executed_units' "$(dirname "$bin")/$name.log" | sed "s/^/fuzz: $name /"
done
[ $found = 1 ] || { echo "fuzz: no targets found at ${prefix}_*" >&2; exit 1; }
