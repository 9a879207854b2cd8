#!/usr/bin/env bash
# A RabbitMQ 4.x for the tests that need one, on this Debian 12 machine:
# Debian 13 (trixie) carries RabbitMQ 4.0, which runs from a trixie root
# made with debootstrap from Debian's package registry. Built once (about a
# minute), cached in ${RPC_TEST_CACHE:-/var/cache/rpc-tests}; prints the
# root's path. The tests start private nodes from it (chroot), on free
# loopback ports, never touching the shared broker.
#
#   scripts/rabbitmq4.sh        # prints the root, building it if needed
set -euo pipefail

cache="${RPC_TEST_CACHE:-/var/cache/rpc-tests}"
root="$cache/rabbitmq4-trixie"
mirror="${RPC_TEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [[ ! -f "$root/.complete" ]]; then
    if [[ $(id -u) != 0 ]]; then
        echo "error: building the RabbitMQ 4 root needs root (debootstrap, chroot)" >&2
        exit 1
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        echo "installing debootstrap with apt-get" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
    fi
    echo "building a Debian trixie root with rabbitmq-server in $root (once)" >&2
    mkdir -p "$cache"
    rm -rf "$root.partial"
    debootstrap --variant=minbase --include=rabbitmq-server trixie "$root.partial" "$mirror" >&2
    touch "$root.partial/.complete"
    rm -rf "$root"
    mv "$root.partial" "$root"
fi
# Erlang reads /proc; the mount does not survive a reboot, so check each time.
if ! mountpoint -q "$root/proc"; then
    mount -t proc proc "$root/proc"
fi
echo "$root"
