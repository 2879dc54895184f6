#!/usr/bin/env bash
# Parts 2 and 3 of bench/plugins.sh: plugins on berthd's real paths, each against the same
# daemon setup without the plugin, in one run, alternating.
#
#   bench/plugins_daemon.sh [--requests N] [--runs N] [--run-only]
#
# Part 2, registry throughput: two berthd (auth = "basic"), one with berth's native users,
# one with the htpasswd-rbac plugin (same user and password); the same image is
# pushed to each with skopeo; then `ab` (apache2-utils) sends N authenticated GETs of the
# manifest at concurrency 16 to each, alternating 3 rounds; requests/s and the ratio
# plugin/native (target >= 0.95). Also the wall time of a skopeo push and pull to each.
# Part 3, `berth run --rm -u 65534 --network none --memory 256m --pids-limit 512 IMAGE true`
# start-to-exit, N runs per side alternating: one berthd with deny-root, default-limits and
# allowed-registries installed, one without (both sides set the limits default-limits would,
# so the cgroup work is equal); medians and the difference (target <= 1 ms).
# Needs root. BERTH_BIN_DIR=DIR uses existing release binaries.
set -euo pipefail

requests=20000 runs=40 registry=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --requests) requests=$2; shift ;;
        --run-only) registry=0 ;;
        --runs) runs=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"
[[ $(id -u) -eq 0 ]] || { echo "needs root" >&2; exit 1; }
for tool in ab skopeo htpasswd jq python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/deps.sh" >&2; exit 1; }
done
if [[ -z ${BERTH_BIN_DIR:-} ]]; then
    cargo build --release -q -p berth --bins
    cargo build --release -q -p berth-plugin-artifacts
    BERTH_BIN_DIR=${CARGO_TARGET_DIR:-$repo_root/target}/release
fi
bindir=$BERTH_BIN_DIR
wasm=${CARGO_TARGET_DIR:-$repo_root/target}/plugins/wasm32-wasip2/release
for w in htpasswd_rbac deny_root default_limits allowed_registries; do
    [[ -f $wasm/$w.wasm ]] || { echo "no $wasm/$w.wasm: cargo build -p berth-plugin-artifacts" >&2; exit 1; }
done

