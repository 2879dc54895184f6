#!/usr/bin/env bash
# Container start-to-exit latency: berth against runc and crun, same machine, same run,
# alternating, on the same busybox root file system, command `true`.
#
#   bench/run.sh [--runs N] [--concurrency N] [--storage tmpfs|disk]
#
# Contenders, each timed from outside as a whole process (bash $EPOCHREALTIME):
#   berth run --rm      `berth run --rm IMAGE true` end to end: CLI -> berthd over its unix
#                       socket -> snapshot prepare + overlay mount -> spec -> berth-shim
#                       process -> runtime -> exit record -> cleanup (unmount, snapshot
#                       removal, cgroup removal). Once with the default bridge network (veth
#                       pair set up and torn down each run) and once with --network none.
#   berth runtime       berth's runtime path alone: core/runtime/examples/run_bench.rs
#                       (build the spec, create, join a fresh cgroup in every hierarchy,
#                       start, wait, delete) as one process per run, on the plain rootfs
#                       directory; no daemon, no HTTP, no snapshot, no network.
#   runc run, crun run  `runc run` / `crun run` of an OCI bundle made with `runc spec` on
#                       the same rootfs directory (args ["true"], terminal false, writable
#                       root); each creates its cgroups, runs, waits and deletes.
# Then N (--concurrency, 50) containers started at once by each, total wall time until all
# have exited; the RSS of one idle berth-shim monitor (`berth run -d … sleep 60`); and
# berthd's RSS with N `sleep 60` containers running (started at once with -d, timed), after
# which all are removed with `berth rm -f` and the script checks that nothing is left
# (mounts under berthd's root, cgroup dirs, vb-* links, shim processes).
#
# crun refuses this machine's hybrid cgroup layout, so the whole script runs in a private
# mount namespace where /sys/fs/cgroup/unified is unmounted: runc, crun, berthd and its
# shims all see the same cgroup v1 layout. Everything (berthd --root, rootfs, bundle, runc
# and crun state) is in one work directory: with --storage tmpfs (the default, and what the
# published figures use) a private tmpfs, so the disk is not measured; with --storage disk a
# directory under /var/tmp on the root file system (this machine: ext4 mounted with
# `discard`), so every contender pays the same fsyncs, journal commits and discards. The
# work directory is removed at the end either way.
# Needs root. BERTH_BIN_DIR=DIR uses existing binaries (berthd, berth, berth-shim and
# examples/run_bench) instead of `cargo build --release`; BERTH_SHIM_BIN=FILE, a berth-shim
# to use instead of DIR's (when the script builds, the shipped one: `shim` profile, static
# musl, as scripts/dist.sh builds it).
set -euo pipefail

runs=40 conc=50 storage=tmpfs
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) runs=$2; shift ;;
        --concurrency) conc=$2; shift ;;
        --storage) storage=$2; shift ;;
        -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case $storage in
    tmpfs|disk) ;;
    *) echo "--storage is tmpfs or disk, not $storage" >&2; exit 2 ;;
esac

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo_root"
[[ $(id -u) -eq 0 ]] || { echo "bench/run.sh needs root (namespaces, tmpfs, cgroups)" >&2; exit 1; }
for tool in runc crun jq unshare tar gzip ip; do
    command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/deps.sh" >&2; exit 1; }
done
[[ -x /bin/busybox ]] || { echo "missing /bin/busybox (busybox-static): run scripts/deps.sh" >&2; exit 1; }

# --- into a private mount namespace without the unified (v2) hierarchy -------------------
if [[ -z ${BERTH_RUN_BENCH_NS:-} ]]; then
    # Build outside (cargo needs nothing of the namespace), then re-exec inside.
    if [[ -z ${BERTH_BIN_DIR:-} ]]; then
        echo "# building release binaries (cargo build --release -p berth -p berth-shim --bins; run_bench example)"
        cargo build --release -p berth -p berth-shim --bins
        cargo build --release -p berth-runtime --example run_bench
        # The monitor as shipped (scripts/dist.sh): the size-optimised `shim` profile, static musl.
        cargo build --profile shim --target x86_64-unknown-linux-musl -p berth-shim
        export BERTH_BIN_DIR=${CARGO_TARGET_DIR:-$repo_root/target}/release
        export BERTH_SHIM_BIN=${CARGO_TARGET_DIR:-$repo_root/target}/x86_64-unknown-linux-musl/shim/berth-shim
    fi
    export BERTH_RUN_BENCH_NS=1
    exec unshare -m --propagation private "$0" --runs "$runs" --concurrency "$conc" --storage "$storage"
