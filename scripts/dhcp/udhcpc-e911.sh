#!/bin/sh
# udhcpc hook: hands DHCP location options 99 (civic, RFC 4776) and 123 (geo,
# RFC 6225) to the e911 agent. Run udhcpc with `-O 99 -O 123 -s <this script>`
# (or call it from the existing hook). busybox exports unknown options as
# opt<code> in hex. The agent watches $E911_DHCP_LOCATION_DIR (default
# /run/e911-agent/dhcp); see docs/network.md.
dir="${E911_DHCP_LOCATION_DIR:-/run/e911-agent/dhcp}"
file="$dir/$interface"
case "$1" in
  bound|renew)
    mkdir -p "$dir"
    printf 'option99=%s\noption123=%s\n' "${opt99:-}" "${opt123:-}" > "$file.tmp" && mv "$file.tmp" "$file"
    ;;
  deconfig|leasefail|nak)
    rm -f "$file"
    ;;
esac
# Chain to the system hook when there is one, so addresses still get configured.
if [ -n "${E911_NEXT_HOOK:-}" ] && [ -x "$E911_NEXT_HOOK" ]; then exec "$E911_NEXT_HOOK" "$@"; fi
exit 0
