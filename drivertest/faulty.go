package drivertest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

// Fault says what happens to some calls of one op.
type Fault struct {
	// Nth is the first call (1-based, counting calls of this op that reach
	// Faulty) the fault applies to; 0 means from the first call.
	Nth int
	// Count is how many consecutive calls from Nth it applies to; 0 means
	// all following calls.
	Count int
	// Err is returned by the affected calls. A fault with a nil Err only
	// adds latency.
	Err error
	// After calls the wrapped driver first, then returns Err: the response
	// is lost but the action happened. A stream the wrapped driver returned
	// is closed.
	After bool
	// Latency is how long to wait before the call, on a time.Timer that
	// also stops when the call's context is done, so it works under
	// testing/synctest. When the context is done first, the call returns a
	// TIMEOUT error wrapping ctx.Err() without reaching the wrapped driver:
	// retryable after a deadline, not after a cancellation, as
	// contract.IsRetryable reads it.
	Latency time.Duration
}

// applies reports whether the fault covers the n-th call.
func (f Fault) applies(n int) bool {
	first := max(f.Nth, 1)
	return n >= first && (f.Count == 0 || n < first+f.Count)
}

// Faulty wraps a driver and injects faults; safe for concurrent use. It is
// deterministic: which calls fail depends only on the order in which calls
// of each op reach it. Use it to test policies (retry, circuit breaking,
// timeouts) against a driver that fails exactly as told.
//
// Faulty implements contract.ContainerDriver and contract.LogStreamer; Name
// and Version are those of the wrapped driver and are not counted. When the
// wrapped driver does not implement contract.LogStreamer,
// StreamContainerLogs fails with a CONFIGURATION error saying so.
type Faulty struct {
	d contract.ContainerDriver

	mu    sync.Mutex
	rules map[contract.Op][]Fault
	calls map[contract.Op]int
}

var (
	_ contract.ContainerDriver = (*Faulty)(nil)
	_ contract.LogStreamer     = (*Faulty)(nil)
)

// NewFaulty wraps d. Until faults are injected, every call passes through.
func NewFaulty(d contract.ContainerDriver) *Faulty {
	return &Faulty{d: d, rules: map[contract.Op][]Fault{}, calls: map[contract.Op]int{}}
}

// Inject adds a rule for op. Rules of an op apply in the order they were
// added: the first rule covering a call that has an Err decides the call's
// error (and After), and the latencies of all rules covering it add up.
// Negative Nth, Count or Latency panic.
func (f *Faulty) Inject(op contract.Op, fault Fault) {
	if fault.Nth < 0 || fault.Count < 0 || fault.Latency < 0 {
		panic(fmt.Sprintf("drivertest: Faulty.Inject(%s): negative Nth, Count or Latency in %+v", op, fault))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules[op] = append(f.rules[op], fault)
}

// Calls returns how many calls of op have reached f since it was made or
// last reset, whether or not a fault affected them.
func (f *Faulty) Calls(op contract.Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Reset removes every rule and sets every count to zero.
func (f *Faulty) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.rules)
	clear(f.calls)
}

// Unwrap returns the wrapped driver.
func (f *Faulty) Unwrap() contract.ContainerDriver { return f.d }

// plan is what happens to one call.
type plan struct {
	err     error
	after   bool
	latency time.Duration
}

// begin counts a call of op and decides its fate.
func (f *Faulty) begin(op contract.Op) plan {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	n := f.calls[op]
	var p plan
	for _, r := range f.rules[op] {
		if !r.applies(n) {
			continue
		}
		p.latency += r.Latency
		if p.err == nil && r.Err != nil {
			p.err, p.after = r.Err, r.After
		}
	}
	return p
}

// wait sleeps for d or until ctx is done. It returns a TIMEOUT error
// wrapping ctx.Err() in the second case: a cancelled call is not
// retryable, one that ran out of time is, as a real driver's would be.
func wait(ctx context.Context, op contract.Op, id string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return contract.NewError(contract.CodeTimeout, op, id, "context done during injected latency", ctx.Err())
	}
}

// do runs one call of op through the rules.
func do[T any](f *Faulty, ctx context.Context, op contract.Op, id string, call func() (T, error)) (T, error) {
	var zero T
	p := f.begin(op)
	if err := wait(ctx, op, id, p.latency); err != nil {
		return zero, err
	}
	if p.err != nil && !p.after {
		return zero, p.err
	}
	v, err := call()
	if p.err != nil {
		if c, ok := any(v).(io.Closer); ok && c != nil && err == nil {
			c.Close()
		}
		return zero, p.err
	}
	return v, err
}

// do0 is do for methods that return only an error.
func do0(f *Faulty, ctx context.Context, op contract.Op, id string, call func() error) error {
	_, err := do(f, ctx, op, id, func() (struct{}, error) { return struct{}{}, call() })
	return err
}

// Name returns the wrapped driver's name.
func (f *Faulty) Name() string { return f.d.Name() }

// Version returns the wrapped driver's version.
func (f *Faulty) Version() string { return f.d.Version() }

