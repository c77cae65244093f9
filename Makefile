# The two commands that matter: `make demo` and `make test`.
.PHONY: demo demo-traces test chaos load fuzz bench provision jaeger

# Runs one session on the local Docker daemon through resilient.Wrap.
demo: provision
	go run ./examples/quickstart

# The demo with its trace sent to a local Jaeger (query API on :16686).
demo-traces: provision jaeger
	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_METRICS_EXPORTER=none \
	OTEL_SERVICE_NAME=$${OTEL_SERVICE_NAME:-quickstart} go run ./examples/quickstart

# Runs every test against a real Docker daemon and a real Jaeger.
test:
	scripts/test.sh

# Fault-injection and load suites against the real daemon (module chaos/,
# which keeps Toxiproxy out of the library's go.mod).
chaos: provision
	cd chaos && go test -race -count=1 -v -run 'Chaos|Load' -timeout 30m ./...

# The overload table of issue 11 on the real daemon: bursts of 50 and 150
# sessions (and 150 with a 12s deadline each), bare and through
# resilient.Wrap's defaults, in one run (module load/).
load: provision
	cd load && go run . -bursts 50,150

fuzz:
	go test -run '^$$' -fuzz '^FuzzDecodeAndValidate$$' -fuzztime 60s ./contract

bench:
	cd bench && go test -run '^$$' -bench . -benchmem -count 6 ./...

provision:
	scripts/provision.sh

jaeger:
	scripts/jaeger.sh
