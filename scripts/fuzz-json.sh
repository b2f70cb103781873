#!/usr/bin/env bash
# Coverage-guided fuzzing of the JSON reader with libFuzzer (the Swift toolchain's
# -sanitize=fuzzer, with AddressSanitizer). Builds Sharding and Contracts as static libraries
# with the instrumentation, links fuzz/json-reader/FuzzJSONReader.swift, and runs it for
# FUZZ_SECONDS (default 60) starting from the committed seed corpus (fuzz/json-reader/corpus),
# with a fixed random seed (FUZZ_SEED, default 20261207; 0 picks a new one each run), so that a
# CI run explores what the same run explored here.
# New inputs it finds go to .runtime/fuzz/corpus (kept between runs, never committed by this
# script); a crash writes its input to .runtime/fuzz/ and fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${FUZZ_SECONDS:-60}
out=.runtime/fuzz
mkdir -p "$out/build" "$out/corpus"
flags=(-sanitize=fuzzer,address -parse-as-library -O -g)

echo "fuzz-json: building the fuzz target (libFuzzer + AddressSanitizer)"
swiftc "${flags[@]}" -emit-library -static -module-name Sharding -emit-module -emit-module-path "$out/build/Sharding.swiftmodule" \
    -o "$out/build/libSharding.a" Sources/Sharding/*.swift
swiftc "${flags[@]}" -emit-library -static -module-name Contracts -I "$out/build" -emit-module \
    -emit-module-path "$out/build/Contracts.swiftmodule" -o "$out/build/libContracts.a" Sources/Contracts/*.swift Sources/Contracts/JSON/*.swift
# The linker warns about every AddressSanitizer helper symbol; keep the rest of what it says.
if ! swiftc "${flags[@]}" -I "$out/build" -o "$out/fuzz-json" fuzz/json-reader/FuzzJSONReader.swift \
    "$out/build/libContracts.a" "$out/build/libSharding.a" 2> "$out/link.log"; then
    cat "$out/link.log" >&2
    exit 1
fi
grep -v "Cannot export local symbol" "$out/link.log" >&2 || true

echo "fuzz-json: fuzzing for ${seconds}s from $(ls fuzz/json-reader/corpus | wc -l) seeds"
status=0
"$out/fuzz-json" -seed="${FUZZ_SEED:-20261207}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$out/" "$out/corpus" fuzz/json-reader/corpus > "$out/fuzz.log" 2>&1 || status=$?
grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added)|Done [0-9]+ runs" "$out/fuzz.log" || true
if [ $status != 0 ]; then
    tail -60 "$out/fuzz.log"
    echo "fuzz-json: FAILED (exit $status); the input is in $out/ (crash-*, leak-*, timeout-*)" >&2
    exit 1
fi
echo "fuzz-json: no crash in ${seconds}s ($(grep -oE 'Done [0-9]+ runs' "$out/fuzz.log" | grep -oE '[0-9]+') runs, corpus $(ls "$out/corpus" | wc -l) inputs)"
