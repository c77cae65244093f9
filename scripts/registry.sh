#!/usr/bin/env bash
# registry.sh - make sure local image registries answer on 127.0.0.1 and
# hold the workload image, for the pull tests of dockerdriver.
#
# Two instances of Debian's docker-registry (distribution 2.8) share one
# storage directory:
#   127.0.0.1:5000  no authentication; the image is pushed here
#   127.0.0.1:5001  htpasswd basic auth, user resilient / password
#                   resilient-test-password (a throwaway credential for a
#                   loopback-only test registry)
# Both speak plain HTTP. The Docker daemon treats registries on 127.0.0.0/8
# as insecure by default, so it pulls from them (with credentials too)
# without TLS. The image resilient-workload:latest (scripts/provision.sh
# builds it) is pushed as 127.0.0.1:5000/resilient/workload:test and is then
# also served by :5001 as 127.0.0.1:5001/resilient/workload:test.
#
# Safe to run repeatedly: instances that answer are kept, and the push is
# skipped when the registry already has the local image's content.
#
#   scripts/registry.sh        install if needed, start, push
#   scripts/registry.sh stop   stop the instances this script started
#
# Environment:
#   RESILIENT_CACHE_DIR  where config, storage, logs and pid files live
#                        (default ${XDG_CACHE_HOME:-$HOME/.cache}/resilient;
#                        a relative path is taken from the repository root)
#
# Progress goes to stderr; nothing is printed on stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${RESILIENT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/resilient}
case $CACHE in /*) ;; *) CACHE=$ROOT/$CACHE ;; esac
DIR=$CACHE/registry
HOST=127.0.0.1
OPEN_PORT=5000
AUTH_PORT=5001
AUTH_USER=resilient
AUTH_PASSWORD=resilient-test-password
SOURCE=resilient-workload:latest
REPO=resilient/workload:test
WAIT_SECONDS=30

log() { printf 'registry: %s\n' "$*" >&2; }
die() { printf 'registry: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"

# status PORT prints the HTTP status of GET /v2/ (000 when nothing answers).
status() {
	curl -sS -m 2 -o /dev/null -w '%{http_code}' "http://$HOST:$1/v2/" 2>/dev/null || true
}

# answers PORT: the open instance says 200, the one with auth 401.
answers() {
	local want=200
	[[ $1 == "$AUTH_PORT" ]] && want=401
	[[ $(status "$1") == "$want" ]]
}

running_pid() {
	local pid file=$DIR/registry-$1.pid
	[[ -f $file ]] || return 1
	pid=$(<"$file")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install() {
	command -v docker-registry >/dev/null 2>&1 && command -v htpasswd >/dev/null 2>&1 && return 0
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		die "docker-registry and htpasswd are missing; install them (Debian: apt-get install docker-registry apache2-utils) or run this script as root"
	fi
	# apt_install keeps the package's init script from starting its own
	# instance (on :5000, with its own config): this script starts the
	# ones it needs.
	apt_install docker-registry apache2-utils
	command -v docker-registry >/dev/null 2>&1 || die "docker-registry installed but not on PATH"
}

# write_config PORT [auth] writes $DIR/config-PORT.yml.
write_config() {
	local port=$1 file=$DIR/config-$1.yml
	{
		cat <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry-$port
storage:
  filesystem:
    rootdirectory: $DIR/storage
  delete:
    enabled: true
http:
  addr: $HOST:$port
  debug:
    addr: ""
EOF
		if [[ ${2:-} == auth ]]; then
			cat <<EOF
auth:
  htpasswd:
    realm: resilient-test
    path: $DIR/htpasswd
EOF
		fi
	} >"$file.tmp"
	mv -f "$file.tmp" "$file"
}

start() {
	local port=$1 file=$DIR/config-$1.yml logf=$DIR/registry-$1.log
	if answers "$port"; then
		return 0
	fi
	local code pid
	code=$(status "$port")
	if [[ $code != 000 ]]; then
		die "something else answers on $HOST:$port (GET /v2/ gave $code); stop it or free the port"
	fi
	if pid=$(running_pid "$port"); then
		die "pid $pid from $DIR/registry-$port.pid is alive but does not answer; run '$0 stop' and retry (log: $logf)"
	fi
	local mark=0
	[[ -f $logf ]] && mark=$(wc -l <"$logf")
	log "starting docker-registry on $HOST:$port (log: $logf)"
	# The server must not inherit the lock (fd 9), or it would hold it forever.
	# From /, so that a working directory removed later (a test's checkout)
	# cannot break the server or the processes it starts.
	(cd / && exec setsid nohup docker-registry serve "$file" </dev/null >>"$logf" 2>&1 9>&-) &
	pid=$!
	disown "$pid" 2>/dev/null || true
	echo "$pid" >"$DIR/registry-$port.pid"
	local i
	for ((i = 0; i < WAIT_SECONDS * 4; i++)); do
		answers "$port" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			log "docker-registry exited; last lines of its log:"
			tail -n +"$((mark + 1))" "$logf" | tail -n 15 >&2
			rm -f "$DIR/registry-$port.pid"
			exit 1
		fi
		sleep 0.25
	done
	log "docker-registry did not answer on :$port within ${WAIT_SECONDS}s; last lines of its log:"
	tail -n 15 "$logf" >&2
	exit 1
}

stop() {
	local port pid i
	for port in "$OPEN_PORT" "$AUTH_PORT"; do
		if ! pid=$(running_pid "$port"); then
			rm -f "$DIR/registry-$port.pid"
			continue
		fi
		log "stopping pid $pid (:$port)"
		kill "$pid"
		for ((i = 0; i < 40; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
		rm -f "$DIR/registry-$port.pid"
	done
}

# push makes the open registry hold the content of $SOURCE under $REPO.
push() {
	local target=$HOST:$OPEN_PORT/$REPO local_id remote_digest
	docker image inspect "$SOURCE" >/dev/null 2>&1 || die "$SOURCE is missing; run scripts/provision.sh first"
	local_id=$(docker image inspect --format '{{.Id}}' "$SOURCE")
	# The registry already has it when the digest recorded at the last push
	# is still served and belongs to the same local image.
	if [[ -f $DIR/pushed ]]; then
		local rec_id rec_digest
		read -r rec_id rec_digest <"$DIR/pushed" || true
		if [[ $rec_id == "$local_id" && -n $rec_digest ]]; then
			remote_digest=$(curl -fsS -m 5 -o /dev/null -D - \
				-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
				"http://$HOST:$OPEN_PORT/v2/${REPO%%:*}/manifests/${REPO##*:}" 2>/dev/null |
				tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}') || true
			if [[ $remote_digest == "$rec_digest" ]]; then
				log "$target is up to date ($rec_digest)"
				return 0
			fi
		fi
	fi
	log "pushing $SOURCE as $target"
	docker tag "$SOURCE" "$target"
	local out digest
	out=$(docker push "$target" 2>&1) || {
		printf '%s\n' "$out" >&2
		docker image rm "$target" >/dev/null 2>&1 || true
		die "docker push $target failed"
	}
	digest=$(grep -o 'sha256:[0-9a-f]\{64\}' <<<"$out" | tail -n 1)
	# The tests pull this tag themselves; keep no local copy.
	docker image rm "$target" >/dev/null 2>&1 || true
	echo "$local_id $digest" >"$DIR/pushed"
	log "pushed $target ($digest)"
}

main() {
	case ${1:-up} in
	up) ;;
	stop)
		stop
		return
		;;
	*) die "usage: $0 [up|stop]" ;;
	esac

	command -v curl >/dev/null 2>&1 || die "curl is needed (apt-get install curl)"
	command -v docker >/dev/null 2>&1 || die "docker is needed; run scripts/provision.sh first"
	mkdir -p "$DIR/storage"
	# Serialize concurrent runs: one installs, starts and pushes; the others
	# wait and then find everything in place.
	exec 9>"$DIR/registry.lock"
	if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
		log "another run holds $DIR/registry.lock; waiting"
		flock 9
	fi
	install
	# distribution reads the htpasswd file once, at start; it takes bcrypt
	# hashes only.
	if [[ ! -s $DIR/htpasswd ]] || ! htpasswd -vbB "$DIR/htpasswd" "$AUTH_USER" "$AUTH_PASSWORD" >/dev/null 2>&1; then
		htpasswd -cbB "$DIR/htpasswd" "$AUTH_USER" "$AUTH_PASSWORD" 2>/dev/null
	fi
	write_config "$OPEN_PORT"
	write_config "$AUTH_PORT" auth
	start "$OPEN_PORT"
	start "$AUTH_PORT"
	push
	log "ready: $HOST:$OPEN_PORT/$REPO (no auth), $HOST:$AUTH_PORT/$REPO (user $AUTH_USER)"
}

main "$@"
