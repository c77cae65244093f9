package drivertest_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/drivertest"
	"github.com/resilientdriver/resilient/memdriver"
)

var (
	errA = contract.NewError(contract.CodeNetwork, "", "", "fault A", nil)
	errB = contract.NewError(contract.CodeTimeout, "", "", "fault B", nil)
)

type rule struct {
	op    contract.Op
	fault drivertest.Fault
}

func TestFaultyRules(t *testing.T) {
	const op = contract.OpHealthCheck
	tests := []struct {
		name  string
		rules []rule
		calls int
		// want is the error of each call, nil for success.
		want []error
		// wantReached is how many calls reached the wrapped driver.
		wantReached int
	}{
		{
			name:        "no rules",
			calls:       3,
			want:        []error{nil, nil, nil},
			wantReached: 3,
		},
		{
			name:        "every call",
			rules:       []rule{{op, drivertest.Fault{Err: errA}}},
			calls:       3,
			want:        []error{errA, errA, errA},
			wantReached: 0,
		},
		{
			name:        "nth only",
			rules:       []rule{{op, drivertest.Fault{Nth: 2, Count: 1, Err: errA}}},
			calls:       4,
			want:        []error{nil, errA, nil, nil},
			wantReached: 3,
		},
		{
			name:        "from nth on",
			rules:       []rule{{op, drivertest.Fault{Nth: 3, Err: errA}}},
			calls:       5,
			want:        []error{nil, nil, errA, errA, errA},
			wantReached: 2,
		},
		{
			name:        "first count calls",
			rules:       []rule{{op, drivertest.Fault{Count: 2, Err: errA}}},
			calls:       4,
			want:        []error{errA, errA, nil, nil},
			wantReached: 2,
		},
		{
			name:        "nth 1 is nth 0",
			rules:       []rule{{op, drivertest.Fault{Nth: 1, Count: 1, Err: errA}}},
			calls:       2,
			want:        []error{errA, nil},
			wantReached: 1,
		},
		{
			name: "first match wins",
			rules: []rule{
				{op, drivertest.Fault{Nth: 1, Count: 2, Err: errA}},
				{op, drivertest.Fault{Nth: 2, Count: 2, Err: errB}},
			},
			calls:       4,
			want:        []error{errA, errA, errB, nil},
			wantReached: 1,
		},
		{
			name: "latency-only rule does not mask an error",
			rules: []rule{
				{op, drivertest.Fault{Latency: time.Nanosecond}},
				{op, drivertest.Fault{Nth: 2, Count: 1, Err: errB}},
			},
			calls:       2,
			want:        []error{nil, errB},
			wantReached: 1,
		},
		{
			name:        "after",
			rules:       []rule{{op, drivertest.Fault{Count: 2, Err: errA, After: true}}},
			calls:       3,
			want:        []error{errA, errA, nil},
			wantReached: 3,
		},
		{
			name:        "other op",
			rules:       []rule{{contract.OpGetContainer, drivertest.Fault{Err: errA}}},
			calls:       2,
			want:        []error{nil, nil},
			wantReached: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := drivertest.NewFaulty(memdriver.New()) // counts what reaches it
			f := drivertest.NewFaulty(inner)
			for _, r := range tt.rules {
				f.Inject(r.op, r.fault)
			}
			for i := range tt.calls {
				h, err := f.HealthCheck(t.Context())
				if err != tt.want[i] {
					t.Errorf("call %d: error = %v, want %v", i+1, err, tt.want[i])
				}
				if err == nil && h.Status != contract.Healthy {
					t.Errorf("call %d: status %q, want the wrapped driver's healthy", i+1, h.Status)
				}
			}
			if got := f.Calls(op); got != tt.calls {
				t.Errorf("Calls = %d, want %d", got, tt.calls)
			}
			if got := inner.Calls(op); got != tt.wantReached {
				t.Errorf("calls reaching the wrapped driver = %d, want %d", got, tt.wantReached)
			}
		})
	}
}

func TestFaultyAfter(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()
	f := drivertest.NewFaulty(d)
	f.Inject(contract.OpCreateContainer, drivertest.Fault{Count: 1, Err: errA, After: true})

	inst, err := f.CreateContainer(ctx, contract.NewContainerConfig("s", "alpine:3.20"))
	if !errors.Is(err, errA) || inst.ID != "" {
		t.Fatalf("CreateContainer = %+v, %v, want the zero instance and the fault", inst, err)
	}
	list, _ := d.ListContainers(ctx, contract.ContainerFilter{})
	if len(list) != 1 {
		t.Errorf("the wrapped driver has %d containers, want the 1 the lost call made", len(list))
	}
}

