package drivertest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
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
// Faulty implements contract.ContainerDriver and every optional interface
// of the contract (contract.LogStreamer, contract.Executor,
// contract.FileCopier, contract.StatsReader) with [middleware.Intercept],
// like the policies it tests: every method counts the call under its
// contract.Op, applies the rules of that op (see [Faulty.Inject]) and calls
// the wrapped driver. Name and Version are those of the wrapped driver and
// are not counted. A method of an optional interface that the wrapped
// driver does not implement fails with a CONFIGURATION error saying so.
type Faulty struct {
	// d through f.intercept; embedded, its methods, which the adapter
	// writes once for every operation, are Faulty's.
	fullDriver

	d contract.ContainerDriver

	mu    sync.Mutex
	rules [contract.NumOps][]Fault // by Op.Index
	calls opCounts
}

// fullDriver is what middleware.Intercept makes of a driver that
// implements every optional interface.
type fullDriver interface {
	contract.ContainerDriver
	contract.LogStreamer
	contract.Executor
	contract.FileCopier
	contract.StatsReader
}

var (
	_ contract.ContainerDriver = (*Faulty)(nil)
	_ contract.LogStreamer     = (*Faulty)(nil)
	_ contract.Executor        = (*Faulty)(nil)
	_ contract.FileCopier      = (*Faulty)(nil)
	_ contract.StatsReader     = (*Faulty)(nil)
)

// NewFaulty wraps d. Until faults are injected, every call passes through.
func NewFaulty(d contract.ContainerDriver) *Faulty {
	f := &Faulty{d: d}
	f.fullDriver = middleware.Intercept(f.intercept)(lacking{d}).(fullDriver)
	return f
}

// Inject adds a rule for op. Rules of an op apply in the order they were
// added: the first rule covering a call that has an Err decides the call's
// error (and After), and the latencies of all rules covering it add up.
// Negative Nth, Count or Latency panic. A rule for a value that is not an
// operation of package contract never applies.
func (f *Faulty) Inject(op contract.Op, fault Fault) {
	if fault.Nth < 0 || fault.Count < 0 || fault.Latency < 0 {
		panic(fmt.Sprintf("drivertest: Faulty.Inject(%s): negative Nth, Count or Latency in %+v", op, fault))
	}
	i := op.Index()
	if i < 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules[i] = append(f.rules[i], fault)
}

// Calls returns how many calls of op have reached f since it was made or
// last reset, whether or not a fault affected them.
func (f *Faulty) Calls(op contract.Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls.of(op)
}

// Reset removes every rule and sets every count to zero.
func (f *Faulty) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = [contract.NumOps][]Fault{}
	f.calls = opCounts{}
}

// Unwrap returns the wrapped driver.
func (f *Faulty) Unwrap() contract.ContainerDriver { return f.d }

// opCounts counts calls by operation, for [Faulty] and [Stub]; its owner
// holds the lock.
type opCounts [contract.NumOps]int

// add counts a call of op, one of package contract's, and returns the
// count.
func (c *opCounts) add(op contract.Op) int {
	i := op.Index()
	c[i]++
	return c[i]
}

// of returns the count of op, 0 for a value that is not an operation.
func (c *opCounts) of(op contract.Op) int {
	if i := op.Index(); i >= 0 {
		return c[i]
	}
	return 0
}

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
	n := f.calls.add(op)
	var p plan
	for _, r := range f.rules[op.Index()] {
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

// intercept is the one place where rules apply, for every operation. On a
// lost response (After) the adapter returns the method's zero results, and
// closes a stream (of logs or of a copy); a health report, which it returns
// beside an error, is cleared here.
func (f *Faulty) intercept(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
	p := f.begin(call.Op)
	if err := wait(ctx, call.Op, call.ID, p.latency); err != nil {
		return err
	}
	if p.err != nil && !p.after {
		return p.err
	}
	err := next(ctx)
	if p.err == nil {
		return err
	}
	if call.Health != nil {
		*call.Health = contract.DriverHealth{}
	}
	if call.ExecResult != nil {
		*call.ExecResult = contract.ExecResult{}
	}
	return p.err
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

// lacking gives a driver the methods of the optional interfaces it does
// not implement, as Faulty documents them, so that such calls are counted
// and faulted like any other; the others pass through.
type lacking struct{ contract.ContainerDriver }

func (l lacking) missing(op contract.Op, id, iface string) error {
	return contract.NewError(contract.CodeConfiguration, op, id,
		fmt.Sprintf("driver %q (%T) does not implement contract.%s", l.Name(), l.ContainerDriver, iface), nil)
}

func (l lacking) StreamContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (io.ReadCloser, error) {
	if s, ok := l.ContainerDriver.(contract.LogStreamer); ok {
		return s.StreamContainerLogs(ctx, id, opts)
	}
	return nil, l.missing(contract.OpStreamContainerLogs, id, "LogStreamer")
}

func (l lacking) ExecContainer(ctx context.Context, id string, opts contract.ExecOptions) (contract.ExecResult, error) {
	if e, ok := l.ContainerDriver.(contract.Executor); ok {
		return e.ExecContainer(ctx, id, opts)
	}
	return contract.ExecResult{}, l.missing(contract.OpExecContainer, id, "Executor")
}

func (l lacking) CopyToContainer(ctx context.Context, id, dir string, tarStream io.Reader) error {
	if c, ok := l.ContainerDriver.(contract.FileCopier); ok {
		return c.CopyToContainer(ctx, id, dir, tarStream)
	}
	return l.missing(contract.OpCopyToContainer, id, "FileCopier")
}

func (l lacking) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error) {
	if c, ok := l.ContainerDriver.(contract.FileCopier); ok {
		return c.CopyFromContainer(ctx, id, path)
	}
	return nil, l.missing(contract.OpCopyFromContainer, id, "FileCopier")
}

func (l lacking) ContainerStats(ctx context.Context, id string) (contract.ContainerStats, error) {
	if s, ok := l.ContainerDriver.(contract.StatsReader); ok {
		return s.ContainerStats(ctx, id)
	}
	return contract.ContainerStats{}, l.missing(contract.OpContainerStats, id, "StatsReader")
}
