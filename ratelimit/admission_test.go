package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/ratelimit"
)

// TestReadsDoNotQueueBehindWork: with every slot of engine work taken, a
// read goes through at once in its own pool.
func TestReadsDoNotQueueBehindWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		base := newStub(func(ctx context.Context, op contract.Op) error {
			if op == contract.OpStartContainer {
				<-release
			}
			return nil
		})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1), ratelimit.WithReadConcurrency(4),
			ratelimit.WithMaxWait(time.Hour))(base)
		go start(context.Background(), d)
		synctest.Wait()
		t0 := time.Now()
		if _, err := d.GetContainer(t.Context(), "c1"); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(t0); el != 0 {
			t.Errorf("read waited %v behind engine work", el)
		}
		close(release)
	})
}

// TestContinueBeforeCreate: when a slot frees, a call that continues a
// session goes before a create that waited longer.
func TestContinueBeforeCreate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var mu sync.Mutex
		var order []contract.Op
		base := newStub(func(ctx context.Context, op contract.Op) error {
			if op == contract.OpRemoveContainer {
				<-release
				return nil
			}
			mu.Lock()
			order = append(order, op)
			mu.Unlock()
			return nil
		})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1), ratelimit.WithMaxWait(time.Hour))(base)
		go d.RemoveContainer(context.Background(), "busy")
		synctest.Wait()
		var wg sync.WaitGroup
		wg.Go(func() { d.CreateContainer(context.Background(), contract.NewContainerConfig("s", "alpine")) })
		synctest.Wait()
		wg.Go(func() { d.StopContainer(context.Background(), "c1", contract.StopOptions{}) })
		synctest.Wait()
		close(release)
		wg.Wait()
		if len(order) != 2 || order[0] != contract.OpStopContainer || order[1] != contract.OpCreateContainer {
			t.Errorf("order = %v, want the stop before the create", order)
		}
	})
}

// TestRefusesWhatCannotFinishInTime: a call that, by the pool's estimate
// of its recent service times, cannot be admitted within its caller's
// deadline is refused at once, with a RetryAfter past that deadline; a
// call without a deadline waits.
func TestRefusesWhatCannotFinishInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newStub(func(ctx context.Context, op contract.Op) error {
			time.Sleep(time.Second)
			return nil
		})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1), ratelimit.WithMaxWait(time.Hour))(base)
		for range 5 { // teach the pool that a call takes 1s
			start(context.Background(), d)
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { start(context.Background(), d) })
		}
		synctest.Wait()

		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		t0 := time.Now()
		de := wantLimited(t, start(ctx, d))
		if el := time.Since(t0); el != 0 {
			t.Errorf("refused after %v, want at once", el)
		}
		if de.RetryAfter < 2*time.Second {
			t.Errorf("RetryAfter = %v, want at least the 2s the caller had left", de.RetryAfter)
		}
		// A create may only spend half its time waiting: with 3 calls of 1s
		// ahead, 5s is not enough, though 5s would be for a start.
		ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second+500*time.Millisecond)
		defer cancel()
		if _, err := d.CreateContainer(ctx, contract.NewContainerConfig("s", "alpine")); err == nil {
			t.Error("a create that would wait most of its deadline was admitted")
		}
		if err := start(ctx, d); err != nil {
			t.Errorf("a start that fits its deadline = %v", err)
		}
		wg.Wait()
		if got := base.Calls(contract.OpStartContainer); got != 5+3+1 {
			t.Errorf("starts reaching the driver = %d, want 9", got)
		}
	})
}

// TestAdaptiveLimit: the limit grows when calls do not slow down as more
// run at once, shrinks when they do, never below its floor, and shows in
// HealthCheck.
func TestAdaptiveLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inflight atomic.Int64
		congested := atomic.Bool{}
		congested.Store(true)
		base := newStub(func(ctx context.Context, op contract.Op) error {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			if congested.Load() {
				time.Sleep(time.Duration(n) * 100 * time.Millisecond) // an engine that serialises
			} else {
				time.Sleep(100 * time.Millisecond)
			}
			return nil
		})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithAdaptiveConcurrency(), ratelimit.WithMaxWait(time.Hour))(base)
		limit := func() int {
			h, err := d.HealthCheck(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return h.Limits.Work
		}
		if got := limit(); got != ratelimit.DefaultInitialConcurrency {
			t.Fatalf("initial limit = %d, want %d", got, ratelimit.DefaultInitialConcurrency)
		}
		load := func(n int) {
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() { start(context.Background(), d) })
			}
			wg.Wait()
		}
		floor := ratelimit.DefaultMinAdaptiveConcurrency
		load(400)
		if got := limit(); got != floor {
			t.Errorf("limit on a serialising engine = %d, want the floor %d", got, floor)
		}
		congested.Store(false)
		load(2000)
		high := limit()
		if high <= ratelimit.DefaultInitialConcurrency {
			t.Errorf("limit on an engine that keeps up = %d, want above %d", high, ratelimit.DefaultInitialConcurrency)
		}
		congested.Store(true)
		for range 5 { // bursts, each drained before the next
			load(200)
		}
		if low := limit(); low >= high || low < floor {
			t.Errorf("limit once the engine serialises again = %d, want below %d and at least %d", low, high, floor)
		}
	})
}

