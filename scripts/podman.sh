#!/usr/bin/env bash
# podman.sh - make sure a rootful Podman service answers on a unix socket
# and holds the workload images, then print how to reach it.
#
# Used by CI, the Podman tests and the quickstart on Podman:
#
#   eval "$(scripts/podman.sh)"     # sets DOCKER_HOST to the Podman service
#
# Safe to run repeatedly: a second run only checks that the service answers
# and that its images are Docker's (or the current workload build's), which
# takes well under a second.
#
#   1. On Debian as root, podman is installed from Debian when missing.
#   2. When nothing answers on the socket, `podman system service --time=0`
#      is started in the background on it (log and pid file below). On a
#      host where root cannot raise resource limits (no CAP_SYS_RESOURCE,
#      as in some sandboxes), Podman's default open-files and processes
#      limits for containers (1048576) cannot be set and every start fails;
#      then a containers.conf drop-in sets them to this host's hard limits.
#   3. The images resilient-workload:latest and :health are loaded from
#      Docker (docker save | podman load) when Podman lacks them or holds
#      other content (the image ids differ); without a Docker daemon they
#      are built with podman, the way provision.sh builds them.
#
# Environment:
#   RESILIENT_PODMAN_SOCK  the socket (default /run/podman/podman.sock)
#   RESILIENT_PODMAN_LOG   service log (default /var/log/resilient-podman.log)
#
# stdout is exactly one line, `export DOCKER_HOST=unix://<socket>`; progress
# goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SOCK=${RESILIENT_PODMAN_SOCK:-/run/podman/podman.sock}
PODMAN_LOG=${RESILIENT_PODMAN_LOG:-/var/log/resilient-podman.log}
PIDFILE=$(dirname "$SOCK")/resilient-podman.pid
ULIMITS_CONF=/etc/containers/containers.conf.d/50-resilient-ulimits.conf
WAIT_SECONDS=60

