package retry_test

import (
	"context"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/retry"
)

// TestZeroMaxAttemptsRemovesTheLimit: zero turns a limit off, as for
// every option of the module; the max elapsed time still ends the call.
func TestZeroMaxAttemptsRemovesTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(retry.WithMaxAttempts(0), retry.WithoutBudget(), noJitter,
			retry.WithInitialInterval(time.Second), retry.WithMultiplier(1), retry.WithMaxElapsedTime(time.Minute))
		f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Err: network})
		_, err := f.d.ListContainers(t.Context(), contract.ContainerFilter{})
		// Waits of 1s: the 61st would end past the minute.
		wantError(t, err, 61, retry.ErrMaxElapsedTime)
		if got := f.faulty.Calls(contract.OpListContainers); got != 61 {
			t.Errorf("calls = %d, want 61", got)
		}
	})
}

// TestExtremeFactorsKeepWaitsSane: NaN and infinite multipliers and
// jitters, with no interval cap, never make a negative, NaN-born or
// overflowing wait (which would retry in a hot loop or never).
func TestExtremeFactorsKeepWaitsSane(t *testing.T) {
	for _, tc := range []struct {
		name         string
		multiplier   float64
		jitter       float64
		wantConstant bool // NaN multiplier counts as 1
	}{
		{"NaN multiplier", math.NaN(), 0, true},
		{"infinite multiplier", math.Inf(1), 0, false},
		{"infinite multiplier, full jitter", math.Inf(1), 1, false},
		{"NaN jitter", 2, math.NaN(), false},
		{"infinite jitter", 2, math.Inf(1), false},
		{"negative jitter", 2, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var delays []time.Duration
				f := newFixture(retry.WithMaxAttempts(5), retry.WithoutBudget(), retry.WithMaxElapsedTime(0),
					retry.WithMaxInterval(0), retry.WithInitialInterval(time.Second),
					retry.WithMultiplier(tc.multiplier), retry.WithJitter(tc.jitter),
					retry.WithOnRetry(func(_ context.Context, info retry.Info) { delays = append(delays, info.Delay) }))
				f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Err: network})
				f.d.ListContainers(t.Context(), contract.ContainerFilter{}) // waits on the fake clock
				if len(delays) != 4 {
					t.Fatalf("delays = %v, want 4", delays)
				}
				for i, d := range delays {
					if d <= 0 || d > math.MaxInt64/2 {
						t.Errorf("delay %d = %v, want positive and far from overflow", i, d)
					}
					if tc.wantConstant && d != time.Second {
						t.Errorf("delay %d = %v, want 1s", i, d)
					}
				}
			})
		})
	}
}

// TestExtremeBudgets: NaN, infinite and huge arguments make a budget that
// allows no retries (NaN, negative) or never runs out (huge), and neither
// overflows into the other.
func TestExtremeBudgets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name                string
			ratio, perSec       float64
			max                 int
			wantFirst, wantLate bool // a retry allowed at once, and after an hour of spending
		}{
			{"NaN", math.NaN(), math.NaN(), 0, false, false},
			{"negative", -1, -1, -1, false, false},
			{"infinite", math.Inf(1), math.Inf(1), math.MaxInt, true, true},
			{"huge per second", 0, 1e300, math.MaxInt, true, true},
		} {
			b := retry.NewBudget(tc.ratio, tc.perSec, tc.max)
			if got := b.Available() > 0; got != tc.wantFirst {
				t.Errorf("%s: Available = %d at first", tc.name, b.Available())
			}
			f := newFixture(retry.WithBudget(b), retry.WithMaxAttempts(2), noJitter)
			f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Err: network})
			for range 100 {
				f.d.ListContainers(t.Context(), contract.ContainerFilter{})
			}
			time.Sleep(time.Hour)
			if got := b.Available() > 0; got != tc.wantLate {
				t.Errorf("%s: Available = %d after an hour", tc.name, b.Available())
			}
			if b.Available() < 0 {
				t.Errorf("%s: Available = %d, negative", tc.name, b.Available())
			}
		}
	})
}

// TestNilBudgetRestoresTheDefault: nil means the default, as for every
// option of the module: the default budget, not none.
func TestNilBudgetRestoresTheDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, opts := range [][]retry.Option{
			{retry.WithoutBudget(), retry.WithBudget(nil)},
			{retry.ForOp(contract.OpListContainers, retry.WithoutBudget(), retry.WithBudget(nil))},
		} {
			opts = append(opts, retry.WithMaxAttempts(2), retry.WithInitialInterval(0))
			f := newFixture(opts...)
			f.faulty.Inject(contract.OpListContainers, drivertest.Fault{Err: network})
			// The default budget holds 100 retries, refilled by 20% of
			// calls and 10 a second: 1000 calls in no time run out of it.
			calls := 0
			for range 1000 {
				f.d.ListContainers(t.Context(), contract.ContainerFilter{})
				calls++
			}
			if got := f.faulty.Calls(contract.OpListContainers) - calls; got >= 1000 || got < 100 {
				t.Errorf("%d retries in 1000 calls, want the default budget's (100 + 20%%)", got)
			}
		}
	})
}
