package breaker

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

// State is the state of a circuit.
type State uint8

// The states of a circuit.
const (
	// Closed lets every call through and counts their results.
	Closed State = iota
	// HalfOpen lets a few probe calls through to find out whether the
	// backend has recovered.
	HalfOpen
	// Open rejects every call until the open timeout has passed.
	Open
)

// String returns "closed", "half-open" or "open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return "unknown"
}

func stateOf(s gobreaker.State) State {
	switch s {
	case gobreaker.StateHalfOpen:
		return HalfOpen
	case gobreaker.StateOpen:
		return Open
	}
	return Closed
}

// Circuit describes one circuit of a [Set].
type Circuit struct {
	Op    contract.Op // the operation it guards
	Key   string      // the key of WithKey, "" for the operation's own circuit
	State State
}

// String returns the operation, followed by the key in brackets when there
// is one: "CreateContainer" or "CreateContainer[alpine:3]".
func (c Circuit) String() string {
	if c.Key == "" {
		return string(c.Op)
	}
	return string(c.Op) + "[" + c.Key + "]"
}

// New returns a Middleware that guards every operation but HealthCheck with
// a circuit breaker. It is NewSet(opts...).Middleware(); use [NewSet] to
// read the circuits' states.
func New(opts ...Option) middleware.Middleware {
	return NewSet(opts...).Middleware()
}

// Set is the circuit breakers of one middleware: one circuit per operation
// and, with [WithKey], one per operation and key. Its methods are safe for
// concurrent use.
type Set struct {
	cfg   config
	epoch time.Time // origin of openUntil

	ops [contract.NumOps]*circuit // by Op.Index; nil for HealthCheck; read-only after NewSet

	mu    sync.RWMutex
	keyed map[circuitKey]*circuit

	hooks hookQueue

	circuits metric.Int64UpDownCounter // resilient.breaker.circuits
}

type circuitKey struct {
	op  contract.Op
	key string
}

// circuit is one gobreaker circuit breaker and what the Set tracks beside
// it. The fields written by onChange are written under the breaker's mutex
// and read without it, hence atomics.
type circuit struct {
	op  contract.Op
	key string
	cb  *gobreaker.CircuitBreaker[struct{}]

	openUntil atomic.Int64  // since Set.epoch, when it last opened plus the open timeout
	changes   atomic.Uint64 // number of state changes
	last      atomic.Uint32 // last change: from<<8 | to
	holders   atomic.Int64  // keyed: calls that hold it, taken under Set.mu

	attrs [Open + 1]metric.AddOption // attributes of resilient.breaker.circuits by State
}

// NewSet returns a Set of closed circuits configured by opts.
func NewSet(opts ...Option) *Set {
	s := &Set{
		cfg:   newConfig(opts),
		epoch: time.Now(),
		keyed: make(map[circuitKey]*circuit),
	}
	s.circuits = newCircuitsCounter(s.cfg.meterProvider)
	for i, op := range contract.AllOps() {
		if op.Info().Class != contract.ClassProbe {
			s.ops[i] = s.newCircuit(op, "")
		}
	}
	return s
}

// Middleware returns the middleware that routes calls through the Set's
// circuits. Every driver it wraps shares the Set's circuits.
func (s *Set) Middleware() middleware.Middleware {
	return middleware.Intercept(s.intercept)
}

// Metric of the Set: the number of circuits by operation, key and state.
const (
	// ScopeName is the instrumentation scope of the Set's meter.
	ScopeName = "github.com/resilientdriver/resilient/breaker"

	metricCircuits = "resilient.breaker.circuits"
)

func newCircuitsCounter(mp metric.MeterProvider) metric.Int64UpDownCounter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	ctr, err := mp.Meter(ScopeName).Int64UpDownCounter(metricCircuits,
		metric.WithDescription("Circuits by operation and state"),
		metric.WithUnit("{circuit}"))
	if err != nil {
		otel.Handle(err)
	}
	if ctr == nil { // a meter that returns nil with its error must not break calls
		ctr = noop.Int64UpDownCounter{}
	}
	return ctr
}

