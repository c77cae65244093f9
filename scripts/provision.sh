#!/usr/bin/env bash
# provision.sh - make sure a Docker daemon answers and the test images exist.
#
# Used by the integration tests, CI and the demo. Safe to run repeatedly: a
# second run only checks that the daemon answers and that the images match
# the current workload source, which takes a couple of seconds.
#
#   1. If a Docker daemon already answers (DOCKER_HOST or the default socket),
#      it is used as is.
#   2. Otherwise, on Debian as root, docker.io is installed when dockerd is
#      missing and dockerd is started in the background, listening on
#      unix:///var/run/docker.sock and tcp://127.0.0.1:2375 (loopback only;
#      the TCP listener lets fault-injection tests put a proxy between the
#      client and the daemon).
#   3. The workload images are (re)built when the workload binary changed:
#        resilient-workload:latest  static binary at /workload, CMD ["serve"]
#        resilient-workload:health  the same plus a HEALTHCHECK running
#                                   "/workload probe" every second
#
# Environment:
#   RESILIENT_DOCKERD_LOG    dockerd log file (default /var/log/resilient-dockerd.log)
#   RESILIENT_DOCKERD_FLAGS  extra flags for dockerd (word-split)
#   RESILIENT_SKIP_IMAGES=1  only make sure the daemon runs
#
# Progress goes to stderr; nothing is printed on stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKERD_LOG=${RESILIENT_DOCKERD_LOG:-/var/log/resilient-dockerd.log}
DOCKERD_PIDFILE=/var/run/docker.pid
WAIT_SECONDS=60

log() { printf 'provision: %s\n' "$*" >&2; }
die() { printf 'provision: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

daemon_answers() {
	command -v docker >/dev/null 2>&1 || return 1
	timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

how_to_get_docker() {
	cat >&2 <<'EOF'
provision: no Docker daemon answers and this script can only install one on
provision: Debian as root. Either:
provision:   - start Docker yourself (Docker Engine, Docker Desktop, colima, ...)
provision:     and make sure `docker info` works, setting DOCKER_HOST if needed;
provision:   - or run this script as root on Debian/Ubuntu (sudo scripts/provision.sh).
EOF
	exit 1
}

dockerd_pid() {
	local pid
	[[ -f $DOCKERD_PIDFILE ]] || return 1
	pid=$(<"$DOCKERD_PIDFILE")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_docker() {
	command -v dockerd >/dev/null 2>&1 && return 0
	command -v apt-get >/dev/null 2>&1 || how_to_get_docker
	apt_install docker.io
	command -v dockerd >/dev/null 2>&1 || die "docker.io installed but dockerd is not on PATH"
}

# iptables_backend prints "nft" or "legacy" for the current iptables.
iptables_backend() {
	local v
	v=$(iptables --version 2>/dev/null || true)
	case $v in
	*nf_tables*) echo nft ;;
	*legacy*) echo legacy ;;
	*) echo unknown ;;
	esac
}

