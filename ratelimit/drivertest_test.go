package ratelimit_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/ratelimit"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(*testing.T) contract.ContainerDriver {
		return ratelimit.New(10000, 100, ratelimit.WithMaxConcurrent(8))(memdriver.New(memdriver.WithExecHandler(drivertest.WorkloadExec)))
	})
}

// TestWithFaultInjector holds calls in flight with injected latency on the
// fake clock: with two slots, six one-second calls take three seconds, and
// an overall rate of 1/s with per-op buckets paces the rest.
func TestWithFaultInjector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		faulty := drivertest.NewFaulty(memdriver.New())
		faulty.Inject(contract.OpIsContainerHealthy, drivertest.Fault{Latency: time.Second})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithReadConcurrency(2), ratelimit.WithMaxWait(time.Minute))(faulty)

		t0 := time.Now()
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				// A missing container: the error is the driver's, after the latency.
				d.IsContainerHealthy(context.Background(), "missing")
			})
		}
		wg.Wait()
		if got := time.Since(t0); got != 3*time.Second {
			t.Errorf("six 1s calls over two slots took %v, want 3s", got)
		}
		if got := faulty.Calls(contract.OpIsContainerHealthy); got != 6 {
			t.Errorf("driver saw %d calls, want 6", got)
		}

		faulty.Reset()
		d = ratelimit.New(1, 1,
			ratelimit.WithOpLimit(contract.OpGetContainer, 0.5, 1),
			ratelimit.WithMaxWait(time.Minute))(faulty)
		t0 = time.Now()
		for range 3 {
			d.GetContainer(context.Background(), "missing") // 0s, 2s, 4s: the op bucket rules
		}
		if got := time.Since(t0); got != 4*time.Second {
			t.Errorf("three gets at 0.5/s took %v, want 4s", got)
		}
		t0 = time.Now()
		for range 3 {
			d.ListContainers(context.Background(), contract.ContainerFilter{}) // 1/s overall
		}
		if got := time.Since(t0); got != 2*time.Second {
			t.Errorf("three lists at 1/s took %v, want 2s", got)
		}
	})
}
