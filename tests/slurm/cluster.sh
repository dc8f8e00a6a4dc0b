#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the cluster-path tests (tests/slurm) and for trying
# `adaptlib sweep PROFILE --executor slurm` by hand.
#
#   tests/slurm/cluster.sh up       install the packages if missing (root + apt-get), start munged, slurmdbd (with a
#                                   private MariaDB, for sacct), slurmctld and slurmd; wait until the node is idle;
#                                   print the environment to use it (also written to $ADAPTLIB_SLURM_DIR/env.sh)
#   tests/slurm/cluster.sh down     cancel every job, stop every daemon and job process it started, delete the folder
#   tests/slurm/cluster.sh status   sinfo and squeue of the running cluster
#
# Everything lives in one temporary folder, $ADAPTLIB_SLURM_DIR (default /tmp/adaptlib-slurm): slurm.conf,
# slurmdbd.conf, the munge key, socket and pid file, state and spool folders, the database, logs. No configuration
# under /etc is used or changed (the clients find slurm.conf through SLURM_CONF, and munged's socket through
# slurm.conf's AuthInfo and AccountingStoragePass); the packages' own daemons are never started.
# Exit status of `up`: 0 up, 3 SLURM cannot be brought up here (the message says why; tests skip), else
# an error (the logs are in $ADAPTLIB_SLURM_DIR/log).
#
# Options (environment): ADAPTLIB_SLURM_DIR; ADAPTLIB_SLURM_ACCOUNTING=0 to run without slurmdbd (no sacct);
# ADAPTLIB_SLURM_KEEP=1 to keep the folder (logs) after `down`.
set -euo pipefail

DIR=${ADAPTLIB_SLURM_DIR:-/tmp/adaptlib-slurm}  # short: the munge socket path must fit in 108 bytes
ACCOUNTING=${ADAPTLIB_SLURM_ACCOUNTING:-1}
PACKAGES="munge slurm-client slurmctld slurmd"
ACCOUNTING_PACKAGES="slurmdbd mariadb-server-core"
CLUSTER=adaptlib
PARTITION_DEFAULT=debug
PARTITION_OTHER=sweeps

say() { echo "cluster.sh: $*" >&2; }
unavailable() { say "$*"; exit 3; }

# ------------------------------------------------------------------------------------------------ helpers
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
bin() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

free_port() {  # a TCP port nobody listens on
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.5 s; on time-out show its last output
    local seconds=$1 what=$2 deadline out
    shift 2
    deadline=$((SECONDS + seconds))
    until out=$("$@" 2>&1); do
        if ((SECONDS >= deadline)); then
            say "timed out after ${seconds} s waiting for $what; last try said: $(echo "$out" | tail -n 3)"
            return 1
        fi
        sleep 0.5
    done
}

pid_of() { [ -s "$1" ] && cat "$1" 2>/dev/null || true; }

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

stop_pid() {  # stop_pid PID NAME: TERM, up to 10 s, then KILL
    stop_daemons "$2=$1"
}