log() { printf 'podman.sh: %s\n' "$*" >&2; }
die() { printf 'podman.sh: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

# Everything but the final line goes to stderr.
exec 3>&1 1>&2

[[ $SOCK == *podman* ]] || die "RESILIENT_PODMAN_SOCK=$SOCK: the socket path must contain \"podman\""
# Docker, where the images come from, is the default daemon, not this
# service (after an earlier `eval "$(scripts/podman.sh)"`).
if [[ ${DOCKER_HOST:-} == "unix://$SOCK" ]]; then
	unset DOCKER_HOST
fi

service_answers() {
	curl -fsS -m 5 --unix-socket "$SOCK" -o /dev/null http://podman/_ping 2>/dev/null
}

service_pid() {
	local pid
	[[ -f $PIDFILE ]] || return 1
	pid=$(<"$PIDFILE")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_podman() {
	command -v podman >/dev/null 2>&1 && return 0
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		die "podman is not installed; install Podman 4.3 or later (as root on Debian this script does it)"
	fi
	apt_install podman
	command -v podman >/dev/null 2>&1 || die "podman installed but not on PATH"
}

# ulimits_wanted prints the drop-in for a service with pid $1 when this
# host cannot grant Podman's default container limits (1048576), with the
# service's own hard limits, which its containers can be given; nothing
# when the defaults can be granted.
ulimits_wanted() {
	if (ulimit -Hn 1048576 && ulimit -Hu 1048576) 2>/dev/null; then
		return 0
	fi
	local nofile nproc
	nofile=$(awk '/^Max open files/ {print $5}' "/proc/$1/limits")
	nproc=$(awk '/^Max processes/ {print $4}' "/proc/$1/limits")
	[[ -n $nofile && -n $nproc ]] || die "cannot read the limits of the podman service (pid $1)"
	printf '[containers]\n# Written by scripts/podman.sh: root cannot raise resource limits on\n# this host, so containers get the service'"'"'s hard limits instead of 1048576.\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
		"$nofile" "$nofile" "$nproc" "$nproc"
}

# launch starts the service in the background and records its pid in PID.
PID=
launch() {
	rm -f "$SOCK"
	log "starting podman system service on unix://$SOCK (log: $PODMAN_LOG)"
	# The service must not inherit the lock (fd 9), or it would hold it
	# forever, nor stdout (fd 3), or `$(scripts/podman.sh)` would never end.
	# From /, so that a working directory removed later (a test's checkout)
	# cannot break the server or the processes it starts.
	(cd / && exec setsid nohup podman system service --time=0 "unix://$SOCK" \
		</dev/null >>"$PODMAN_LOG" 2>&1 3>&- 9>&-) &
	PID=$!
	disown "$PID" 2>/dev/null || true
	echo "$PID" >"$PIDFILE"
}

# wait_answers waits until the service with pid PID answers.
wait_answers() {
	local i
	for ((i = 0; i < WAIT_SECONDS * 4; i++)); do
		service_answers && return 0
		if ! kill -0 "$PID" 2>/dev/null; then
			tail -n 15 "$PODMAN_LOG" >&2 || true
			die "podman system service exited; see $PODMAN_LOG"
		fi
		sleep 0.25
	done
	tail -n 15 "$PODMAN_LOG" >&2 || true
	die "podman system service (pid $PID) does not answer on $SOCK within ${WAIT_SECONDS}s"
}

start_service() {
	mkdir -p "$(dirname "$SOCK")" "$(dirname "$PODMAN_LOG")"
	if PID=$(service_pid); then
		log "podman service is running (pid $PID); waiting for it to answer"
		wait_answers
		return 0
	fi
	launch
	wait_answers
	# Podman reads containers.conf when the service starts: when the limits
	# it would give containers cannot be granted here, write the drop-in
	# and start it again.
	local want
	want=$(ulimits_wanted "$PID")
	if [[ -n $want && (! -f $ULIMITS_CONF || $(<"$ULIMITS_CONF") != "$want") ]]; then
		log "root cannot raise resource limits here: containers get the service's ($ULIMITS_CONF)"
		mkdir -p "$(dirname "$ULIMITS_CONF")"
		printf '%s\n' "$want" >"$ULIMITS_CONF"
		kill "$PID"
		local i
		for ((i = 0; i < 40; i++)); do
			kill -0 "$PID" 2>/dev/null || break
			sleep 0.25
		done
		launch
		wait_answers
	fi
}

docker_answers() {
	command -v docker >/dev/null 2>&1 && timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

image_id() {
	local id
	id=$("$1" image inspect --format '{{.Id}}' "$2" 2>/dev/null) || return 0
	echo "${id#sha256:}"
}

# load_images takes the images from Docker when it answers and has them,
# else builds them with podman.
load_images() {
	local tag refs=() stale=()
	for tag in latest health; do
		refs+=("$WORKLOAD_IMAGE:$tag")
	done
	if docker_answers && docker image inspect "${refs[@]}" >/dev/null 2>&1; then
		local ref old
		for ref in "${refs[@]}"; do
			if [[ $(image_id docker "$ref") != "$(image_id podman "$ref")" ]]; then
				stale+=("$ref")
			fi
		done
		if ((${#stale[@]} > 0)); then
			local before=()
			for ref in "${stale[@]}"; do
				old=$(image_id podman "$ref")
				[[ -n $old ]] && before+=("$old")
			done
			log "loading ${stale[*]} from Docker"
			docker save "${stale[@]}" | podman load -q >/dev/null || die "docker save | podman load failed"
			# Drop the images replaced (kept if a container still uses them).
			for old in "${before[@]}"; do
				podman image rm "$old" >/dev/null 2>&1 || true
			done
		fi
	else
		log "no Docker daemon with the workload images: building them with podman"
		build_workload_images podman
	fi
	# The tests and the quickstart name the images without a registry.
	# Podman stores them as localhost/...; its Docker-compatible API must
	# resolve the short names to them.
	for ref in "${refs[@]}"; do
		if ! curl -fsS -m 10 --unix-socket "$SOCK" -o /dev/null "http://podman/v1.41/images/$ref/json"; then
			die "the Podman service does not resolve $ref (podman has: $(podman images --format '{{.Repository}}:{{.Tag}}' | tr '\n' ' '))"
		fi
	done
}

main() {
	local lock
	lock=${TMPDIR:-/tmp}/resilient-podman.$(id -u).lock
	if command -v flock >/dev/null 2>&1 && { exec 9>>"$lock"; } 2>/dev/null; then
		if ! flock -n 9; then
			log "another run holds $lock; waiting"
			flock 9
		fi
	fi
	install_podman
	service_answers || start_service
	log "podman: $(curl -fsS -m 5 --unix-socket "$SOCK" http://podman/version | sed -n 's/.*"Version":"\([^"]*\)","ApiVersion":"\([^"]*\)".*/server \1, API \2/p')"
	load_images
	log "images ready: $WORKLOAD_IMAGE:latest $WORKLOAD_IMAGE:health"
	printf 'export DOCKER_HOST=unix://%s\n' "$SOCK" >&3
}

main "$@"