func (s *Set) newCircuit(op contract.Op, key string) *circuit {
	c := &circuit{op: op, key: key}
	for st := Closed; st <= Open; st++ {
		kvs := []attribute.KeyValue{
			attribute.String("resilient.op", string(op)),
			attribute.String("breaker.state", st.String()),
		}
		if key != "" {
			kvs = append(kvs, attribute.String("breaker.key", key))
		}
		c.attrs[st] = metric.WithAttributeSet(attribute.NewSet(kvs...))
	}
	st := gobreaker.Settings{
		Name:         Circuit{Op: op, Key: key}.String(),
		MaxRequests:  s.cfg.halfOpen,
		Interval:     s.cfg.interval,
		Timeout:      max(s.cfg.openTimeout, time.Nanosecond), // gobreaker reads 0 as its default
		ReadyToTrip:  s.readyToTrip,
		IsSuccessful: isSuccessful,
		IsExcluded:   isExcluded,
		OnStateChange: func(_ string, from, to gobreaker.State) {
			s.onChange(c, stateOf(from), stateOf(to))
		},
	}
	if st.Interval > 0 {
		st.BucketPeriod = st.Interval / 10
	}
	c.cb = gobreaker.NewCircuitBreaker[struct{}](st)
	s.circuits.Add(context.Background(), 1, c.attrs[Closed])
	return c
}

// own returns op's own circuit, nil for an operation without one.
func (s *Set) own(op contract.Op) *circuit {
	if i := op.Index(); i >= 0 {
		return s.ops[i]
	}
	return nil
}

// circuit returns the circuit of call, creating a keyed one on first use,
// and holds it: the call must let go of it when done. An operation
// unknown to Op.Index gets a circuit in the keyed map.
func (s *Set) circuit(call *middleware.Call) *circuit {
	c := s.own(call.Op)
	key := ""
	if s.cfg.key != nil {
		key = s.cfg.key(call)
	}
	if c != nil && key == "" {
		return c
	}
	k := circuitKey{call.Op, key}
	s.mu.RLock()
	c = s.keyed[k]
	if c != nil {
		c.holders.Add(1) // under the lock, so that evictIdle sees it
	}
	s.mu.RUnlock()
	if c != nil {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c = s.keyed[k]; c == nil {
		if len(s.keyed) >= MaxKeyedCircuits && !s.evictIdle() {
			if own := s.own(call.Op); own != nil {
				return own // every keyed circuit holds failures: share the operation's
			}
		}
		c = s.newCircuit(call.Op, key)
		s.keyed[k] = c
	}
	c.holders.Add(1)
	return c
}

// letGo ends a call's hold on c, taken by circuit. The operations' own
// circuits are never dropped and not counted.
func (c *circuit) letGo() {
	if c.key != "" || c.op.Index() < 0 {
		c.holders.Add(-1)
	}
}

// MaxKeyedCircuits bounds the circuits [WithKey] makes. A call with a new
// key when there are that many drops every keyed circuit that is closed,
// has counted no failure and no call holds (it knows nothing a new one
// would not); when none is, the call goes through its operation's own
// circuit.
const MaxKeyedCircuits = 1024

// evictIdle removes the keyed circuits that are closed, have counted no
// failure and that no call holds, and reports whether it removed any.
// Called with s.mu held for writing, so no call takes hold meanwhile.
func (s *Set) evictIdle() bool {
	n := len(s.keyed)
	for k, c := range s.keyed {
		if cnt := c.cb.Counts(); c.holders.Load() == 0 && c.cb.State() == gobreaker.StateClosed && cnt.TotalFailures == 0 {
			delete(s.keyed, k)
			s.circuits.Add(context.Background(), -1, c.attrs[Closed])
		}
	}
	return len(s.keyed) < n
}

// Outcomes of a call as gobreaker sees them; the call's own error is kept
// aside.
var (
	errFailure  = errors.New("breaker: backend failure")
	errExcluded = errors.New("breaker: not counted")
)

func isSuccessful(err error) bool { return err == nil }
func isExcluded(err error) bool   { return err == errExcluded }

func (s *Set) readyToTrip(n gobreaker.Counts) bool {
	if s.cfg.consecutive > 0 && n.ConsecutiveFailures >= s.cfg.consecutive {
		return true
	}
	counted := n.TotalSuccesses + n.TotalFailures
	return s.cfg.ratio > 0 && s.cfg.ratio <= 1 && counted >= s.cfg.minRequests &&
		float64(n.TotalFailures) >= s.cfg.ratio*float64(counted)
}

// classify maps the error of a call that ran to what the breaker counts:
// nil (success), errFailure or errExcluded.
func (s *Set) classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || (ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded)) {
		return errExcluded // the caller gave up
	}
	if contract.RejectedLocally(err) {
		return errExcluded
	}
	var de *contract.DriverError
	isDriverError := errors.As(err, &de)
	if s.cfg.failureIf != nil {
		if s.cfg.failureIf(err) {
			return errFailure
		}
		return nil
	}
	if !isDriverError || de.Retryable || de.Code == contract.CodeTimeout || de.Code == contract.CodeNetwork {
		return errFailure
	}
	return nil
}

