package middleware_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilientdriver/resilient/middleware"
)

type otherKey struct{}

func TestAttemptTimedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if middleware.AttemptTimedOut(context.Background()) {
			t.Error("AttemptTimedOut(Background) = true")
		}

		// The attempt deadline passes: the attempt timed out, for the
		// attempt's context and the contexts made from it.
		ctx, cancel := middleware.WithAttemptDeadline(t.Context(), time.Now().Add(time.Second))
		defer cancel()
		inner := context.WithValue(ctx, otherKey{}, 1)
		if middleware.AttemptTimedOut(ctx) {
			t.Error("AttemptTimedOut before the deadline = true")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !middleware.AttemptTimedOut(ctx) || !middleware.AttemptTimedOut(inner) {
			t.Error("AttemptTimedOut after the attempt deadline = false")
		}
		if ctx.Err() != context.DeadlineExceeded {
			t.Errorf("ctx.Err() = %v, want DeadlineExceeded", ctx.Err())
		}

		// The caller's deadline comes first: not the attempt's.
		caller, cancelCaller := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancelCaller()
		ctx2, cancel2 := middleware.WithAttemptDeadline(caller, time.Now().Add(time.Second))
		defer cancel2()
		<-ctx2.Done()
		if middleware.AttemptTimedOut(ctx2) {
			t.Error("AttemptTimedOut after the caller's deadline = true")
		}

		// The caller cancels: not the attempt's.
		caller3, cancelCaller3 := context.WithCancel(t.Context())
		ctx3, cancel3 := middleware.WithAttemptDeadline(caller3, time.Now().Add(time.Second))
		defer cancel3()
		cancelCaller3()
		if middleware.AttemptTimedOut(ctx3) {
			t.Error("AttemptTimedOut after the caller's cancellation = true")
		}

		// The attempt's own cancel function: not a timeout.
		ctx4, cancel4 := middleware.WithAttemptDeadline(t.Context(), time.Now().Add(time.Second))
		cancel4()
		time.Sleep(2 * time.Second)
		if middleware.AttemptTimedOut(ctx4) {
			t.Error("AttemptTimedOut after cancel = true")
		}

		// An inner deadline of the caller's own, even past the attempt's,
		// does not hide a passed attempt deadline.
		ctx5, cancel5 := middleware.WithAttemptDeadline(t.Context(), time.Now().Add(time.Second))
		defer cancel5()
		inner5, cancelInner5 := context.WithTimeout(ctx5, time.Hour)
		defer cancelInner5()
		<-inner5.Done()
		if !middleware.AttemptTimedOut(inner5) {
			t.Error("AttemptTimedOut of a context inside the attempt's = false")
		}
	})
}

func TestAttemptTimedOutAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for _, ctx := range []context.Context{context.Background(), done} {
		if n := testing.AllocsPerRun(1000, func() { middleware.AttemptTimedOut(ctx) }); n != 0 {
			t.Errorf("AttemptTimedOut: %v allocations, want 0", n)
		}
	}
}
