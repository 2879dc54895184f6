#!/usr/bin/env bash
# `exec` latency: `berth exec C true` against `runc exec C true`, same machine, same run,
# alternating, each into a running `sleep` container on the same busybox rootfs.
#
#   bench/exec.sh [--runs N]
#
# berth exec   CLI -> berthd over its unix socket -> a `berth-shim exec` helper (joins the
#              container's namespaces, forks, the child joins the cgroup, caps, seccomp,
#              exec) -> output frames -> exit code.
# runc exec    `runc exec` into a container started with `runc run -d` from an OCI bundle
#              made with `runc spec` on the same rootfs (runc's own nsexec path).
# Each timed from outside as a whole process (bash $EPOCHREALTIME); median and p95 in ms.
# Everything (berthd --root, rootfs, bundle, runc state) is on a private tmpfs.
# Needs root. BERTH_BIN_DIR=DIR uses existing binaries instead of `cargo build --release`.
set -euo pipefail

runs=40
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"
[[ $(id -u) -eq 0 ]] || { echo "bench/exec.sh needs root" >&2; exit 1; }
for tool in runc jq tar gzip; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/deps.sh" >&2; exit 1; }
done
if [[ -z ${BERTH_BIN_DIR:-} ]]; then
    cargo build --release -p berth --bins
    BERTH_BIN_DIR=${CARGO_TARGET_DIR:-$repo_root/target}/release
fi
bindir=$BERTH_BIN_DIR

work=$(mktemp -d /tmp/berth-exec-bench.XXXXXX)
berthd_pid=
cleanup() {
    set +e
    if [[ -n $berthd_pid ]] && kill -0 "$berthd_pid" 2>/dev/null; then
        "$bindir/berth" rm -f xb >/dev/null 2>&1
        kill "$berthd_pid"; wait "$berthd_pid" 2>/dev/null
    fi
    runc --root "$work/runc-state" delete -f xb-runc >/dev/null 2>&1
    { grep -o " $work/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    umount -l "$work" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mount -t tmpfs -o size=1g,mode=0700 berth-exec-bench "$work"

rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,etc,tmp,root}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [[ $a != busybox ]] && ln -s busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
tar -C "$rootfs" -czf "$work/rootfs.tar.gz" .

bundle=$work/bundle
mkdir -p "$bundle" "$work/runc-state"
runc spec --bundle "$bundle"
jq --arg root "$rootfs" '.process.args = ["sleep", "600"] | .process.terminal = false
    | .root = {path: $root, readonly: false}' "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"
runc --root "$work/runc-state" run -d --bundle "$bundle" xb-runc </dev/null >/dev/null 2>&1

mkdir -p "$work/berthd"
export BERTH_HOST=unix://$work/berthd/berthd.sock HOME=$work/berthd DOCKER_CONFIG=$work/berthd
"$bindir/berthd" --root "$work/berthd/root" --socket "$work/berthd/berthd.sock" \
    --registry-listen off >"$work/berthd/log" 2>&1 &
berthd_pid=$!
for _ in $(seq 1 200); do [[ -S $work/berthd/berthd.sock ]] && break; sleep 0.05; done
berth() { "$bindir/berth" "$@"; }
berth import -c 'CMD ["/bin/sh"]' "$work/rootfs.tar.gz" bench/busybox:1 >/dev/null
berth run -d --name xb --network none bench/busybox:1 sleep 600 >/dev/null

one() {
    case $1 in
        berth) berth exec xb true ;;
        runc) runc --root "$work/runc-state" exec xb-runc true </dev/null ;;
    esac >/dev/null 2>"$work/one.err" || { echo "$1 exec failed:" >&2; cat "$work/one.err" >&2; exit 1; }
}
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", (b - a) * 1000 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
pct() { local p=$1; shift; printf '%s\n' "$@" | sort -g | awk -v p="$p" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; print a[i]}'; }

echo "# exec benchmark: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $runs runs each of \`true\`, alternating; tmpfs"
echo "# $(runc --version | head -1); berth from $bindir"
for n in berth runc berth runc; do one "$n"; done
declare -A times
for r in $(seq 1 "$runs"); do
    if (( r % 2 )); then order=(berth runc); else order=(runc berth); fi
    for n in "${order[@]}"; do
        t0=$EPOCHREALTIME; one "$n"; times[$n]+="$(ms_since "$t0") "
    done
done
for n in runc berth; do
    # shellcheck disable=SC2086
    printf '%-12s median %8.2f ms   p95 %8.2f ms\n' "$n exec" "$(median ${times[$n]})" "$(pct 95 ${times[$n]})"
done
# shellcheck disable=SC2086
awk -v a="$(median ${times[berth]})" -v b="$(median ${times[runc]})" 'BEGIN { printf "berth/runc median ratio: %.2fx\n", a / b }'
