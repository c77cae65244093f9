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

// runs counts the times a memdriver container was started, from its log.
func (f *fixture) runs(t *testing.T, id string) int {
	t.Helper()
	logs, err := f.mem.GetContainerLogs(t.Context(), id, contract.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(logs, "memdriver: started")
}

// TestStartAfterUnknownOutcome: a start whose answer is lost is not
// repeated when the container started, even when a one-shot container has
// exited again by the time of the retry; it is repeated when the start
// never happened.
func TestStartAfterUnknownOutcome(t *testing.T) {
	tests := []struct {
		name      string
		ranBefore bool // the container ran and exited before the call
		fault     drivertest.Fault
		duringGap func(f *fixture, id string) // in the wait before the retry
		wantCalls int
		wantRuns  int // runs during the call
		wantErr   error
	}{
		{"started, answer lost, exited before the retry",
			false, drivertest.Fault{Count: 1, Err: timeout, After: true},
			func(f *fixture, id string) { _ = f.mem.Exit(id) }, 1, 1, nil},
		{"started, answer lost, still running",
			false, drivertest.Fault{Count: 1, Err: network, After: true}, nil, 1, 1, nil},
		{"restarted, answer lost, exited before the retry",
			true, drivertest.Fault{Count: 1, Err: timeout, After: true},
			func(f *fixture, id string) { _ = f.mem.Exit(id) }, 1, 1, nil},
		{"lost before the engine acted",
			false, drivertest.Fault{Count: 1, Err: network}, nil, 2, 1, nil},
		{"restart lost before the engine acted",
			true, drivertest.Fault{Count: 1, Err: network}, nil, 2, 1, nil},
		{"removed before the retry",
			false, drivertest.Fault{Count: 1, Err: timeout},
			func(f *fixture, id string) { _ = f.mem.RemoveContainer(context.Background(), id) }, 1, 0, contract.ErrContainerNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var f *fixture
				var id string
				f = newFixture(noJitter, retry.WithOnRetry(func(context.Context, retry.Info) {
					if tt.duringGap != nil {
						tt.duringGap(f, id)
					}
				}))
				id = f.container(t)
				before := 0
				if tt.ranBefore {
					if err := f.mem.StartContainer(t.Context(), id); err != nil {
						t.Fatal(err)
					}
					_ = f.mem.Exit(id)
					before = 1
					time.Sleep(time.Minute)
				}
				f.faulty.Inject(contract.OpStartContainer, tt.fault)
				err := f.d.StartContainer(t.Context(), id)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("StartContainer = %v, want %v", err, tt.wantErr)
					}
				} else if err != nil {
					t.Fatalf("StartContainer = %v, want success", err)
				}
				if got := f.faulty.Calls(contract.OpStartContainer); got != tt.wantCalls {
					t.Errorf("starts sent = %d, want %d", got, tt.wantCalls)
				}
				if tt.wantErr == nil {
					if got := f.runs(t, id) - before; got != tt.wantRuns {
						t.Errorf("the container ran %d times in one call, want %d", got, tt.wantRuns)
					}
				}
			})
		})
	}
}

// TestStopAfterUnknownOutcome: a stop whose answer is lost is not repeated
// once the container no longer runs.
func TestStopAfterUnknownOutcome(t *testing.T) {
	for _, tt := range []struct {
		name      string
		fault     drivertest.Fault
		wantCalls int
	}{
		{"stopped, answer lost", drivertest.Fault{Count: 1, Err: timeout, After: true}, 1},
		{"lost before the engine acted", drivertest.Fault{Count: 1, Err: network}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(noJitter)
				id := f.container(t)
				if err := f.mem.StartContainer(t.Context(), id); err != nil {
					t.Fatal(err)
				}
				f.faulty.Inject(contract.OpStopContainer, tt.fault)
				if err := f.d.StopContainer(t.Context(), id, contract.StopOptions{}); err != nil {
					t.Fatalf("StopContainer = %v, want success", err)
				}
				if got := f.faulty.Calls(contract.OpStopContainer); got != tt.wantCalls {
					t.Errorf("stops sent = %d, want %d", got, tt.wantCalls)
				}
				if inst, _ := f.mem.GetContainer(t.Context(), id); inst == nil || inst.Status != contract.StatusStopped {
					t.Errorf("container = %+v, want stopped", inst)
				}
			})
		})
	}
}

// TestStateReadFailsToo: when the read of the container's state fails as
// well, that counts as the attempt, and the next one reads again before it
// repeats anything.
func TestStateReadFailsToo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f *fixture
		var id string
		f = newFixture(noJitter, retry.WithMaxAttempts(4), retry.WithOnRetry(func(context.Context, retry.Info) {
			_ = f.mem.Exit(id)
		}))
		id = f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Count: 1, Err: timeout, After: true})
		f.faulty.Inject(contract.OpGetContainer, drivertest.Fault{Count: 2, Err: network})
		if err := f.d.StartContainer(t.Context(), id); err != nil {
			t.Fatalf("StartContainer = %v, want success", err)
		}
		if got := f.faulty.Calls(contract.OpStartContainer); got != 1 {
			t.Errorf("starts sent = %d, want 1", got)
		}
		if got := f.faulty.Calls(contract.OpGetContainer); got != 3 {
			t.Errorf("state reads = %d, want 3", got)
		}
		if got := f.runs(t, id); got != 1 {
			t.Errorf("ran %d times, want 1", got)
		}

		// Out of attempts while reading: the call fails with the read's
		// error, and the start is not sent again.
		f = newFixture(noJitter, retry.WithMaxAttempts(3))
		id = f.container(t)
		f.faulty.Inject(contract.OpStartContainer, drivertest.Fault{Count: 1, Err: timeout, After: true})
		f.faulty.Inject(contract.OpGetContainer, drivertest.Fault{Err: network})
		err := f.d.StartContainer(t.Context(), id)
		wantError(t, err, 3, retry.ErrMaxAttempts)
		if got := f.faulty.Calls(contract.OpStartContainer); got != 1 {
			t.Errorf("starts sent = %d, want 1", got)
		}
	})
}
