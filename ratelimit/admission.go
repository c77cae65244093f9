package ratelimit

import (
	"container/list"
	"context"
	"math"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

// Defaults of the concurrency pools; the package doc gives the reasons.
const (
	// DefaultInitialConcurrency is where an adaptive limit starts.
	DefaultInitialConcurrency = 8
	// DefaultMaxAdaptiveConcurrency is the most an adaptive limit grows to.
	DefaultMaxAdaptiveConcurrency = 256
	// DefaultReadConcurrency is the cap of the read pool in
	// resilient.Wrap's defaults.
	DefaultReadConcurrency = 32
	// latencyTolerance is how much slower than an operation's best recent
	// time a call may be before the adaptive limit shrinks (Gradient2's
	// RTT tolerance).
	latencyTolerance = 2.0
	// createShare is the part of its caller's time left that a create
	// may spend waiting for admission: the rest is for the work of the
	// session it starts.
	createShare = 0.5
	// priorService is the service time assumed before any call finished.
	priorService = 100 * time.Millisecond
)

// Priorities within a pool: work that continues a session goes first.
const (
	prioHigh = iota // ClassRead in the read pool, ClassContinue in the work pool
	prioLow         // ClassCreate
	numPrios
)

// pool is a bulkhead: a concurrency limit, fixed or adaptive, with
// priority queues and deadline-aware admission.
type pool struct {
	name     string
	adaptive bool
	maxLimit float64

	mu       sync.Mutex
	limit    float64 // current limit; admission uses its floor, at least 1
	inflight int
	queues   [numPrios]list.List // of *waiter

	service float64 // EWMA of call durations, in seconds
	samples int
	base    [contract.NumOps]float64 // best recent duration per operation, in seconds

	// the current sampling window of the adaptive limit
	winSum       float64
	winN         int
	winSaturated bool
}

type waiter struct {
	ready   chan struct{}
	granted bool // set under the pool's lock when a slot is handed over
}

func newPool(name string, limit int, adaptive bool) *pool {
	p := &pool{name: name, adaptive: adaptive, limit: float64(limit), maxLimit: float64(limit),
		service: priorService.Seconds()}
	if adaptive {
		p.maxLimit = DefaultMaxAdaptiveConcurrency
	}
	return p
}

// Limit returns the pool's current limit.
func (p *pool) Limit() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cap()
}

func (p *pool) cap() int { return max(int(p.limit), 1) }

// waitingAhead returns how many waiters go before a new one of prio.
func (p *pool) waitingAhead(prio int) int {
	n := 0
	for i := 0; i <= prio; i++ {
		n += p.queues[i].Len()
	}
	return n
}

// acquire takes a slot for call, waiting within maxWait (zero: no bound
// of its own; negative: not at all) and the caller's deadline. A call that, by the pool's estimate, cannot
// be admitted in time is refused at once.
func (p *pool) acquire(ctx context.Context, call *middleware.Call, prio int, maxWait time.Duration) (time.Duration, error) {
	p.mu.Lock()
	if p.inflight < p.cap() && p.waitingAhead(prio) == 0 {
		p.inflight++
		p.mu.Unlock()
		return 0, nil
	}
	p.winSaturated = true
	// Expected wait: the calls ahead, and this one, share the pool's
	// slots at its recent service time.
	est := time.Duration(float64(p.waitingAhead(prio)+1) * p.service / float64(p.cap()) * float64(time.Second))
	now := time.Now()
	if dl, ok := ctx.Deadline(); ok {
		left := dl.Sub(now)
		budget := left - time.Duration(p.opService(call.Op)*float64(time.Second))
		if prio == prioLow {
			budget = time.Duration(float64(left) * createShare)
		}
		if est > budget {
			p.mu.Unlock()
			// Within this deadline there is no capacity for the call: the
			// hint says not to try again before it.
			return 0, rejected(ctx, call, max(est, left), "the engine is saturated: no capacity within the caller's deadline")
		}
	}
	if maxWait < 0 {
		p.mu.Unlock()
		return 0, rejected(ctx, call, est, "too many calls in flight")
	}
	w := &waiter{ready: make(chan struct{})}
	e := p.queues[prio].PushBack(w)
	p.mu.Unlock()

	var expired <-chan time.Time // nil: no bound but the caller's deadline
	if maxWait > 0 {
		t := time.NewTimer(maxWait)
		defer t.Stop()
		expired = t.C
	}
	var err error
	select {
	case <-w.ready:
		return time.Since(now), nil
	case <-expired:
		err = rejected(ctx, call, est, "too many calls in flight")
	case <-ctx.Done():
		err = canceled(ctx, call, "a concurrency slot")
	}
	p.mu.Lock()
	if w.granted { // handed a slot as it gave up: give it back
		p.mu.Unlock()
		p.release(call.Op, 0, false)
		return 0, err
	}
	p.queues[prio].Remove(e)
	p.mu.Unlock()
	return 0, err
}

