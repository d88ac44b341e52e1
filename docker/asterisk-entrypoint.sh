#!/bin/sh
# Writes the AMI secret from IVR_AMI_SECRET into manager.conf (never baked into the image), then runs CMD.
set -eu
if [ -z "${IVR_AMI_SECRET:-}" ] || [ "$IVR_AMI_SECRET" = "change-me" ]; then
  echo "asterisk: set IVR_AMI_SECRET to a long random value (the service uses the same one)" >&2
  exit 2
fi
case "$IVR_AMI_SECRET" in *[!A-Za-z0-9._~-]*)
  echo "asterisk: IVR_AMI_SECRET may hold letters, digits and . _ ~ - only" >&2; exit 2;;
esac
etc="${ASTERISK_ETC:-/etc/asterisk}"
sed -i "s/^secret = change-me\$/secret = ${IVR_AMI_SECRET}/" "$etc/manager.conf"
grep -q "^secret = ${IVR_AMI_SECRET}\$" "$etc/manager.conf" || { echo "asterisk: no secret line in manager.conf" >&2; exit 2; }
umask 0002  # recordings land group-writable in the shared volume: the service reads, moves and prunes them
exec "$@"
