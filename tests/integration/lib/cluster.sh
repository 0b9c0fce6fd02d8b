# shellcheck shell=bash
# cluster.sh: the set-up the rack integration tests share (a cluster of mvagent/mvstored hosts and
# an mvctld controller host on a tests/rack/rack.sh rack). Source it from a bash test:
#
#   SRC=${MV_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
#   . "$SRC/tests/integration/lib/cluster.sh"   # sources rack.sh, sets B (bin dir), PY; skips
#                                                # (77) unless root
#   cluster_require_bins mvctld osd guests/x.elf # skip unless each exists under $B
#   cluster_require_kvm                          # skip unless /dev/kvm is writable
#   cluster_have_stored                          # HAVE_STORED=1 if mvstored is built, else 0
#   CLUSTER_LOGS=(ctl:mvctld:40 h1:agent:8)      # what fail prints: HOST:NAME:LINES (tail)
#   cluster_fail_hook() { ...; }                 # optional: more output in fail, before exit
#   cluster_up hcw 3                             # rack h1..h3 + ctl, RACK_ID hcw<pid>; a fresh
#                                                # cluster key in $K
#   cluster_new_key FILE                         # another key file (same key id, new secret)
#   cluster_mvctld_config PASSWORD [LINE...]     # $CONF (mvctld on ctl, 127.0.0.1:8080), $PW;
#                                                # LINEs are appended to its [wire] section
#   start_mvctld; stop_mvctld                    # stop: SIGTERM, clean stop, no sanitizer report
#   cluster_start_stored HOST ARGS...            # mvstored -H HOST -i eth0 -C <sock> ARGS, waits
#   cluster_spawn_agent HOST ARGS...             # mvagent -i eth0 -k $K --state-dir --vmm-run-dir
#                                                # (RACK_DIR/HOST.state, .vm) ARGS; no wait
#   cluster_start_agent HOST ARGS...             # the same, then waits for 'ready'
#
# Helpers for the checks (names as the tests use them):
#   ok TEXT; fail TEXT                 # "ok N - TEXT" / "not ok - TEXT", logs, exit 1
#   osd ARGS; osdj ARGS                # osd on ctl against mvctld (osdj: --json)
#   check 'python expr over j' JSON    # exit status of the expression
#   field 'python expr over j' JSON    # prints the expression
#   wait_for SECS 'python expr over j' OSD-ARGS...   # polls osdj every $CLUSTER_POLL_S (0.1) s
#   agent_call HOST OP [JSON] [OPTS]   # mvctl-agent from ctl to HOST's agent
#   agent_mac_call MAC OP [JSON] [OPTS] # the same by control MAC
#   node_of HOST                       # HOST's node id (the last 4 bytes of its MAC)
# Set CLUSTER_KEEP_LOGS=DIR to get a copy of the rack's logs when a check fails.

_cluster_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${SRC:-${MV_SOURCE_DIR:-$(cd "$_cluster_dir/../../.." && pwd)}}
B=${MV_BUILD_DIR:?MV_BUILD_DIR must point at the build directory}/bin
PY=/usr/bin/python3
# shellcheck source=../../rack/rack.sh
. "$SRC/tests/rack/rack.sh"
rack_require_root

CLUSTER_LOGS=()
CLUSTER_POLL_S=${CLUSTER_POLL_S:-0.1}
K=""
PW=""
CONF=""

cluster_require_bins() {
    local t
    for t in "$@"; do
        [ -x "$B/$t" ] || [ -f "$B/$t" ] || {
            echo "skip: $B/$t not built"
            exit 77
        }
    done
}

cluster_require_kvm() {
    [ -w /dev/kvm ] || {
        echo "skip: needs /dev/kvm"
        exit 77
    }
}

cluster_have_stored() {
    HAVE_STORED=0
    [ -x "$B/mvstored" ] && HAVE_STORED=1
    return 0
}