// TestFaultyAfterZeroResults checks that a call whose response is lost
// returns the method's zero results, whatever the wrapped driver answered.
func TestFaultyAfterZeroResults(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()
	inst, err := d.CreateContainer(ctx, contract.NewContainerConfig("s", "alpine:3.20"))
	if err != nil {
		t.Fatal(err)
	}
	f := drivertest.NewFaulty(d)
	for _, op := range []contract.Op{contract.OpHealthCheck, contract.OpGetContainer, contract.OpIsContainerHealthy, contract.OpCreateVolume} {
		f.Inject(op, drivertest.Fault{Err: errA, After: true})
	}
	if h, err := f.HealthCheck(ctx); err != errA || h.Status != "" || h.Version != "" {
		t.Errorf("HealthCheck = %+v, %v, want the zero report and the fault", h, err)
	}
	if got, err := f.GetContainer(ctx, inst.ID); err != errA || got != nil {
		t.Errorf("GetContainer = %+v, %v, want nil and the fault", got, err)
	}
	if ok, err := f.IsContainerHealthy(ctx, inst.ID); err != errA || ok {
		t.Errorf("IsContainerHealthy = %v, %v, want false and the fault", ok, err)
	}
	if v, err := f.CreateVolume(ctx, contract.VolumeConfig{Name: "v"}); err != errA || v.ID != "" {
		t.Errorf("CreateVolume = %+v, %v, want the zero volume and the fault", v, err)
	}
}

// closeRecorder records whether the streams it returns are closed.
type closeRecorder struct {
	contract.ContainerDriver
	closed atomic.Bool
}

func (c *closeRecorder) StreamContainerLogs(context.Context, string, contract.LogOptions) (io.ReadCloser, error) {
	return recordingReader{&c.closed}, nil
}

type recordingReader struct{ closed *atomic.Bool }

func (r recordingReader) Read([]byte) (int, error) { return 0, io.EOF }
func (r recordingReader) Close() error             { r.closed.Store(true); return nil }

func TestFaultyStream(t *testing.T) {
	ctx := t.Context()

	t.Run("delegates", func(t *testing.T) {
		d := memdriver.New()
		f := drivertest.NewFaulty(d)
		inst, _ := f.CreateContainer(ctx, contract.NewContainerConfig("s", "alpine:3.20"))
		_ = d.WriteLog(inst.ID, memdriver.Stdout, "hello")
		rc, err := f.StreamContainerLogs(ctx, inst.ID, contract.LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if b, err := io.ReadAll(rc); string(b) != "hello\n" || err != nil {
			t.Errorf("stream = %q, %v", b, err)
		}
		if f.Calls(contract.OpStreamContainerLogs) != 1 {
			t.Errorf("Calls(StreamContainerLogs) = %d, want 1", f.Calls(contract.OpStreamContainerLogs))
		}
	})

	t.Run("unsupported", func(t *testing.T) {
		plain := struct{ contract.ContainerDriver }{memdriver.New()}
		f := drivertest.NewFaulty(plain)
		_, err := f.StreamContainerLogs(ctx, "x", contract.LogOptions{})
		if !errors.Is(err, contract.ErrConfiguration) || contract.IsRetryable(err) {
			t.Errorf("StreamContainerLogs on a driver without it = %v, want a CONFIGURATION error", err)
		}
		if f.Calls(contract.OpStreamContainerLogs) != 1 {
			t.Errorf("Calls(StreamContainerLogs) = %d, want 1", f.Calls(contract.OpStreamContainerLogs))
		}
		if f.Unwrap() != plain {
			t.Error("Unwrap does not return the wrapped driver")
		}
	})

	t.Run("after closes the lost stream", func(t *testing.T) {
		rec := &closeRecorder{ContainerDriver: memdriver.New()}
		f := drivertest.NewFaulty(rec)
		f.Inject(contract.OpStreamContainerLogs, drivertest.Fault{Err: errA, After: true})
		rc, err := f.StreamContainerLogs(ctx, "x", contract.LogOptions{})
		if rc != nil || !errors.Is(err, errA) {
			t.Errorf("StreamContainerLogs = %v, %v, want nil, the fault", rc, err)
		}
		if !rec.closed.Load() {
			t.Error("the stream of a call whose response was lost was not closed")
		}
	})
}

func TestFaultyLatency(t *testing.T) {
	const op = contract.OpGetContainer
	tests := []struct {
		name        string
		latencies   []time.Duration
		deadline    time.Duration // 0: none
		cancelAfter time.Duration // 0: never
		wantElapsed time.Duration
		wantErr     error // context error the result wraps, nil for success
		wantRetry   bool
	}{
		{name: "one rule", latencies: []time.Duration{2 * time.Second}, wantElapsed: 2 * time.Second},
		{name: "latencies add", latencies: []time.Duration{2 * time.Second, 3 * time.Second}, wantElapsed: 5 * time.Second},
		{
			name: "deadline", latencies: []time.Duration{5 * time.Second}, deadline: time.Second,
			wantElapsed: time.Second, wantErr: context.DeadlineExceeded, wantRetry: true,
		},
		{
			name: "cancel", latencies: []time.Duration{5 * time.Second}, cancelAfter: 2 * time.Second,
			wantElapsed: 2 * time.Second, wantErr: context.Canceled, wantRetry: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := drivertest.NewFaulty(memdriver.New())
				f := drivertest.NewFaulty(inner)
				for _, l := range tt.latencies {
					f.Inject(op, drivertest.Fault{Latency: l})
				}
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.deadline > 0 {
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				if tt.cancelAfter > 0 {
					timer := time.AfterFunc(tt.cancelAfter, cancel)
					defer timer.Stop()
				}
				start := time.Now()
				_, err := f.GetContainer(ctx, "x")
				if got := time.Since(start); got != tt.wantElapsed {
					t.Errorf("call took %v, want %v", got, tt.wantElapsed)
				}
				if tt.wantErr == nil {
					if err != nil {
						t.Errorf("error = %v, want nil", err)
					}
					if inner.Calls(op) != 1 {
						t.Errorf("the wrapped driver was called %d times, want 1", inner.Calls(op))
					}
					return
				}
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, contract.ErrTimeout) {
					t.Errorf("error = %v, want TIMEOUT wrapping %v", err, tt.wantErr)
				}
				if contract.IsRetryable(err) != tt.wantRetry {
					t.Errorf("IsRetryable(%v) = %v, want %v", err, contract.IsRetryable(err), tt.wantRetry)
				}
				if inner.Calls(op) != 0 {
					t.Errorf("the wrapped driver was called after the context was done")
				}
			})
		})
	}
}

