package ratelimit

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

// New returns a Middleware that lets calls through at limit calls per
// second with bursts of burst, for reads and for engine work each, plus
// the buckets and the concurrency pools its options add. rate.Inf, zero,
// a negative limit or NaN means no overall bucket (burst is then
// ignored); a burst below one counts as one. [WithRate] replaces both
// arguments.
//
// Every driver the Middleware wraps shares its buckets and its pools. With
// nothing to limit (no overall bucket, no WithOpLimit and no pool) the
// Middleware returns the driver unchanged.
func New(limit rate.Limit, burst int, opts ...Option) middleware.Middleware {
	cfg := newConfig(limit, burst, opts)
	maxWait := cfg.maxWait
	if cfg.noWait {
		maxWait = -1
	}
	l := &limiter{
		all:     newBucket(cfg.limit, cfg.burst),
		reads:   newBucket(cfg.limit, cfg.burst),
		maxWait: maxWait,
	}
	limited := l.all != nil
	for op, b := range cfg.ops {
		lim := newBucket(b.limit, b.burst)
		if lim == nil || op.Info().Class == contract.ClassProbe {
			continue
		}
		limited = true
		if i := op.Index(); i >= 0 {
			l.ops[i] = lim
		} else {
			if l.other == nil {
				l.other = make(map[contract.Op]*rate.Limiter)
			}
			l.other[op] = lim
		}
	}
	switch {
	case cfg.adaptive:
		l.work = newPool("work", DefaultInitialConcurrency, true)
	case cfg.maxConcurrent > 0:
		l.work = newPool("work", cfg.maxConcurrent, false)
	}
	if cfg.readConcurrent > 0 {
		l.read = newPool("read", cfg.readConcurrent, false)
	}
	limited = limited || l.work != nil || l.read != nil
	if !limited {
		// Nothing to limit: leave the driver as it is.
		return func(d contract.ContainerDriver) contract.ContainerDriver { return d }
	}
	l.wait = newWaitHistogram(cfg.meterProvider)
	l.observeLimits(cfg.meterProvider)
	return middleware.Intercept(l.intercept)
}

const (
	// ScopeName is the instrumentation scope of the middleware's meter.
	ScopeName = "github.com/resilientdriver/resilient/ratelimit"

	metricWait  = "resilient.ratelimit.wait"
	metricLimit = "resilient.ratelimit.limit"
)

// waitBuckets, in seconds, go from a millisecond up to beyond the default
// wait bound.
var waitBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

func newWaitHistogram(mp metric.MeterProvider) metric.Float64Histogram {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	h, err := mp.Meter(ScopeName).Float64Histogram(metricWait,
		metric.WithDescription("Time calls waited for a rate limit token or a concurrency slot"),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(waitBuckets...))
	if err != nil {
		otel.Handle(err)
	}
	if h == nil { // a meter that returns nil with its error must not break calls
		h = noop.Float64Histogram{}
	}
	return h
}

// opAttrs holds the precomputed resilient.op attribute sets of the
// operations Op.Index knows.
var opAttrs = func() (a [contract.NumOps]metric.RecordOption) {
	for i, op := range contract.AllOps() {
		a[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("resilient.op", string(op))))
	}
	return a
}()

// recordWait records a wait of call's operation in resilient.ratelimit.wait.
func (l *limiter) recordWait(ctx context.Context, op contract.Op, waited time.Duration) {
	var attrs metric.RecordOption
	if i := op.Index(); i >= 0 && opAttrs[i] != nil {
		attrs = opAttrs[i]
	} else {
		attrs = metric.WithAttributes(attribute.String("resilient.op", string(op)))
	}
	l.wait.Record(ctx, waited.Seconds(), attrs)
}

// newBucket returns a token bucket, or nil for no limit: rate.Inf, zero,
// negative or NaN.
func newBucket(limit rate.Limit, burst int) *rate.Limiter {
	if !(limit > 0) || limit == rate.Inf {
		return nil
	}
	return rate.NewLimiter(limit, max(burst, 1))
}

type limiter struct {
	all     *rate.Limiter                  // overall bucket of engine work, nil for none
	reads   *rate.Limiter                  // overall bucket of reads, nil for none
	ops     [contract.NumOps]*rate.Limiter // per-operation buckets by Op.Index; read-only
	other   map[contract.Op]*rate.Limiter  // buckets of operations Op.Index does not know
	work    *pool                          // concurrency of engine work, nil for no cap
	read    *pool                          // concurrency of reads, nil for no cap
	maxWait time.Duration                  // bound of a call's wait: 0 none but the caller's deadline, < 0 no waiting
	wait    metric.Float64Histogram        // resilient.ratelimit.wait
}

