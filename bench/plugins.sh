#!/usr/bin/env bash
# Wasm plugin overhead: warm-instance call latency of real plugin components against the
# targets (median ≤ 10 µs, p99 ≤ 50 µs per call), and compile vs compile-cache-hit load time.
#
#   bench/plugins.sh [--calls N]
#
# Part 1 (host/plugins/examples/plugin_bench.rs, release build):
#   - load deny-root with an empty compile cache (compiles) and again from a fresh manager
#     on the same cache (deserializes the precompiled artifact);
#   - N warm calls of deny-root on a pre-create event for uid 0 (a deny), directly and
#     through the hook chain;
#   - N warm calls of htpasswd-rbac `authorize` (bob, push, team/app), and N/10
#     `authenticate` calls (the plugin caches the bcrypt verification).
# Each call is timed alone (Instant around the call) after 1000 warm-up calls; the script
# prints median, p99 and max, and whether the targets were met.
#
# Parts 2 and 3 (registry throughput with an auth plugin, `berth run` with three hooks)
# are bench/plugins_daemon.sh, run at the end.
set -euo pipefail

calls=100000
while [[ $# -gt 0 ]]; do
    case $1 in
        --calls) calls=$2; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"

echo "### part 1: plugin call latency (release build)"
cargo build --release -q -p berth-plugins --example plugin_bench
"$repo_root/target/release/examples/plugin_bench" "$calls"

echo
# Parts 2 and 3 need daemons: registry throughput with htpasswd-rbac vs native auth, and
# `berth run --rm` with three hooks vs none (see bench/plugins_daemon.sh).
"$repo_root/bench/plugins_daemon.sh"
