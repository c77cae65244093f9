package ratelimit_test

import (
	"context"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
)

// stub is the counted driver of drivertest.
type stub = drivertest.Stub

func newStub(fn func(ctx context.Context, op contract.Op) error) *stub { return drivertest.NewStub(fn) }

// failing returns a stub whose op fails with err and whose other
// operations succeed.
func failing(op contract.Op, err error) *stub {
	return newStub(func(_ context.Context, o contract.Op) error {
		if o == op {
			return err
		}
		return nil
	})
}