fi
if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
    umount /sys/fs/cgroup/unified
fi

bindir=$BERTH_BIN_DIR
bench_bin=$bindir/examples/run_bench
if [[ -n ${BERTH_SHIM_BIN:-} ]]; then
    # berthd starts the berth-shim beside its own executable: put the two together.
    shimdir=$(mktemp -d /tmp/berth-run-bench-bin.XXXXXX)
    cp "$bindir/berthd" "$bindir/berth" "$shimdir/"
    cp "$BERTH_SHIM_BIN" "$shimdir/berth-shim"
    bindir=$shimdir
fi
for b in berthd berth berth-shim; do
    [[ -x $bindir/$b ]] || { echo "no $b in $bindir" >&2; exit 1; }
done
[[ -x $bench_bin ]] || { echo "no examples/run_bench in $bindir" >&2; exit 1; }

# --- work area (a private tmpfs, or a directory on the root file system), cleanup -----------
if [[ $storage == disk ]]; then
    work=$(mktemp -d /var/tmp/berth-run-bench.XXXXXX)
    chmod 0700 "$work"
else
    work=$(mktemp -d /tmp/berth-run-bench.XXXXXX)
fi
berthd_pid=
bg_pids=()
shim_pids() { # pids of berth-shim processes whose --dir is under $work
    local p cmd
    for p in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        [[ $cmd == *berth-shim*--dir\ $work/* ]] && echo "${p#/proc/}"
    done
    return 0
}
cleanup() {
    set +e
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
    if [[ -n $berthd_pid ]] && kill -0 "$berthd_pid" 2>/dev/null; then
        # Remove what is still there through the daemon, then stop it.
        local left
        left=$(berth ps -a -q 2>/dev/null)
        [[ -n $left ]] && berth rm -f $left >/dev/null 2>&1
        kill "$berthd_pid"; wait "$berthd_pid" 2>/dev/null
    fi
    # Shims (and with them their containers) the daemon did not end.
    for p in $(shim_pids); do kill -9 "$p" 2>/dev/null; done
    for c in $(runc --root "$work/runc-state" list -q 2>/dev/null); do runc --root "$work/runc-state" delete -f "$c" >/dev/null 2>&1; done
    for c in $(crun --root "$work/crun-state" list -q 2>/dev/null); do crun --root "$work/crun-state" delete -f "$c" >/dev/null 2>&1; done
    # cgroup dirs are global (not in our mount namespace): remove ours.
    for d in /sys/fs/cgroup/*/berth-runbench/* /sys/fs/cgroup/*/berth/rb-* ; do [[ -d $d ]] && rmdir "$d" 2>/dev/null; done
    for d in /sys/fs/cgroup/*/berth-runbench; do [[ -d $d ]] && rmdir "$d" 2>/dev/null; done
    { grep -o " $work/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    [[ $storage == tmpfs ]] && umount -l "$work" 2>/dev/null
    rm -rf "$work"
    [[ -z ${shimdir:-} ]] || rm -rf "$shimdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[[ $storage == tmpfs ]] && mount -t tmpfs -o size=2g,mode=0700 berth-run-bench "$work"
storage_desc="all on tmpfs"
[[ $storage == disk ]] && storage_desc="all on disk: $work on $(findmnt -n -o FSTYPE,OPTIONS --target "$work")"

# --- the busybox rootfs (as tests/src/containers.rs builds it), the bundle, berthd ---------
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,etc,tmp,root}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [[ $a != busybox ]] && ln -s busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
tar -C "$rootfs" -czf "$work/rootfs.tar.gz" .

bundle=$work/bundle
mkdir -p "$bundle" "$work/runc-state" "$work/crun-state"
runc spec --bundle "$bundle"
jq --arg root "$rootfs" '.process.args = ["true"] | .process.terminal = false
    | .root = {path: $root, readonly: false}' "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"

mkdir -p "$work/berthd"
export BERTH_HOST=unix://$work/berthd/berthd.sock HOME=$work/berthd DOCKER_CONFIG=$work/berthd
"$bindir/berthd" --root "$work/berthd/root" --socket "$work/berthd/berthd.sock" \
    --registry-listen off --log "${BERTH_LOG:-warn}" >"$work/berthd/log" 2>&1 &
berthd_pid=$!
for _ in $(seq 1 200); do
    [[ -S $work/berthd/berthd.sock ]] && break
    kill -0 "$berthd_pid" 2>/dev/null || { echo "berthd exited:" >&2; tail -30 "$work/berthd/log" >&2; exit 1; }
    sleep 0.05
done
[[ -S $work/berthd/berthd.sock ]] || { echo "berthd not ready:" >&2; tail -30 "$work/berthd/log" >&2; exit 1; }
berth() { "$bindir/berth" "$@"; }
image=bench/busybox:1
berth import -c 'CMD ["/bin/sh"]' "$work/rootfs.tar.gz" "$image" >/dev/null

# --- one run of each contender ---------------------------------------------------------------
seq_no=0
one() { # NAME: run it once, fail loudly
    seq_no=$((seq_no + 1))
    local id=rb-$seq_no
    case $1 in
        berth) berth run --rm "$image" true ;;
        berth-nonet) berth run --rm --network none "$image" true ;;
        runtime) "$bench_bin" "$rootfs" --id "$id" >/dev/null ;;
        runc) runc --root "$work/runc-state" run --bundle "$bundle" "$id" </dev/null ;;
        crun) crun --root "$work/crun-state" run --bundle "$bundle" "$id" </dev/null ;;
    esac >"$work/one.out" 2>"$work/one.err" || {
        echo "$1 failed:" >&2; cat "$work/one.out" "$work/one.err" >&2; tail -20 "$work/berthd/log" >&2; exit 1; }
}
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", (b - a) * 1000 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
pct() { # P values...: nearest-rank percentile
    local p=$1; shift
    printf '%s\n' "$@" | sort -g | awk -v p="$p" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; print a[i]}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
names=(runc crun runtime berth berth-nonet)
declare -A label=([runc]="runc run" [crun]="crun run" [runtime]="berth runtime path"
    [berth]="berth run --rm" [berth-nonet]="berth run --rm --network none")
declare -A times

echo "# run benchmark: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $runs runs each of \`true\`, order rotating; $storage_desc"
echo "# $(runc --version | head -1), $(crun --version | head -1), berth $(berth --version 2>/dev/null | awk '{print $2}') ($bindir)"
echo "# private mount namespace without /sys/fs/cgroup/unified: cgroup v1 for everyone"

for n in "${names[@]}"; do one "$n"; one "$n"; done # warm-up (page cache, first snapshot)
berthd_cpu0=$(cpu_ticks "$berthd_pid") berth_runs=0
for r in $(seq 1 "$runs"); do
    k=$(( (r - 1) % ${#names[@]} ))
    order=("${names[@]:k}" "${names[@]:0:k}")
    for n in "${order[@]}"; do
        t0=$EPOCHREALTIME
        one "$n"
        times[$n]+="$(ms_since "$t0") "
        [[ $n == berth* ]] && berth_runs=$((berth_runs + 1))
    done
done
berthd_cpu_ms=$(awk -v c="$(( $(cpu_ticks "$berthd_pid") - berthd_cpu0 ))" -v h="$hz" -v n="$berth_runs" 'BEGIN { printf "%.2f", c / h * 1000 / n }')

# In-process floor of the runtime path (no process start): 30 runs in one process.
floor=$("$bench_bin" "$rootfs" --runs 30 --id rb-floor | tail -1 | sed 's/^# in-process: //')
# The CLI and one HTTP request to berthd, nothing else: `berth ps -q` on an empty daemon.
t_ps=()
for _ in $(seq 1 30); do t0=$EPOCHREALTIME; berth ps -q >/dev/null; t_ps+=("$(ms_since "$t0")"); done

# --- N at once ------------------------------------------------------------------------------
declare -A conc_s
burst() { # NAME: N runs of `true` at once, wall seconds until all have exited
    local n=$1 t0 i pids=() failed=0
    t0=$EPOCHREALTIME
    for i in $(seq 1 "$conc"); do
        seq_no=$((seq_no + 1))
        case $n in
            berth) berth run --rm "$image" true ;;
            berth-nonet) berth run --rm --network none "$image" true ;;
            runtime) "$bench_bin" "$rootfs" --id "rb-$seq_no" ;;
            runc) runc --root "$work/runc-state" run --bundle "$bundle" "rb-$seq_no" </dev/null ;;
            crun) crun --root "$work/crun-state" run --bundle "$bundle" "rb-$seq_no" </dev/null ;;
        esac >/dev/null 2>>"$work/burst.err" &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do wait "$i" || failed=$((failed + 1)); done
    conc_s[$n]=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
    ((failed == 0)) || { echo "$failed of $conc $n runs failed:" >&2; tail -20 "$work/burst.err" >&2; exit 1; }
}
for n in "${names[@]}"; do burst "$n"; done

# --- leftovers ----------------------------------------------------------------------------------
leftovers() { # prints what berth left; empty when clean
    grep -o " $work/berthd/root/[^ ]*" /proc/self/mountinfo | sed 's/^/  mount/' || true
    for d in /sys/fs/cgroup/*/berth/*; do [[ -d $d ]] && echo "  cgroup $d"; done
    ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^vb-/ {print "  link " $2}'
    for p in $(shim_pids); do echo "  shim pid $p: $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")"; done
    return 0
}
left=$(leftovers)
[[ -z $left ]] || { echo "berth run --rm left things behind:" >&2; echo "$left" >&2; exit 1; }

# --- one idle monitor ----------------------------------------------------------------------------
idle_id=$(berth run -d --name rb-idle "$image" sleep 60)
sleep 0.5
idle_shim=
for p in $(shim_pids); do
    [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") == *"$idle_id"* ]] && idle_shim=$p
done
[[ -n $idle_shim ]] || { echo "no berth-shim with --dir …$idle_id" >&2; exit 1; }
shim_rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$idle_shim/status")
shim_pss=$(awk '/^Pss:/ {print $2}' "/proc/$idle_shim/smaps_rollup" 2>/dev/null || echo 0)
shim_anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$idle_shim/status")
shim_priv=$(awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s + 0}' "/proc/$idle_shim/smaps_rollup" 2>/dev/null || echo 0)
berth rm -f rb-idle >/dev/null

# --- N sleeping containers: start time, daemon RSS, removal --------------------------------------
daemon_rss0=$(awk '/^VmRSS:/ {print $2}' "/proc/$berthd_pid/status")
t0=$EPOCHREALTIME
pids=()
for i in $(seq 1 "$conc"); do
    berth run -d --name "rb-sleep-$i" "$image" sleep 60 >/dev/null 2>>"$work/sleep.err" &
    pids+=("$!")
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
sleep_start_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
((failed == 0)) || { echo "$failed of $conc detached runs failed:" >&2; tail -20 "$work/sleep.err" >&2; exit 1; }
running=$(berth ps -q | wc -l)
sleep 0.5
daemon_rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$berthd_pid/status")
daemon_hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$berthd_pid/status")
shims_rss=0 shims_pss=0
nshims=0
for p in $(shim_pids); do
    shims_rss=$((shims_rss + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
    shims_pss=$((shims_pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)))
    nshims=$((nshims + 1))
done
t0=$EPOCHREALTIME
mapfile -t all < <(berth ps -a -q)
berth rm -f "${all[@]}" >/dev/null
rm_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
sleep 0.2
left=$(leftovers)
[[ $(berth ps -a -q | wc -l) -eq 0 ]] || left+=$'\n  containers still listed by berth ps -a'

# --- report ---------------------------------------------------------------------------------------
echo
printf '%-32s %9s %9s %9s %9s\n' "start-to-exit of \`true\` (ms)" median min p90 max
declare -A med
for n in "${names[@]}"; do
    read -ra v <<<"${times[$n]}"
    med[$n]=$(median "${v[@]}")
    printf '%-32s %9.2f %9.2f %9.2f %9.2f\n' "${label[$n]}" "${med[$n]}" "$(pct 0 "${v[@]}")" "$(pct 90 "${v[@]}")" "$(pct 100 "${v[@]}")"
done
echo "  runtime path in one process (no exec of a tool): $floor"
echo "  berth CLI + one request to berthd (\`berth ps -q\`, median of 30): $(median "${t_ps[@]}") ms"
echo "  bridge network setup + teardown (berth run --rm minus --network none): $(awk -v a="${med[berth]}" -v b="${med[berth-nonet]}" 'BEGIN { printf "%.2f", a - b }') ms"
echo "  berthd CPU per berth run --rm (both kinds): $berthd_cpu_ms ms"
echo
echo "$conc started at once, wall time until all exited:"
for n in "${names[@]}"; do
    printf '  %-30s %7.3f s   %6.1f ms/container\n' "${label[$n]}" "${conc_s[$n]}" "$(awk -v s="${conc_s[$n]}" -v c="$conc" 'BEGIN { print s * 1000 / c }')"
done
echo
echo "ratios (medians):"
echo "  berth runtime path / crun run         $(ratio "${med[runtime]}" "${med[crun]}")   (target <= 1.00x)"
echo "  berth runtime path / runc run         $(ratio "${med[runtime]}" "${med[runc]}")"
echo "  berth run --rm / runc run             $(ratio "${med[berth]}" "${med[runc]}")   (target < 1.00x)"
echo "  berth run --rm --network none / runc  $(ratio "${med[berth-nonet]}" "${med[runc]}")"
echo "  berth run --rm / crun run             $(ratio "${med[berth]}" "${med[crun]}")"
echo "  ctr run --rm (125 ms, tracker) / berth run --rm      $(ratio 125 "${med[berth]}")   (target >= 5x)"
echo "  podman run --rm (166 ms, tracker) / berth run --rm   $(ratio 166 "${med[berth]}")   (target >= 5x)"
echo "  tracker's targets: crun 9.9 ms, runc 25.9 ms (busy machine); this machine: crun ${med[crun]} ms, runc ${med[runc]} ms"
echo
kib() { awk -v k="$1" 'BEGIN { printf "%.2f MiB", k / 1024 }'; }
echo "memory:"
echo "  one idle berth-shim (sleep 60): VmRSS $(kib "$shim_rss") (anonymous $(kib "$shim_anon")), Pss $(kib "$shim_pss"), private $(kib "$shim_priv")   (target VmRSS <= 2 MB)"
echo "  berthd idle: VmRSS $(kib "$daemon_rss0")"
echo "  berthd with $running containers running: VmRSS $(kib "$daemon_rss"), VmHWM $(kib "$daemon_hwm")   (target <= 50 MB)"
echo "  $nshims berth-shims together: Pss $(kib "$shims_pss") ($(kib "$((shims_pss / (nshims > 0 ? nshims : 1)))") each), sum of VmRSS $(kib "$shims_rss") (shared pages counted in each)"
echo "  $conc \`berth run -d … sleep 60\` at once: $sleep_start_s s; \`berth rm -f\` of all: $rm_s s"
if [[ -z $left ]]; then
    echo "  after rm -f: nothing left (mounts under berthd's root, cgroup dirs, vb-* links, shims)"
else
    echo "  after rm -f, LEFT BEHIND:"; echo "$left"; exit 1
fi
