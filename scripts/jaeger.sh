#!/usr/bin/env bash
# jaeger.sh - make sure a Jaeger all-in-one answers on 127.0.0.1.
#
# The tracing tests and the demo export spans over OTLP and read them back
# through Jaeger's query API. No registry holds a prebuilt Jaeger for us, so
# it is built from source through the tools module (tools/go.mod pins the
# version), once, into a cache directory; later runs reuse the binary.
#
#   scripts/jaeger.sh         build if needed, start if nothing answers, wait
#   scripts/jaeger.sh stop    stop the instance this script started
#
# The binary is Jaeger v2 (an OpenTelemetry Collector distribution). Started
# without --config it uses its embedded all-in-one configuration with
# in-memory storage. Endpoints:
#   OTLP gRPC  127.0.0.1:4317
#   OTLP HTTP  127.0.0.1:4318   (POST /v1/traces)
#   query/UI   127.0.0.1:16686  (GET /api/services, /api/traces?service=NAME)
#
# Environment:
#   RESILIENT_CACHE_DIR  where the binary, log and pid file live
#                        (default ${XDG_CACHE_HOME:-$HOME/.cache}/resilient;
#                        a relative path is taken from the repository root)
#   RESILIENT_JAEGER_HOST address to listen on (default 127.0.0.1)
#
# Progress goes to stderr; nothing is printed on stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${RESILIENT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/resilient}
case $CACHE in /*) ;; *) CACHE=$ROOT/$CACHE ;; esac
BIN=$CACHE/bin/jaeger
STAMP=$BIN.stamp
LOG=$CACHE/jaeger.log
PIDFILE=$CACHE/jaeger.pid
HOST=${RESILIENT_JAEGER_HOST:-127.0.0.1}
WAIT_SECONDS=60
PKG=github.com/jaegertracing/jaeger

log() { printf 'jaeger: %s\n' "$*" >&2; }
die() { printf 'jaeger: error: %s\n' "$*" >&2; exit 1; }

query_answers() {
	curl -fsS -m 2 -o /dev/null "http://$HOST:16686/api/services" 2>/dev/null
}

port_open() {
	(exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

all_up() {
	query_answers && port_open 4317 && port_open 4318
}

running_pid() {
	local pid
	[[ -f $PIDFILE ]] || return 1
	pid=$(<"$PIDFILE")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# The stamp ties the cached binary to the pinned versions: editing
# tools/go.mod or tools/go.sum triggers a rebuild.
wanted_stamp() {
	cat "$ROOT/tools/go.mod" "$ROOT/tools/go.sum" | sha256sum | cut -c1-64
}

build() {
	local want version
	want=$(wanted_stamp)
	if [[ -x $BIN && -f $STAMP && $(<"$STAMP") == "$want" ]]; then
		return 0
	fi
	command -v go >/dev/null 2>&1 || die "go is needed to build Jaeger"
	version=$(cd "$ROOT/tools" && GOWORK=off go list -m -f '{{.Version}}' "$PKG")
	log "building Jaeger $version into $BIN (the first build takes several minutes)"
	mkdir -p "$CACHE/bin"
	local start=$SECONDS
	(cd "$ROOT/tools" && GOWORK=off GOFLAGS=-mod=readonly go build \
		-ldflags "-s -w -X $PKG/internal/version.latestVersion=$version" \
		-o "$BIN.tmp.$$" "$PKG/cmd/jaeger") || {
		rm -f "$BIN.tmp.$$"
		die "go build $PKG/cmd/jaeger failed"
	}
	mv -f "$BIN.tmp.$$" "$BIN"
	echo "$want" >"$STAMP"
	log "built in $((SECONDS - start))s"
}

start() {
	mkdir -p "$CACHE"
	local mark=0
	[[ -f $LOG ]] && mark=$(wc -l <"$LOG")
	log "starting $BIN (log: $LOG)"
	# No --config: the embedded all-in-one configuration (memory storage).
	# JAEGER_LISTEN_HOST moves its receivers and extensions off "localhost";
	# the query server defaults to all interfaces, so pin it as well. The
	# server must not inherit the lock (fd 9), or it would hold it forever.
	# From /, so that a working directory removed later (a test's checkout)
	# cannot break the server or the processes it starts.
	(cd / && JAEGER_LISTEN_HOST=$HOST exec setsid nohup "$BIN" \
		--set=extensions.jaeger_query.http.endpoint="$HOST:16686" \
		--set=extensions.jaeger_query.grpc.endpoint="$HOST:16685" \
		</dev/null >>"$LOG" 2>&1 9>&-) &
	local pid=$! i
	disown "$pid" 2>/dev/null || true
	echo "$pid" >"$PIDFILE"
	for ((i = 0; i < WAIT_SECONDS * 4; i++)); do
		all_up && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			log "jaeger exited; last lines of its log:"
			tail -n +"$((mark + 1))" "$LOG" | tail -n 15 >&2
			rm -f "$PIDFILE"
			exit 1
		fi
		sleep 0.25
	done
	log "jaeger did not answer within ${WAIT_SECONDS}s; last lines of its log:"
	tail -n 15 "$LOG" >&2
	exit 1
}

stop() {
	local pid i
	if ! pid=$(running_pid); then
		log "not running (no live pid in $PIDFILE)"
		rm -f "$PIDFILE"
		return 0
	fi
	log "stopping pid $pid"
	kill "$pid"
	for ((i = 0; i < 40; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
	rm -f "$PIDFILE"
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
	# Serialize concurrent runs (parallel test jobs): one builds and starts,
	# the others wait and then find it running.
	mkdir -p "$CACHE"
	exec 9>"$CACHE/jaeger.lock"
	if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
		log "another run holds $CACHE/jaeger.lock; waiting"
		flock 9
	fi
	if query_answers; then
		for port in 4317 4318; do
			port_open "$port" || die "something answers on $HOST:16686 but nothing listens on $HOST:$port"
		done
		log "already running on $HOST (query :16686, OTLP :4317 :4318)"
		return 0
	fi
	if pid=$(running_pid); then
		die "pid $pid from $PIDFILE is alive but does not answer; run '$0 stop' and retry (log: $LOG)"
	fi
	build
	start
	log "ready on $HOST: OTLP gRPC :4317, OTLP HTTP :4318, query :16686"
}

main "$@"
