package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/retry"
)

// quickRetry retries promptly, so that the tests measure the faults, not
// the waits.
func quickRetry(extra ...retry.Option) resilient.Option {
	return resilient.WithRetry(append([]retry.Option{
		retry.WithInitialInterval(20 * time.Millisecond),
		retry.WithMaxInterval(200 * time.Millisecond),
	}, extra...)...)
}

// TestChaosLatency puts 200ms of latency on every response of the daemon.
// Slow answers are not failures: every call succeeds with exactly the
// requests it makes without latency (no retry, no duplicate request), and
// a call with a deadline it cannot meet returns at its deadline with
// TIMEOUT, without a retry after it.
func TestChaosLatency(t *testing.T) {
	const latency = 200 * time.Millisecond
	p := newDaemonPath(t)
	r := newRig(t, rigConfig{host: p.Host, wrap: []resilient.Option{quickRetry()}})
	ctx := testCtx(t, 5*time.Minute)
	if h, err := r.d.HealthCheck(ctx); err != nil || h.Status != contract.Healthy {
		t.Fatalf("HealthCheck before the faults = %+v, %v", h, err)
	}
	plan := sessionPlan{stop: time.Second}

	// The requests a session makes when nothing is slow.
	const sessions = 4
	sid := newSession(t)
	p.hop.reset()
	for i := range sessions {
		if err := r.session(ctx, fmt.Sprintf("%s-base-%d", sid, i), plan); err != nil {
			t.Fatalf("session without latency: %v", err)
		}
	}
	baseline := len(p.hop.requests())
	r.report(t, fmt.Sprintf("without latency: %d sessions, %d daemon requests", sessions, baseline))
	r.stats = newStats()
	r.attempts.Reset()
	r.retries.Store(0)

	p.toxic(t, "latency", "latency", "downstream", 1, map[string]int64{"latency": latency.Milliseconds()})
	p.hop.reset()
	for i := range sessions {
		if err := r.session(ctx, fmt.Sprintf("%s-slow-%d", sid, i), plan); err != nil {
			t.Fatalf("session with latency: %v", err)
		}
	}
	slowed := len(p.hop.requests())
	calls, _ := r.stats.total()
	attempts := r.attemptsOf(contract.Ops()...)
	if slowed != baseline {
		t.Errorf("daemon requests with latency = %d, without = %d: latency must not add requests", slowed, baseline)
	}
	if attempts != calls || r.retries.Load() != 0 {
		t.Errorf("%d calls made %d attempts and %d retries; slow answers must not be retried", calls, attempts, r.retries.Load())
	}
	if p50 := percentile(r.stats.all(), 50); p50 < latency {
		t.Errorf("p50 latency %v with %v of latency per response: the toxic did not apply", p50, latency)
	}
	r.report(t, fmt.Sprintf("with %v on every response: %d sessions, %d daemon requests", latency, sessions, slowed))

	t.Run("deadline", func(t *testing.T) {
		// A list needs two answers (list, inspect): 400ms. A deadline of
		// 300ms cannot be met.
		const deadline = 300 * time.Millisecond
		const slack = 150 * time.Millisecond
		sid := newSession(t)
		cfg := smallConfig(sid)
		if _, err := r.d.CreateContainer(ctx, cfg); err != nil {
			t.Fatalf("CreateContainer: %v", err)
		}
		defer r.cleanupSession(sid)

		st := newStats()
		for range 10 {
			p.hop.reset()
			retries, attempts := r.retries.Load(), r.attemptsOf(contract.OpListContainers)
			cctx, cancel := context.WithTimeout(ctx, deadline)
			dl, _ := cctx.Deadline()
			start := time.Now()
			_, err := r.d.ListContainers(cctx, contract.ContainerFilter{SessionID: sid})
			elapsed := time.Since(start)
			cancel()
			st.observe(contract.OpListContainers, elapsed, err)
			if err == nil {
				t.Fatalf("ListContainers with a %v deadline and %v per answer succeeded", deadline, latency)
			}
			wantCode(t, "ListContainers past its deadline", err, contract.CodeTimeout)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not match context.DeadlineExceeded", err)
			}
			if contract.IsRetryable(err) {
				t.Errorf("error after the caller's deadline is retryable: %v", err)
			}
			if elapsed > deadline+slack {
				t.Errorf("call returned after %v; deadline %v + slack %v", elapsed, deadline, slack)
			}
			if n := r.attemptsOf(contract.OpListContainers) - attempts; n != 1 || r.retries.Load() != retries {
				t.Errorf("%d attempts, %d retries for a call that ran out of time; want 1 and 0", n, r.retries.Load()-retries)
			}
			for _, req := range p.hop.requests() {
				if req.At.After(dl) {
					t.Errorf("request %s %s reached the daemon %v after the deadline", req.Method, req.Path, req.At.Sub(dl))
				}
			}
		}
		var b strings.Builder
		st.table(&b, nil)
		t.Logf("ListContainers (two answers) with a %v deadline, %v per answer:\n%s", deadline, latency, b.String())
	})

	t.Run("deadline-with-backoff", func(t *testing.T) {
		// Every connection is reset at once, and the retry waits 200ms,
		// then 400ms. With a 300ms deadline the layer makes the one retry
		// that fits and gives up before the deadline instead of sleeping
		// past it.
		const deadline = 300 * time.Millisecond
		p.clearToxics()
		p.toxic(t, "reset", "reset_peer", "upstream", 1, map[string]int64{"timeout": 0})
		defer p.clearToxics()
		rr := newRig(t, rigConfig{host: p.Host, noKeep: true, wrap: []resilient.Option{
			resilient.WithRetry(retry.WithInitialInterval(200*time.Millisecond), retry.WithJitter(0), retry.WithMaxAttempts(5)),
			resilient.WithoutBreaker(), // this is about the retry layer alone
		}})
		st := newStats()
		for range 5 {
			cctx, cancel := context.WithTimeout(ctx, deadline)
			start := time.Now()
			_, err := rr.d.GetContainer(cctx, "0123456789ab")
			elapsed := time.Since(start)
			cancel()
			st.observe(contract.OpGetContainer, elapsed, err)
			if !errors.Is(err, retry.ErrDeadline) {
				t.Errorf("error = %v, want one that matches retry.ErrDeadline", err)
			}
			var re *retry.Error
			if errors.As(err, &re) && re.Attempts != 2 {
				t.Errorf("attempts = %d, want 2 (the second wait would pass the deadline)", re.Attempts)
			}
			wantCode(t, "GetContainer through resets", err, contract.CodeNetwork)
			if elapsed >= deadline {
				t.Errorf("call returned after %v, at or past its %v deadline", elapsed, deadline)
			}
		}
		var b strings.Builder
		st.table(&b, rr.attempts)
		t.Logf("GetContainer, every connection reset, waits 200ms then 400ms, %v deadline:\n%s", deadline, b.String())
	})
}