func (s *Set) intercept(ctx context.Context, call *middleware.Call, next middleware.Invoker) error {
	if call.Op.Info().Class == contract.ClassProbe {
		err := next(ctx)
		if err == nil && call.Health != nil {
			s.ReportHealth(call.Health)
		}
		return err
	}
	c := s.circuit(call)
	defer c.letGo()
	changes := c.changes.Load()
	var err error
	_, verdict := c.cb.Execute(func() (struct{}, error) {
		err = next(ctx)
		return struct{}{}, s.classify(ctx, err)
	})
	if verdict == gobreaker.ErrOpenState || verdict == gobreaker.ErrTooManyRequests {
		err = s.reject(ctx, call, c, verdict == gobreaker.ErrOpenState)
	}
	if c.changes.Load() != changes {
		traceChange(ctx, c)
	}
	if s.hooks.pending.Load() > 0 {
		s.hooks.dispatch(s.cfg.onStateChange)
	}
	return err
}

// halfOpenRetryAfter is the least RetryAfter of a call refused while a
// half-open circuit's probes are in flight.
const halfOpenRetryAfter = time.Second

// reject returns the CIRCUIT_OPEN error of a call c refused.
func (s *Set) reject(ctx context.Context, call *middleware.Call, c *circuit, open bool) error {
	e := &contract.DriverError{
		Code:      contract.CodeCircuitOpen,
		Retryable: true,
		Op:        call.Op,
		ID:        call.ID,
	}
	state := HalfOpen
	now := time.Since(s.epoch)
	if open {
		state = Open
		// gobreaker half-opens strictly after the open timeout; one nanosecond more
		// makes a caller that waits exactly RetryAfter a probe.
		e.RetryAfter = max(time.Duration(c.openUntil.Load())-now, 0) + time.Nanosecond
		e.Message = "circuit open after backend failures"
	} else {
		// The probes have been out since the circuit half-opened: about as
		// long again is when their answer is as likely as not, and never
		// less than a second (or the open timeout, if shorter).
		out := now - time.Duration(c.openUntil.Load())
		e.RetryAfter = min(max(out, halfOpenRetryAfter), max(s.cfg.openTimeout, time.Nanosecond))
		e.Message = "circuit half-open, probe calls in flight"
	}
	if c.key != "" {
		e.Message += " (key " + c.key + ")"
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		attrs := []attribute.KeyValue{
			attribute.String("breaker.state", state.String()),
			attribute.Int64("breaker.retry_after_ms", e.RetryAfter.Milliseconds()),
		}
		if c.key != "" {
			attrs = append(attrs, attribute.String("breaker.key", c.key))
		}
		span.AddEvent("breaker.rejected", trace.WithAttributes(attrs...))
	}
	return e
}

func traceChange(ctx context.Context, c *circuit) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	last := c.last.Load()
	attrs := []attribute.KeyValue{
		attribute.String("breaker.from", State(last>>8).String()),
		attribute.String("breaker.to", State(last&0xff).String()),
	}
	if c.key != "" {
		attrs = append(attrs, attribute.String("breaker.key", c.key))
	}
	span.AddEvent("breaker.state_change", trace.WithAttributes(attrs...))
}

// onChange runs under c's gobreaker mutex: it records and queues, and calls
// nothing of the user's. It also moves c in resilient.breaker.circuits, here
// under that mutex, so that a circuit's changes are measured in the order
// they happen; a synchronous Add does not wait for readers or exporters.
func (s *Set) onChange(c *circuit, from, to State) {
	ctx := context.Background()
	s.circuits.Add(ctx, -1, c.attrs[from])
	s.circuits.Add(ctx, 1, c.attrs[to])
	if to == Open {
		c.openUntil.Store(int64(time.Since(s.epoch) + s.cfg.openTimeout))
	}
	c.last.Store(uint32(from)<<8 | uint32(to))
	c.changes.Add(1)
	if s.cfg.onStateChange != nil {
		s.hooks.push(transition{c.op, c.key, from, to})
	}
}

// State returns the state of the circuit of op and key ("" for the
// operation's own circuit). A circuit not used yet is Closed; HealthCheck
// has no circuit and is always Closed.
func (s *Set) State(op contract.Op, key string) State {
	c := s.own(op)
	if key != "" || c == nil {
		s.mu.RLock()
		c = s.keyed[circuitKey{op, key}]
		s.mu.RUnlock()
	}
	if c == nil {
		return Closed
	}
	st := stateOf(c.cb.State())
	s.hooks.dispatch(s.cfg.onStateChange)
	return st
}

