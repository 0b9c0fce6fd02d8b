#!/bin/bash
# systemd-analyze verify on dist/systemd/mvagent.service and mvstored.service, on copies whose
# ExecStart points at this build's binaries (verify requires the executable to exist).
set -euo pipefail
grep_q() { grep "$@" >/dev/null; } # grep -q ends early: SIGPIPE under pipefail
SRC=${MV_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
B=${MV_BUILD_DIR:?MV_BUILD_DIR must point at the build directory}/bin
command -v systemd-analyze >/dev/null || {
    echo "skip: needs systemd-analyze"
    exit 77
}
for t in mvagent mvstored; do
    [ -x "$B/$t" ] || {
        echo "skip: $B/$t not built"
        exit 77
    }
done
TMP=$(mktemp -d /tmp/hag-units.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
for u in mvagent mvstored; do
    sed "s|^ExecStart=/usr/bin/$u |ExecStart=$B/$u |" "$SRC/dist/systemd/$u.service" \
        >"$TMP/$u.service"
    grep -q "^ExecStart=$B/$u " "$TMP/$u.service" || {
        echo "not ok - $u.service: ExecStart is not /usr/bin/$u"
        exit 1
    }
done
# The agent's unit must not kill the VMMs on restart.
grep -q '^KillMode=process$' "$TMP/mvagent.service" || {
    echo "not ok - mvagent.service lacks KillMode=process"
    exit 1
}
out=$(cd "$TMP" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
    "$TMP/mvagent.service" "$TMP/mvstored.service" 2>&1) || {
    echo "$out"
    echo "not ok - systemd-analyze verify failed"
    exit 1
}
# verify exits 0 on some warnings: treat any line about our units as a failure.
if echo "$out" | grep -E 'mv(agent|stored)\.service' ; then
    echo "not ok - systemd-analyze verify warned"
    exit 1
fi
echo "ok - mvagent.service and mvstored.service verify"
# And a unit with a typo must fail, so this test can fail.
sed 's/^Restart=on-failure/Restart=on-faillure/' "$TMP/mvagent.service" >"$TMP/broken.service"
if (cd "$TMP" && systemd-analyze verify --man=no "$TMP/broken.service" 2>&1) | grep_q -i 'restart'; then
    echo "ok - a broken unit is reported"
else
    echo "not ok - a broken unit passed verification"
    exit 1
fi