func TestFaultyConcurrentCounting(t *testing.T) {
	const (
		goroutines = 32
		each       = 20
		total      = goroutines * each
	)
	inner := drivertest.NewFaulty(memdriver.New())
	f := drivertest.NewFaulty(inner)
	f.Inject(contract.OpListContainers, drivertest.Fault{Nth: 100, Count: 50, Err: errA})
	var failed atomic.Int64
	var mu sync.Mutex
	var failedCalls []int
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if _, err := f.ListContainers(t.Context(), contract.ContainerFilter{}); err != nil {
					failed.Add(1)
					mu.Lock()
					failedCalls = append(failedCalls, f.Calls(contract.OpListContainers))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if got := f.Calls(contract.OpListContainers); got != total {
		t.Errorf("Calls = %d, want %d", got, total)
	}
	if got := failed.Load(); got != 50 {
		t.Errorf("%d calls failed, want exactly 50", got)
	}
	if got := inner.Calls(contract.OpListContainers); got != total-50 {
		t.Errorf("%d calls reached the wrapped driver, want %d", got, total-50)
	}
	if slices.Min(failedCalls) < 100 {
		t.Errorf("a call before the 100th failed: counts seen at failures %v", failedCalls)
	}
}

func TestFaultyReset(t *testing.T) {
	f := drivertest.NewFaulty(memdriver.New())
	f.Inject(contract.OpHealthCheck, drivertest.Fault{Err: errA})
	if _, err := f.HealthCheck(t.Context()); err != errA {
		t.Fatalf("HealthCheck = %v, want the fault", err)
	}
	f.Reset()
	if f.Calls(contract.OpHealthCheck) != 0 {
		t.Errorf("Calls after Reset = %d, want 0", f.Calls(contract.OpHealthCheck))
	}
	if _, err := f.HealthCheck(t.Context()); err != nil {
		t.Errorf("HealthCheck after Reset = %v, want nil", err)
	}
	if f.Calls(contract.OpHealthCheck) != 1 {
		t.Errorf("Calls = %d, want 1", f.Calls(contract.OpHealthCheck))
	}
}

func TestFaultyDelegates(t *testing.T) {
	d := memdriver.New()
	f := drivertest.NewFaulty(d)
	if f.Name() != d.Name() || f.Version() != d.Version() {
		t.Errorf("Name, Version = %q, %q, want %q, %q", f.Name(), f.Version(), d.Name(), d.Version())
	}
	if f.Unwrap() != d {
		t.Error("Unwrap does not return the wrapped driver")
	}
	for _, op := range contract.Ops() {
		if f.Calls(op) != 0 {
			t.Errorf("Name or Version counted as %s", op)
		}
	}
}

func TestFaultyInjectNegativePanics(t *testing.T) {
	for _, fault := range []drivertest.Fault{{Nth: -1}, {Count: -1}, {Latency: -time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Inject(%+v) did not panic", fault)
				}
			}()
			drivertest.NewFaulty(memdriver.New()).Inject(contract.OpHealthCheck, fault)
		}()
	}
}

