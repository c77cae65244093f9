package middleware_test

import (
	"context"
	"sync"
	"testing"

	"github.com/resilientdriver/resilient/middleware"
)

func TestCountAttempt(t *testing.T) {
	// Without a counter, counting is a no-op.
	middleware.CountAttempt(context.Background())

	ctx, n := middleware.WithAttemptCounter(context.Background())
	if got := n.Load(); got != 0 {
		t.Fatalf("new counter = %d, want 0", got)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { middleware.CountAttempt(ctx) })
	}
	wg.Wait()
	if got := n.Load(); got != 8 {
		t.Errorf("counter = %d, want 8", got)
	}

	// An inner counter hides the outer one.
	inner, m := middleware.WithAttemptCounter(ctx)
	middleware.CountAttempt(inner)
	if n.Load() != 8 || m.Load() != 1 {
		t.Errorf("outer, inner = %d, %d; want 8, 1", n.Load(), m.Load())
	}
}

func TestCountAttemptAllocs(t *testing.T) {
	ctx, _ := middleware.WithAttemptCounter(context.Background())
	if a := testing.AllocsPerRun(100, func() { middleware.CountAttempt(ctx) }); a != 0 {
		t.Errorf("CountAttempt allocates %v times, want 0", a)
	}
}
