package breaker_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

// TestNilOptionsRestoreDefaults: nil means the default, as for every
// option of the module, whatever an earlier option set.
func TestNilOptionsRestoreDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hooked := 0
		set := breaker.NewSet(
			breaker.WithConsecutiveFailures(1),
			breaker.WithOnStateChange(func(contract.Op, string, breaker.State, breaker.State) { hooked++ }),
			breaker.WithOnStateChange(nil),
			breaker.WithKey(func(*middleware.Call) string { return "k" }),
			breaker.WithKey(nil),
			breaker.WithFailureIf(func(error) bool { return false }),
			breaker.WithFailureIf(nil),
			breaker.WithMeterProvider(nil),
		)
		d := set.Middleware()(failing(contract.OpStartContainer, errStart))
		start(t, d, 1)
		if got := set.State(contract.OpStartContainer, ""); got != breaker.Open {
			t.Errorf("own circuit %v, want open: the default key and classification", got)
		}
		if got := len(set.Circuits()); got != len(contract.AllOps())-1 {
			t.Errorf("%d circuits, want one per operation but HealthCheck", got)
		}
		if hooked != 0 {
			t.Errorf("a removed hook ran %d times", hooked)
		}
	})
}

// TestZeroOpenTimeoutProbesAtOnce: an open timeout of zero is zero: the
// call after a trip is a probe, not a wait of the default 30s.
func TestZeroOpenTimeoutProbesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := failing(contract.OpStartContainer, errStart)
		set := breaker.NewSet(breaker.WithConsecutiveFailures(1), breaker.WithOpenTimeout(0))
		d := set.Middleware()(base)
		start(t, d, 1)
		time.Sleep(time.Microsecond) // on the fake clock, where calls take no time
		base.SetFunc(nil)
		if err := d.StartContainer(context.Background(), "c1"); err != nil {
			t.Fatalf("probe after a zero open timeout: %v", err)
		}
		if got := set.State(contract.OpStartContainer, ""); got != breaker.Closed {
			t.Errorf("state %v, want closed after the probe", got)
		}
	})
}

// TestLargestDurations: the largest window and open timeout neither panic
// nor overflow: a circuit open for centuries says so in its RetryAfter.
func TestLargestDurations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := failing(contract.OpStartContainer, errStart)
		d := breaker.New(breaker.WithInterval(math.MaxInt64), breaker.WithOpenTimeout(math.MaxInt64),
			breaker.WithConsecutiveFailures(1))(base)
		time.Sleep(time.Second) // time since the Set was made, added to the open timeout
		start(t, d, 1)
		err := d.StartContainer(context.Background(), "c1")
		if !errors.Is(err, contract.ErrCircuitOpen) {
			t.Fatalf("err = %v, want CIRCUIT_OPEN", err)
		}
		if ra := contract.RetryAfter(err); ra < 100*365*24*time.Hour {
			t.Errorf("RetryAfter = %v, want the open timeout's century and more", ra)
		}
	})
}