// TestFaultyEveryOp checks that every operation is counted under its own
// Op and subject to its rules.
func TestFaultyEveryOp(t *testing.T) {
	ctx := t.Context()
	calls := map[contract.Op]func(f *drivertest.Faulty) error{
		contract.OpCreateContainer: func(f *drivertest.Faulty) error {
			_, err := f.CreateContainer(ctx, contract.NewContainerConfig("s", "alpine:3.20"))
			return err
		},
		contract.OpStartContainer: func(f *drivertest.Faulty) error { return f.StartContainer(ctx, "x") },
		contract.OpStopContainer: func(f *drivertest.Faulty) error {
			return f.StopContainer(ctx, "x", contract.StopOptions{})
		},
		contract.OpRemoveContainer: func(f *drivertest.Faulty) error { return f.RemoveContainer(ctx, "x") },
		contract.OpGetContainer: func(f *drivertest.Faulty) error {
			_, err := f.GetContainer(ctx, "x")
			return err
		},
		contract.OpListContainers: func(f *drivertest.Faulty) error {
			_, err := f.ListContainers(ctx, contract.ContainerFilter{})
			return err
		},
		contract.OpGetContainerLogs: func(f *drivertest.Faulty) error {
			_, err := f.GetContainerLogs(ctx, "x", contract.LogOptions{})
			return err
		},
		contract.OpHealthCheck: func(f *drivertest.Faulty) error { _, err := f.HealthCheck(ctx); return err },
		contract.OpIsContainerHealthy: func(f *drivertest.Faulty) error {
			_, err := f.IsContainerHealthy(ctx, "x")
			return err
		},
		contract.OpCreateVolume: func(f *drivertest.Faulty) error {
			_, err := f.CreateVolume(ctx, contract.VolumeConfig{Name: "v"})
			return err
		},
		contract.OpRemoveVolume: func(f *drivertest.Faulty) error { return f.RemoveVolume(ctx, "x") },
		contract.OpCreateNetwork: func(f *drivertest.Faulty) error {
			_, err := f.CreateNetwork(ctx, contract.NetworkConfig{Name: "n"})
			return err
		},
		contract.OpRemoveNetwork: func(f *drivertest.Faulty) error { return f.RemoveNetwork(ctx, "x") },
		contract.OpStreamContainerLogs: func(f *drivertest.Faulty) error {
			rc, err := f.StreamContainerLogs(ctx, "x", contract.LogOptions{})
			if rc != nil {
				rc.Close()
			}
			return err
		},
		contract.OpExecContainer: func(f *drivertest.Faulty) error {
			_, err := f.ExecContainer(ctx, "x", contract.ExecOptions{Command: []string{"true"}})
			return err
		},
		contract.OpCopyToContainer: func(f *drivertest.Faulty) error {
			return f.CopyToContainer(ctx, "x", "/tmp", strings.NewReader(""))
		},
		contract.OpCopyFromContainer: func(f *drivertest.Faulty) error {
			rc, err := f.CopyFromContainer(ctx, "x", "/tmp")
			if rc != nil {
				rc.Close()
			}
			return err
		},
		contract.OpContainerStats: func(f *drivertest.Faulty) error {
			_, err := f.ContainerStats(ctx, "x")
			return err
		},
	}
	if len(calls) != contract.NumOps {
		t.Fatalf("test covers %d ops, want %d", len(calls), contract.NumOps)
	}
	for op, call := range calls {
		f := drivertest.NewFaulty(memdriver.New())
		f.Inject(op, drivertest.Fault{Err: errB})
		if err := call(f); err != errB {
			t.Errorf("%s = %v, want the injected fault", op, err)
		}
		for other := range calls {
			want := 0
			if other == op {
				want = 1
			}
			if got := f.Calls(other); got != want {
				t.Errorf("after one %s call, Calls(%s) = %d, want %d", op, other, got, want)
			}
		}
	}
}
