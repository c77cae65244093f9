package resilient_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/retry"
	attempt "github.com/resilientdriver/resilient/timeout"
)

// TestHungEngineFailsFast: with WithTimeout, attempts into a hung engine
// are cut, the breaker counts them, and once the circuit is open calls
// fail at once instead of waiting out their callers' deadlines.
func TestHungEngineFailsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(
			resilient.WithTimeout(time.Second, attempt.ForOp(contract.OpRemoveContainer, 0)),
			resilient.WithBreaker(breaker.WithConsecutiveFailures(3), breaker.WithOpenTimeout(10*time.Second)),
			resilient.WithRetry(retry.WithMaxAttempts(3), retry.WithJitter(0)),
		)
		id := f.container(t)
		f.faulty.Inject(contract.OpGetContainer, drivertest.Fault{Latency: time.Hour})

		start := time.Now()
		_, err := f.d.GetContainer(t.Context(), id)
		if !errors.Is(err, contract.ErrTimeout) || !contract.IsRetryable(err) {
			t.Fatalf("first call = %v, want a retryable TIMEOUT", err)
		}
		if el := time.Since(start); el != 3*time.Second+100*time.Millisecond+200*time.Millisecond {
			t.Errorf("first call took %v, want 3 attempts of 1s and waits of 100ms and 200ms", el)
		}
		start = time.Now()
		_, err = f.d.GetContainer(t.Context(), id)
		if !errors.Is(err, contract.ErrCircuitOpen) || contract.RetryAfter(err) <= 0 {
			t.Errorf("second call = %v, want CIRCUIT_OPEN with a RetryAfter", err)
		}
		if el := time.Since(start); el != 0 {
			t.Errorf("second call took %v, want no wait", el)
		}
		if got := f.faulty.Calls(contract.OpGetContainer); got != 3 {
			t.Errorf("attempts reaching the engine = %d, want 3", got)
		}
	})
}