// TestRefusesWaitersThatBecameLate: a waiting create that, at its place
// in the queue, can no longer be admitted before its deadline is refused
// as soon as time passing says so, while the slot it waits for is still
// held, not when its deadline passes; one that can still be admitted
// keeps its place, even when its session might not finish in time; a
// waiter without a deadline keeps waiting.
func TestRefusesWaitersThatBecameLate(t *testing.T) {
	// The slot is held for hold while a create without a deadline and one
	// with 60s wait. The second waits for the first and for the work that
	// one brings (a start, a stop, a remove by the pool's counts) at 1s a
	// call: about 9s. With 9s left and the slot still held, it is late.
	for _, tc := range []struct {
		hold    time.Duration
		refused bool
	}{
		{hold: 45 * time.Second, refused: false}, // 15s left when the slot frees: admitted
		{hold: 57 * time.Second, refused: true},  // refused at about 51s
	} {
		t.Run(tc.hold.String(), func(t *testing.T) { testWaiterBecameLate(t, tc.hold, tc.refused) })
	}
}

func testWaiterBecameLate(t *testing.T, hold time.Duration, refused bool) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		base := newStub(func(ctx context.Context, op contract.Op) error {
			if op == contract.OpStopContainer {
				<-release
				return nil
			}
			time.Sleep(time.Second)
			return nil
		})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1), ratelimit.WithMaxWait(0))(base)
		for range 5 { // teach the pool that a call takes 1s
			start(context.Background(), d)
		}
		// A stop holds the slot: its time is its grace period, which says
		// nothing of the engine's speed, so the pool does not learn from it.
		go d.StopContainer(context.Background(), "busy", contract.StopOptions{})
		synctest.Wait()

		create := func(ctx context.Context) error {
			_, err := d.CreateContainer(ctx, contract.NewContainerConfig("s", "alpine"))
			return err
		}
		var first, patient, late error
		var lateAt time.Duration
		var wg sync.WaitGroup
		t0 := time.Now()
		wg.Go(func() { first = create(context.Background()) })
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		wg.Go(func() {
			late = create(ctx)
			lateAt = time.Since(t0)
		})
		synctest.Wait()
		wg.Go(func() { patient = create(context.Background()) })
		synctest.Wait()
		if lateAt != 0 {
			t.Fatalf("the create with a deadline was refused at once (%v): nothing says it is late yet", late)
		}

		time.Sleep(hold)
		close(release)
		wg.Wait()
		if first != nil || patient != nil {
			t.Errorf("creates without a deadline: %v, %v; want both admitted", first, patient)
		}
		wantCreates := 3
		if refused {
			wantCreates = 2
			var de *contract.DriverError
			if !errors.As(late, &de) || de.Code != contract.CodeRateLimited || !de.Retryable {
				t.Fatalf("late create: %v, want a retryable RATE_LIMITED", late)
			}
			if lateAt < 50*time.Second || lateAt > 53*time.Second {
				t.Errorf("late create refused after %v, want at about 51s, with the slot still held", lateAt)
			}
			if left := 60*time.Second - lateAt; de.RetryAfter < left {
				t.Errorf("RetryAfter = %v, want at least the %v its caller had left", de.RetryAfter, left)
			}
		} else if late != nil {
			t.Errorf("create that could still be admitted: %v, want admitted", late)
		}
		if got := base.Calls(contract.OpCreateContainer); got != wantCreates {
			t.Errorf("creates reaching the driver = %d, want %d", got, wantCreates)
		}
	})
}

// TestRefusesBehindCallsThatRunLong: the pool has seen calls of 10ms; a
// call that has been running for seconds says the engine is slower now
// before it returns, and a create waiting behind it is refused as soon as
// the calls in flight make it late, not when its deadline passes.
func TestRefusesBehindCallsThatRunLong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var slow atomic.Bool
		base := newStub(func(ctx context.Context, op contract.Op) error {
			if slow.Load() {
				<-release
				return nil
			}
			time.Sleep(10 * time.Millisecond)
			return nil
		})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(1), ratelimit.WithMaxWait(0))(base)
		for range 5 {
			start(context.Background(), d)
		}
		slow.Store(true)
		go start(context.Background(), d)
		synctest.Wait()

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		t0 := time.Now()
		_, err := d.CreateContainer(ctx, contract.NewContainerConfig("s", "alpine"))
		el := time.Since(t0)
		var de *contract.DriverError
		if !errors.As(err, &de) || de.Code != contract.CodeRateLimited || !de.Retryable {
			t.Fatalf("create behind a slow call: %v, want a retryable RATE_LIMITED", err)
		}
		// The create and the work it brings, about 4.4 calls at the start's
		// age a, exceed the 10s-a left once a passes about 1.9s.
		if el < time.Second || el > 3*time.Second {
			t.Errorf("refused after %v, want at about 2s, while the slow call still runs", el)
		}
		if de.RetryAfter < 10*time.Second-el {
			t.Errorf("RetryAfter = %v, want at least the %v its caller had left", de.RetryAfter, 10*time.Second-el)
		}
		if got := base.Calls(contract.OpCreateContainer); got != 0 {
			t.Errorf("creates reaching the driver = %d, want 0", got)
		}
		close(release)
	})
}

