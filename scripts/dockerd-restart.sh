#!/usr/bin/env bash
# dockerd-restart.sh - restart the Docker daemon that scripts/provision.sh
# started, with exactly the command line it runs with now.
#
# Used by the fault-injection suite (chaos/) to restart a real daemon in the
# middle of a session. It only handles a dockerd this machine runs as a plain
# process with a pid file (what provision.sh starts on Debian as root); a
# daemon managed by systemd, Docker Desktop or colima is left alone and the
# script fails with exit status 2, touching nothing.
#
#   1. Reads the daemon's pid from /var/run/docker.pid and its command line
#      from /proc/PID/cmdline.
#   2. Sends SIGTERM and waits for the process to exit (dockerd stops its
#      containers first; SIGKILL after RESILIENT_DOCKERD_STOP_WAIT seconds).
#   3. Starts dockerd again with the same arguments, appending to the same
#      log as provision.sh, and waits until it answers.
#
# Environment:
#   RESILIENT_DOCKERD_LOG        dockerd log (default /var/log/resilient-dockerd.log)
#   RESILIENT_DOCKERD_STOP_WAIT  seconds to wait for the old daemon (default 60)
#   RESILIENT_DOCKERD_DOWN       extra seconds to stay down before the restart
#                                (default 0)
#
# Progress goes to stderr. Exit status: 0 restarted and answering; 1 the
# restart failed; 2 no daemon this script may restart.
set -euo pipefail

DOCKERD_LOG=${RESILIENT_DOCKERD_LOG:-/var/log/resilient-dockerd.log}
DOCKERD_PIDFILE=/var/run/docker.pid
STOP_WAIT=${RESILIENT_DOCKERD_STOP_WAIT:-60}
DOWN=${RESILIENT_DOCKERD_DOWN:-0}
START_WAIT=60

log() { printf 'dockerd-restart: %s\n' "$*" >&2; }
die() { printf 'dockerd-restart: error: %s\n' "$*" >&2; exit "${2:-1}"; }

answers() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

[[ $(id -u) -eq 0 ]] || die "must run as root" 2
[[ -f $DOCKERD_PIDFILE ]] || die "no $DOCKERD_PIDFILE: dockerd was not started by scripts/provision.sh" 2
pid=$(<"$DOCKERD_PIDFILE")
[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || die "pid file names no running process" 2
[[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] || die "pid $pid is not dockerd" 2
if [[ -d /run/systemd/system ]] && systemctl is-active --quiet docker 2>/dev/null; then
	die "dockerd is managed by systemd; restart it with systemctl" 2
fi

# The exact argv of the running daemon, NUL-separated.
mapfile -d '' -t argv <"/proc/$pid/cmdline"
((${#argv[@]} > 0)) || die "cannot read the command line of pid $pid"
exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
[[ -n $exe && -x $exe ]] || exe=$(command -v "${argv[0]}")

log "stopping dockerd (pid $pid): ${argv[*]}"
start=$SECONDS
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do
	if ((SECONDS - start >= STOP_WAIT)); then
		log "dockerd did not exit within ${STOP_WAIT}s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 1
		break
	fi
	sleep 0.2
done
log "dockerd stopped after $((SECONDS - start))s"
# dockerd removes its pid file on a clean exit; a stale one blocks the start.
if [[ -f $DOCKERD_PIDFILE ]] && [[ $(<"$DOCKERD_PIDFILE") == "$pid" ]]; then
	rm -f "$DOCKERD_PIDFILE"
fi
((DOWN > 0)) && sleep "$DOWN"

mkdir -p "$(dirname "$DOCKERD_LOG")"
# From /, so that a working directory removed later (a test's checkout)
# cannot break the server or the processes it starts.
(cd / && exec setsid nohup "$exe" "${argv[@]:1}" </dev/null >>"$DOCKERD_LOG" 2>&1) &
newpid=$!
disown "$newpid" 2>/dev/null || true
for ((i = 0; i < START_WAIT * 5; i++)); do
	if answers; then
		log "dockerd answers again (pid $newpid) after $((SECONDS - start))s in all"
		exit 0
	fi
	if ! kill -0 "$newpid" 2>/dev/null; then
		tail -n 15 "$DOCKERD_LOG" >&2 || true
		die "the new dockerd exited; see $DOCKERD_LOG"
	fi
	sleep 0.2
done
tail -n 15 "$DOCKERD_LOG" >&2 || true
die "the new dockerd did not answer within ${START_WAIT}s"