n=0
ok() {
    n=$((n + 1))
    echo "ok $n - $*"
}
fail() {
    local entry h name lines
    echo "not ok - $*" >&2
    [ -z "${CLUSTER_KEEP_LOGS:-}" ] || cp -r "$RACK_DIR/logs" "$CLUSTER_KEEP_LOGS" 2>/dev/null || true
    for entry in "${CLUSTER_LOGS[@]}"; do
        IFS=: read -r h name lines <<<"$entry"
        echo "--- $h $name log" >&2
        tail -n "$lines" "$(rack_logfile "$h" "$name")" >&2 || true
    done
    if declare -F cluster_fail_hook >/dev/null; then cluster_fail_hook || true; fi
    exit 1
}

cluster_new_key() { # FILE: a cluster key file with one fresh active key (id 1)
    printf 'key 1 %s active\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$1"
    chmod 600 "$1"
}

cluster_up() { # ID-PREFIX HOSTS
    RACK_ID=$1$$
    RACK_ID=${RACK_ID:0:10}
    rack_up "$2"
    rack_add_host ctl
    K=$RACK_DIR/cluster.key
    cluster_new_key "$K"
}

cluster_mvctld_config() { # PASSWORD [WIRE-LINE...]
    local hash line
    PW=$1
    shift
    hash=$("$B/mvctld" --hash-password <<<"$PW")
    CONF=$RACK_DIR/mvctld.conf
    cat >"$CONF" <<EOF
[mvctld]
listen = 127.0.0.1
port = 8080
db = $RACK_DIR/mvctld.db
admin_password_hash = $hash

[wire]
interface = eth0
key_file = $K
node_name = ctl
state_file = $RACK_DIR/ctl.incarnation
hello_interval_ms = 500
dead_after_ms = 2500
format_timeout = 15
EOF
    for line in "$@"; do echo "$line" >>"$CONF"; done
}

stop_mvctld() { # SIGTERM: a clean stop, and (sanitizer builds) no leak or error report
    rack_kill ctl mvctld TERM
    rack_log ctl mvctld | grep_q stopping || fail "mvctld did not stop cleanly"
    if rack_log ctl mvctld | grep_q Sanitizer; then fail "mvctld: sanitizer report"; fi
}
start_mvctld() {
    rack_spawn ctl mvctld "$B/mvctld" -c "$CONF"
    rack_wait_log ctl mvctld 'listening on port' 10 || fail "mvctld did not start"
}

cluster_start_stored() { # HOST ARGS...
    local h=$1
    shift
    rack_spawn "$h" stored "$B/mvstored" -H "$h" -i eth0 -C "$RACK_DIR/$h.stored.sock" "$@"
    rack_wait_log "$h" stored 'serving' 10 || fail "$h: mvstored did not start"
}

cluster_spawn_agent() { # HOST ARGS...
    local h=$1
    shift
    mkdir -p "$RACK_DIR/$h.vm"
    rack_spawn "$h" agent "$B/mvagent" -i eth0 -k "$K" \
        --state-dir "$RACK_DIR/$h.state" --vmm-run-dir "$RACK_DIR/$h.vm" "$@"
}
cluster_start_agent() { # HOST ARGS...
    cluster_spawn_agent "$@"
    rack_wait_log "$1" agent 'ready' 10 || fail "$1: mvagent did not start"
}

osd() { rack_exec ctl env OSD_URL=http://127.0.0.1:8080 OSD_PASSWORD=$PW HOME="$RACK_DIR" "$B/osd" "$@"; }
osdj() { osd "$@" --json; }
check() { "$PY" -c "import json,sys; j=json.loads(sys.argv[2]); sys.exit(0 if ($1) else 1)" x "$2"; }
field() { "$PY" -c "import json,sys; j=json.loads(sys.argv[2]); print($1)" x "$2"; }
wait_for() {
    local secs=$1 expr=$2 end out
    shift 2
    end=$(($(date +%s%N) + secs * 1000000000))
    while :; do
        out=$(osdj "$@" 2>/dev/null) && check "$expr" "$out" && return 0
        [ "$(date +%s%N)" -lt $end ] || {
            echo "last: $out" >&2
            return 1
        }
        sleep "$CLUSTER_POLL_S"
    done
}

agent_mac_call() { rack_exec ctl "$B/mvctl-agent" -i eth0 --mvmac "$1" -k "$K" "${@:2}"; }
agent_call() { agent_mac_call "$(rack_mac "$1" | tr -d :)" "${@:2}"; }
node_of() { rack_mac "$1" | awk -F: '{print $3$4$5$6}'; }