// opService returns the best recent service time of op, or the pool's.
func (p *pool) opService(op contract.Op) float64 {
	if i := op.Index(); i >= 0 && p.base[i] > 0 {
		return p.base[i]
	}
	return p.service
}

// release frees a slot after a call of op that took d, and hands it to
// the first waiter of the highest priority. sample says whether d tells
// how loaded the engine is: not for stops, whose time is mostly their
// grace period, nor for calls refused or canceled.
func (p *pool) release(op contract.Op, d time.Duration, sample bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	if sample {
		p.observe(op, d.Seconds())
	}
	for p.inflight < p.cap() {
		var w *waiter
		for i := range p.queues {
			if e := p.queues[i].Front(); e != nil {
				w = p.queues[i].Remove(e).(*waiter)
				break
			}
		}
		if w == nil {
			return
		}
		p.inflight++
		w.granted = true
		close(w.ready)
	}
}

// observe records a service time and, for an adaptive pool, moves the
// limit once per window of samples, as Gradient2 does: by the ratio of
// each operation's best recent time to its time now, within
// [0.5, 1], plus a queue allowance of sqrt(limit) while calls wait; a
// fifth of the way at a time.
func (p *pool) observe(op contract.Op, s float64) {
	if p.samples == 0 {
		p.service = s
	} else {
		p.service += 0.2 * (s - p.service)
	}
	p.samples++
	i := op.Index()
	if i < 0 {
		return
	}
	b := p.base[i]
	switch {
	case b == 0 || s < b:
		b = s
	default:
		b += 0.001 * (s - b) // the best time ages, so a lucky sample does not pin it
	}
	p.base[i] = b
	if !p.adaptive {
		return
	}
	p.winSum += min(s/max(b, 1e-6), 10)
	p.winN++
	if p.winN < max(p.cap(), 5) {
		return
	}
	gradient := min(max(latencyTolerance/(p.winSum/float64(p.winN)), 0.5), 1)
	next := p.limit * gradient
	if (p.winSaturated || p.waitingAhead(numPrios-1) > 0) && gradient == 1 {
		next += math.Sqrt(p.limit)
	}
	p.limit = min(max(0.8*p.limit+0.2*next, 1), p.maxLimit)
	p.winSum, p.winN, p.winSaturated = 0, 0, false
}

// reportHealth adds the limits of the pools to a health report.
func (l *limiter) reportHealth(h *contract.DriverHealth) {
	if l.work != nil {
		h.Limits.Work = l.work.Limit()
	}
	if l.read != nil {
		h.Limits.Read = l.read.Limit()
	}
}

// observeLimits registers the resilient.ratelimit.limit gauge of the
// pools' current limits.
func (l *limiter) observeLimits(mp metric.MeterProvider) {
	if l.work == nil && l.read == nil {
		return
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	g, err := m.Int64ObservableGauge(metricLimit,
		metric.WithDescription("Current concurrency limit of a pool of calls"),
		metric.WithUnit("{call}"))
	if err != nil {
		otel.Handle(err)
		return
	}
	pools := []*pool{}
	for _, p := range []*pool{l.work, l.read} {
		if p != nil {
			pools = append(pools, p)
		}
	}
	attrs := make([]metric.ObserveOption, len(pools))
	for i, p := range pools {
		attrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("resilient.pool", p.name)))
	}
	if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for i, p := range pools {
			o.ObserveInt64(g, int64(p.Limit()), attrs[i])
		}
		return nil
	}, g); err != nil {
		otel.Handle(err)
	}
}
