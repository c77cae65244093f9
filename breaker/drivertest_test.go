package breaker_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(*testing.T) contract.ContainerDriver {
		return breaker.New()(memdriver.New(memdriver.WithExecHandler(drivertest.WorkloadExec)))
	})
}

// TestWithFaultInjector drives the breaker through drivertest.Faulty around
// the in-memory driver: StartContainer fails three times, the circuit opens
// and spares the driver, then half-opens and closes on the real driver's
// answer, while creates pass throughout.
func TestWithFaultInjector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		faulty := drivertest.NewFaulty(memdriver.New())
		faulty.Inject(contract.OpStartContainer, drivertest.Fault{
			Count: 3,
			Err:   contract.NewError(contract.CodeContainerStart, contract.OpStartContainer, "", "daemon busy", nil),
		})
		set := breaker.NewSet(breaker.WithConsecutiveFailures(3), breaker.WithOpenTimeout(time.Minute))
		d := set.Middleware()(faulty)
		ctx := t.Context()

		c, err := d.CreateContainer(ctx, contract.ContainerConfig{
			SessionID: "s1", Image: "alpine:3",
			Resources: contract.DefaultResourceLimits(), Security: contract.DefaultSecurityOptions(),
		})
		if err != nil {
			t.Fatalf("CreateContainer: %v", err)
		}
		for range 3 {
			if err := d.StartContainer(ctx, c.ID); !errors.Is(err, contract.ErrContainerStart) {
				t.Fatalf("StartContainer: %v, want the injected failure", err)
			}
		}
		for range 5 {
			wantOpen(t, d.StartContainer(ctx, c.ID))
		}
		if got := faulty.Calls(contract.OpStartContainer); got != 3 {
			t.Errorf("driver saw %d starts, want 3", got)
		}
		if _, err := d.GetContainer(ctx, c.ID); err != nil {
			t.Errorf("GetContainer while StartContainer is open: %v", err)
		}

		time.Sleep(time.Minute + time.Second)
		if err := d.StartContainer(ctx, c.ID); err != nil {
			t.Fatalf("probe: %v", err)
		}
		if got := set.State(contract.OpStartContainer, ""); got != breaker.Closed {
			t.Errorf("State after a good probe = %v, want closed", got)
		}
		// The in-memory driver's not found is a client error: it does not
		// open the circuit however often it comes.
		for range 10 {
			if err := d.StartContainer(ctx, "no-such-container"); !errors.Is(err, contract.ErrContainerNotFound) {
				t.Fatalf("StartContainer(missing): %v", err)
			}
		}
		if got := set.State(contract.OpStartContainer, ""); got != breaker.Closed {
			t.Errorf("State after not-found errors = %v, want closed", got)
		}

		// Latency beyond the caller's deadline is the caller's business.
		faulty.Inject(contract.OpStopContainer, drivertest.Fault{Latency: time.Hour})
		for range 10 {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			err := d.StopContainer(ctx, c.ID, contract.StopOptions{})
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("StopContainer: %v, want the deadline", err)
			}
		}
		if got := set.State(contract.OpStopContainer, ""); got != breaker.Closed {
			t.Errorf("State after callers' deadlines = %v, want closed", got)
		}
	})
}