stop_daemons() {  # stop_daemons NAME=PID...: TERM to all at once, up to 10 s, then KILL to those left
    local item pids=() i
    for item in "$@"; do
        if alive "${item#*=}"; then
            kill -TERM "${item#*=}" 2>/dev/null || true
            pids+=("$item")
        fi
    done
    for i in $(seq 1 40); do
        local left=()
        for item in "${pids[@]}"; do alive "${item#*=}" && left+=("$item"); done
        pids=("${left[@]}")
        [ ${#pids[@]} = 0 ] && return 0
        sleep 0.25
    done
    for item in "${pids[@]}"; do
        say "${item%%=*} (pid ${item#*=}) did not stop on SIGTERM: SIGKILL"
        kill -KILL "${item#*=}" 2>/dev/null || true
    done
}

apt_install() {  # apt_install PACKAGE...: without letting the packages start their own daemons (with /etc's config)
    local policy=/usr/sbin/policy-rc.d created=0 rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 || rc=$?
    if [ "$created" = 1 ]; then rm -f "$policy"; fi
    return "$rc"
}

ensure_packages() {  # the cluster's packages; those of accounting are optional (without them: no sacct)
    local core=() accounting=() cmd
    for cmd in munged slurmctld slurmd sbatch; do have "$cmd" || core+=("$cmd"); done
    if [ "$ACCOUNTING" = 1 ]; then
        for cmd in slurmdbd mariadbd; do have "$cmd" || accounting+=("$cmd"); done
    fi
    [ ${#core[@]} = 0 ] && [ ${#accounting[@]} = 0 ] && return 0
    local all="$PACKAGES" missing="${core[*]} ${accounting[*]}"
    [ "$ACCOUNTING" = 1 ] && all="$all $ACCOUNTING_PACKAGES"
    if [ "$(id -u)" != 0 ]; then
        unavailable "SLURM is not installed here ($missing missing) and this is not root: install it with" \
            "'sudo apt-get install --no-install-recommends $all' (Debian/Ubuntu), then run this as root"
    fi
    if ! have apt-get || ! apt-get update -qq >&2; then
        [ ${#core[@]} = 0 ] || unavailable "SLURM is not installed (${core[*]} missing) and apt-get cannot install" \
            "it: install munge and slurm (slurmctld, slurmd, the clients; slurmdbd and MariaDB for sacct)"
        say "no slurmdbd/mariadbd and apt-get cannot install them: running without accounting (no sacct)"
        ACCOUNTING=0
        return 0
    fi
    if [ ${#core[@]} != 0 ]; then
        say "installing $PACKAGES (${core[*]} missing)"
        apt_install $PACKAGES || unavailable "apt-get install $PACKAGES failed"
    fi
    if [ ${#accounting[@]} != 0 ]; then
        say "installing $ACCOUNTING_PACKAGES (${accounting[*]} missing)"
        apt_install $ACCOUNTING_PACKAGES || {
            say "apt-get install $ACCOUNTING_PACKAGES failed: running without accounting (no sacct)"
            ACCOUNTING=0
        }
    fi
}

node_memory_mb() {  # what slurmd measures, less 5% (so the node never registers with less than configured)
    local mb
    mb=$( (slurmd -C 2>/dev/null || true) | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    [ -n "$mb" ] || mb=$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
    echo $((mb * 95 / 100))
}

# ------------------------------------------------------------------------------------------------ up
write_configs() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(node_memory_mb)
    MUNGE_SOCKET=$DIR/munge/munge.socket
    CTLD_PORT=$(free_port)
    SLURMD_PORT=$(free_port)
    DBD_PORT=$(free_port)
    DB_PORT=$(free_port)

    cat >"$DIR/etc/slurm.conf" <<EOF
# Written by tests/slurm/cluster.sh: a one-node cluster on $host, everything under $DIR.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire also holds a requeued job back (default 120 s): 10 s keeps the requeue tests short
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd-%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/etc/plugstack.conf
# no cgroups in a container: track processes by their parent, no task confinement
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job that asks for no memory gets 1 GB a CPU (not the whole node, which would serialise every job)
DefMemPerCPU=1024
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
JobRequeue=1
# quick tests: short grace before SIGKILL, done jobs stay visible to scontrol for 10 minutes
KillWait=2
MinJobAge=600
InactiveLimit=0
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
EOF
    if [ "$ACCOUNTING" = 1 ]; then
        cat >>"$DIR/etc/slurm.conf" <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# the munge socket for talking to slurmdbd (AuthInfo covers only the cluster's own daemons and clients)
AccountingStoragePass=$MUNGE_SOCKET
EOF
    else
        echo "AccountingStorageType=accounting_storage/none" >>"$DIR/etc/slurm.conf"
    fi
    cat >>"$DIR/etc/slurm.conf" <<EOF
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION_DEFAULT Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=$PARTITION_OTHER Nodes=$host Default=NO MaxTime=INFINITE State=UP
EOF
    : >"$DIR/etc/plugstack.conf"

    (umask 077 && cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=root
StorageLoc=slurm_acct_db
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
DebugLevel=info
EOF
    )

    cat >"$DIR/env.sh" <<EOF
# Written by tests/slurm/cluster.sh up: source it to use the one-node cluster.
export SLURM_CONF=$DIR/etc/slurm.conf
export ADAPTLIB_SLURM_DIR=$DIR
export ADAPTLIB_SLURM_ACCOUNTING=$ACCOUNTING
export ADAPTLIB_SLURM_PARTITIONS="$PARTITION_DEFAULT $PARTITION_OTHER"
export ADAPTLIB_SLURM_CPUS=$cpus
export ADAPTLIB_SLURM_MEM_MB=$mem
EOF
}

start_munge() {
    (umask 077 && dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none)
    "$(bin munged)" --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/run/munged.pid" \
        --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" --force >&2 || return 1
    wait_for 20 "munged" bash -c "munge -S '$MUNGE_SOCKET' -n | unmunge -S '$MUNGE_SOCKET'"
}

start_database() {  # a private MariaDB without grant tables, on 127.0.0.1 only
    mkdir -p "$DIR/db/data"
    "$(bin mariadbd)" --no-defaults --datadir="$DIR/db/data" --user=root --skip-grant-tables --skip-networking=0 \
        --bind-address=127.0.0.1 --port="$DB_PORT" --socket="$DIR/db/mysqld.sock" --pid-file="$DIR/run/mariadbd.pid" \
        --log-error="$DIR/log/mariadbd.log" --skip-log-bin --innodb-buffer-pool-size=32M \
        --innodb-log-file-size=16M --innodb-flush-log-at-trx-commit=0 --performance-schema=0 \
        </dev/null >/dev/null 2>&1 &
    wait_for 60 "mariadbd on port $DB_PORT" bash -c "echo >/dev/tcp/127.0.0.1/$DB_PORT"
}

start_accounting() {
    start_database || return 1
    "$(bin slurmdbd)" >&2 || return 1
    # slurmdbd creates its tables, then answers; register the cluster (once)
    wait_for 60 "slurmdbd" sacctmgr -i add cluster "$CLUSTER" || return 1
}

start_slurm() {
    "$(bin slurmctld)" -f "$SLURM_CONF" >&2 || return 1
    wait_for 60 "slurmctld" scontrol ping || return 1
    "$(bin slurmd)" -f "$SLURM_CONF" >&2 || return 1
    wait_for 60 "the node to be idle" bash -c '[ "$(sinfo -h -N -p '"$PARTITION_DEFAULT"' -o %T)" = idle ]' || return 1
    wait_for 30 "srun hostname" timeout 20 srun -N1 -n1 -t 1 hostname
}

up() {
    ensure_packages
    [ "$(id -u)" = 0 ] || unavailable "the daemons of this test cluster run as root (SlurmUser=root): run this as root"
    if [ -e "$DIR" ]; then
        say "$DIR exists (a cluster left running?): taking it down first"
        down
    fi
    if [ "$ACCOUNTING" = 1 ] && ! { have slurmdbd && have mariadbd; }; then
        say "slurmdbd or mariadbd missing: running without accounting (no sacct)"
        ACCOUNTING=0
    fi
    mkdir -p "$DIR"/{etc,state,spool,log,run,munge,db}
    chmod 700 "$DIR"
    chmod 700 "$DIR/munge"
    write_configs
    export SLURM_CONF=$DIR/etc/slurm.conf
    if ! start_munge; then
        failed_up munged
    fi
    if [ "$ACCOUNTING" = 1 ] && ! start_accounting; then
        say "slurmdbd did not come up (see $DIR/log/slurmdbd.log, mariadbd.log): running without accounting"
        stop_pid "$(pid_of "$DIR/run/slurmdbd.pid")" slurmdbd
        stop_pid "$(pid_of "$DIR/run/mariadbd.pid")" mariadbd
        ACCOUNTING=0
        write_configs_keep_ports
    fi
    if ! start_slurm; then
        failed_up "slurmctld/slurmd"
    fi
    say "up: $(sinfo -h -o '%P %D %c %m %T' | tr '\n' ';') accounting=$ACCOUNTING"
    grep '^export' "$DIR/env.sh"
}

failed_up() {  # the logs stay in $DIR/log until the next up or down
    say "up failed ($1): stopping what started; logs kept in $DIR/log:"
    tail -n 5 "$DIR"/log/*.log >&2 2>/dev/null || true
    ADAPTLIB_SLURM_KEEP=1 down
    exit 1
}

write_configs_keep_ports() {  # slurm.conf without slurmdbd, same ports
    sed -i -e '/^AccountingStorageHost=/d' -e '/^AccountingStoragePort=/d' -e '/^AccountingStoragePass=/d' \
        -e 's|^AccountingStorageType=.*|AccountingStorageType=accounting_storage/none|' "$DIR/etc/slurm.conf"
    sed -i 's/^export ADAPTLIB_SLURM_ACCOUNTING=.*/export ADAPTLIB_SLURM_ACCOUNTING=0/' "$DIR/env.sh"
}

# ------------------------------------------------------------------------------------------------ down
ours() {  # pids of processes started by this cluster (job steps and their children), never this shell's ancestors
    local conf=$DIR/etc/slurm.conf self=$$ ancestors=" " p pid
    p=$self
    while [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != 1 ]; do
        ancestors="$ancestors$p "
        p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null || true)
    done
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        case "$ancestors" in *" $pid "*) continue ;; esac
        if grep -qsxzF "SLURM_CONF=$conf" "/proc/$pid/environ"; then
            # a daemon's or a job's environment; jobs carry SLURM_JOB_ID, slurmstepd is named so
            if grep -qsz '^SLURM_JOB_ID=' "/proc/$pid/environ" || grep -qsz '^slurmstepd' "/proc/$pid/cmdline"; then
                echo "$pid"
            fi
        fi
    done
}

down() {
    if [ ! -e "$DIR" ]; then
        say "down: nothing at $DIR"
        return 0
    fi
    export SLURM_CONF=$DIR/etc/slurm.conf
    local ctld
    ctld=$(pid_of "$DIR/run/slurmctld.pid")
    if alive "$ctld"; then
        timeout 15 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
        wait_for 20 "the jobs to end" bash -c '[ -z "$(timeout 5 squeue -h -o %i)" ]' || true
    fi
    # the slurm daemons first (they may still talk to each other and to munged), then the database and munged
    stop_daemons "slurmd=$(pid_of "$DIR/run/slurmd.pid")" "slurmctld=$(pid_of "$DIR/run/slurmctld.pid")" \
        "slurmdbd=$(pid_of "$DIR/run/slurmdbd.pid")"
    stop_daemons "mariadbd=$(pid_of "$DIR/run/mariadbd.pid")" "munged=$(pid_of "$DIR/run/munged.pid")"
    local pid left
    left=$(ours || true)
    for pid in $left; do
        say "stopping left-over job process $pid ($(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-80))"
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ "${ADAPTLIB_SLURM_KEEP:-0}" = 1 ]; then
        say "down: daemons stopped; folder kept at $DIR"
    else
        rm -rf "$DIR"
        say "down: daemons stopped, $DIR removed"
    fi
}

status() {
    [ -e "$DIR/env.sh" ] || { say "no cluster at $DIR"; return 1; }
    # shellcheck disable=SC1091
    source "$DIR/env.sh"
    sinfo
    squeue
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *)
        echo "usage: $0 up|down|status   (folder: $DIR)" >&2
        exit 2
        ;;
esac
