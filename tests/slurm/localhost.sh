#!/usr/bin/env bash
# A real single-node SLURM on localhost for the test suite: Debian's slurmctld,
# slurmd and slurmdbd (MariaDB accounting), munge, and one GPU GRES the
# scheduler can allocate (backed by /dev/null: no GPU is needed).
#   localhost.sh up STATE_DIR     install if needed, configure, start; PIDs in STATE_DIR/pids
#   localhost.sh down STATE_DIR   stop exactly the processes `up` started
# Needs root and apt. Findings behind each setting: ../shared/reference/slurm-localhost.md
set -euo pipefail

command=$1
state=$(realpath -m "$2")
mkdir -p "$state"
pids="$state/pids"

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "localhost.sh: timed out waiting for $what" >&2
  return 1
}

start() {  # start NAME COMMAND...: run a daemon in the foreground mode, record its own PID
  local name=$1
  shift
  "$@" >"$state/$name.out" 2>&1 &
  echo "$! $name" >>"$pids"
}

install_packages() {
  local needed="munge slurmctld slurmd slurm-client slurmdbd mariadb-server"
  if dpkg -s $needed >/dev/null 2>&1; then return 0; fi
  local policy=/usr/sbin/policy-rc.d created=""
  if [ ! -e $policy ]; then  # keep apt from starting the services itself
    printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy && created=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $needed >"$state/apt.log" 2>&1
  if [ -n "$created" ]; then rm -f $policy; fi
}

configure() {
  local host mem cpus
  host=$(hostname -s)
  cpus=$(($(nproc) * 2))
  mem=$(($(free -m | awk '/^Mem:/{print $7}') - 1024))
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /run/mysqld
  chown slurm:slurm /var/spool/slurmctld /var/log/slurm
  chown munge:munge /run/munge
  chown mysql:mysql /run/mysqld
  rm -f /run/slurmctld.pid /run/slurmd.pid /run/slurmdbd.pid
  [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key && chown munge:munge /etc/munge/munge.key; }
  cat >/etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
# the test's jobs idle more than they compute: let 2x the cores' worth run at once
SlurmdParameters=config_overrides
MinJobAge=600
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  printf 'AutoDetect=off\nNodeName=%s Name=gpu File=/dev/null\n' "$host" >/etc/slurm/gres.conf
  cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm-ci
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
CONF
  chown slurm:slurm /etc/slurm/slurmdbd.conf
  chmod 600 /etc/slurm/slurmdbd.conf
}

up() {
  if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
    echo "localhost.sh: a SLURM is already running on this machine; not touching it" >&2
    exit 3
  fi
  : >"$pids"
  install_packages
  configure
  start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F
  wait_for 20 munge sh -c 'munge -n | unmunge'
  start mariadbd /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --skip-networking=0
  wait_for 60 mariadb mariadb -e 'select 1'
  mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm-ci';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  start slurmdbd /usr/sbin/slurmdbd -D
  wait_for 60 slurmdbd sacctmgr -n show cluster
  sacctmgr -i add cluster ci >/dev/null 2>&1 || true
  sacctmgr -i add account ci >/dev/null 2>&1 || true
  sacctmgr -i add user root Account=ci >/dev/null 2>&1 || true
  start slurmctld /usr/sbin/slurmctld -D -c -i
  wait_for 60 slurmctld scontrol ping
  start slurmd /usr/sbin/slurmd -D
  wait_for 90 "an idle node" sh -c 'sinfo -h -o %T | grep -qx idle'
}

down() {
  [ -f "$pids" ] || return 0
  scancel --user=root >/dev/null 2>&1 || true
  tac "$pids" | while read -r pid name; do
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$pids"
}

case $command in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down STATE_DIR" >&2; exit 2 ;;
esac
