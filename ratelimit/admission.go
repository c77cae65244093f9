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
	// DefaultMinAdaptiveConcurrency is the least an adaptive limit shrinks
	// to. Docker starts containers one at a time, so a start's time grows
	// with the calls in flight even when the daemon keeps up; the latency
	// rule alone drove the limit to 2 or 3 under a burst of 150 sessions
	// on 2 cores, and Wrap took 53s where the bare driver took about 40s.
	// With this floor Wrap matched or beat the bare driver (42.7s and
	// 43.0s; 38.5s and 45.0s), and work beyond the engine's capacity
	// still waits in the pool, in priority order, or is refused.
	DefaultMinAdaptiveConcurrency = 8
	// DefaultReadConcurrency is the cap of the read pool in
	// resilient.Wrap's defaults.
	DefaultReadConcurrency = 32
	// latencyTolerance is how much slower than an operation's best recent
	// time a call may be before the adaptive limit shrinks (Gradient2's
	// RTT tolerance).
	latencyTolerance = 2.0
	// priorService is the service time of a call of engine work assumed
	// before any finished: about what a start takes on Docker 20.10 on a
	// 2-core host with a few calls in flight (a create takes less, a
	// start under load more). The first samples replace it.
	priorService = 250 * time.Millisecond
	// priorSessionWork is the calls of engine work a create brings with
	// it, itself included, assumed before the pool has seen sessions: a
	// create, a start, a stop and a remove. It counts as sessionPrior
	// creates' worth of evidence: in a burst the creates are granted
	// first and the work they bring later, so a weak prior would read the
	// first creates as sessions without work.
	priorSessionWork = 4.0
	sessionPrior     = 16.0
	// grantDecay is how fast the counts of grants forget: their weight
	// halves every ~180 grants.
	grantDecay = 1.0 / 256
	// grantWindow is how many slots handed to waiting calls the pool's
	// rate is measured over at most: the time since the grant that many
	// before (or since calls began to queue) over their number. Slots
	// free in batches (calls that began together end together), and the
	// time between two grants of a batch is nothing; the smoothed
	// interval between grants that the pool used before took a burst's
	// first batch for a rate of hundreds a second where the engine
	// sustained twenty, and refused late.
	grantWindow = 32
	// minGrants is the fewest slots handed out in a period of queueing
	// (and at least the limit) that measure its rate: one slot freed by a
	// stop that waited out its grace period says little of the next.
	minGrants = 8
	// bestAging is how far the best interval moves toward each new
	// measurement that is slower.
	bestAging = 0.05
	// recheckEvery is how often the waiting calls with a deadline are
	// looked at again while no slot frees: time passing makes a call late
	// as surely as a slow release does.
	recheckEvery = 50 * time.Millisecond
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
	minLimit float64
	maxLimit float64

	mu       sync.Mutex
	limit    float64 // current limit; admission uses its floor, at least 1
	inflight int
	queues   [numPrios]list.List // of *waiter

	service float64 // EWMA of call durations, in seconds
	samples int
	grants  [numPrios]float64 // decaying counts of slots granted by priority

	// The pool's throughput while calls queue, as the time between two
	// slots handed to waiters, in seconds, measured intervals times: the
	// mean of the measurements (smoothed over about grantWindow of them),
	// and the lowest, aging. The current period of queueing began at
	// queued, in seconds since epoch, and has handed grantN slots to
	// waiters, the last grantWindow of them at grantAt (a ring).
	mean      float64
	intervals int
	best      float64
	queued    float64
	grantAt   [grantWindow]float64
	grantN    int
	base      [contract.NumOps]float64 // best recent duration per operation, in seconds

	// The calls in flight whose time measures the engine (engineTimed):
	// how many, and the sum of their grant times in seconds since epoch.
	// Each has taken at least its age so far, which bounds the service
	// time from below before any of them returns.
	epoch    time.Time
	timed    int
	startSum float64

	deadlined int         // waiters with a deadline, which recheck looks at
	recheck   *time.Timer // armed while deadlined > 0, nil until first used
	rechecks  bool        // recheck is armed

	// the current sampling window of the adaptive limit
	winSum       float64
	winN         int
	winSaturated bool
}

