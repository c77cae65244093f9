package drivertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

// stopOptions are the options of every stop the suite makes: a short grace
// period keeps the suite fast on a real engine.
var stopOptions = contract.StopOptions{Timeout: 2 * time.Second}

// maxWait bounds how long the suite waits for an engine to reach a state it
// reaches asynchronously (output to appear, a health check to pass), unless
// a quarter of the subtest timeout is shorter.
const maxWait = 30 * time.Second

// hangGrace is how long a subtest may run after its context was cancelled
// for taking too long before the suite gives up on it.
const hangGrace = time.Minute

// labelKey marks every container the suite creates with the run it belongs
// to, so that leftovers on a shared engine can be found.
const labelKey = "drivertest.run"

// A test is one subtest of the suite.
type test struct {
	name string
	run  func(h *harness)
}

// A group is the subtests of one method or topic.
type group struct {
	name  string
	tests []test
}

// groups is the whole suite, in the order it runs.
var groups = []group{
	{"CreateContainer", createTests},
	{"StartContainer", startTests},
	{"StopContainer", stopTests},
	{"RemoveContainer", removeTests},
	{"GetContainer", getTests},
	{"ListContainers", listTests},
	{"GetContainerLogs", logTests},
	{"HealthCheck", healthTests},
	{"IsContainerHealthy", isHealthyTests},
	{"CreateVolume", createVolumeTests},
	{"RemoveVolume", removeVolumeTests},
	{"CreateNetwork", createNetworkTests},
	{"RemoveNetwork", removeNetworkTests},
	{"Canceled", canceledTests},
	{"Concurrency", concurrencyTests},
	{"StreamContainerLogs", streamTests},
	{"ExecContainer", execTests},
	{"Copy", copyTests},
	{"ContainerStats", statsTests},
}

// Run runs the conformance suite against the driver newDriver returns. It
// calls newDriver once per subtest, with that subtest's t; the factory may
// register cleanups on it (they run after the suite's own), and may return
// the same driver each time when drivers are costly. Each subtest uses its
// own random session IDs, volume and network names, so several runs may
// share one engine, and removes everything it made.
//
// Subtests are named "<Method>/<Case>", e.g. "CreateContainer/InvalidConfig",
// and report every violation they find with t.Errorf; a failed step that
// later steps depend on ends the subtest with t.Fatalf. See the package doc
// for what the suite checks and for its options.
func Run(t *testing.T, newDriver func(t *testing.T) contract.ContainerDriver, opts ...Option) {
	t.Helper()
	cfg := newConfig(opts)
	run := randomHex(4)
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					h := newHarness(t, &cfg, run, newDriver)
					tt.run(h)
				})
			}
		})
	}
}

// harness is one subtest's driver, context and bookkeeping.
type harness struct {
	*testing.T
	d    contract.ContainerDriver
	ctx  context.Context // cancelled by the watchdog and when the subtest ends
	cfg  *config
	run  string        // the run's random ID, shared by its subtests
	id   string        // the subtest's random ID
	wait time.Duration // how long to wait for asynchronous state changes

	mu         sync.Mutex
	sessions   []string
	containers []string
	volumes    []string
	networks   []string
}

func newHarness(t *testing.T, cfg *config, run string, newDriver func(*testing.T) contract.ContainerDriver) *harness {
	ctx, cancel := context.WithCancel(t.Context())
	h := &harness{T: t, ctx: ctx, cfg: cfg, run: run, id: randomHex(4), wait: min(maxWait, cfg.timeout/4)}

	// The watchdog's cleanup is registered first so that it runs last and
	// covers the other cleanups.
	var (
		mu       sync.Mutex
		finished bool
		hung     *time.Timer
	)
	name := t.Name()
	timer := time.AfterFunc(cfg.timeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			return
		}
		t.Errorf("drivertest: %s did not finish within %v (see WithTimeout); cancelling its context", name, cfg.timeout)
		cancel()
		hung = time.AfterFunc(hangGrace, func() {
			debug.SetTraceback("all")
			panic(fmt.Sprintf("drivertest: %s still running %v after its context was cancelled; the driver does not honour context cancellation", name, hangGrace))
		})
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		finished = true
		timer.Stop()
		if hung != nil {
			hung.Stop()
		}
		cancel()
	})

	h.d = newDriver(t)
	if h.d == nil {
		t.Fatal("drivertest: newDriver returned nil")
	}
	t.Cleanup(h.cleanup)
	return h
}

