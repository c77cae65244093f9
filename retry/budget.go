package retry

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the budget [New] makes when no [WithBudget] or
// [WithoutBudget] is given.
const (
	DefaultBudgetRatio        = 0.2
	DefaultBudgetMinPerSecond = 10
	DefaultBudgetMax          = 100
)

// unit is one retry in the budget's fixed-point arithmetic.
const unit = 1000

// Budget limits retries across calls, so that retries cannot multiply the
// load on an engine that is already failing. It is a token bucket that
// holds at most maxRetries retries and starts full. Every logical call adds ratio
// of a retry (0.2 is a fifth), time adds minPerSecond retries per second,
// and every retry takes one. A retry is made only when the bucket holds a
// whole one; otherwise the call gives up with [ErrBudgetExhausted].
//
// So over any period of t seconds, retries ≤ maxRetries + ratio × calls +
// minPerSecond × t. A busy client adds at most ratio to its load by
// retrying, whatever the failure rate, after a burst of at most maxRetries; a
// quiet client can still retry minPerSecond times a second. This is the
// scheme of Finagle's RetryBudget, as a bucket that needs no clock on the
// success path.
//
// A Budget is safe for concurrent use and may be shared by several
// middlewares with [WithBudget].
type Budget struct {
	perCall int64 // units added per call
	perSec  int64 // units added per second
	max     int64 // units the bucket holds at most

	tokens atomic.Int64 // units in the bucket

	mu   sync.Mutex
	last time.Time // time up to which the per-second refill has been added
}

// NewBudget returns a budget that lets retries add ratio (0.2 is 20%) of
// the calls made, plus minPerSecond retries per second, with bursts of at
// most maxRetries retries. It starts full. Negative arguments and NaN
// count as zero, and values too large to count as the largest the budget
// holds; NewBudget(0, 0, 0) allows no retries at all.
func NewBudget(ratio, minPerSecond float64, maxRetries int) *Budget {
	b := &Budget{
		perCall: units(ratio),
		perSec:  units(minPerSecond),
		max:     units(float64(maxRetries)),
	}
	b.tokens.Store(b.max)
	return b
}

// maxUnits bounds every amount of the bucket, so that no sum of two
// overflows.
const maxUnits = math.MaxInt64 / 4

// units converts a count of retries to units, within [0, maxUnits].
func units(f float64) int64 {
	if !(f > 0) { // negative or NaN
		return 0
	}
	if f >= maxUnits/unit {
		return maxUnits
	}
	return int64(f * unit)
}

func newDefaultBudget() *Budget {
	return NewBudget(DefaultBudgetRatio, DefaultBudgetMinPerSecond, DefaultBudgetMax)
}

// add puts n units into the bucket, up to max.
func (b *Budget) add(n int64) {
	for {
		old := b.tokens.Load()
		if old >= b.max {
			return
		}
		if b.tokens.CompareAndSwap(old, min(old+n, b.max)) {
			return
		}
	}
}

// record adds one call's share. It reads no clock and allocates nothing.
func (b *Budget) record() {
	if b.perCall > 0 {
		b.add(b.perCall)
	}
}

// refill adds the per-second share for the time since the last refill.
func (b *Budget) refill() {
	if b.perSec == 0 {
		return
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() || b.tokens.Load() >= b.max {
		b.last = now
		return
	}
	elapsed := now.Sub(b.last)
	f := float64(elapsed) / float64(time.Second) * float64(b.perSec)
	if f >= maxUnits {
		b.last = now
		b.add(maxUnits)
		return
	}
	n := int64(f)
	if n <= 0 {
		return
	}
	// Advance by the time the units stand for, so that fractions carry
	// over to the next refill.
	b.last = b.last.Add(time.Duration(float64(n) / float64(b.perSec) * float64(time.Second)))
	b.add(n)
}

// withdraw takes one retry from the budget and reports whether it could.
func (b *Budget) withdraw() bool {
	b.refill()
	for {
		old := b.tokens.Load()
		if old < unit {
			return false
		}
		if b.tokens.CompareAndSwap(old, old-unit) {
			return true
		}
	}
}

// Available returns how many retries the budget would allow now.
func (b *Budget) Available() int {
	b.refill()
	return int(b.tokens.Load() / unit)
}
