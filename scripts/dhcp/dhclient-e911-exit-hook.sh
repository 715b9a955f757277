# dhclient exit hook (source file: install as /etc/dhcp/dhclient-exit-hooks.d/e911):
# hands DHCP location options 99 and 123 to the e911 agent. dhclient.conf needs:
#   option geoconf-civic code 99 = array of unsigned integer 8;
#   option geoconf code 123 = array of unsigned integer 8;
#   also request geoconf-civic, geoconf;
# dhclient then prints them as decimal bytes ("2,85,83,..."), which the agent reads.
e911_dir="${E911_DHCP_LOCATION_DIR:-/run/e911-agent/dhcp}"
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT|BOUND6|RENEW6|REBIND6)
    mkdir -p "$e911_dir"
    printf 'option99=%s\noption123=%s\n' "${new_geoconf_civic:-}" "${new_geoconf:-}" > "$e911_dir/$interface.tmp" &&
      mv "$e911_dir/$interface.tmp" "$e911_dir/$interface"
    ;;
  EXPIRE|FAIL|RELEASE|STOP|EXPIRE6|RELEASE6|STOP6)
    rm -f "$e911_dir/$interface"
    ;;
esac