// cleanup removes what the subtest made and checks that its sessions are
// empty afterwards.
func (h *harness) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.timeout)
	defer cancel()
	h.mu.Lock()
	containers := slices.Clone(h.containers)
	sessions := slices.Clone(h.sessions)
	volumes := slices.Clone(h.volumes)
	networks := slices.Clone(h.networks)
	h.mu.Unlock()

	for _, id := range slices.Backward(containers) {
		if err := h.d.RemoveContainer(ctx, id); err != nil && !errors.Is(err, contract.ErrContainerNotFound) {
			h.Errorf("cleanup: RemoveContainer(%s) = %v", id, err)
		}
	}
	for _, s := range sessions {
		left, err := h.d.ListContainers(ctx, contract.ContainerFilter{SessionID: s})
		if err != nil {
			h.Errorf("cleanup: ListContainers(session %s) = %v", s, err)
			continue
		}
		if len(left) == 0 {
			continue
		}
		h.Errorf("session %s still lists containers after they were removed: %s", s, describe(left))
		for _, c := range left {
			if err := h.d.RemoveContainer(ctx, c.ID); err != nil && !errors.Is(err, contract.ErrContainerNotFound) {
				h.Errorf("cleanup: RemoveContainer(%s) = %v", c.ID, err)
			}
		}
	}
	for _, id := range slices.Backward(networks) {
		if err := h.d.RemoveNetwork(ctx, id); err != nil && !errors.Is(err, contract.ErrNetworkNotFound) {
			h.Errorf("cleanup: RemoveNetwork(%s) = %v", id, err)
		}
	}
	for _, id := range slices.Backward(volumes) {
		if err := h.d.RemoveVolume(ctx, id); err != nil && !errors.Is(err, contract.ErrVolumeNotFound) {
			h.Errorf("cleanup: RemoveVolume(%s) = %v", id, err)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// describe lists containers briefly for failure messages.
func describe(list []contract.ContainerInstance) string {
	parts := make([]string, len(list))
	for i, c := range list {
		parts[i] = fmt.Sprintf("%s (%s, %s)", short(c.ID), c.Status, c.Name)
	}
	return strings.Join(parts, ", ")
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// session returns a new session ID that the subtest's cleanup checks.
func (h *harness) session() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := fmt.Sprintf("drivertest-%s-%s-%d", h.run, h.id, len(h.sessions))
	h.sessions = append(h.sessions, s)
	return s
}

// name returns a new volume or network name.
func (h *harness) name(kind string) string {
	return fmt.Sprintf("drivertest-%s-%s-%s-%s", h.run, h.id, kind, randomHex(3))
}

// config returns a valid config for the suite's image in session.
func (h *harness) config(session string) contract.ContainerConfig {
	cfg := contract.NewContainerConfig(session, h.cfg.image)
	cfg.Command = slices.Clone(h.cfg.command)
	cfg.Labels[labelKey] = h.run
	return cfg
}

// track records a container for cleanup.
func (h *harness) track(id string) {
	h.mu.Lock()
	h.containers = append(h.containers, id)
	h.mu.Unlock()
}

// create creates a container or ends the subtest.
func (h *harness) create(cfg contract.ContainerConfig) contract.ContainerInstance {
	h.Helper()
	inst, err := h.d.CreateContainer(h.ctx, cfg)
	if err != nil {
		h.Fatalf("CreateContainer(session %s) = %v", cfg.SessionID, err)
	}
	h.track(inst.ID)
	if inst.ID == "" {
		h.Fatalf("CreateContainer returned an instance without ID: %+v", inst)
	}
	return inst
}

// newContainer creates a container of a new session.
func (h *harness) newContainer() contract.ContainerInstance {
	h.Helper()
	return h.create(h.config(h.session()))
}

// running creates and starts a container of a new session.
func (h *harness) running() contract.ContainerInstance {
	h.Helper()
	inst := h.newContainer()
	h.start(inst.ID)
	return inst
}

func (h *harness) start(id string) {
	h.Helper()
	if err := h.d.StartContainer(h.ctx, id); err != nil {
		h.Fatalf("StartContainer(%s) = %v", short(id), err)
	}
}

func (h *harness) stop(id string) {
	h.Helper()
	if err := h.d.StopContainer(h.ctx, id, stopOptions); err != nil {
		h.Fatalf("StopContainer(%s) = %v", short(id), err)
	}
}

func (h *harness) remove(id string) {
	h.Helper()
	if err := h.d.RemoveContainer(h.ctx, id); err != nil {
		h.Fatalf("RemoveContainer(%s) = %v", short(id), err)
	}
}

// get returns the container or ends the subtest when it is absent.
func (h *harness) get(id string) contract.ContainerInstance {
	h.Helper()
	c, err := h.d.GetContainer(h.ctx, id)
	if err != nil {
		h.Fatalf("GetContainer(%s) = %v", short(id), err)
	}
	if c == nil {
		h.Fatalf("GetContainer(%s) = nil, nil for a container that exists", short(id))
	}
	return *c
}

func (h *harness) list(f contract.ContainerFilter) []contract.ContainerInstance {
	h.Helper()
	list, err := h.d.ListContainers(h.ctx, f)
	if err != nil {
		h.Fatalf("ListContainers(%+v) = %v", f, err)
	}
	return list
}

func (h *harness) logs(id string, opts contract.LogOptions) string {
	h.Helper()
	out, err := h.d.GetContainerLogs(h.ctx, id, opts)
	if err != nil {
		h.Fatalf("GetContainerLogs(%s, %+v) = %v", short(id), opts, err)
	}
	return out
}

func (h *harness) createVolume(cfg contract.VolumeConfig) contract.Volume {
	h.Helper()
	v, err := h.d.CreateVolume(h.ctx, cfg)
	if err != nil {
		h.Fatalf("CreateVolume(%s) = %v", cfg.Name, err)
	}
	h.mu.Lock()
	h.volumes = append(h.volumes, v.ID)
	h.mu.Unlock()
	return v
}

func (h *harness) createNetwork(cfg contract.NetworkConfig) contract.Network {
	h.Helper()
	n, err := h.d.CreateNetwork(h.ctx, cfg)
	if err != nil {
		h.Fatalf("CreateNetwork(%s) = %v", cfg.Name, err)
	}
	h.mu.Lock()
	h.networks = append(h.networks, n.ID)
	h.mu.Unlock()
	return n
}

// eventually polls cond until it reports true, for at most h.wait. It
// reports whether cond held; cond's last error, if any, ends the subtest.
func (h *harness) eventually(cond func() (bool, error)) bool {
	h.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, h.wait)
	defer cancel()
	delay := 10 * time.Millisecond
	for {
		ok, err := cond()
		if err != nil {
			h.Fatal(err)
		}
		if ok {
			return true
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// wantCode reports a violation unless err is an error of sentinel's code
// whose retryable flag is the code's.
func (h *harness) wantCode(call string, err error, sentinel *contract.DriverError) {
	h.Helper()
	switch {
	case err == nil:
		h.Errorf("%s = nil error, want %s", call, sentinel.Code)
	case !errors.Is(err, sentinel):
		h.Errorf("%s = %v (code %q), want code %s", call, err, contract.CodeOf(err), sentinel.Code)
	case contract.IsRetryable(err) != sentinel.Retryable:
		h.Errorf("%s = %v: IsRetryable = %v, want %v for %s", call, err, contract.IsRetryable(err), sentinel.Retryable, sentinel.Code)
	}
}

// wantInvalid reports a violation unless err is a CONFIGURATION error that
// is not retryable and holds a *contract.ValidationError with issues.
func (h *harness) wantInvalid(call string, err error) {
	h.Helper()
	h.wantCode(call, err, contract.ErrConfiguration)
	if err == nil {
		return
	}
	var ve *contract.ValidationError
	switch {
	case !errors.As(err, &ve):
		h.Errorf("%s = %v: errors.As(*contract.ValidationError) = false", call, err)
	case len(ve.Issues) == 0:
		h.Errorf("%s = %v: ValidationError has no issues", call, err)
	}
}

// wantEmpty reports a violation when session lists containers.
func (h *harness) wantEmpty(session, after string) {
	h.Helper()
	if left := h.list(contract.ContainerFilter{SessionID: session}); len(left) != 0 {
		h.Errorf("after %s, session lists containers, want none: %s", after, describe(left))
	}
}

// missingID returns an ID that no container, volume or network has.
func missingID() string { return randomHex(32) }

// ids returns the IDs of list, sorted.
func ids(list []contract.ContainerInstance) []string {
	out := make([]string, len(list))
	for i, c := range list {
		out[i] = c.ID
	}
	slices.Sort(out)
	return out
}

// stopped reports whether a status is one a stopped container may have on
// a real engine, where a stop may end the process before the engine
// records it as stopped.
func stopped(s contract.ContainerStatus) bool {
	return s == contract.StatusStopped || s == contract.StatusExited
}

// lines splits output into its lines, without a trailing empty one.
func lines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
