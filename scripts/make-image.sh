#!/usr/bin/env bash
# Build a 3-layer OCI image layout from busybox-static, with GNU tar + gzip and jq.
#
#   scripts/make-image.sh OUTDIR [--big | --size MB] [--variant N] [--tag TAG]
#
# layer 1: /bin/busybox and its applet symlinks
# layer 2: a few files and directories (/etc, /srv/data, /tmp/removeme)
# layer 3: a whiteout deleting /tmp/removeme, and more files
# --big      adds ~200 MB (compressed) of incompressible, deterministic data across the layers
# --size MB  the same with MB megabytes in total
# --variant  changes only layer 3 (layers 1 and 2 stay byte-identical across variants)
# --tag      the ref name written into index.json (default: latest)
#
# Output is deterministic: same arguments, same digests. `umoci` (0.4.7) is not used for
# writing layers: its `insert` omits the tar end-of-archive blocks.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [--big | --size MB] [--variant N] [--tag TAG]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
out=$1; shift
extra_mb=0 variant=0 tag=latest
while [[ $# -gt 0 ]]; do
    case $1 in
        --big) extra_mb=200 ;;
        --size) extra_mb=${2:?}; shift ;;
        --variant) variant=${2:?}; shift ;;
        --tag) tag=${2:?}; shift ;;
        *) usage ;;
    esac
    shift
done

busybox=$(command -v busybox || true)
[[ -n $busybox ]] || { echo "make-image.sh: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then
    echo "make-image.sh: $busybox is dynamically linked; install busybox-static" >&2; exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out/blobs/sha256"
blobs=$out/blobs/sha256

# Deterministic incompressible bytes: AES-CTR keystream of a fixed passphrase.
noise() { # SEED BYTES
    # openssl dies of SIGPIPE when head has enough: that is the expected end.
    { openssl enc -aes-256-ctr -pass "pass:berth-fixture-$1" -nosalt -pbkdf2 -iter 1 </dev/zero 2>/dev/null || true; } |
        head -c "$2"
}

# Pack directory $1 into a gzip layer; prints "DIFFID DIGEST SIZE".
pack() {
    local dir=$1 tarf=$work/layer.tar
    tar --create --file="$tarf" --directory="$dir" --sort=name --format=gnu \
        --mtime=@946684800 --owner=0 --group=0 --numeric-owner .
    local diff_id
    diff_id=$(sha256sum "$tarf" | cut -d' ' -f1)
    gzip -n -1 -c "$tarf" >"$work/layer.tgz"
    local digest size
    digest=$(sha256sum "$work/layer.tgz" | cut -d' ' -f1)
    size=$(stat -c %s "$work/layer.tgz")
    mv "$work/layer.tgz" "$blobs/$digest"
    rm -f "$tarf"
    echo "$diff_id $digest $size"
}

# Share of the extra data per layer: 1/4, 1/4, 1/2.
mb1=$((extra_mb / 4)) mb2=$((extra_mb / 4)) mb3=$((extra_mb - extra_mb / 4 * 2))

# Layer 1: busybox and its applets.
l1=$work/l1
mkdir -p "$l1/bin" "$l1/usr/bin" "$l1/sbin" "$l1/usr/sbin"
cp "$busybox" "$l1/bin/busybox"
chmod 0755 "$l1/bin/busybox"
for applet in $("$busybox" --list); do
    [[ $applet == busybox ]] && continue
    ln -s busybox "$l1/bin/$applet"
done
if ((mb1 > 0)); then mkdir -p "$l1/opt"; noise l1 $((mb1 * 1048576)) >"$l1/opt/blob1.bin"; fi
read -r diff1 dig1 size1 < <(pack "$l1")

# Layer 2: files and directories.
l2=$work/l2
mkdir -p "$l2/etc" "$l2/srv/data/nested/deeper" "$l2/tmp" "$l2/root"
chmod 1777 "$l2/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$l2/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$l2/etc/group"
printf 'berth\n' >"$l2/etc/hostname"
printf 'hello from layer 2\n' >"$l2/srv/data/hello.txt"
printf 'deep\n' >"$l2/srv/data/nested/deeper/file"
printf 'this file is deleted by layer 3\n' >"$l2/tmp/removeme"
printf 'kept\n' >"$l2/tmp/kept"
ln -s ../srv/data/hello.txt "$l2/etc/hello-link"
if ((mb2 > 0)); then noise l2 $((mb2 * 1048576)) >"$l2/srv/data/blob2.bin"; fi
read -r diff2 dig2 size2 < <(pack "$l2")

# Layer 3: a whiteout and more files; --variant changes only this layer.
l3=$work/l3
mkdir -p "$l3/tmp" "$l3/srv/data" "$l3/etc"
chmod 1777 "$l3/tmp"
: >"$l3/tmp/.wh.removeme"
printf 'hello from layer 3, variant %s\n' "$variant" >"$l3/srv/data/layer3.txt"
printf 'variant=%s\n' "$variant" >"$l3/etc/berth-fixture"
if ((mb3 > 0)); then noise "l3-$variant" $((mb3 * 1048576)) >"$l3/srv/data/blob3.bin"; fi
read -r diff3 dig3 size3 < <(pack "$l3")

# Config, manifest, index.
put_json() { # FILE -> prints "DIGEST SIZE", stores the blob
    local d s
    d=$(sha256sum "$1" | cut -d' ' -f1); s=$(stat -c %s "$1")
    mv "$1" "$blobs/$d"
    echo "$d $s"
}

jq -cn --arg d1 "sha256:$diff1" --arg d2 "sha256:$diff2" --arg d3 "sha256:$diff3" --arg v "$variant" '{
  created: "2000-01-01T00:00:00Z",
  architecture: "amd64",
  os: "linux",
  config: {
    Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    Cmd: ["/bin/sh"],
    WorkingDir: "/",
    Labels: {"org.berth.fixture.variant": $v}
  },
  rootfs: {type: "layers", diff_ids: [$d1, $d2, $d3]},
  history: [
    {created: "2000-01-01T00:00:00Z", created_by: "busybox and applets"},
    {created: "2000-01-01T00:00:00Z", created_by: "files and directories"},
    {created: "2000-01-01T00:00:00Z", created_by: "whiteout and more files"}
  ]
}' >"$work/config.json"
read -r cfg_dig cfg_size < <(put_json "$work/config.json")

L=application/vnd.oci.image.layer.v1.tar+gzip
jq -cn --arg cd "sha256:$cfg_dig" --argjson cs "$cfg_size" --arg L "$L" \
    --arg g1 "sha256:$dig1" --argjson s1 "$size1" \
    --arg g2 "sha256:$dig2" --argjson s2 "$size2" \
    --arg g3 "sha256:$dig3" --argjson s3 "$size3" '{
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
  layers: [
    {mediaType: $L, digest: $g1, size: $s1},
    {mediaType: $L, digest: $g2, size: $s2},
    {mediaType: $L, digest: $g3, size: $s3}
  ]
}' >"$work/manifest.json"
read -r man_dig man_size < <(put_json "$work/manifest.json")

printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
jq -cn --arg d "sha256:$man_dig" --argjson s "$man_size" --arg t "$tag" '{
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: $d, size: $s,
    annotations: {"org.opencontainers.image.ref.name": $t}
  }]
}' >"$out/index.json"

total=$((size1 + size2 + size3))
echo "make-image.sh: $out:$tag manifest sha256:$man_dig, 3 layers, $((total / 1048576)) MiB compressed" >&2