work=$(mktemp -d /tmp/berth-plugins-bench.XXXXXX)
pids=()
cleanup() {
    set +e
    for s in "$work"/*/s.sock; do
        [[ -S $s ]] || continue
        left=$(BERTH_HOST=unix://$s "$bindir/berth" ps -a -q 2>/dev/null)
        [[ -n $left ]] && BERTH_HOST=unix://$s "$bindir/berth" rm -f $left >/dev/null 2>&1
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # NAME CONFIG_TOML -> sets $addr
    local name=$1 config=$2
    mkdir -p "$work/$name"
    printf '%s\n' "$config" >"$work/$name/config.toml"
    addr=127.0.0.1:$(free_port)
    "$bindir/berthd" --root "$work/$name/root" --socket "$work/$name/s.sock" \
        --registry-listen "$addr" --config "$work/$name/config.toml" --log warn \
        >"$work/$name/log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 300); do
        [[ -S $work/$name/s.sock ]] && curl -s -o /dev/null "http://$addr/v2/" && break
        sleep 0.05
    done
    [[ -S $work/$name/s.sock ]] || { echo "berthd $name did not start:" >&2; cat "$work/$name/log" >&2; exit 1; }
}
calc() { awk "BEGIN { print $1 }"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

if ((registry)); then
echo "### part 2: registry throughput, htpasswd-rbac plugin vs native auth"
mkdir -p "$work/auth"
htpasswd -Bbn -C 10 alice alice-pw >"$work/auth/htpasswd"
start native $'[registry]\nauth = "basic"'
native=$addr
BERTH_HOST=unix://$work/native/s.sock "$bindir/berth" registry user add alice --password alice-pw --allow 'pull,push:*' >/dev/null
start plugin "[registry]
auth = \"basic\"
[[plugin]]
name = \"htpasswd-rbac\"
kind = \"auth-provider\"
source = \"$wasm/htpasswd_rbac.wasm\"
# A bcrypt check at cost 10 takes ~230 ms in wasm (once per user and instance,
# then cached): more than the default 100 ms deadline.
timeout_ms = 2000
[plugin.config]
htpasswd = \"/auth/htpasswd\"
rules = [{ users = [\"alice\"], repositories = \"*\", actions = [\"pull\", \"push\"] }]
[plugin.grants]
dirs = [{ host = \"$work/auth\", guest = \"/auth\", access = \"ro\" }]"
plugin=$addr
scripts/make-image.sh "$work/image" >/dev/null
skopeo_time() { # SRC DST CREDS-ARGS... -> seconds
    local t0=$EPOCHREALTIME
    unshare -m sh -c 'mount -t tmpfs none /var/lib/containers/cache && exec skopeo "$@"' skopeo \
        copy --quiet "$@" >/dev/null
    calc "$EPOCHREALTIME - $t0"
}
for side in native plugin; do
    a=${!side}
    push=$(skopeo_time --dest-tls-verify=false --dest-creds=alice:alice-pw "oci:$work/image:latest" "docker://$a/bench/app:1")
    pull=$(skopeo_time --src-tls-verify=false --src-creds=alice:alice-pw "docker://$a/bench/app:1" "oci:$work/pulled-$side:latest")
    printf '%-7s skopeo push %.3f s, pull %.3f s\n' "$side" "$push" "$pull"
done
accept='Accept: application/vnd.oci.image.manifest.v1+json'
for side in native plugin; do # warm-up: bcrypt once per instance or cache entry
    ab -q -n 200 -c 16 -A alice:alice-pw -H "$accept" "http://${!side}/v2/bench/app/manifests/1" >/dev/null
done
declare -A rps
for round in 1 2 3; do
    for side in native plugin; do
        r=$(ab -q -n "$requests" -c 16 -A alice:alice-pw -H "$accept" "http://${!side}/v2/bench/app/manifests/1" \
            | awk '/Requests per second/ {print $4} /Non-2xx/ {print "NON2XX"}')
        [[ $r == *NON2XX* ]] && { echo "$side answered non-2xx responses" >&2; exit 1; }
        rps[$side]+="$r "
        printf 'round %d %-7s %8.0f req/s\n' "$round" "$side" "$r"
    done
done
n=$(printf '%s\n' ${rps[native]} | median); p=$(printf '%s\n' ${rps[plugin]} | median)
printf 'GET manifest with basic auth, %d requests x 3, concurrency 16: native %.0f req/s, htpasswd-rbac %.0f req/s, ratio %.3f (target >= 0.95)\n' \
    "$requests" "$n" "$p" "$(calc "$p / $n")"
fi

echo
echo "### part 3: berth run --rm with three hooks vs none"
for side in none hooks; do
    start "run-$side" $'[registry]\nauth = "none"'
    mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
done
rootfs=$work/rootfs
cp /bin/busybox "$rootfs/bin/busybox"; ln -sf busybox "$rootfs/bin/true"; ln -sf busybox "$rootfs/bin/sh"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$rootfs/etc/passwd"
tar -C "$rootfs" -czf "$work/rootfs.tar.gz" .
for side in none hooks; do
    BERTH_HOST=unix://$work/run-$side/s.sock "$bindir/berth" import "$work/rootfs.tar.gz" bench/busybox:1 >/dev/null
done
h="BERTH_HOST=unix://$work/run-hooks/s.sock"
env $h "$bindir/berth" plugin install "$wasm/deny_root.wasm" >/dev/null
env $h "$bindir/berth" plugin install "$wasm/default_limits.wasm" >/dev/null
env $h "$bindir/berth" plugin install "$wasm/allowed_registries.wasm" --config '{"registries": ["docker.io", "127.0.0.1:*"]}' >/dev/null
declare -A times
for i in $(seq 1 $((runs + 3))); do
    for side in none hooks; do
        t0=$EPOCHREALTIME
        # Both sides get the limits default-limits would set, so the cgroup work is
        # the same and the difference is the hooks.
        BERTH_HOST=unix://$work/run-$side/s.sock "$bindir/berth" run --rm -u 65534 --network none \
            --memory 256m --pids-limit 512 bench/busybox:1 true
        t=$(calc "($EPOCHREALTIME - $t0) * 1000")
        ((i > 3)) && times[$side]+="$t "
    done
done
a=$(printf '%s\n' ${times[none]} | median); b=$(printf '%s\n' ${times[hooks]} | median)
printf 'berth run --rm (--network none), %d runs each: no hooks %.2f ms, three hooks %.2f ms, difference %.2f ms (target <= 1 ms)\n' \
    "$runs" "$a" "$b" "$(calc "$b - $a")"
env $h "$bindir/berth" plugin ls