// waiter is a call queued for a slot. The fields after ready are written
// under the pool's lock and read by the waiting call after ready closes.
type waiter struct {
	ready    chan struct{}
	op       contract.Op
	deadline time.Time // the caller's, zero for none

	granted    bool          // a slot was handed over
	at         time.Time     // with granted: when
	refused    bool          // the call cannot be admitted in time
	retryAfter time.Duration // with refused
}

func newPool(name string, limit int, adaptive bool) *pool {
	p := &pool{name: name, adaptive: adaptive, limit: float64(limit), minLimit: 1, maxLimit: float64(limit),
		service: priorService.Seconds(), epoch: time.Now()}
	if adaptive {
		p.minLimit, p.maxLimit = min(DefaultMinAdaptiveConcurrency, float64(limit)), DefaultMaxAdaptiveConcurrency
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
// of its own; negative: not at all) and the caller's deadline, and
// returns when the slot was granted, for release, and how long it waited.
// A call that, by the pool's estimate, cannot be admitted in time is
// refused at once, and a waiting call as soon as the estimate says so.
func (p *pool) acquire(ctx context.Context, call *middleware.Call, prio int, maxWait time.Duration) (time.Time, time.Duration, error) {
	p.mu.Lock()
	now := time.Now()
	if p.inflight < p.cap() && p.waitingAhead(prio) == 0 {
		p.inflight++
		p.granted(prio, call.Op, now)
		p.mu.Unlock()
		return now, 0, nil
	}
	p.winSaturated = true
	w := &waiter{ready: make(chan struct{}), op: call.Op}
	w.deadline, _ = ctx.Deadline()
	est := p.estimate(prio, p.queues[prioHigh].Len(), p.queues[prioLow].Len(), p.slotTime(now))
	if retryAfter, late := p.late(w, prio, est, now, false); late {
		p.mu.Unlock()
		return time.Time{}, 0, rejected(ctx, call, retryAfter, "the engine is saturated: no capacity within the caller's deadline")
	}
	if maxWait < 0 {
		p.mu.Unlock()
		return time.Time{}, 0, rejected(ctx, call, est, "too many calls in flight")
	}
	if p.waitingAhead(numPrios-1) == 0 { // calls begin to queue: a new period
		p.queued, p.grantN = now.Sub(p.epoch).Seconds(), 0
	}
	e := p.queues[prio].PushBack(w)
	if !w.deadline.IsZero() {
		p.deadlined++
		p.armRecheck()
	}
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
		if w.refused {
			return time.Time{}, 0, rejected(ctx, call, w.retryAfter, "the engine is saturated: no capacity within the caller's deadline")
		}
		return w.at, w.at.Sub(now), nil
	case <-expired:
		err = rejected(ctx, call, est, "too many calls in flight")
	case <-ctx.Done():
		err = canceled(ctx, call, "a concurrency slot")
	}
	p.mu.Lock()
	switch {
	case w.granted: // handed a slot as it gave up: give it back
		p.mu.Unlock()
		p.release(call.Op, w.at, time.Time{})
		return time.Time{}, 0, err
	case !w.refused:
		p.queues[prio].Remove(e)
		if !w.deadline.IsZero() {
			p.deadlined--
		}
	}
	p.mu.Unlock()
	return time.Time{}, 0, err
}

// armRecheck makes sure refuseLate runs within recheckEvery while waiters
// with a deadline queue. Called with p.mu held.
func (p *pool) armRecheck() {
	if p.rechecks || p.deadlined == 0 {
		return
	}
	p.rechecks = true
	if p.recheck == nil {
		p.recheck = time.AfterFunc(recheckEvery, p.runRecheck)
	} else {
		p.recheck.Reset(recheckEvery)
	}
}

func (p *pool) runRecheck() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rechecks = false
	p.refuseLate(time.Now())
	p.armRecheck()
}

