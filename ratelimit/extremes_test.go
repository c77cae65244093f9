package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/ratelimit"
)

// TestLargestCaps: the largest cap a pool can be given is no cap in
// practice: four calls run at once.
func TestLargestCaps(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  ratelimit.Option
		op   contract.Op
	}{
		{"work", ratelimit.WithMaxConcurrent(math.MaxInt), contract.OpStartContainer},
		{"read", ratelimit.WithReadConcurrency(math.MaxInt), contract.OpIsContainerHealthy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var inflight, peak atomic.Int32
				stub := drivertest.NewStub(func(context.Context, contract.Op) error {
					n := inflight.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					time.Sleep(time.Second)
					inflight.Add(-1)
					return nil
				})
				d := ratelimit.New(rate.Inf, 0, tc.opt, ratelimit.WithoutWaiting())(stub)
				var wg sync.WaitGroup
				var refused atomic.Int32
				for range 4 {
					wg.Go(func() {
						var err error
						if tc.op == contract.OpStartContainer {
							err = d.StartContainer(t.Context(), "c1")
						} else {
							_, err = d.IsContainerHealthy(t.Context(), "c1")
						}
						if err != nil {
							refused.Add(1)
						}
					})
				}
				wg.Wait()
				if refused.Load() > 0 || peak.Load() != 4 {
					t.Fatalf("peak in flight %d, %d refused, with a cap of MaxInt", peak.Load(), refused.Load())
				}
			})
		})
	}
}

// TestBucketRefusalsNotSampled: calls that a token bucket refuses after
// they took their slot never reached the engine, and their time does not
// enter the pool's service time: the RetryAfter of a call that finds the
// slot held by a 1s start stays near that second, however many were
// refused (it fell to a millisecond when they counted).
func TestBucketRefusalsNotSampled(t *testing.T) {
	for _, refusals := range []int{0, 30} {
		t.Run(fmt.Sprint(refusals), func(t *testing.T) { testBucketRefusals(t, refusals) })
	}
}

func testBucketRefusals(t *testing.T, refusals int) {
	synctest.Test(t, func(t *testing.T) {
		stub := drivertest.NewStub(func(_ context.Context, op contract.Op) error {
			if op == contract.OpStartContainer {
				time.Sleep(time.Second)
			}
			return nil
		})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1), ratelimit.WithoutWaiting(),
			ratelimit.WithOpLimit(contract.OpRemoveContainer, 0.001, 1))(stub)
		if err := d.StartContainer(t.Context(), "c1"); err != nil { // service := 1s
			t.Fatal(err)
		}
		d.RemoveContainer(t.Context(), "c1") // takes the only token
		for range refusals {
			if err := d.RemoveContainer(t.Context(), "c1"); err == nil { // refused by the bucket
				t.Fatal("want RATE_LIMITED")
			}
		}
		done := make(chan struct{})
		go func() { d.StartContainer(t.Context(), "c1"); close(done) }()
		synctest.Wait() // the start holds the only slot for 1s
		err := d.StopContainer(t.Context(), "c1", contract.StopOptions{})
		<-done
		if !errors.Is(err, contract.ErrRateLimited) {
			t.Fatalf("stop while the slot is held: %v, want RATE_LIMITED", err)
		}
		if ra := contract.RetryAfter(err); ra < 500*time.Millisecond {
			t.Fatalf("RetryAfter = %v while the slot is held by a 1s start, want about its second", ra)
		}
	})
}
