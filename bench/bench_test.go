package bench

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/ratelimit"
	"github.com/resilientdriver/resilient/retry"
)

// A limit so high that no call ever waits, so that the limited variants
// measure the cost of taking a token.
const (
	highRate  = 1e9
	highBurst = 1 << 20
)

// Every benchmark makes the same call: StartContainer on a driver that does
// nothing.
func run(b *testing.B, call func(ctx context.Context) error) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := call(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func runDriver(b *testing.B, d contract.ContainerDriver) {
	run(b, func(ctx context.Context) error { return d.StartContainer(ctx, "c1") })
}

// BenchmarkBare calls the driver directly.
func BenchmarkBare(b *testing.B) {
	runDriver(b, noop{})
}

// BenchmarkChain is retry, breaker and rate limiter with their defaults,
// in the order of resilient.Wrap, through middleware. ratelimit.New(rate.Inf,
// 0) has nothing to limit and leaves the driver unwrapped, so this is the
// cost of retry and breaker.
func BenchmarkChain(b *testing.B) {
	runDriver(b, chain(ratelimit.New(rate.Inf, 0))(noop{}))
}

// BenchmarkChainLimited is BenchmarkChain with a rate limiter that takes
// a token from a bucket on every call, like failsafe-go's rate limiter in
// BenchmarkFailsafe. BenchmarkLayerRateLimit* show what a bucket per
// operation and a concurrency cap add.
func BenchmarkChainLimited(b *testing.B) {
	runDriver(b, chain(ratelimit.New(highRate, highBurst))(noop{}))
}

// BenchmarkFailsafe is failsafe-go's retry policy, circuit breaker and
// (bursty) rate limiter around the same call, built once, as its
// documentation recommends.
func BenchmarkFailsafe(b *testing.B) {
	rp := retrypolicy.NewBuilder[any]().WithMaxAttempts(3).WithBackoff(100*time.Millisecond, 10*time.Second).Build()
	cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(5).WithDelay(30 * time.Second).Build()
	rl := ratelimiter.NewBurstyBuilder[any](highRate, time.Second).Build()
	exec := failsafe.With[any](rp, cb, rl)
	d := noop{}
	ctx := context.Background()
	fn := func() error { return d.StartContainer(ctx, "c1") }
	run(b, func(context.Context) error { return exec.Run(fn) })
}

// BenchmarkGobreakerRate is a bare gobreaker circuit breaker and an
// x/time/rate limiter around the call: the floor for a breaker and a
// limiter, without middleware.
func BenchmarkGobreakerRate(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "start"})
	lim := rate.NewLimiter(highRate, highBurst)
	d := noop{}
	run(b, func(ctx context.Context) error {
		if !lim.Allow() {
			return contract.ErrRateLimited
		}
		_, err := cb.Execute(func() (struct{}, error) {
			return struct{}{}, d.StartContainer(ctx, "c1")
		})
		return err
	})
}

func chain(rl middleware.Middleware) middleware.Middleware {
	return middleware.Chain(retry.New(), breaker.New(), rl)
}

// TestChainAllocatesNothing holds the success path of the chain to zero
// allocations.
func TestChainAllocatesNothing(t *testing.T) {
	for name, d := range map[string]contract.ContainerDriver{
		"chain":   chain(ratelimit.New(rate.Inf, 0))(noop{}),
		"limited": chain(ratelimit.New(highRate, highBurst, ratelimit.WithMaxConcurrent(64)))(noop{}),
	} {
		ctx := context.Background()
		if n := testing.AllocsPerRun(1000, func() { d.StartContainer(ctx, "c1") }); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}