// estimate returns how long a call of prio waits for a slot with high
// and low calls queued ahead of it, at the rate the pool has been handing
// out slots while calls queued: a create waits for the creates ahead and
// for the work each brings with it (start, stop, remove: calls that go
// first), as the pool has counted it.
func (p *pool) estimate(prio, high, low int, slot float64) time.Duration {
	calls := float64(high + 1)
	if prio == prioLow {
		calls = float64(high) + float64(low+1)*p.sessionWork()
	}
	return time.Duration(calls * slot * float64(time.Second))
}

// sessionWork returns how many calls of engine work a create brings with
// it, itself included, as the pool has counted them.
func (p *pool) sessionWork() float64 {
	return 1 + (p.grants[prioHigh]+(priorSessionWork-1)*sessionPrior)/(p.grants[prioLow]+sessionPrior)
}

// slotTime returns the time between two slots handed out, in seconds:
// as measured in the current period of queueing once it has handed out
// as many slots as the limit (and minGrants), else the mean of what the
// pool measured before (a burst's last slots, as its queue drains, are
// not the rate of the next), or, before any, the service time over the
// limit.
func (p *pool) slotTime(now time.Time) float64 {
	switch {
	case p.grantN >= p.measuredAfter():
		return p.windowSlot(now.Sub(p.epoch).Seconds())
	case p.intervals > 0:
		return p.mean
	}
	return p.serviceAt(now) / float64(p.cap())
}

// measuredAfter returns how many slots a period of queueing hands out
// before they measure its rate.
func (p *pool) measuredAfter() int { return max(p.cap(), minGrants) }

// windowSlot returns the time between two slots handed out in the current
// period of queueing were the next handed at t, in seconds since epoch:
// the time from the grant grantWindow before that one (or from when calls
// began to queue) to t, over the grants it spans.
func (p *pool) windowSlot(t float64) float64 {
	n := p.grantN + 1 // the grant at t
	from := p.queued
	if n > grantWindow {
		from = p.grantAt[n%grantWindow] // grant n-grantWindow, the oldest kept
	}
	return (t - from) / float64(min(n, grantWindow))
}

// bestSlotTime returns the shortest time between two slots the pool has
// sustained recently (the lowest of full windows, aging), or slotTime
// before it has measured one.
func (p *pool) bestSlotTime(now time.Time) float64 {
	if p.intervals == 0 {
		return p.slotTime(now)
	}
	return p.best
}

// serviceAt returns the service time of a call of engine work, in
// seconds: the measured one, or, when the calls in flight have been
// running longer than that on average, their mean age. Under a sudden
// burst the calls measured on an idle engine are far faster than those
// in flight, which say so before any of them returns.
func (p *pool) serviceAt(now time.Time) float64 {
	if p.timed == 0 {
		return p.service
	}
	return max(p.service, now.Sub(p.epoch).Seconds()-p.startSum/float64(p.timed))
}

// late reports whether w, expected to wait est from now, cannot be done
// within its caller's deadline, and the RetryAfter to refuse it with.
//
// A call that continues a session is late when the wait plus its own
// best recent time would pass the deadline. A create arriving is late
// when the wait plus the work its session brings (its calls one after the
// other at the pool's service time now) would pass it: the session could
// not finish, and refusing it at once leaves the engine to those that
// can. A create already waiting is late only once it could not even be
// admitted in time (waiting): estimates made under load assume the load
// lasts, while the refusals themselves end it, and a create refused that
// would have fitted is capacity lost for good.
func (p *pool) late(w *waiter, prio int, est time.Duration, now time.Time, waiting bool) (time.Duration, bool) {
	if w.deadline.IsZero() {
		return 0, false
	}
	left := w.deadline.Sub(now)
	var work float64 // seconds of work after admission
	switch {
	case prio != prioLow:
		work = p.opService(w.op)
	case !waiting:
		work = p.sessionWork() * p.serviceAt(now)
	}
	// Within this deadline there is no capacity for the call: the hint
	// says not to try again before it.
	return max(est, left), est > left-time.Duration(work*float64(time.Second))
}