func (l *limiter) intercept(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
	info := call.Op.Info()
	if info.Class == contract.ClassProbe {
		err := next(ctx)
		if err == nil && call.Health != nil {
			l.reportHealth(call.Health)
		}
		return err
	}
	var op *rate.Limiter
	if i := call.Op.Index(); i >= 0 {
		op = l.ops[i]
	} else {
		op = l.other[call.Op]
	}
	all, pl, prio := l.all, l.work, prioHigh
	switch info.Class {
	case contract.ClassRead:
		all, pl = l.reads, l.read
	case contract.ClassCreate:
		prio = prioLow
	}
	if all == nil && op == nil && pl == nil {
		return next(ctx)
	}
	var waited, tokens time.Duration
	var at, ran time.Time // when the slot was granted, and when the call went on to the driver (zero until then)
	if pl != nil {
		var w time.Duration
		var err error
		at, w, err = pl.acquire(ctx, call, prio, l.maxWait)
		if err != nil {
			return err
		}
		waited = w
		defer func() {
			if !engineTimed(call.Op) || ctx.Err() != nil {
				ran = time.Time{} // its time says nothing of the engine's load
			}
			pl.release(call.Op, at, ran)
		}()
	}
	if all != nil || op != nil {
		w, err := l.take(ctx, call, all, op, waited)
		if err != nil {
			return err
		}
		waited += w
		tokens = w
	}
	if waited > 0 {
		l.recordWait(ctx, call.Op, waited)
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("ratelimit.wait", trace.WithAttributes(
				attribute.Float64("ratelimit.wait_ms", float64(waited)/float64(time.Millisecond))))
		}
	}
	if pl != nil {
		ran = at.Add(tokens) // after the wait for tokens, without reading the clock again
	}
	return next(ctx)
}

// take takes a token from the overall bucket and from op's (either may be
// nil), waiting for them if it can within the bound, of which waited has
// been spent. It returns how long it waited.
func (l *limiter) take(ctx context.Context, call *middleware.Call, bucket, op *rate.Limiter, waited time.Duration) (time.Duration, error) {
	now := time.Now()
	var all, own *rate.Reservation
	var delay time.Duration
	if bucket != nil {
		all = bucket.ReserveN(now, 1)
		delay = all.DelayFrom(now)
	}
	if op != nil {
		own = op.ReserveN(now, 1)
		delay = max(delay, own.DelayFrom(now))
	}
	if delay == 0 {
		return 0, nil
	}
	cancel := func(at time.Time) {
		if all != nil {
			all.CancelAt(at)
		}
		if own != nil {
			own.CancelAt(at)
		}
	}
	tooLong := l.maxWait < 0 || (l.maxWait > 0 && delay > l.maxWait-waited)
	if deadline, ok := ctx.Deadline(); ok && delay >= deadline.Sub(now) {
		tooLong = true // the call would have no time left to run
	}
	if tooLong {
		cancel(now)
		return 0, rejected(ctx, call, delay, "no token within the wait bound")
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return delay, nil
	case <-ctx.Done():
		cancel(time.Now())
		return 0, canceled(ctx, call, "a token")
	}
}

func rejected(ctx context.Context, call *middleware.Call, retryAfter time.Duration, why string) error {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("ratelimit.rejected", trace.WithAttributes(
			attribute.String("ratelimit.reason", why),
			attribute.Float64("ratelimit.retry_after_ms", float64(retryAfter)/float64(time.Millisecond))))
	}
	return &contract.DriverError{
		Code:       contract.CodeRateLimited,
		Message:    "rate limited: " + why,
		Retryable:  true,
		Op:         call.Op,
		ID:         call.ID,
		RetryAfter: retryAfter,
	}
}

func canceled(ctx context.Context, call *middleware.Call, what string) error {
	return &contract.DriverError{
		Code:    contract.CodeRateLimited,
		Message: "gave up waiting for " + what,
		Op:      call.Op,
		ID:      call.ID,
		Err:     ctx.Err(),
	}
}

// engineTimed reports whether a call's duration measures the engine: not
// for a stop, whose time is mostly its grace period, an exec, which takes
// as long as its command, or a copy in, which takes as long as its stream.
func engineTimed(op contract.Op) bool {
	switch op {
	case contract.OpStopContainer, contract.OpExecContainer, contract.OpCopyToContainer:
		return false
	}
	return true
}
