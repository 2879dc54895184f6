#!/usr/bin/env bash
# Fuzz every target in fuzz/ (its own cargo workspace) with cargo-fuzz: what berth
# parses from untrusted sources (manifests and indexes, references and repository
# names, layer tars, image archives, plugin verdicts).
#
#   bench/fuzz.sh MINUTES [TARGET...]
#
# Builds the targets, then runs each for MINUTES (each, not in total), one after
# another, single-core, under `nice -n 19`. Each starts from fuzz/corpus/TARGET (the
# working corpus, grown by earlier runs, not committed) and the committed seeds in
# fuzz/seeds/TARGET. libFuzzer's memory limit is 1 GiB: an input that makes a target
# allocate more (a header bomb, say) is a crash. Prints executions per target and any
# crash, whose input is kept in fuzz/artifacts/TARGET/; replay one with
# `cd fuzz && cargo fuzz run TARGET artifacts/TARGET/crash-…`.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Built with `--sanitizer none`, which
# works on the stable toolchain; set FUZZ_SANITIZER=address and run with a nightly
# toolchain for ASan. Not part of CI. Exits 1 if any target crashed.
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ || $1 -lt 1 ]]; then
    echo "usage: bench/fuzz.sh MINUTES [TARGET...]" >&2
    exit 2
fi
minutes=$1
shift
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
}
sanitizer=${FUZZ_SANITIZER:-none}
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo fuzz list)
fi

for t in "${targets[@]}"; do
    nice -n 19 cargo fuzz build --sanitizer "$sanitizer" "$t" 2>&1 | tail -n 3 \
        || { echo "building fuzz target $t failed" >&2; exit 1; }
done

crashed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log=$(mktemp "${TMPDIR:-/tmp}/berth-fuzz-$t.XXXXXX")
    echo "== $t: $minutes min"
    start=$(date +%s)
    set +e
    nice -n 19 cargo fuzz run --sanitizer "$sanitizer" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time=$((minutes * 60)) -rss_limit_mb=1024 -timeout=30 \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    secs=$(($(date +%s) - start))
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
    if [[ -z $execs ]]; then
        # A run cut short by a crash prints no final stats: take the last progress line.
        execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
    fi
    corpus=$(find "corpus/$t" -type f | wc -l)
    if [[ $rc -eq 0 ]]; then
        line="$t: ${execs:-?} executions in ${secs}s, corpus $corpus, no crash"
    else
        crashed=1
        artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/Test unit written to //')
        line="$t: CRASH after ${execs:-?} executions in ${secs}s (exit $rc): ${artifact:-see $log}"
        grep -m 5 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | sed 's/^/    /' || true
    fi
    echo "$line"
    summary+=("$line")
    # A crash's log stays for its backtrace.
    [[ $rc -ne 0 ]] || rm -f "$log"
done

echo "== summary ($minutes min per target)"
printf '%s\n' "${summary[@]}"
exit "$crashed"
