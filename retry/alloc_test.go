package retry_test

import (
	"context"
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/retry"
)

// startOnly is a driver whose StartContainer succeeds and allocates
// nothing; its other methods are not called.
type startOnly struct{ contract.ContainerDriver }

func (startOnly) StartContainer(context.Context, string) error { return nil }

func TestSuccessAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	ctx := context.Background()
	d := retry.New()(startOnly{})
	if n := testing.AllocsPerRun(1000, func() { d.StartContainer(ctx, "c1") }); n != 0 {
		t.Errorf("successful StartContainer through retry: %v allocations, want 0", n)
	}
}

func BenchmarkSuccess(b *testing.B) {
	ctx := context.Background()
	d := retry.New()(startOnly{})
	b.ReportAllocs()
	for b.Loop() {
		d.StartContainer(ctx, "c1")
	}
}

func BenchmarkSuccessParallel(b *testing.B) {
	ctx := context.Background()
	d := retry.New()(startOnly{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.StartContainer(ctx, "c1")
		}
	})
}