// TestChaosResets resets or stalls 30% of the connections to the daemon:
// requests cut before they reach it, stalled requests closed after 500ms,
// and responses cut after the daemon acted. Every session still completes
// through retries, no create makes a second container, and the circuits,
// sized for that loss, stay closed.
func TestChaosResets(t *testing.T) {
	p := newDaemonPath(t)
	// Each request gets a connection of its own, so that the toxicity,
	// which Toxiproxy draws per connection, applies per request.
	r := newRig(t, rigConfig{host: p.Host, noKeep: true, wrap: []resilient.Option{
		// About half of the create attempts fail (two requests each, and
		// after a lost answer a create that meets its own container and an
		// inspect by name): 20 attempts leave a create failing in all of
		// them a chance of about 1 in 700,000. With 12, one create of 16
		// sessions failing all of them was seen once in a CI run.
		quickRetry(retry.WithMaxAttempts(20)),
		// A create takes two requests, so with 30% of them failing about
		// half of the create attempts fail. The default circuit (5 in a
		// row, or half of 20) is meant to open on that; these thresholds
		// ride through it: 20 in a row, or 80% of at least 20.
		resilient.WithBreaker(breaker.WithConsecutiveFailures(20), breaker.WithFailureRatio(0.8, 20)),
	}})
	ctx := testCtx(t, 5*time.Minute)
	if _, err := r.d.HealthCheck(ctx); err != nil {
		t.Fatal(err)
	}
	p.toxic(t, "reset-request", "reset_peer", "upstream", 0.18, map[string]int64{"timeout": 0})
	p.toxic(t, "stall-request", "timeout", "upstream", 0.06, map[string]int64{"timeout": 500})
	p.toxic(t, "reset-response", "reset_peer", "downstream", 0.06, map[string]int64{"timeout": 0})
	p.hop.reset()

	const sessions, parallel = 16, 4
	sid := newSession(t)
	errs := make([]error, sessions)
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	start := time.Now()
	for i := range sessions {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = r.session(ctx, fmt.Sprintf("%s-%d", sid, i), sessionPlan{checkOne: true, stop: time.Second})
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	p.clearToxics()
	for i, err := range errs {
		if err != nil {
			t.Errorf("session %d: %v", i, err)
		}
	}
	for _, c := range r.circuits.list() {
		t.Errorf("circuit %s went %s -> %s under a 30%% loss", c.Op, c.From, c.To)
	}
	calls, _ := r.stats.total()
	r.report(t, fmt.Sprintf("30%% of connections reset or stalled: %d sessions (%d at a time) in %v, %d logical calls, %d requests reached the daemon",
		sessions, parallel, elapsed.Round(time.Millisecond), calls, len(p.hop.requests())))
}

// TestChaosDaemonDown takes the daemon away (the proxy refuses
// connections) and brings it back. The failing operations' circuits open
// after exactly their threshold of failed attempts; then calls fail fast
// with CIRCUIT_OPEN and a RetryAfter, and HealthCheck reports the daemon
// unhealthy and the open circuits. Once the daemon is back, one probe per
// circuit closes it, within the open timeout and one probe.
func TestChaosDaemonDown(t *testing.T) {
	const (
		threshold   = 3
		openTimeout = 2 * time.Second
		slack       = time.Second // one probe and the polling interval
	)
	p := newDaemonPath(t)
	r := newRig(t, rigConfig{host: p.Host, wrap: []resilient.Option{
		quickRetry(retry.WithMaxAttempts(threshold), retry.WithMaxElapsedTime(time.Second)),
		resilient.WithBreaker(breaker.WithConsecutiveFailures(threshold), breaker.WithOpenTimeout(openTimeout)),
	}})
	ctx := testCtx(t, 5*time.Minute)
	sid := newSession(t)
	defer r.cleanupSession(sid)
	inst, err := r.d.CreateContainer(ctx, smallConfig(sid))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}

	type opCall struct {
		op contract.Op
		do func() error
	}
	ops := []opCall{
		{contract.OpCreateContainer, func() error {
			c, err := r.d.CreateContainer(ctx, smallConfig(sid))
			if err == nil {
				t.Logf("probe create made %s", c.ID[:12])
			}
			return err
		}},
		{contract.OpGetContainer, func() error { _, err := r.d.GetContainer(ctx, inst.ID); return err }},
		{contract.OpListContainers, func() error {
			_, err := r.d.ListContainers(ctx, contract.ContainerFilter{SessionID: sid})
			return err
		}},
		{contract.OpGetContainerLogs, func() error {
			_, err := r.d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{Tail: 5})
			return err
		}},
	}

	// A log stream open when the daemon goes away ends with an error.
	streamer, ok := r.d.(contract.LogStreamer)
	if !ok {
		t.Fatal("resilient.Wrap lost contract.LogStreamer")
	}
	stream, err := streamer.StreamContainerLogs(ctx, inst.ID, contract.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	streamEnd := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, stream)
		streamEnd <- err
	}()

	downAt := time.Now()
	p.down()
	select {
	case err := <-streamEnd:
		wantCode(t, "a log stream cut by the outage", err, contract.CodeNetwork)
		t.Logf("open log stream ended %v after the daemon went down: %v", time.Since(downAt).Round(time.Millisecond), err)
	case <-time.After(5 * time.Second):
		t.Errorf("a log stream still reads 5s after the daemon went down")
	}
	openedAt := map[contract.Op]time.Time{}
	for _, oc := range ops {
		before := r.attemptsOf(oc.op)
		err := r.call(oc.op, oc.do)
		wantCode(t, string(oc.op)+" with the daemon down", err, contract.CodeNetwork)
		if n := r.attemptsOf(oc.op) - before; n != threshold {
			t.Errorf("%s: %d attempts reached the driver, want %d", oc.op, n, threshold)
		}
		c, ok := r.circuits.first(oc.op, breaker.Open, downAt)
		if !ok {
			t.Errorf("%s: circuit did not open after %d failures", oc.op, threshold)
			continue
		}
		openedAt[oc.op] = c.At
		t.Logf("%s: circuit open %v after the daemon went down, after %d failed attempts", oc.op, c.At.Sub(downAt).Round(time.Millisecond), threshold)
	}

	// Open circuits answer at once, without reaching the driver.
	fast := newStats()
	for range 5 {
		for _, oc := range ops {
			before := r.attemptsOf(oc.op)
			start := time.Now()
			err := oc.do()
			d := time.Since(start)
			fast.observe(oc.op, d, err)
			r.stats.observe(oc.op, d, err)
			wantCode(t, string(oc.op)+" with its circuit open", err, contract.CodeCircuitOpen)
			if ra := contract.RetryAfter(err); ra <= 0 || ra > openTimeout+time.Millisecond {
				t.Errorf("%s: RetryAfter = %v, want within (0, %v]", oc.op, ra, openTimeout)
			}
			if !contract.IsRetryable(err) {
				t.Errorf("%s: CIRCUIT_OPEN is not retryable: %v", oc.op, err)
			}
			if n := r.attemptsOf(oc.op) - before; n != 0 {
				t.Errorf("%s: %d attempts reached the driver through an open circuit", oc.op, n)
			}
			if d > 50*time.Millisecond {
				t.Errorf("%s: an open circuit took %v to answer", oc.op, d)
			}
		}
	}
	var b strings.Builder
	fast.table(&b, nil)
	t.Logf("calls with their circuits open:\n%s", b.String())

	h, err := r.d.HealthCheck(ctx)
	if err != nil {
		t.Fatalf("HealthCheck with the daemon down: %v", err)
	}
	if h.Status != contract.Unhealthy {
		t.Errorf("HealthCheck with the daemon down: Status = %s, want unhealthy", h.Status)
	}
	for _, oc := range ops {
		if !strings.Contains(h.Error, string(oc.op)) {
			t.Errorf("HealthCheck Error %q does not name the open circuit %s", h.Error, oc.op)
		}
	}
	t.Logf("HealthCheck with the daemon down: status %s, error %q", h.Status, h.Error)

	// The daemon comes back while the circuits are still open.
	upAt := time.Now()
	p.up(t)
	closedAt := map[contract.Op]time.Time{}
	for time.Since(upAt) < openTimeout+10*time.Second && len(closedAt) < len(ops) {
		for _, oc := range ops {
			if _, done := closedAt[oc.op]; done {
				continue
			}
			_ = r.call(oc.op, oc.do)
			if c, ok := r.circuits.first(oc.op, breaker.Closed, upAt); ok {
				closedAt[oc.op] = c.At
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, oc := range ops {
		closed, ok := closedAt[oc.op]
		if !ok {
			t.Errorf("%s: circuit still %s %v after the daemon came back", oc.op, r.circuits.state(oc.op), time.Since(upAt))
			continue
		}
		opened := openedAt[oc.op]
		if d := closed.Sub(opened); d > openTimeout+slack {
			t.Errorf("%s: circuit closed %v after it opened; want within the open timeout %v + %v", oc.op, d, openTimeout, slack)
		}
		t.Logf("%s: circuit closed %v after it opened, %v after the daemon came back (down %v)",
			oc.op, closed.Sub(opened).Round(time.Millisecond), closed.Sub(upAt).Round(time.Millisecond), upAt.Sub(downAt).Round(time.Millisecond))
	}
	if h, err := r.d.HealthCheck(ctx); err != nil || h.Status != contract.Healthy || h.Error != "" {
		t.Errorf("HealthCheck after recovery = %+v, %v; want healthy without error", h, err)
	}
	r.report(t, "daemon down, then back")
}

// TestChaosResponseLost lets the daemon act on a create and loses its
// answer. The retry reuses the create's idempotency key and gets the
// resource the first attempt made: exactly one exists afterwards, as the
// daemon itself reports.
func TestChaosResponseLost(t *testing.T) {
	p := newDaemonPath(t)
	r := newRig(t, rigConfig{host: p.Host, wrap: []resilient.Option{quickRetry()}})
	ctx := testCtx(t, 3*time.Minute)

	t.Run("container/connection-closed", func(t *testing.T) {
		sid := newSession(t)
		defer r.cleanupSession(sid)
		p.hop.reset()
		p.hop.loseResponses(1, isCreate)
		retries := r.retries.Load()
		inst, err := r.d.CreateContainer(ctx, smallConfig(sid))
		if err != nil {
			t.Fatalf("CreateContainer through a lost response: %v", err)
		}
		checkOneContainer(t, ctx, sid, inst.ID)
		creates := p.hop.count(func(q request) bool { return isCreate(q.Method, q.Path) })
		t.Logf("container: %d create requests reached the daemon (first answer lost), %d retries, one container %s",
			creates, r.retries.Load()-retries, inst.ID[:12])
		if creates != 2 {
			t.Errorf("%d create requests reached the daemon, want 2", creates)
		}
		if err := r.d.RemoveContainer(ctx, inst.ID); err != nil {
			t.Error(err)
		}
	})

	t.Run("container/response-cut", func(t *testing.T) {
		// Toxiproxy lets 12 bytes of the answer through, then closes the
		// connection; the retry hook lifts the toxic.
		sid := newSession(t)
		defer r.cleanupSession(sid)
		cut := newRig(t, rigConfig{host: p.Host, wrap: []resilient.Option{quickRetry()},
			onRetry: func(context.Context, retry.Info) { p.clearToxics() }})
		if _, err := cut.d.HealthCheck(ctx); err != nil {
			t.Fatal(err)
		}
		p.hop.reset()
		p.toxic(t, "cut", "limit_data", "downstream", 1, map[string]int64{"bytes": 12})
		defer p.clearToxics()
		inst, err := cut.d.CreateContainer(ctx, smallConfig(sid))
		if err != nil {
			t.Fatalf("CreateContainer through a cut response: %v", err)
		}
		checkOneContainer(t, ctx, sid, inst.ID)
		t.Logf("container: answer cut after 12 bytes; %d retries, %d create requests, one container %s",
			cut.retries.Load(), p.hop.count(func(q request) bool { return isCreate(q.Method, q.Path) }), inst.ID[:12])
		if cut.retries.Load() == 0 {
			t.Error("the create was not retried: the toxic did not cut its answer")
		}
		if err := cut.d.RemoveContainer(ctx, inst.ID); err != nil {
			t.Error(err)
		}
	})

	t.Run("container/cut-at-every-offset", func(t *testing.T) {
		// The answers of a create (the create's, then the inspect's) cut
		// after n bytes, for n across both: wherever the cut falls, the
		// create succeeds through its retry and makes one container.
		sid := newSession(t)
		defer r.cleanupSession(sid)
		cut := newRig(t, rigConfig{host: p.Host,
			// Half of these creates fail once, which would open a circuit.
			wrap:    []resilient.Option{quickRetry(), resilient.WithoutBreaker()},
			onRetry: func(context.Context, retry.Info) { p.clearToxics() }})
		if _, err := cut.d.HealthCheck(ctx); err != nil {
			t.Fatal(err)
		}
		var offsets []int64
		for n := int64(0); n < 400; n += 13 {
			offsets = append(offsets, n)
		}
		for n := int64(400); n < 8000; n += 397 {
			offsets = append(offsets, n)
		}
		outcomes := map[string]int{}
		for _, n := range offsets {
			osid := fmt.Sprintf("%s-%d", sid, n)
			retries := cut.retries.Load()
			p.toxic(t, "cut", "limit_data", "downstream", 1, map[string]int64{"bytes": n})
			inst, err := cut.d.CreateContainer(ctx, smallConfig(osid))
			p.clearToxics()
			if err != nil {
				t.Errorf("answer cut after %d bytes: CreateContainer: %v", n, err)
				outcomes[codeOf(err)]++
				cut.cleanupSession(osid)
				continue
			}
			if cut.retries.Load() > retries {
				outcomes["ok after a retry"]++
			} else {
				outcomes["ok at once"]++
			}
			checkOneContainer(t, ctx, osid, inst.ID)
			if err := cut.d.RemoveContainer(ctx, inst.ID); err != nil {
				t.Errorf("RemoveContainer: %v", err)
			}
		}
		t.Logf("create answers cut at %d offsets from 0 to %d bytes: %v", len(offsets), offsets[len(offsets)-1], outcomes)
	})

	t.Run("remove", func(t *testing.T) {
		// The daemon removes, the answer is lost: the retry finds nothing
		// and the remove succeeds.
		sid := newSession(t)
		defer r.cleanupSession(sid)
		inst, err := r.d.CreateContainer(ctx, smallConfig(sid))
		if err != nil {
			t.Fatal(err)
		}
		vol, err := r.d.CreateVolume(ctx, contract.VolumeConfig{Name: "chaos-rm-" + randHex(4)})
		if err != nil {
			t.Fatal(err)
		}
		nw, err := r.d.CreateNetwork(ctx, contract.NetworkConfig{Name: "chaos-rm-" + randHex(4)})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			what   string
			prefix string
			remove func() error
		}{
			{"container", "/containers/", func() error { return r.d.RemoveContainer(ctx, inst.ID) }},
			{"volume", "/volumes/", func() error { return r.d.RemoveVolume(ctx, vol.ID) }},
			{"network", "/networks/", func() error { return r.d.RemoveNetwork(ctx, nw.ID) }},
		} {
			p.hop.reset()
			p.hop.loseResponses(1, func(m, path string) bool { return m == http.MethodDelete && strings.HasPrefix(path, tt.prefix) })
			if err := tt.remove(); err != nil {
				t.Errorf("%s remove through a lost answer: %v", tt.what, err)
			}
			t.Logf("%s: %d requests, the DELETE's answer lost, remove succeeded", tt.what, len(p.hop.requests()))
		}
	})

	t.Run("volume", func(t *testing.T) {
		_ = newSession(t)
		name := "chaos-lost-" + randHex(4)
		p.hop.loseResponses(1, func(m, path string) bool { return m == http.MethodPost && path == "/volumes/create" })
		v, err := r.d.CreateVolume(ctx, contract.VolumeConfig{Name: name})
		if err != nil {
			t.Fatalf("CreateVolume through a lost response: %v", err)
		}
		vs, err := docker.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, x := range vs.Volumes {
			if x.Name == name {
				n++
			}
		}
		if n != 1 || v.Name != name {
			t.Errorf("%d volumes named %s on the daemon, the create returned %q; want exactly that one", n, name, v.Name)
		}
		if err := r.d.RemoveVolume(ctx, v.ID); err != nil {
			t.Error(err)
		}
	})

	t.Run("network", func(t *testing.T) {
		_ = newSession(t)
		name := "chaos-lost-" + randHex(4)
		p.hop.loseResponses(1, func(m, path string) bool { return m == http.MethodPost && path == "/networks/create" })
		n, err := r.d.CreateNetwork(ctx, contract.NetworkConfig{Name: name})
		if err != nil {
			t.Fatalf("CreateNetwork through a lost response: %v", err)
		}
		ns, err := docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for _, x := range ns {
			if x.Name == name {
				count++
				if x.ID != n.ID {
					t.Errorf("network %s on the daemon is %s, the create returned %s", name, x.ID, n.ID)
				}
			}
		}
		if count != 1 {
			t.Errorf("%d networks named %s on the daemon, want 1", count, name)
		}
		if err := r.d.RemoveNetwork(ctx, n.ID); err != nil {
			t.Error(err)
		}
	})
}

// checkOneContainer asks the daemon directly that session sid has exactly
// one container, id.
func checkOneContainer(t testing.TB, ctx context.Context, sid, id string) {
	t.Helper()
	list, err := docker.ContainerList(ctx, containerListOptions(sid))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != id {
		var ids []string
		for _, c := range list {
			ids = append(ids, c.ID[:12])
		}
		t.Errorf("session %s has containers %v on the daemon; want exactly %s", sid, ids, id[:12])
	}
}

// TestChaosDaemonHung makes the daemon accept connections and never
// answer (Toxiproxy's timeout toxic without a timeout). Calls with a
// deadline return at it with a TIMEOUT that is not retried; HealthCheck
// with a deadline reports unhealthy. As the breaker documents, deadlines
// the callers set are theirs, not failures of the daemon: the circuits
// stay closed, and every call waits out its own deadline.
// TestChaosDaemonHungAttemptTimeout shows the remedy, an attempt timeout.
func TestChaosDaemonHung(t *testing.T) {
	const deadline = 500 * time.Millisecond
	const slack = 150 * time.Millisecond
	p := newDaemonPath(t)
	r := newRig(t, rigConfig{host: p.Host, wrap: []resilient.Option{
		quickRetry(), resilient.WithBreaker(breaker.WithConsecutiveFailures(3)),
	}})
	ctx := testCtx(t, 2*time.Minute)
	if _, err := r.d.HealthCheck(ctx); err != nil {
		t.Fatal(err)
	}
	sid := newSession(t)
	p.toxic(t, "hang", "timeout", "downstream", 1, map[string]int64{"timeout": 0})

	ops := []struct {
		op contract.Op
		do func(context.Context) error
	}{
		{contract.OpGetContainer, func(ctx context.Context) error { _, err := r.d.GetContainer(ctx, "0123456789ab"); return err }},
		{contract.OpListContainers, func(ctx context.Context) error {
			_, err := r.d.ListContainers(ctx, contract.ContainerFilter{SessionID: sid})
			return err
		}},
		{contract.OpCreateContainer, func(ctx context.Context) error { _, err := r.d.CreateContainer(ctx, smallConfig(sid)); return err }},
	}
	for range 4 {
		for _, oc := range ops {
			cctx, cancel := context.WithTimeout(ctx, deadline)
			start := time.Now()
			err := oc.do(cctx)
			d := time.Since(start)
			cancel()
			r.stats.observe(oc.op, d, err)
			wantCode(t, string(oc.op)+" on a hung daemon", err, contract.CodeTimeout)
			if contract.IsRetryable(err) {
				t.Errorf("%s: a call past its own deadline is retryable: %v", oc.op, err)
			}
			if d > deadline+slack {
				t.Errorf("%s returned after %v, deadline %v", oc.op, d, deadline)
			}
		}
	}
	hctx, cancel := context.WithTimeout(ctx, deadline)
	start := time.Now()
	h, err := r.d.HealthCheck(hctx)
	hd := time.Since(start)
	cancel()
	if err != nil || h.Status != contract.Unhealthy {
		t.Errorf("HealthCheck on a hung daemon = %+v, %v; want unhealthy", h, err)
	}
	t.Logf("HealthCheck on a hung daemon, %v deadline: %s after %v (%s)", deadline, h.Status, hd.Round(time.Millisecond), h.Error)
	if n := len(r.circuits.list()); n != 0 {
		t.Errorf("%d circuit changes on callers' deadlines: %s", n, r.circuits.summary())
	}
	p.clearToxics()
	// Creates that timed out may have reached the daemon before it hung
	// its answer; the session's cleanup removes them.
	r.cleanupSession(sid)
	r.report(t, fmt.Sprintf("a daemon that never answers; every call with a %v deadline", deadline))
}

// TestChaosDaemonHungAttemptTimeout puts the same hung daemon behind a
// retry layer with an attempt timeout. Each attempt is cut after 300ms
// with a retryable TIMEOUT that the breaker counts as a failure of the
// daemon, so the first call, under a caller deadline of 10s, opens the
// circuit of its operation after three attempts instead of waiting out
// its deadline. The calls after it fail at once with CIRCUIT_OPEN,
// without a request reaching the daemon.
func TestChaosDaemonHungAttemptTimeout(t *testing.T) {
	const (
		attemptTimeout = 300 * time.Millisecond
		threshold      = 3
		openTimeout    = 2 * time.Second
		deadline       = 10 * time.Second
		fastLimit      = 50 * time.Millisecond
		fastCalls      = 20
	)
	p := newDaemonPath(t)
	r := newRig(t, rigConfig{host: p.Host, wrap: []resilient.Option{
		// The max elapsed time, shorter than the open timeout, makes a call
		// that meets the open circuit give up at once rather than wait out
		// its RetryAfter.
		quickRetry(retry.WithMaxAttempts(threshold), retry.WithMaxElapsedTime(time.Second)),
		resilient.WithTimeout(attemptTimeout),
		resilient.WithBreaker(breaker.WithConsecutiveFailures(threshold), breaker.WithOpenTimeout(openTimeout)),
	}})
	ctx := testCtx(t, 2*time.Minute)
	if _, err := r.d.HealthCheck(ctx); err != nil {
		t.Fatal(err)
	}
	_ = newSession(t) // the leak check
	op := contract.OpGetContainer
	get := func() error {
		cctx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		_, err := r.d.GetContainer(cctx, "0123456789ab")
		return err
	}
	p.toxic(t, "hang", "timeout", "downstream", 1, map[string]int64{"timeout": 0})
	defer p.clearToxics()

	p.hop.reset()
	start := time.Now()
	err := get()
	first := time.Since(start)
	r.stats.observe(op, first, err)
	if code := codeOf(err); code != string(contract.CodeTimeout) && code != string(contract.CodeCircuitOpen) {
		t.Errorf("first call on a hung daemon: error %v (%s), want TIMEOUT or CIRCUIT_OPEN", err, code)
	}
	if !contract.IsRetryable(err) {
		t.Errorf("first call: the error of an attempt cut by its timeout is not retryable: %v", err)
	}
	var re *retry.Error
	if errors.As(err, &re) && re.Attempts != threshold {
		t.Errorf("first call: retry.Error.Attempts = %d, want %d", re.Attempts, threshold)
	}
	attempts := r.attemptsOf(op)
	if attempts != threshold {
		t.Errorf("first call: %d attempts reached the driver, want %d", attempts, threshold)
	}
	if first < threshold*attemptTimeout || first > threshold*attemptTimeout+time.Second {
		t.Errorf("first call returned after %v; want about %d x %v", first, threshold, attemptTimeout)
	}
	reached := len(p.hop.requests())
	if reached == 0 {
		t.Errorf("no request of the first call reached the daemon: the hang is not the daemon's")
	}
	opened, ok := r.circuits.first(op, breaker.Open, start)
	if !ok {
		t.Fatalf("%s: circuit %s after %d attempts cut by their timeout; want open (%s)", op, r.circuits.state(op), attempts, r.circuits.summary())
	}
	if st := r.circuits.state(op); st != breaker.Open {
		t.Errorf("%s: circuit %s after the first call, want open", op, st)
	}
	t.Logf("first call: %s after %v, %d attempts of %v, %d requests reached the daemon; circuit open %v after the call started",
		codeOf(err), first.Round(time.Millisecond), attempts, attemptTimeout, reached, opened.At.Sub(start).Round(time.Millisecond))

	// The open circuit answers at once, without a request to the daemon.
	fast := newStats()
	for range fastCalls {
		if time.Since(opened.At) > openTimeout-200*time.Millisecond {
			break // the circuit would go half-open and let a probe through
		}
		start := time.Now()
		err := get()
		d := time.Since(start)
		fast.observe(op, d, err)
		r.stats.observe(op, d, err)
		wantCode(t, string(op)+" with its circuit open", err, contract.CodeCircuitOpen)
		if ra := contract.RetryAfter(err); ra <= 0 || ra > openTimeout+time.Millisecond {
			t.Errorf("RetryAfter = %v, want within (0, %v]", ra, openTimeout)
		}
		if d > fastLimit {
			t.Errorf("an open circuit took %v to answer; want under %v", d, fastLimit)
		}
	}
	if n := r.attemptsOf(op) - attempts; n != 0 {
		t.Errorf("%d attempts reached the driver through an open circuit", n)
	}
	if n := len(p.hop.requests()) - reached; n != 0 {
		t.Errorf("%d requests reached the daemon through an open circuit", n)
	}
	fastLat := fast.all()
	if len(fastLat) < fastCalls/2 {
		t.Errorf("only %d calls made while the circuit was open", len(fastLat))
	}
	var b strings.Builder
	fast.table(&b, nil)
	t.Logf("calls with the circuit open (caller deadline %v): %d, p50 %s, p99 %s:\n%s",
		deadline, len(fastLat), ms(percentile(fastLat, 50)), ms(percentile(fastLat, 99)), b.String())
	p.clearToxics()
	r.report(t, fmt.Sprintf("a daemon that never answers; %v per attempt, caller deadline %v", attemptTimeout, deadline))
}
