package retry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/retry"
)

// wantAttemptTimeout checks that err is the TIMEOUT error of an attempt
// cut at d.
func wantAttemptTimeout(t *testing.T, err error, op contract.Op, id string, d time.Duration) {
	t.Helper()
	var de *contract.DriverError
	if !errors.As(err, &de) || de.Code != contract.CodeTimeout {
		t.Fatalf("err = %v, want a TIMEOUT *contract.DriverError", err)
	}
	if !de.Retryable || !contract.IsRetryable(err) {
		t.Errorf("attempt timeout %v is not retryable", err)
	}
	if de.Op != op || de.ID != id {
		t.Errorf("Op, ID = %q, %q, want %q, %q", de.Op, de.ID, op, id)
	}
	if want := "attempt took longer than " + d.String(); !strings.Contains(de.Message, want) {
		t.Errorf("Message = %q, want it to say %q", de.Message, want)
	}
	if de.Err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("attempt timeout %v does not wrap the attempt's error", err)
	}
}

func TestAttemptTimeoutCutsHungAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var infos []retry.Info
		f := newFixture(retry.WithAttemptTimeout(time.Second), noJitter,
			retry.WithOnRetry(func(_ context.Context, info retry.Info) { infos = append(infos, info) }))
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Count: 1, Latency: time.Hour})

		start := time.Now()
		if err := f.d.StartContainer(t.Context(), id); err != nil {
			t.Fatalf("StartContainer: %v", err)
		}
		if el := time.Since(start); el != time.Second+100*time.Millisecond {
			t.Errorf("took %v, want the 1s attempt timeout plus the 100ms wait", el)
		}
		if got := f.faulty.Calls(contract.OpStartContainer); got != 2 {
			t.Errorf("calls = %d, want 2", got)
		}
		if len(infos) != 1 {
			t.Fatalf("retries = %d, want 1", len(infos))
		}
		wantAttemptTimeout(t, infos[0].Err, contract.OpStartContainer, id, time.Second)
	})
}

func TestAttemptTimeoutBlockingDriver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The driver returns the bare context error when its context is done.
		calls := 0
		stub := drivertest.NewStub(func(ctx context.Context, _ contract.Op) error {
			calls++
			if calls > 2 {
				return nil
			}
			<-ctx.Done()
			return ctx.Err()
		})
		var last error
		d := retry.New(retry.WithAttemptTimeout(500*time.Millisecond), retry.WithMaxAttempts(5), noJitter,
			retry.WithOnRetry(func(_ context.Context, info retry.Info) { last = info.Err }))(stub)
		start := time.Now()
		if _, err := d.ListContainers(t.Context(), contract.ContainerFilter{}); err != nil {
			t.Fatalf("ListContainers: %v", err)
		}
		if el := time.Since(start); el != 2*500*time.Millisecond+100*time.Millisecond+200*time.Millisecond {
			t.Errorf("took %v, want 2×500ms attempts and 100+200ms waits", el)
		}
		if got := stub.Calls(contract.OpListContainers); got != 3 {
			t.Errorf("calls = %d, want 3", got)
		}
		wantAttemptTimeout(t, last, contract.OpListContainers, "", 500*time.Millisecond)
		if !errors.Is(last, context.DeadlineExceeded) {
			t.Errorf("%v does not wrap the driver's error", last)
		}
	})
}

func TestAttemptTimeoutGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(retry.WithAttemptTimeout(time.Second), retry.WithMaxAttempts(3), noJitter)
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Latency: time.Hour})

		start := time.Now()
		err := f.d.StartContainer(t.Context(), id)
		if el := time.Since(start); el != 3*time.Second+300*time.Millisecond {
			t.Errorf("took %v, want 3×1s attempts and 100+200ms waits", el)
		}
		if got := f.faulty.Calls(contract.OpStartContainer); got != 3 {
			t.Errorf("calls = %d, want 3", got)
		}
		re := wantError(t, err, 3, retry.ErrMaxAttempts)
		wantAttemptTimeout(t, re.Err, contract.OpStartContainer, id, time.Second)
	})
}

func TestAttemptTimeoutKeepsCallerDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The caller's deadline is shorter than the attempt timeout: the
		// attempt fails with the caller's deadline and is not retried.
		f := newFixture(retry.WithAttemptTimeout(time.Second), retry.WithMaxAttempts(10))
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Latency: time.Hour})

		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := f.d.StartContainer(ctx, id)
		if el := time.Since(start); el != 500*time.Millisecond {
			t.Errorf("took %v, want the caller's 500ms", el)
		}
		if got := f.faulty.Calls(contract.OpStartContainer); got != 1 {
			t.Errorf("calls = %d, want 1", got)
		}
		wantError(t, err, 1, context.DeadlineExceeded)
		if strings.Contains(err.Error(), "attempt took longer") {
			t.Errorf("err = %v, reported as an attempt timeout", err)
		}

		// The caller's deadline falls inside the second attempt: it
		// stops the attempt and the call there, not at the attempt timeout.
		ctx2, cancel2 := context.WithTimeout(t.Context(), 1500*time.Millisecond)
		defer cancel2()
		start = time.Now()
		err = f.d.StartContainer(ctx2, id)
		if el := time.Since(start); el != 1500*time.Millisecond {
			t.Errorf("took %v, want the caller's 1.5s", el)
		}
		re := wantError(t, err, 2, context.DeadlineExceeded)
		if strings.Contains(re.Err.Error(), "attempt took longer") {
			t.Errorf("last cause %v reported as an attempt timeout", re.Err)
		}
	})
}

func TestAttemptTimeoutFastAttemptsUnchanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(retry.WithAttemptTimeout(time.Second), noJitter)
		id := f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Count: 1, Err: notFound})
		err := f.d.StartContainer(t.Context(), id)
		if err != error(notFound) {
			t.Errorf("err = %v, want the injected NOT_FOUND unchanged", err)
		}
		if err := f.d.StartContainer(t.Context(), id); err != nil {
			t.Errorf("StartContainer: %v", err)
		}
	})
}
