# The two commands that matter: `make demo` and `make test`.
.PHONY: demo test chaos fuzz bench provision jaeger

# Runs one session on the local Docker daemon through resilient.Wrap.
demo: provision
	go run ./examples/quickstart

# Runs every test against a real Docker daemon and a real Jaeger.
test:
	scripts/test.sh

# Fault-injection and load suites against the real daemon.
chaos: provision
	go test -race -count=1 -v -run 'Chaos|Load' -timeout 30m ./chaos/...

fuzz:
	go test -run '^$$' -fuzz '^FuzzDecodeAndValidate$$' -fuzztime 60s ./contract

bench:
	cd bench && go test -run '^$$' -bench . -benchmem -count 6 ./...

provision:
	scripts/provision.sh

jaeger:
	scripts/jaeger.sh
