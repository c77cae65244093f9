package main

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The program's output is deterministic: the faults are counted, the
// retry hook prints codes rather than jittered waits, and the spans come
// from an in-memory recorder in the order they ended.
func TestRun(t *testing.T) {
	const want = `create, whose first two attempts fail:
  retry: CreateContainer attempt 2 after NETWORK
  retry: CreateContainer attempt 3 after NETWORK
  ok: container created, session session-1
start, then logs:
  memdriver: started resilient-workload:latest
stop, which always fails:
  retry: StopContainer attempt 2 after NETWORK
  retry: StopContainer attempt 3 after NETWORK
  breaker: StopContainer closed -> open
  retry: StopContainer attempt 4 after NETWORK
  gave up after 4 attempts; last error CIRCUIT_OPEN, circuit open: true
health (never retried, limited or refused): healthy, circuit open: StopContainer
create as root with the Docker socket mounted:
  refused with CONFIGURATION before any attempt: volumes.0.source, security.user
spans:
  ContainerDriver.CreateContainer    ok                   retry retry
  ContainerDriver.StartContainer     ok
  ContainerDriver.GetContainerLogs   ok
  ContainerDriver.StopContainer      error CIRCUIT_OPEN   retry retry breaker.state_change retry breaker.rejected
  ContainerDriver.HealthCheck        ok
  ContainerDriver.CreateContainer    error CONFIGURATION
  ContainerDriver.RemoveContainer    ok
`
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}
