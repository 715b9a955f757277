#!/usr/bin/env bash
# Installs everything e911-agent needs on a fresh Debian machine (run as root),
# then builds it. Idempotent; non-interactive.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
# The phones' libraries (libssl, libasound for arm64/armhf) come as Debian multiarch packages.
added_arch=
for arch in arm64 armhf; do
  dpkg --print-foreign-architectures | grep -qx "$arch" || { dpkg --add-architecture "$arch"; added_arch=1; }
done
packages=$(sed -e 's/#.*//' scripts/apt-packages.txt | xargs)
missing=$(dpkg-query -W -f='${binary:Package} ${Status}\n' $packages 2>/dev/null | awk '$NF != "installed" {print $1}' || true)
# dpkg-query prints nothing for packages it has never heard of: count those as missing too.
for p in $packages; do dpkg-query -W "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$(echo $missing)" ] || [ -n "$added_arch" ]; then
  # A mirror mid-sync fails the update now and then ("File has unexpected size"): retry, and
  # then install from the lists already there; only a package that cannot be had stops setup.
  for try in 1 2 3; do
    if apt-get update -qq; then break; fi
    echo "setup: apt-get update failed (try $try of 3)" >&2
    [ "$try" = 3 ] || sleep 15
  done
  apt-get install -y -qq --no-install-recommends $missing
fi
# Debian starts these as services on install; tests start their own on free ports.
for svc in mosquitto kamailio lldpd; do
  command -v systemctl >/dev/null && systemctl disable --now "$svc" >/dev/null 2>&1 || true
  pkill -x "$svc" >/dev/null 2>&1 || true
done

# Not `npm ci`: npm 11 writes no lock entries for other platforms' optional packages
# (rollup's), then `npm ci` calls the lock out of sync. `npm install` follows the lock.
npm install --no-audit --no-fund
npm run build
# pjproject, pinned and checksum-verified, built static for this host and linked into the PJSIP
# addon (docs/voice.md). About 6 min the first time, seconds from its cache; a failure stops setup.
node scripts/build-voice.mjs
# ARM executables with their own pjproject (docs/arm.md): about 25 min clean, seconds when cached.
npm run build:arm
echo "setup: done"
