#!/usr/bin/env bash
# Build the binaries berth ships and put them together in one directory:
#
#   scripts/dist.sh [OUT_DIR]        (default: TARGET/dist)
#
#   berthd, berth   release builds (the host's glibc, dynamically linked);
#   berth-shim      the per-container monitor, built with the size-optimised `shim` profile
#                   for x86_64-unknown-linux-musl and linked statically. One runs beside every
#                   container for its whole life, so its resident size is paid per container:
#                   a static musl image maps no ld.so and no shared libc (~1.5 MiB resident
#                   idle, against ~2.8 MiB for the glibc build; `bench/run.sh` measures it).
#
# berthd runs the berth-shim beside its own executable, so install the three together, e.g.
# `install -m 0755 target/dist/* /usr/local/bin/`. Needs the rustup target
# x86_64-unknown-linux-musl (scripts/deps.sh adds it). Prints OUT_DIR last.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$(pwd)/target}
out=${1:-$target/dist}
musl=x86_64-unknown-linux-musl

if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    echo "dist.sh: the rustup target $musl is missing: run scripts/deps.sh" >&2
    exit 1
fi

cargo build --release -p berth --bins >&2
cargo build --profile shim --target "$musl" -p berth-shim >&2

mkdir -p "$out"
# Copy then rename, so a running berthd never sees a half-written binary beside it.
for f in "$target/release/berthd" "$target/release/berth" "$target/$musl/shim/berth-shim"; do
    name=$(basename "$f")
    cp "$f" "$out/.$name.new"
    mv -f "$out/.$name.new" "$out/$name"
done
echo "$out"