// TestAdaptiveLimitSustainedOverload: under an overload that lasts, on an
// engine that serialises, the limit stays low however many calls it
// sees: the slow times of an overload never become the norm.
func TestAdaptiveLimitSustainedOverload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inflight atomic.Int64
		base := newStub(func(ctx context.Context, op contract.Op) error {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			time.Sleep(time.Duration(n) * 100 * time.Millisecond)
			return nil
		})
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithAdaptiveConcurrency(), ratelimit.WithMaxWait(time.Hour))(base)
		const calls = 4000
		var done atomic.Int64
		var wg sync.WaitGroup
		for range calls {
			wg.Go(func() {
				start(context.Background(), d)
				done.Add(1)
			})
		}
		highest := 0
		for done.Load() < calls {
			time.Sleep(10 * time.Second)
			h, err := d.HealthCheck(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if done.Load() > 200 && done.Load() < calls-200 {
				highest = max(highest, h.Limits.Work)
			}
		}
		wg.Wait()
		t.Logf("highest limit during the overload: %d", highest)
		if floor := ratelimit.DefaultMinAdaptiveConcurrency; highest > floor+floor/2 {
			t.Errorf("highest limit during a sustained overload = %d, want at most %d", highest, floor+floor/2)
		}
	})
}

// TestBurstRefusedEarly: a burst of sessions on an engine that serialises
// starts, with a deadline each. The first slots free in a batch (creates
// that began together end together), which says nothing of the rate the
// engine sustains: nearly all the sessions that cannot finish are refused
// within the first third of their deadline, not as it runs out (with the
// smoothed interval between grants the pool used before, 57 of 76 came
// after 4s), and as many finish as the engine has room for.
func TestBurstRefusedEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(8), ratelimit.WithMaxWait(0))(serialStarts())
		b := runBurst(d, 120, 12*time.Second, 4*time.Second)
		t.Logf("%+v", b)
		// Starts of 300ms one at a time: at most 40 sessions in 12s.
		if b.done < 30 {
			t.Errorf("%d sessions done, want at least 30 of the 40 the engine has room for", b.done)
		}
		if b.refused-b.within > b.refused/5 {
			t.Errorf("%d of %d refusals after 4s, want at most a fifth", b.refused-b.within, b.refused)
		}
	})
}

// TestWarmBurstRefusedAtOnce: the same burst on a driver that has been
// through one before: what the pool measured then tells it at once which
// sessions cannot finish, and most are refused as they arrive.
func TestWarmBurstRefusedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := ratelimit.New(rate.Inf, 0, ratelimit.WithMaxConcurrent(8), ratelimit.WithMaxWait(0))(serialStarts())
		runBurst(d, 120, 12*time.Second, 0)
		time.Sleep(time.Minute)
		b := runBurst(d, 120, 12*time.Second, time.Millisecond)
		t.Logf("%+v", b)
		if b.done < 30 {
			t.Errorf("%d sessions done, want at least 30 of the 40 the engine has room for", b.done)
		}
		if b.within < b.refused*3/4 {
			t.Errorf("%d of %d refusals as they arrived, want at least three quarters", b.within, b.refused)
		}
	})
}

// serialStarts returns an engine that starts containers one at a time, as
// Docker does: a start takes 300ms, a stop 200ms, anything else 50ms.
func serialStarts() *stub {
	starting := make(chan struct{}, 1) // not a sync.Mutex: synctest's clock waits for no Lock
	return newStub(func(ctx context.Context, op contract.Op) error {
		switch op {
		case contract.OpStartContainer:
			starting <- struct{}{}
			defer func() { <-starting }()
			time.Sleep(300 * time.Millisecond)
		case contract.OpStopContainer:
			time.Sleep(200 * time.Millisecond)
		default:
			time.Sleep(50 * time.Millisecond)
		}
		return ctx.Err()
	})
}

// burst is what runBurst counted.
type burst struct {
	done, refused, within, other int // within: refused within the bound
}

// runBurst runs n sessions at once through d (create, start, stop,
// remove), each with deadline, and counts their outcomes.
func runBurst(d contract.ContainerDriver, n int, deadline, within time.Duration) burst {
	var (
		mu sync.Mutex
		b  burst
		wg sync.WaitGroup
	)
	t0 := time.Now()
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			inst, err := d.CreateContainer(ctx, contract.NewContainerConfig("s", "alpine"))
			if err == nil {
				err = d.StartContainer(ctx, inst.ID)
			}
			if err == nil {
				err = d.StopContainer(ctx, inst.ID, contract.StopOptions{})
			}
			if err == nil {
				err = d.RemoveContainer(ctx, inst.ID)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				b.done++
			case errors.Is(err, contract.ErrRateLimited) && contract.IsRetryable(err):
				b.refused++
				if time.Since(t0) <= within {
					b.within++
				}
			default:
				b.other++
			}
		})
	}
	wg.Wait()
	return b
}
