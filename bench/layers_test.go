package bench

import (
	"context"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/ratelimit"
	"github.com/resilientdriver/resilient/retry"
)

// The layers one by one, to see where the chain's time goes.

// BenchmarkLayerAdapter is one middleware.Intercept layer whose
// interceptor only calls next.
func BenchmarkLayerAdapter(b *testing.B) {
	pass := middleware.Intercept(func(ctx context.Context, _ *middleware.Call, next middleware.Invoker) error {
		return next(ctx)
	})
	runDriver(b, pass(noop{}))
}

func BenchmarkLayerBreaker(b *testing.B) {
	runDriver(b, breaker.New()(noop{}))
}

func BenchmarkLayerRateLimitBucket(b *testing.B) {
	runDriver(b, ratelimit.New(highRate, highBurst)(noop{}))
}

func BenchmarkLayerRateLimitSlots(b *testing.B) {
	runDriver(b, ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(64))(noop{}))
}

var _ contract.ContainerDriver = noop{}

func BenchmarkLayerRetry(b *testing.B) {
	runDriver(b, retry.New()(noop{}))
}

var sinkTime time.Time

// BenchmarkTimeNow is the cost of reading the clock, which gobreaker does
// twice per call and a token bucket once: on virtual machines whose clock
// source is not read in user space it dominates the figures above.
func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		sinkTime = time.Now()
	}
}

func BenchmarkLayerRateLimitAll(b *testing.B) {
	runDriver(b, ratelimit.New(highRate, highBurst,
		ratelimit.WithOpLimit(contract.OpStartContainer, highRate, highBurst),
		ratelimit.WithMaxConcurrent(64))(noop{}))
}
