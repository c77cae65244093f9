package chaos

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

// TestChaosDaemonHungDefaults puts resilient.Wrap with its defaults, and
// nothing tuned, in front of a daemon that accepts connections and never
// answers, with callers that give every call a 20s deadline. The default
// per-attempt timeouts cut the attempts, the breaker counts them, and
// within a minute every operation fails fast: under 50ms, retryable, with
// a RetryAfter. Once an operation fails fast, at most one probe per open
// period goes back into the hang, and HealthCheck says unhealthy and
// names the open circuits.
func TestChaosDaemonHungDefaults(t *testing.T) {
	const (
		deadline  = 20 * time.Second
		window    = 60 * time.Second
		fast      = 50 * time.Millisecond
		callers   = 5 // per operation
		fastInRow = 5
		openFor   = 30 * time.Second // the breaker's default open timeout
	)
	p := newDaemonPath(t)
	r := newRig(t, rigConfig{host: p.Host})
	ctx := testCtx(t, 3*time.Minute)
	if _, err := r.d.HealthCheck(ctx); err != nil {
		t.Fatal(err)
	}
	sid := newSession(t)
	defer r.cleanupSession(sid)
	inst, err := r.d.CreateContainer(ctx, smallConfig(sid))
	if err != nil {
		t.Fatal(err)
	}
	p.toxic(t, "hang", "timeout", "downstream", 1, map[string]int64{"timeout": 0})
	hung := time.Now()

	ops := []struct {
		op contract.Op
		do func(context.Context) error
	}{
		{contract.OpGetContainer, func(ctx context.Context) error { _, err := r.d.GetContainer(ctx, inst.ID); return err }},
		{contract.OpListContainers, func(ctx context.Context) error {
			_, err := r.d.ListContainers(ctx, contract.ContainerFilter{SessionID: sid})
			return err
		}},
		{contract.OpCreateContainer, func(ctx context.Context) error { _, err := r.d.CreateContainer(ctx, smallConfig(sid)); return err }},
		{contract.OpStartContainer, func(ctx context.Context) error { return r.d.StartContainer(ctx, inst.ID) }},
	}
	type opState struct {
		mu        sync.Mutex
		inRow     int           // fast failures in a row
		fastSince time.Duration // when the op began to fail fast, from the hang
		reached   int           // attempts that had reached the driver then
		bad       []string      // fast calls that broke the promise
	}
	states := make([]*opState, len(ops))
	stop := make(chan struct{})
	var stopOnce sync.Once
	var wg sync.WaitGroup
	var doneOps sync.WaitGroup
	doneOps.Add(len(ops))
	for i, oc := range ops {
		st := &opState{fastSince: -1}
		states[i] = st
		var markOnce sync.Once
		for range callers {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if time.Since(hung) > window {
						return
					}
					cctx, cancel := context.WithTimeout(ctx, deadline)
					start := time.Now()
					err := oc.do(cctx)
					el := time.Since(start)
					cancel()
					r.stats.observe(oc.op, el, err)
					st.mu.Lock()
					switch {
					case el < fast && err != nil:
						if !contract.IsRetryable(err) || contract.RetryAfter(err) <= 0 {
							st.bad = append(st.bad, codeOf(err))
						}
						if st.inRow == 0 && st.fastSince < 0 {
							st.fastSince = time.Since(hung)
							st.reached = r.attempts.Calls(oc.op)
						}
						st.inRow++
						if st.inRow >= fastInRow {
							markOnce.Do(doneOps.Done)
						}
					default:
						st.inRow, st.fastSince = 0, -1
					}
					st.mu.Unlock()
					if el < fast {
						time.Sleep(10 * time.Millisecond) // a caller that got a quick answer comes back soon
					}
				}
			})
		}
	}
	allFast := make(chan struct{})
	go func() { doneOps.Wait(); close(allFast) }()
	select {
	case <-allFast:
	case <-time.After(window):
	}
	took := time.Since(hung)
	h, herr := r.d.HealthCheck(ctx)
	type snapshot struct {
		inRow, probes int
		fastSince     time.Duration
		bad           []string
	}
	snaps := make([]snapshot, len(ops))
	for i, oc := range ops {
		st := states[i]
		st.mu.Lock()
		snaps[i] = snapshot{st.inRow, r.attempts.Calls(oc.op) - st.reached, st.fastSince, st.bad}
		st.mu.Unlock()
	}
	stopOnce.Do(func() { close(stop) })
	p.clearToxics() // let the calls still in the hang return
	wg.Wait()

	for i, oc := range ops {
		st := snaps[i]
		if st.fastSince < 0 || st.inRow < fastInRow {
			t.Errorf("%s: not failing fast %v after the daemon hung (last %d calls fast)", oc.op, window, st.inRow)
			continue
		}
		if len(st.bad) > 0 {
			t.Errorf("%s: fast failures without a retryable error and a RetryAfter: %v", oc.op, st.bad)
		}
		probes := st.probes
		if allowed := 1 + int((took-st.fastSince)/openFor); probes > allowed {
			t.Errorf("%s: %d attempts went back into the hang after it failed fast, want at most %d", oc.op, probes, allowed)
		}
		t.Logf("%s: failing fast %v after the daemon hung; %d probe(s) reached it since", oc.op, st.fastSince.Round(time.Millisecond), probes)
	}
	if herr != nil || h.Status != contract.Unhealthy || !strings.Contains(h.Error, "circuit open") {
		t.Errorf("HealthCheck on the hung daemon = %+v, %v; want unhealthy, naming the open circuits", h, herr)
	}
	t.Logf("HealthCheck: %s, %q; limits %+v", h.Status, h.Error, h.Limits)
	r.report(t, "a hung daemon behind resilient.Wrap's defaults; 20s caller deadlines, "+strconv.Itoa(callers)+" callers per operation")
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the test ran out of time")
	}
}
