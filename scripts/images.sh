#!/usr/bin/env bash
# Builds the two images from their Dockerfiles, unchanged:
#   localhost/ffpool:$IMAGE_TAG           service/Dockerfile
#   localhost/ffpool-operator:$IMAGE_TAG  operator/Dockerfile
# With a usable Docker daemon: `docker build` on the Dockerfiles' default base (a registry's
# python:3.11-slim-bookworm). Without one (no daemon, no registry): podman, on a base made here
# from Debian's packages with debootstrap, cached under $FFPOOL_CACHE/images/ and keyed by what
# goes into it. docs/kubernetes.md, "Building the images".
#
#   scripts/images.sh              build (idempotent; a warm call takes seconds)
#   scripts/images.sh --save DIR   also write DIR/ffpool.tar and DIR/ffpool-operator.tar
#                                  (docker-archive, for `ctr -n k8s.io images import`), each
#                                  rewritten only when its image ID changed
#   --no-build                     with --save: archive the images as they are, no build
#
# Environment: IMAGE_TAG (dev), IMAGE_ENGINE (docker or podman; default: docker when `docker
# info` answers), PYTHON_IMAGE (a base to use instead of the default or the debootstrap one),
# FFPOOL_CACHE (~/.cache/ffpool).
set -euo pipefail

save_dir='' build=1
while [ $# -gt 0 ]; do
    case $1 in
    --save) save_dir=$(realpath -m "${2:?--save needs a directory}"); shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "images: unknown argument $1" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."

tag=${IMAGE_TAG:-dev}
cache=${FFPOOL_CACHE:-$HOME/.cache/ffpool}/images
mkdir -p "$cache"
started=$SECONDS
say() { echo "images: $*"; }

# Two callers at once (a test session and a cluster bring-up) would race on the base, the layer
# cache and the archives: one at a time.
exec 9>"$cache/.lock"
if ! flock -n 9; then
    say "waiting for another scripts/images.sh to finish"
    flock 9
fi

engine=${IMAGE_ENGINE:-}
if [ -z "$engine" ]; then
    engine=podman
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker; fi
fi
case $engine in
docker) ENGINE=(docker) BUILD_FLAGS=() ;;
podman)
    command -v podman >/dev/null ||
        { echo "images: no usable Docker daemon and no podman" >&2; exit 1; }
    # crun refuses a hybrid cgroup v1 layout; runc with cgroupfs
    # (no systemd) works everywhere.
    ENGINE=(podman --runtime "${PODMAN_RUNTIME:-runc}" --cgroup-manager cgroupfs)
    # The default rlimits are above what a process without CAP_SYS_RESOURCE may set, so every
    # RUN would fail to start; these are within reach and ample for apt and pip.
    BUILD_FLAGS=(--network host --pull=never --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
    # The host's CA bundle, for RUN steps only (never a layer): where egress goes through a
    # TLS-inspecting proxy, Debian's pip (which reads the system bundle) needs its CA to reach PyPI.
    if [ -d /etc/ssl/certs ]; then BUILD_FLAGS+=(-v /etc/ssl/certs:/etc/ssl/certs:ro); fi
    ;;
*) echo "images: IMAGE_ENGINE must be docker or podman, not $engine" >&2; exit 2 ;;
esac
say "engine $engine, tag $tag"

# --- the base, from Debian's packages ------------------------------------------------------------
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
SECURITY_MIRROR=http://deb.debian.org/debian-security
# One base for both stages (the Dockerfiles take one PYTHON_IMAGE): the builder runs
# `python -m venv`, which needs python3-venv (~3 MB of bundled wheels) and python-is-python3.
# Both stages then have the same /usr/bin/python3, which the copied /opt/venv points at.
BASE_PACKAGES=(python3 python3-venv python-is-python3)

# Files no container reads, kept out of the base and, through dpkg's path filters left in it,
# out of every package the Dockerfiles install later (ffmpeg's ~150 libraries bring their own).
# Mesa's DRI drivers come with ffmpeg through libavdevice's OpenGL output (libgl1 -> libglx-mesa0
# -> libgl1-mesa-dri); they are only dlopen()ed to create a GL context, which the service's
# FFmpeg never does, and only they link libLLVM (which alone links libz3): 160 MB of the image.
DPKG_EXCLUDES='path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/bug/*
path-exclude=/usr/lib/*/dri/*
path-exclude=/usr/lib/*/libLLVM-*
path-exclude=/usr/lib/*/libz3.so*'

make_base() { # $1: an empty directory to fill
    local root=$1
    # In a private mount namespace: the /proc and /sys debootstrap mounts in the target vanish
    # with it, even when it fails halfway.
    unshare --mount debootstrap --variant=minbase --include="$(IFS=,; echo "${BASE_PACKAGES[*]}")" \
        "$SUITE" "$root" "$MIRROR" >"$cache/debootstrap.log" 2>&1 ||
        { tail -20 "$cache/debootstrap.log" >&2; return 1; }
    printf '%s\n' "$DPKG_EXCLUDES" >"$root/etc/dpkg/dpkg.cfg.d/ffpool-nodoc"
    # python:*-slim's sources: security and point updates, for this base and for what the
    # Dockerfiles install on it.
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
        "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SECURITY_MIRROR" "$SUITE" \
        >"$root/etc/apt/sources.list"
    # A private /proc for the maintainer scripts, unmounted with the namespace.
    unshare --mount --pid --fork --mount-proc="$root/proc" chroot "$root" /bin/sh -ec '
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get -y -qq --no-install-recommends dist-upgrade
        apt-get clean' >>"$cache/debootstrap.log" 2>&1 ||
        { tail -20 "$cache/debootstrap.log" >&2; return 1; }
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old \
        "$root"/var/log/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/usr/share/lintian/* "$root"/usr/share/bug/*
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    # Standard-library parts no service imports (2to3, pydoc's topics, the regression tests).
    rm -rf "$root"/usr/lib/python3.*/{lib2to3,pydoc_data,test}
    # Per-run files: the engine mounts its own.
    : >"$root/etc/resolv.conf"
    rm -f "$root/etc/hostname"
}