// granted counts a slot handed at at to a call of op and prio.
func (p *pool) granted(prio int, op contract.Op, at time.Time) {
	for i := range p.grants {
		p.grants[i] *= 1 - grantDecay
	}
	p.grants[prio]++
	if engineTimed(op) {
		p.timed++
		p.startSum += at.Sub(p.epoch).Seconds()
	}
}

// opService returns the best recent service time of op, or the pool's.
func (p *pool) opService(op contract.Op) float64 {
	if i := op.Index(); i >= 0 && p.base[i] > 0 {
		return p.base[i]
	}
	return p.service
}

// release frees the slot granted at at to a call of op, and hands it to
// the first waiter of the highest priority. ran is when the call went on
// to the engine, from which its time is sampled, or zero when its time
// does not tell how loaded the engine is: stops, whose time is mostly
// their grace period (see engineTimed), and calls refused (by a token
// bucket too) or canceled.
func (p *pool) release(op contract.Op, at, ran time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.inflight--
	if engineTimed(op) {
		p.timed--
		p.startSum -= at.Sub(p.epoch).Seconds()
		if p.timed == 0 {
			p.startSum = 0 // no rounding left over
		}
	}
	if !ran.IsZero() {
		p.observe(op, now.Sub(ran).Seconds())
	}
	for p.inflight < p.cap() {
		var w *waiter
		prio := 0
		for ; prio < numPrios; prio++ {
			if e := p.queues[prio].Front(); e != nil {
				w = p.queues[prio].Remove(e).(*waiter)
				break
			}
		}
		if w == nil {
			break
		}
		if !w.deadline.IsZero() {
			p.deadlined--
		}
		p.inflight++
		p.granted(prio, w.op, now)
		p.measureGrant(now)
		w.granted, w.at = true, now
		close(w.ready)
	}
	p.refuseLate(now)
}

// measureGrant counts a slot handed to a waiting call at now and, once
// the current period of queueing has handed out measuredAfter of them,
// measures the interval between grants, into the mean and the best.
func (p *pool) measureGrant(now time.Time) {
	t := now.Sub(p.epoch).Seconds()
	if n := p.grantN + 1; n >= p.measuredAfter() {
		slot := p.windowSlot(t)
		p.intervals++
		if p.intervals == 1 {
			p.mean, p.best = slot, slot
		}
		p.mean += (slot - p.mean) / grantWindow
		if slot < p.best {
			p.best = slot
		} else {
			p.best += bestAging * (slot - p.best)
		}
	}
	p.grantN++
	p.grantAt[p.grantN%grantWindow] = t
}

// refuseLate refuses, at once, the waiting calls that by the estimate at
// their place in the queue can no longer be done in time (see late),
// rather than letting them wait out their deadlines. It runs at every
// release and every recheckEvery while calls with a deadline wait, in
// time linear in the calls waiting; not at all when none has a deadline.
func (p *pool) refuseLate(now time.Time) {
	if p.deadlined == 0 {
		return
	}
	slot := p.bestSlotTime(now)
	ahead := [numPrios]int{}
	for prio := range p.queues {
		for e := p.queues[prio].Front(); e != nil; {
			next := e.Next()
			w := e.Value.(*waiter)
			est := p.estimate(prio, ahead[prioHigh], ahead[prioLow], slot)
			if retryAfter, late := p.late(w, prio, est, now, true); late {
				p.queues[prio].Remove(e)
				p.deadlined--
				w.refused, w.retryAfter = true, retryAfter
				close(w.ready)
			} else {
				ahead[prio]++
			}
			e = next
		}
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
	case p.waitingAhead(numPrios-1) == 0:
		// The best time ages, so that a lucky sample does not pin it, but
		// only while no call waits: the times of an overload that lasts
		// must not become the norm, or the limit grows back into it.
		b += 0.001 * (s - b)
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
	p.limit = min(max(0.8*p.limit+0.2*next, p.minLimit), p.maxLimit)
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