# start_dockerd FLAGS... starts dockerd detached and waits for it to answer.
# Returns 1 if it exits or does not answer; START_LOG then holds what this
# attempt wrote to the log.
START_LOG=
start_dockerd() {
	local mark
	mkdir -p "$(dirname "$DOCKERD_LOG")"
	mark=0
	[[ -f $DOCKERD_LOG ]] && mark=$(wc -l <"$DOCKERD_LOG")
	log "starting dockerd${*:+ $*} (log: $DOCKERD_LOG)"
	# A pid file left by a dead daemon makes dockerd refuse to start.
	if [[ -f $DOCKERD_PIDFILE ]] && ! dockerd_pid >/dev/null; then
		rm -f "$DOCKERD_PIDFILE"
	fi
	# The daemon must not inherit the lock (fd 9), or it would hold it forever.
	# shellcheck disable=SC2086 # RESILIENT_DOCKERD_FLAGS is meant to be split
	# From /, so that a working directory removed later (a test's checkout)
	# cannot break the server or the processes it starts.
	(cd / && exec setsid nohup dockerd \
		-H unix:///var/run/docker.sock \
		-H tcp://127.0.0.1:2375 \
		"$@" ${RESILIENT_DOCKERD_FLAGS:-} \
		</dev/null >>"$DOCKERD_LOG" 2>&1 9>&-) &
	local pid=$! i
	disown "$pid" 2>/dev/null || true
	for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
		if daemon_answers; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			START_LOG=$(tail -n +"$((mark + 1))" "$DOCKERD_LOG")
			log "dockerd exited; last lines of its log:"
			tail -n 15 <<<"$START_LOG" >&2
			return 1
		fi
		sleep 0.5
	done
	START_LOG=$(tail -n +"$((mark + 1))" "$DOCKERD_LOG")
	log "dockerd did not answer within ${WAIT_SECONDS}s; last lines of its log:"
	tail -n 15 <<<"$START_LOG" >&2
	kill "$pid" 2>/dev/null || true
	for ((i = 0; i < 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	return 1
}

ensure_daemon() {
	if daemon_answers; then
		return 0
	fi
	if [[ $(id -u) -ne 0 || ! -f /etc/debian_version ]]; then
		how_to_get_docker
	fi
	install_docker

	# A dockerd may still be starting (e.g. a concurrent run of this script).
	if dockerd_pid >/dev/null; then
		if [[ -n ${DOCKER_HOST:-} ]]; then
			die "dockerd runs here (pid $(dockerd_pid)) but DOCKER_HOST=$DOCKER_HOST does not answer;" \
				"unset it or use unix:///var/run/docker.sock or tcp://127.0.0.1:2375"
		fi
		log "dockerd is running (pid $(dockerd_pid)); waiting for it to answer"
		local i
		for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
			daemon_answers && return 0
			sleep 0.5
		done
		tail -n 15 "$DOCKERD_LOG" >&2 || true
		die "dockerd (pid $(dockerd_pid)) does not answer; stop it or check $DOCKERD_LOG"
	fi

	start_dockerd && return 0

	# dockerd programs NAT and filter rules for bridge networks. When the
	# nf_tables backend cannot do that here, the legacy backend often can.
	if grep -qi 'iptables' <<<"$START_LOG" && [[ $(iptables_backend) == nft ]] &&
		command -v iptables-legacy >/dev/null 2>&1 && iptables-legacy -w -t nat -S >/dev/null 2>&1; then
		log "switching iptables to the legacy backend and retrying"
		update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
		update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null
		start_dockerd && return 0
	fi
	# Last resort: no iptables at all. Containers still get bridge networks,
	# but no NAT to the outside or port publishing.
	if grep -qi 'iptables' <<<"$START_LOG"; then
		log "WARNING: retrying with --iptables=false (no NAT or published ports)"
		start_dockerd --iptables=false && return 0
	fi
	if [[ -n ${DOCKER_HOST:-} ]]; then
		log "note: DOCKER_HOST=$DOCKER_HOST; the daemon started here listens on" \
			"unix:///var/run/docker.sock and tcp://127.0.0.1:2375"
	fi
	die "could not start dockerd; see $DOCKERD_LOG"
}

report_daemon() {
	local out summary line
	out=$(docker info --format \
		'server {{.ServerVersion}}, storage driver {{.Driver}}, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}}), memory limit {{.MemoryLimit}}, pids limit {{.PidsLimit}}, cpu cfs quota {{.CPUCfsQuota}}{{range .Warnings}}{{println}}{{.}}{{end}}' \
		2>/dev/null) || die "docker info failed"
	summary=${out%%$'\n'*}
	log "docker: $summary"
	while IFS= read -r line; do
		# The loopback TCP listener is intentional; skip its warning (and the
		# indented continuation lines of multi-line warnings).
		case $line in
		'' | *'API is accessible on http://127.0.0.1:2375'* | ' '*) ;;
		*) log "docker info: $line" ;;
		esac
	done < <(tail -n +2 <<<"$out")
	if command -v curl >/dev/null 2>&1 && ! curl -fsS -m 2 -o /dev/null http://127.0.0.1:2375/_ping 2>/dev/null; then
		log "note: nothing answers on tcp://127.0.0.1:2375; tests that proxy the TCP API cannot run"
	fi
}

main() {
	# Serialize concurrent runs: one installs, starts and builds; the others
	# wait and then find everything in place.
	local lock
	lock=${TMPDIR:-/tmp}/resilient-provision.$(id -u).lock
	if command -v flock >/dev/null 2>&1 && { exec 9>>"$lock"; } 2>/dev/null; then
		if ! flock -n 9; then
			log "another run holds $lock; waiting"
			flock 9
		fi
	fi
	ensure_daemon
	report_daemon
	if [[ ${RESILIENT_SKIP_IMAGES:-} != 1 ]]; then
		build_workload_images docker
		log "images ready: $WORKLOAD_IMAGE:latest $WORKLOAD_IMAGE:health"
	fi
}

main "$@"