base_image() { # sets BASE_IMAGE
    local key image dir tarball
    # The key covers every input of the base: the suite, the mirrors, the package list and the
    # recipe itself (a changed make_base is a new base). Security updates are as of the first
    # build; to take newer ones, delete the pybase-* directory and `podman rmi` the base's tag.
    key=$(printf '%s\n' "$SUITE" "$MIRROR" "$SECURITY_MIRROR" "${BASE_PACKAGES[@]}" \
        "$DPKG_EXCLUDES" "$(declare -f make_base)" | sha256sum | cut -c1-12)
    image=localhost/ffpool-pybase:$SUITE-$key
    dir=$cache/pybase-$SUITE-$key
    tarball=$dir/rootfs.tar
    if "${ENGINE[@]}" image exists "$image"; then
        say "base $image (cached)"
    else
        if [ ! -f "$tarball" ]; then
            command -v debootstrap >/dev/null ||
                { echo "images: debootstrap is needed" >&2; exit 1; }
            say "base: debootstrap $SUITE + ${BASE_PACKAGES[*]} (one to two minutes)"
            rm -rf --one-file-system "$dir" && mkdir -p "$dir/rootfs"
            make_base "$dir/rootfs"
            tar --numeric-owner -C "$dir/rootfs" -cf "$tarball.tmp" .
            mv "$tarball.tmp" "$tarball"
            rm -rf --one-file-system "$dir/rootfs"
        fi
        say "base: importing $image"
        # What python:*-slim sets and an imported tarball lacks: without PATH, the Dockerfiles'
        # `ENV PATH=/opt/venv/bin:$PATH` would drop /usr/bin.
        "${ENGINE[@]}" import -q \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
            "$tarball" "$image" >/dev/null
    fi
    BASE_IMAGE=$image
}

base_args=()
if [ -n "${PYTHON_IMAGE:-}" ]; then
    base_args=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")
elif [ "$engine" = podman ] && [ "$build" = 1 ]; then
    base_image
    base_args=(--build-arg "PYTHON_IMAGE=$BASE_IMAGE")
fi

# --- the images -----------------------------------------------------------------------------------
build() { # name dockerfile
    local name=$1 dockerfile=$2 log="$cache/build-$1.log" t0=$SECONDS
    say "building localhost/$name:$tag from $dockerfile"
    if ! "${ENGINE[@]}" build "${BUILD_FLAGS[@]}" "${base_args[@]}" -f "$dockerfile" \
        -t "localhost/$name:$tag" . >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "images: building $name failed (full log: $log)" >&2
        exit 1
    fi
    say "built localhost/$name:$tag in $((SECONDS - t0)) s"
}
if [ "$build" = 1 ]; then
    build ffpool service/Dockerfile
    build ffpool-operator operator/Dockerfile
fi

if [ -n "$save_dir" ]; then
    mkdir -p "$save_dir"
    for name in ffpool ffpool-operator; do
        ref=localhost/$name:$tag archive=$save_dir/$name.tar
        id=$("${ENGINE[@]}" image inspect --format '{{.Id}}' "$ref" 2>/dev/null) ||
            { echo "images: $ref is not built (run without --no-build)" >&2; exit 1; }
        # The sidecar holds the ID the archive was written from: unchanged image, no rewrite.
        if [ -f "$archive" ] && [ "$(cat "$archive.id" 2>/dev/null)" = "$id" ]; then
            say "$archive is current"
            continue
        fi
        rm -f "$archive.tmp"
        if [ "$engine" = podman ]; then
            "${ENGINE[@]}" save -q --format docker-archive -o "$archive.tmp" "$ref"
        else
            docker save -o "$archive.tmp" "$ref"
        fi
        mv "$archive.tmp" "$archive"
        echo "$id" >"$archive.id"
        say "saved $archive"
    done
fi

for name in ffpool ffpool-operator; do
    size=$("${ENGINE[@]}" image inspect --format '{{.Size}}' "localhost/$name:$tag")
    say "size localhost/$name:$tag $size bytes ($((size / 1000000)) MB)"
done
say "done in $((SECONDS - started)) s"