// Circuits returns the state of every circuit: the operations' own
// circuits in the order of contract.Ops (StreamContainerLogs last), then
// the keyed ones by operation and key. An open circuit whose timeout has
// passed is reported HalfOpen.
func (s *Set) Circuits() []Circuit {
	s.mu.RLock()
	cs := make([]*circuit, 0, contract.NumOps+len(s.keyed))
	for _, c := range s.keyed {
		cs = append(cs, c)
	}
	s.mu.RUnlock()
	slices.SortFunc(cs, func(a, b *circuit) int {
		return cmp.Or(cmp.Compare(a.op, b.op), cmp.Compare(a.key, b.key))
	})
	var own []*circuit
	for _, op := range contract.AllOps() {
		if c := s.own(op); c != nil {
			own = append(own, c)
		}
	}
	cs = append(own, cs...)
	out := make([]Circuit, len(cs))
	for i, c := range cs {
		out[i] = Circuit{Op: c.op, Key: c.key, State: stateOf(c.cb.State())}
	}
	s.hooks.dispatch(s.cfg.onStateChange)
	return out
}

// ReportHealth adds the circuits that are not closed to h.Error:
// "circuit open: CreateContainer, CreateContainer[alpine:3]; circuit
// half-open: StartContainer", after what h.Error already says, separated by
// "; ". It leaves h.Status as the driver reported it, since the health
// check itself reached the backend; callers that want an open circuit to
// mean unhealthy set Status themselves. With every circuit closed, h is
// unchanged and nothing is allocated. It returns whether any circuit is not
// closed.
//
// The Set's middleware calls it on the report of every HealthCheck that
// returns no error.
func (s *Set) ReportHealth(h *contract.DriverHealth) bool {
	if !s.anyNotClosed() {
		return false
	}
	var open, half []string
	for _, c := range s.Circuits() {
		switch c.State {
		case Open:
			open = append(open, c.String())
		case HalfOpen:
			half = append(half, c.String())
		}
	}
	if len(open) == 0 && len(half) == 0 { // closed in the meantime
		return false
	}
	parts := make([]string, 0, 3)
	if h.Error != "" {
		parts = append(parts, h.Error)
	}
	if len(open) > 0 {
		parts = append(parts, "circuit open: "+strings.Join(open, ", "))
	}
	if len(half) > 0 {
		parts = append(parts, "circuit half-open: "+strings.Join(half, ", "))
	}
	h.Error = strings.Join(parts, "; ")
	return true
}

// anyNotClosed reports, without allocating, whether a circuit is open or
// half-open.
func (s *Set) anyNotClosed() bool {
	found := false
	for _, c := range s.ops {
		if c != nil && c.cb.State() != gobreaker.StateClosed {
			found = true
			break
		}
	}
	if !found {
		s.mu.RLock()
		for _, c := range s.keyed {
			if c.cb.State() != gobreaker.StateClosed {
				found = true
				break
			}
		}
		s.mu.RUnlock()
	}
	s.hooks.dispatch(s.cfg.onStateChange)
	return found
}

// transition is one state change waiting for the hook.
type transition struct {
	op       contract.Op
	key      string
	from, to State
}

// hookQueue hands state changes to the hook outside the breakers' locks, in
// order and one at a time: whoever finds changes pending dispatches them,
// unless another goroutine is already dispatching, which then dispatches
// these too before it stops.
type hookQueue struct {
	pending atomic.Int32 // len(queue), readable without mu

	mu          sync.Mutex
	queue       []transition
	dispatching bool
}

func (q *hookQueue) push(t transition) {
	q.mu.Lock()
	q.queue = append(q.queue, t)
	q.pending.Add(1)
	q.mu.Unlock()
}

func (q *hookQueue) dispatch(hook func(op contract.Op, key string, from, to State)) {
	if hook == nil || q.pending.Load() == 0 {
		return
	}
	q.mu.Lock()
	if q.dispatching {
		q.mu.Unlock()
		return
	}
	q.dispatching = true
	finished := false
	defer func() {
		if !finished { // hook panicked: let the next caller dispatch
			q.mu.Lock()
			q.dispatching = false
			q.mu.Unlock()
		}
	}()
	for len(q.queue) > 0 {
		batch := q.queue
		q.queue = nil
		q.pending.Add(-int32(len(batch)))
		q.mu.Unlock()
		for _, t := range batch {
			hook(t.op, t.key, t.from, t.to)
		}
		q.mu.Lock()
	}
	q.dispatching = false
	q.mu.Unlock()
	finished = true
}
