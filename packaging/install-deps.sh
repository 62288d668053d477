#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Installs every Debian package that vstor's build, tests, benchmarks and demo
# need. Idempotent: when everything is present it only runs dpkg-query and exits.
# Enables bookworm-backports for libraft-dev 0.22 (bookworm's 0.15 has Raft
# safety bugs: upstream issues 220 and 386). Uses sudo when not root.
set -eu

# Packages from the main suite.
PKGS="build-essential cmake pkg-config git
liburing-dev libuv1-dev libsqlite3-dev sqlite3 libglpk-dev glpk-utils
libjerasure-dev libgf-complete-dev libibverbs-dev libjansson-dev
libisal-dev libmicrohttpd-dev libnl-genl-3-dev libnl-3-dev libcmocka-dev
python3 python3-pytest python3-pytest-timeout iputils-ping fio qemu-utils libnbd-bin nbdkit iproute2 nftables
iptables procps psmisc util-linux clang libclang-rt-14-dev llvm
etcd-server etcd-client"
# Packages that must come from bookworm-backports, with their minimum version.
BPO_PKG=libraft-dev
BPO_MIN=0.22.0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi

missing=
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    if [ "$st" != "installed" ]; then
        missing="$missing $p"
    fi
done
raft_ver=$(dpkg-query -W -f='${Version}' "$BPO_PKG" 2>/dev/null || true)
need_raft=1
if [ -n "$raft_ver" ] && dpkg --compare-versions "$raft_ver" ge "$BPO_MIN"; then
    need_raft=0
fi

if [ -z "$missing" ] && [ "$need_raft" -eq 0 ]; then
    exit 0
fi

echo "install-deps: installing:$missing$( [ $need_raft -eq 1 ] && echo " $BPO_PKG (backports)")"

if [ "$need_raft" -eq 1 ]; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    list=/etc/apt/sources.list.d/${codename}-backports.list
    if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo "deb http://deb.debian.org/debian ${codename}-backports main" | $SUDO tee "$list" >/dev/null
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing
fi
if [ "$need_raft" -eq 1 ]; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    $SUDO apt-get install -y -q --no-install-recommends -t "${codename}-backports" "$BPO_PKG"
fi
