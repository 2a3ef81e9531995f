#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests and for trying `search.submit` out.
#
#   bash deploy/slurm/local-cluster.sh start   # idempotent: a running cluster is left as it is
#   bash deploy/slurm/local-cluster.sh stop
#
# FOR A THROWAWAY MACHINE ONLY (a CI runner, a container, a VM of your own): it runs as root,
# writes /etc/slurm/slurm.conf (or $SLURM_CONF) and starts munged, slurmctld and slurmd, all as
# root apart from munged. It refuses to overwrite a slurm.conf it did not write, so it never
# clobbers a real cluster's configuration. It installs nothing: first
#   apt-get install -y slurm-wlm munge
# State, spool, pid and log files live in $SEARCH_SLURM_DIR (default /tmp/search-slurm); the
# logs there are the first place to look when `start` fails. No accounting daemon (slurmdbd):
# `sacct` does not work; `squeue` and `scontrol show job` do (finished jobs for 10 minutes).
set -euo pipefail

DIR=${SEARCH_SLURM_DIR:-/tmp/search-slurm}
CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
WAIT_S=${SEARCH_SLURM_WAIT_S:-60}
MARK="# Written by deploy/slurm/local-cluster.sh: a one-node cluster for a throwaway machine."
HOST=$(hostname -s)

die() { echo "local-cluster: $*" >&2; exit 1; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

node_state() { sinfo -h -N -n "$HOST" -o %t 2>/dev/null | head -n1; }

config() {
    local cpus mem
    cpus=$(nproc --all)
    # A little under the machine's memory: slurmd drains a node with less than it declares.
    mem=$(awk '/^MemTotal:/ { print int($2 / 1024 * 0.95) }' /proc/meminfo)
    cat <<EOF
$MARK
ClusterName=search-local
SlurmctldHost=$HOST
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=600
KillWait=30
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
NodeName=$HOST CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    munge_works && return 0
    command -v munged >/dev/null || die "munged not found: apt-get install -y slurm-wlm munge"
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    runuser -u munge -- munged
    touch "$DIR/munged.ours" # stop ends only a munged that this script started
    for _ in $(seq 50); do munge_works && return 0; sleep 0.1; done
    die "munged did not start (see /var/log/munge/munged.log)"
}

stop_pid() { # stop_pid PIDFILE NAME: SIGTERM, then SIGKILL after 10 s
    alive "$1" || return 0
    local pid
    pid=$(cat "$1")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    echo "local-cluster: $2 ($pid) ignored SIGTERM; killing it" >&2
    kill -9 "$pid" 2>/dev/null || true
}

stop() {
    stop_pid "$DIR/slurmd.pid" slurmd
    stop_pid "$DIR/slurmctld.pid" slurmctld
    if [ -e "$DIR/munged.ours" ]; then
        stop_pid /run/munge/munged.pid munged
        rm -f "$DIR/munged.ours"
    fi
    echo "local-cluster: stopped"
}

start() {
    [ "$(id -u)" = 0 ] || die "run as root (it writes $CONF and starts daemons)"
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null ||
        die "slurmctld/slurmd not found: apt-get install -y slurm-wlm munge"
    if [ -e "$CONF" ] && ! grep -qxF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script; refusing to replace it"
    fi
    mkdir -p "$DIR/state" "$DIR/spool" "$(dirname "$CONF")"
    local wanted
    wanted=$(config)
    if [ "$(cat "$CONF" 2>/dev/null)" != "$wanted" ]; then
        # A new configuration (another host name, more memory): restart with it.
        stop_pid "$DIR/slurmd.pid" slurmd
        stop_pid "$DIR/slurmctld.pid" slurmctld
        printf '%s\n' "$wanted" >"$CONF.new" && mv "$CONF.new" "$CONF"
    fi
    start_munge
    alive "$DIR/slurmctld.pid" || slurmctld
    alive "$DIR/slurmd.pid" || slurmd
    local state=""
    for _ in $(seq $((WAIT_S * 5))); do
        state=$(node_state)
        case "$state" in
        idle | mix | alloc | comp*)
            echo "local-cluster: node $HOST is $state ($(nproc --all) CPUs; $CONF)"
            return 0
            ;;
        drain* | down* | fail*) # a node that went down (a reboot) comes back once resumed
            scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.2
    done
    echo "local-cluster: node $HOST not idle after $WAIT_S s (state: ${state:-no answer})" >&2
    sinfo -R 2>&1 | tail -n 3 >&2 || true
    tail -n 5 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 2>/dev/null || true
    exit 1
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) die "usage: bash deploy/slurm/local-cluster.sh start|stop" ;;
esac
