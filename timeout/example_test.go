package timeout_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/timeout"
)

// A driver on an engine that never answers: the call fails after the
// timeout with a retryable TIMEOUT, which a breaker outside counts.
func Example() {
	hung := drivertest.NewStub(func(ctx context.Context, _ contract.Op) error {
		<-ctx.Done()
		return ctx.Err()
	})
	d := timeout.New(50*time.Millisecond, timeout.ForOp(contract.OpCreateContainer, 2*time.Minute))(hung)

	err := d.StartContainer(context.Background(), "c1")
	fmt.Println(errors.Is(err, contract.ErrTimeout), contract.IsRetryable(err))
	// Output: true true
}
