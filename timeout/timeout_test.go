package timeout_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/middleware"
	"github.com/resilientdriver/resilient/timeout"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hang is a stub function that blocks until the call's context is done
// and returns the bare context error, as a driver on a hung engine does.
func hang(ctx context.Context, _ contract.Op) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestCutsHungCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := timeout.New(time.Second)(drivertest.NewStub(hang))
		start := time.Now()
		err := d.StartContainer(t.Context(), "c1")
		if el := time.Since(start); el != time.Second {
			t.Errorf("took %v, want the 1s timeout", el)
		}
		var de *contract.DriverError
		if !errors.As(err, &de) || de.Code != contract.CodeTimeout || !de.Retryable || !contract.IsRetryable(err) {
			t.Fatalf("err = %v, want a retryable TIMEOUT", err)
		}
		if de.Op != contract.OpStartContainer || de.ID != "c1" || !strings.Contains(de.Message, "made no progress for 1s") {
			t.Errorf("Op, ID, Message = %q, %q, %q", de.Op, de.ID, de.Message)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v does not wrap the driver's error", err)
		}
	})
}

func TestCallerDeadlineOrCancelFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := timeout.New(time.Second)(drivertest.NewStub(hang))
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		if err := d.StartContainer(ctx, "c1"); err != context.DeadlineExceeded {
			t.Errorf("caller's deadline first: err = %v, want the driver's error as it is", err)
		}
		ctx, cancel = context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		if err := d.StartContainer(ctx, "c1"); err != context.Canceled {
			t.Errorf("caller canceled: err = %v, want the driver's error as it is", err)
		}
	})
}

func TestSuccessAndOtherErrorsPassThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := func(ctx context.Context, op contract.Op) error {
			time.Sleep(900 * time.Millisecond)
			if op == contract.OpRemoveContainer {
				return contract.ErrContainerNotFound
			}
			return nil
		}
		d := timeout.New(time.Second)(drivertest.NewStub(slow))
		if err := d.StartContainer(t.Context(), "c1"); err != nil {
			t.Errorf("StartContainer = %v", err)
		}
		if err := d.RemoveContainer(t.Context(), "c1"); err != contract.ErrContainerNotFound {
			t.Errorf("RemoveContainer = %v, want the driver's error", err)
		}
	})
}

func TestStopGetsItsGracePeriod(t *testing.T) {
	tests := []struct {
		name string
		opts contract.StopOptions
		want time.Duration
	}{
		{"grace 5s", contract.StopOptions{Timeout: 5 * time.Second}, 6 * time.Second},
		{"default grace", contract.StopOptions{}, timeout.DefaultStopGrace + time.Second},
		{"force", contract.StopOptions{Force: true, Timeout: 5 * time.Second}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := timeout.New(time.Second)(drivertest.NewStub(hang))
				start := time.Now()
				err := d.StopContainer(t.Context(), "c1", tt.opts)
				if el := time.Since(start); el != tt.want {
					t.Errorf("took %v, want %v", el, tt.want)
				}
				if !errors.Is(err, contract.ErrTimeout) {
					t.Errorf("err = %v, want TIMEOUT", err)
				}
			})
		})
	}
}

func TestForOp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := timeout.New(time.Second,
			timeout.ForOp(contract.OpGetContainer, 100*time.Millisecond),
			timeout.ForOp(contract.OpCreateContainer, 0), // none
			timeout.ForOp("NoSuchOp", time.Millisecond),
		)(drivertest.NewStub(func(ctx context.Context, op contract.Op) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Hour):
				return nil
			}
		}))
		start := time.Now()
		if _, err := d.GetContainer(t.Context(), "c1"); !errors.Is(err, contract.ErrTimeout) || time.Since(start) != 100*time.Millisecond {
			t.Errorf("GetContainer = %v after %v, want TIMEOUT after 100ms", err, time.Since(start))
		}
		start = time.Now()
		if _, err := d.CreateContainer(t.Context(), contract.NewContainerConfig("s", "alpine")); err != nil || time.Since(start) != time.Hour {
			t.Errorf("CreateContainer = %v after %v, want success after 1h (no timeout)", err, time.Since(start))
		}
		if err := timeout.New(0)(drivertest.NewStub(nil)).StartContainer(t.Context(), "c1"); err != nil {
			t.Errorf("timeout 0: %v", err)
		}
	})
}

// TestStreamNotBounded: a log stream outlives its call; the layer must not
// cut it.
func TestStreamNotBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memdriver.New()
		inst, err := mem.CreateContainer(t.Context(), contract.NewContainerConfig("s", "alpine"))
		if err != nil {
			t.Fatal(err)
		}
		if err := mem.StartContainer(t.Context(), inst.ID); err != nil {
			t.Fatal(err)
		}
		d := timeout.New(time.Second)(mem)
		rc, err := d.(contract.LogStreamer).StreamContainerLogs(t.Context(), inst.ID, contract.LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		time.Sleep(2 * time.Second)
		if err := mem.Exit(inst.ID); err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		if err != nil || !strings.Contains(string(data), "exited") {
			t.Errorf("stream after 2s = %q, %v; want it to run until the container exits", data, err)
		}
	})
}

// TestBreakerCountsTimeouts: inside a circuit breaker, the layer's TIMEOUT
// is an engine failure like any other: a hung engine opens the circuit and
// later calls fail fast.
func TestBreakerCountsTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stub := drivertest.NewStub(hang)
		d := middleware.Chain(
			breaker.New(breaker.WithConsecutiveFailures(2), breaker.WithOpenTimeout(time.Minute)),
			timeout.New(time.Second),
		)(stub)
		for range 2 {
			if err := d.StartContainer(t.Context(), "c1"); !errors.Is(err, contract.ErrTimeout) {
				t.Fatalf("err = %v, want TIMEOUT", err)
			}
		}
		start := time.Now()
		err := d.StartContainer(t.Context(), "c1")
		if !errors.Is(err, contract.ErrCircuitOpen) || time.Since(start) != 0 || contract.RetryAfter(err) <= 0 {
			t.Errorf("third call = %v after %v, want CIRCUIT_OPEN at once with a RetryAfter", err, time.Since(start))
		}
		if got := stub.Calls(contract.OpStartContainer); got != 2 {
			t.Errorf("calls reaching the engine = %d, want 2", got)
		}
	})
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
		return timeout.New(time.Minute)(memdriver.New(memdriver.WithExecHandler(drivertest.WorkloadExec)))
	})
}

// TestProgressKeepsWorkAlive: work that reports progress is not cut however
// long it takes; once it stalls, the timeout counts from its last report.
func TestProgressKeepsWorkAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pull := func(ctx context.Context, _ contract.Op) error {
			for range 20 { // 10s of a pull that receives data every 500ms
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(500 * time.Millisecond):
					contract.Progress(ctx)
				}
			}
			<-ctx.Done() // then it stalls
			return ctx.Err()
		}
		d := timeout.New(time.Second)(drivertest.NewStub(pull))
		start := time.Now()
		_, err := d.CreateContainer(t.Context(), contract.NewContainerConfig("s", "alpine"))
		if el := time.Since(start); el != 11*time.Second {
			t.Errorf("cut after %v, want 10s of progress plus the 1s timeout", el)
		}
		if !errors.Is(err, contract.ErrTimeout) || !contract.IsRetryable(err) {
			t.Errorf("err = %v, want a retryable TIMEOUT", err)
		}
		contract.Progress(t.Context()) // without the layer: nothing happens
	})
}