// CreateContainer counts the call, applies the rules of OpCreateContainer
// and calls the wrapped driver.
func (f *Faulty) CreateContainer(ctx context.Context, cfg contract.ContainerConfig) (contract.ContainerInstance, error) {
	return do(f, ctx, contract.OpCreateContainer, "", func() (contract.ContainerInstance, error) {
		return f.d.CreateContainer(ctx, cfg)
	})
}

// StartContainer counts the call, applies the rules of OpStartContainer and
// calls the wrapped driver.
func (f *Faulty) StartContainer(ctx context.Context, id string) error {
	return do0(f, ctx, contract.OpStartContainer, id, func() error { return f.d.StartContainer(ctx, id) })
}

// StopContainer counts the call, applies the rules of OpStopContainer and
// calls the wrapped driver.
func (f *Faulty) StopContainer(ctx context.Context, id string, opts contract.StopOptions) error {
	return do0(f, ctx, contract.OpStopContainer, id, func() error { return f.d.StopContainer(ctx, id, opts) })
}

// RemoveContainer counts the call, applies the rules of OpRemoveContainer
// and calls the wrapped driver.
func (f *Faulty) RemoveContainer(ctx context.Context, id string) error {
	return do0(f, ctx, contract.OpRemoveContainer, id, func() error { return f.d.RemoveContainer(ctx, id) })
}

// GetContainer counts the call, applies the rules of OpGetContainer and
// calls the wrapped driver.
func (f *Faulty) GetContainer(ctx context.Context, id string) (*contract.ContainerInstance, error) {
	return do(f, ctx, contract.OpGetContainer, id, func() (*contract.ContainerInstance, error) {
		return f.d.GetContainer(ctx, id)
	})
}

// ListContainers counts the call, applies the rules of OpListContainers and
// calls the wrapped driver.
func (f *Faulty) ListContainers(ctx context.Context, filter contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	return do(f, ctx, contract.OpListContainers, "", func() ([]contract.ContainerInstance, error) {
		return f.d.ListContainers(ctx, filter)
	})
}

// GetContainerLogs counts the call, applies the rules of OpGetContainerLogs
// and calls the wrapped driver.
func (f *Faulty) GetContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (string, error) {
	return do(f, ctx, contract.OpGetContainerLogs, id, func() (string, error) {
		return f.d.GetContainerLogs(ctx, id, opts)
	})
}

// HealthCheck counts the call, applies the rules of OpHealthCheck and calls
// the wrapped driver.
func (f *Faulty) HealthCheck(ctx context.Context) (contract.DriverHealth, error) {
	return do(f, ctx, contract.OpHealthCheck, "", func() (contract.DriverHealth, error) {
		return f.d.HealthCheck(ctx)
	})
}

// IsContainerHealthy counts the call, applies the rules of
// OpIsContainerHealthy and calls the wrapped driver.
func (f *Faulty) IsContainerHealthy(ctx context.Context, id string) (bool, error) {
	return do(f, ctx, contract.OpIsContainerHealthy, id, func() (bool, error) {
		return f.d.IsContainerHealthy(ctx, id)
	})
}

// CreateVolume counts the call, applies the rules of OpCreateVolume and
// calls the wrapped driver.
func (f *Faulty) CreateVolume(ctx context.Context, cfg contract.VolumeConfig) (contract.Volume, error) {
	return do(f, ctx, contract.OpCreateVolume, "", func() (contract.Volume, error) {
		return f.d.CreateVolume(ctx, cfg)
	})
}

// RemoveVolume counts the call, applies the rules of OpRemoveVolume and
// calls the wrapped driver.
func (f *Faulty) RemoveVolume(ctx context.Context, id string) error {
	return do0(f, ctx, contract.OpRemoveVolume, id, func() error { return f.d.RemoveVolume(ctx, id) })
}

// CreateNetwork counts the call, applies the rules of OpCreateNetwork and
// calls the wrapped driver.
func (f *Faulty) CreateNetwork(ctx context.Context, cfg contract.NetworkConfig) (contract.Network, error) {
	return do(f, ctx, contract.OpCreateNetwork, "", func() (contract.Network, error) {
		return f.d.CreateNetwork(ctx, cfg)
	})
}

// RemoveNetwork counts the call, applies the rules of OpRemoveNetwork and
// calls the wrapped driver.
func (f *Faulty) RemoveNetwork(ctx context.Context, id string) error {
	return do0(f, ctx, contract.OpRemoveNetwork, id, func() error { return f.d.RemoveNetwork(ctx, id) })
}

// StreamContainerLogs counts the call, applies the rules of
// contract.OpStreamContainerLogs and calls the wrapped driver's
// StreamContainerLogs. When the wrapped driver is not a
// contract.LogStreamer, the call fails with CONFIGURATION.
func (f *Faulty) StreamContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (io.ReadCloser, error) {
	const op = contract.OpStreamContainerLogs
	return do(f, ctx, op, id, func() (io.ReadCloser, error) {
		s, ok := f.d.(contract.LogStreamer)
		if !ok {
			return nil, contract.NewError(contract.CodeConfiguration, op, id,
				fmt.Sprintf("driver %q (%T) does not implement contract.LogStreamer", f.d.Name(), f.d), nil)
		}
		return s.StreamContainerLogs(ctx, id, opts)
	})
}
