package memdriver_test

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/memdriver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func config(session string) contract.ContainerConfig {
	return contract.NewContainerConfig(session, "alpine:3.20")
}

func mustCreate(t *testing.T, d *memdriver.Driver, cfg contract.ContainerConfig) contract.ContainerInstance {
	t.Helper()
	inst, err := d.CreateContainer(t.Context(), cfg)
	if err != nil {
		t.Fatalf("CreateContainer = %v", err)
	}
	return inst
}

func mustGet(t *testing.T, d *memdriver.Driver, id string) contract.ContainerInstance {
	t.Helper()
	c, err := d.GetContainer(t.Context(), id)
	if err != nil || c == nil {
		t.Fatalf("GetContainer(%s) = %v, %v", id, c, err)
	}
	return *c
}

func wantCode(t *testing.T, err error, code contract.Code, retryable bool) {
	t.Helper()
	if got := contract.CodeOf(err); got != code {
		t.Fatalf("error = %v (code %q), want code %s", err, got, code)
	}
	if got := contract.IsRetryable(err); got != retryable {
		t.Errorf("IsRetryable(%v) = %v, want %v", err, got, retryable)
	}
}

func TestNameVersion(t *testing.T) {
	d := memdriver.New()
	if d.Name() != "memory" || d.Name() != memdriver.DriverName {
		t.Errorf("Name() = %q, want memory", d.Name())
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(d.Version()) {
		t.Errorf("Version() = %q, want a semantic version", d.Version())
	}
}

func TestCreateContainer(t *testing.T) {
	clock := newClock()
	d := memdriver.New(memdriver.WithClock(clock.Now))
	cfg := config("team/a b")
	cfg.Labels["app"] = "web"
	inst := mustCreate(t, d, cfg)

	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(inst.ID) {
		t.Errorf("ID = %q, want 64 hex digits", inst.ID)
	}
	if want := "resilient-team-a-b-" + inst.ID[:12]; inst.Name != want {
		t.Errorf("Name = %q, want %q", inst.Name, want)
	}
	if want := "memory://" + inst.Name; inst.Endpoint != want {
		t.Errorf("Endpoint = %q, want %q", inst.Endpoint, want)
	}
	if inst.Status != contract.StatusCreated || inst.State != contract.StateTerminated {
		t.Errorf("Status, State = %s, %s, want created, terminated", inst.Status, inst.State)
	}
	if !inst.CreatedAt.Equal(clock.Now()) || !inst.StartedAt.IsZero() {
		t.Errorf("CreatedAt, StartedAt = %v, %v, want %v, zero", inst.CreatedAt, inst.StartedAt, clock.Now())
	}
	if inst.Resources != cfg.Resources {
		t.Errorf("Resources = %+v, want %+v", inst.Resources, cfg.Resources)
	}
	if inst.Labels["app"] != "web" || len(inst.Labels) != 1 {
		t.Errorf("Labels = %v, want app=web", inst.Labels)
	}
	if got := mustGet(t, d, inst.Name); got.ID != inst.ID {
		t.Errorf("GetContainer by name = %s, want %s", got.ID, inst.ID)
	}

	long := mustCreate(t, d, config(strings.Repeat("s", 100)))
	if want := "resilient-" + strings.Repeat("s", 64) + "-" + long.ID[:12]; long.Name != want {
		t.Errorf("Name of a long session = %q, want %q", long.Name, want)
	}

	nilLabels := config("s")
	nilLabels.Labels = nil
	if inst := mustCreate(t, d, nilLabels); inst.Labels == nil {
		t.Error("Labels = nil for a config without labels, want an empty map")
	}
}

func TestCreateContainerInvalid(t *testing.T) {
	d := memdriver.New()
	cfg := config("")
	_, err := d.CreateContainer(t.Context(), cfg)
	wantCode(t, err, contract.CodeConfiguration, false)
	var de *contract.DriverError
	if errors.As(err, &de); de.Op != contract.OpCreateContainer {
		t.Errorf("Op = %q, want CreateContainer", de.Op)
	}
	var ve *contract.ValidationError
	if !errors.As(err, &ve) || len(ve.Issues) == 0 || ve.Issues[0].Path != "sessionId" {
		t.Errorf("error %v does not hold the sessionId issue", err)
	}
}

func TestCreateContainerNetworks(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()
	n, err := d.CreateNetwork(ctx, contract.NetworkConfig{Name: "backend"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give    string
		wantErr contract.Code
	}{
		{give: ""},
		{give: "bridge"},
		{give: "host"},
		{give: "none"},
		{give: "backend"},
		{give: n.ID},
		{give: "missing", wantErr: contract.CodeNetworkNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			cfg := config("s-" + tt.give)
			cfg.Network = tt.give
			_, err := d.CreateContainer(ctx, cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CreateContainer(network %q) = %v", tt.give, err)
				}
				return
			}
			wantCode(t, err, tt.wantErr, false)
			if list, _ := d.ListContainers(ctx, contract.ContainerFilter{SessionID: cfg.SessionID}); len(list) != 0 {
				t.Errorf("a failed create left %d containers", len(list))
			}
		})
	}
}

func TestCreateContainerVolumeAutoCreated(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()
	cfg := config("s")
	cfg.Volumes = []contract.VolumeMount{
		{Source: "data", Target: "/data"},
		{Source: "data", Target: "/again", ReadOnly: true, Type: contract.MountVolume},
		{Source: "/srv", Target: "/srv"},
	}
	inst := mustCreate(t, d, cfg)
	err := d.RemoveVolume(ctx, "data")
	wantCode(t, err, contract.CodeVolumeRemove, false)
	if err := d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveVolume(ctx, "data"); err != nil {
		t.Errorf("RemoveVolume of the auto-created volume = %v", err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()
	kctx := contract.WithIdempotencyKey(ctx, "k1")
	first := mustCreate(t, d, config("s"))
	a, err := d.CreateContainer(kctx, config("s"))
	if err != nil {
		t.Fatal(err)
	}
	other := config("other-session")
	b, err := d.CreateContainer(kctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || b.SessionID != "s" {
		t.Errorf("same key, different config: got %s in %s, want the first container %s", b.ID, b.SessionID, a.ID)
	}
	if a.ID == first.ID {
		t.Error("a create with a key returned a container made without it")
	}
	if all, _ := d.ListContainers(ctx, contract.ContainerFilter{}); len(all) != 2 {
		t.Errorf("ListContainers = %d containers, want 2", len(all))
	}

	// The key is free again once its container is gone.
	if err := d.RemoveContainer(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	c, err := d.CreateContainer(kctx, config("s"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == a.ID {
		t.Error("a key whose container was removed returned the removed container")
	}

	// Keys are per kind of resource.
	v, err := d.CreateVolume(kctx, contract.VolumeConfig{Name: "v1"})
	if err != nil || v.Name != "v1" {
		t.Fatalf("CreateVolume with a container's key = %+v, %v", v, err)
	}
	v2, err := d.CreateVolume(kctx, contract.VolumeConfig{Name: "v2"})
	if err != nil || v2.Name != "v1" {
		t.Errorf("second CreateVolume with the key = %q, %v, want v1", v2.Name, err)
	}
	n, err := d.CreateNetwork(kctx, contract.NetworkConfig{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	n2, err := d.CreateNetwork(kctx, contract.NetworkConfig{Name: "n2"})
	if err != nil || n2.ID != n.ID {
		t.Errorf("second CreateNetwork with the key = %q, %v, want %q", n2.Name, err, n.Name)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	d := memdriver.New(memdriver.WithClock(clock.Now))
	id := mustCreate(t, d, config("s")).ID

	type step struct {
		name       string
		do         func() error
		wantStatus contract.ContainerStatus
	}
	stop := func() error { return d.StopContainer(ctx, id, contract.StopOptions{}) }
	start := func() error { clock.Advance(time.Second); return d.StartContainer(ctx, id) }
	steps := []step{
		{"stop created", stop, contract.StatusCreated},
		{"start", start, contract.StatusRunning},
		{"start running", func() error { return d.StartContainer(ctx, id) }, contract.StatusRunning},
		{"stop", stop, contract.StatusStopped},
		{"stop stopped", stop, contract.StatusStopped},
		{"restart", start, contract.StatusRunning},
		{"exit", func() error { return d.Exit(id) }, contract.StatusExited},
		{"stop exited", stop, contract.StatusExited},
		{"start exited", start, contract.StatusRunning},
		{"force stop", func() error { return d.StopContainer(ctx, id, contract.StopOptions{Force: true}) }, contract.StatusStopped},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := mustGet(t, d, id)
		if got.Status != s.wantStatus || got.State != contract.StateOf(s.wantStatus) {
			t.Fatalf("%s: Status, State = %s, %s, want %s, %s", s.name, got.Status, got.State, s.wantStatus, contract.StateOf(s.wantStatus))
		}
	}
	if got := mustGet(t, d, id); !got.StartedAt.Equal(clock.Now()) {
		t.Errorf("StartedAt = %v, want the last start, %v", got.StartedAt, clock.Now())
	}
	wantCode(t, d.Exit(id), contract.CodeContainerStop, false)

	logs, err := d.GetContainerLogs(ctx, id, contract.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "memdriver: started alpine:3.20\nmemdriver: stopped\n" +
		"memdriver: started alpine:3.20\nmemdriver: exited\n" +
		"memdriver: started alpine:3.20\nmemdriver: stopped\n"
	if logs != want {
		t.Errorf("logs = %q, want %q", logs, want)
	}
}

func TestRemoveContainer(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()
	for _, running := range []bool{false, true} {
		id := mustCreate(t, d, config("s")).ID
		if running {
			if err := d.StartContainer(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.RemoveContainer(ctx, id); err != nil {
			t.Fatalf("RemoveContainer(running %v) = %v", running, err)
		}
		if c, err := d.GetContainer(ctx, id); c != nil || err != nil {
			t.Errorf("GetContainer after remove = %v, %v", c, err)
		}
	}
}

func TestNotFound(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()
	const id = "missing"
	calls := map[string]func() error{
		"StartContainer":     func() error { return d.StartContainer(ctx, id) },
		"StopContainer":      func() error { return d.StopContainer(ctx, id, contract.StopOptions{}) },
		"RemoveContainer":    func() error { return d.RemoveContainer(ctx, id) },
		"GetContainerLogs":   func() error { _, err := d.GetContainerLogs(ctx, id, contract.LogOptions{}); return err },
		"IsContainerHealthy": func() error { _, err := d.IsContainerHealthy(ctx, id); return err },
		"StreamContainerLogs": func() error {
			_, err := d.StreamContainerLogs(ctx, id, contract.LogOptions{})
			return err
		},
		"WriteLog": func() error { return d.WriteLog(id, memdriver.Stdout, "x") },
		"Exit":     func() error { return d.Exit(id) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			wantCode(t, err, contract.CodeContainerNotFound, false)
			var de *contract.DriverError
			if errors.As(err, &de); de.ID != id {
				t.Errorf("ID = %q, want %q", de.ID, id)
			}
		})
	}
	if c, err := d.GetContainer(ctx, id); c != nil || err != nil {
		t.Errorf("GetContainer(missing) = %v, %v, want nil, nil", c, err)
	}
	wantCode(t, d.RemoveVolume(ctx, id), contract.CodeVolumeNotFound, false)
	wantCode(t, d.RemoveNetwork(ctx, id), contract.CodeNetworkNotFound, false)
}

func TestContextDone(t *testing.T) {
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Unix(1, 0))
	defer cancel2()

	for _, tc := range []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"canceled", canceled, context.Canceled},
		{"deadline", expired, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			d := memdriver.New()
			id := mustCreate(t, d, config("s")).ID
			v, _ := d.CreateVolume(t.Context(), contract.VolumeConfig{Name: "v"})
			n, _ := d.CreateNetwork(t.Context(), contract.NetworkConfig{Name: "n"})
			calls := map[contract.Op]func() error{
				contract.OpCreateContainer: func() error { _, err := d.CreateContainer(ctx, config("s")); return err },
				contract.OpStartContainer:  func() error { return d.StartContainer(ctx, id) },
				contract.OpStopContainer:   func() error { return d.StopContainer(ctx, id, contract.StopOptions{}) },
				contract.OpRemoveContainer: func() error { return d.RemoveContainer(ctx, id) },
				contract.OpGetContainer:    func() error { _, err := d.GetContainer(ctx, id); return err },
				contract.OpListContainers: func() error {
					_, err := d.ListContainers(ctx, contract.ContainerFilter{})
					return err
				},
				contract.OpGetContainerLogs: func() error {
					_, err := d.GetContainerLogs(ctx, id, contract.LogOptions{})
					return err
				},
				contract.OpHealthCheck:        func() error { _, err := d.HealthCheck(ctx); return err },
				contract.OpIsContainerHealthy: func() error { _, err := d.IsContainerHealthy(ctx, id); return err },
				contract.OpCreateVolume: func() error {
					_, err := d.CreateVolume(ctx, contract.VolumeConfig{Name: "v2"})
					return err
				},
				contract.OpRemoveVolume: func() error { return d.RemoveVolume(ctx, v.ID) },
				contract.OpCreateNetwork: func() error {
					_, err := d.CreateNetwork(ctx, contract.NetworkConfig{Name: "n2"})
					return err
				},
				contract.OpRemoveNetwork: func() error { return d.RemoveNetwork(ctx, n.ID) },
				contract.OpStreamContainerLogs: func() error {
					_, err := d.StreamContainerLogs(ctx, id, contract.LogOptions{})
					return err
				},
			}
			if len(calls) != len(contract.Ops())+1 {
				t.Fatalf("test covers %d ops, want all %d", len(calls), len(contract.Ops())+1)
			}
			for op, call := range calls {
				err := call()
				if !errors.Is(err, tc.want) {
					t.Errorf("%s = %v, want errors.Is(%v)", op, err, tc.want)
				}
				if contract.IsRetryable(err) {
					t.Errorf("%s = %v: retryable", op, err)
				}
				var de *contract.DriverError
				if !errors.As(err, &de) || de.Op != op {
					t.Errorf("%s = %v: want a *DriverError with Op %s", op, err, op)
				}
			}
			// Nothing happened.
			all, _ := d.ListContainers(t.Context(), contract.ContainerFilter{})
			if len(all) != 1 || all[0].Status != contract.StatusCreated {
				t.Errorf("containers after calls with a done context: %+v", all)
			}
			if err := d.RemoveVolume(t.Context(), "v2"); contract.CodeOf(err) != contract.CodeVolumeNotFound {
				t.Errorf("volume v2 was created: RemoveVolume = %v", err)
			}
			if err := d.RemoveNetwork(t.Context(), "n2"); contract.CodeOf(err) != contract.CodeNetworkNotFound {
				t.Errorf("network n2 was created: RemoveNetwork = %v", err)
			}
			if err := d.RemoveVolume(t.Context(), v.ID); err != nil {
				t.Errorf("volume was removed by a call with a done context: %v", err)
			}
			if err := d.RemoveNetwork(t.Context(), n.ID); err != nil {
				t.Errorf("network was removed by a call with a done context: %v", err)
			}
		})
	}
}

func TestListContainers(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()
	var want []string
	for i, s := range []string{"b", "a", "b", "c", "b"} {
		cfg := config(s)
		cfg.Labels["i"] = string(rune('0' + i))
		inst := mustCreate(t, d, cfg)
		if s == "b" {
			want = append(want, inst.ID)
		}
	}
	if err := d.StartContainer(ctx, want[1]); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give contract.ContainerFilter
		want []string
	}{
		{"session in creation order", contract.ContainerFilter{SessionID: "b"}, want},
		{"status", contract.ContainerFilter{SessionID: "b", Status: contract.StatusCreated}, []string{want[0], want[2]}},
		{"state", contract.ContainerFilter{State: contract.StateRunning}, []string{want[1]}},
		{"label", contract.ContainerFilter{Label: map[string]string{"i": "4"}}, []string{want[2]}},
		{"none", contract.ContainerFilter{SessionID: "z"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := d.ListContainers(ctx, tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if list == nil {
				t.Fatal("ListContainers = nil, want a non-nil slice")
			}
			got := make([]string, len(list))
			for i, c := range list {
				got[i] = c.ID
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("ListContainers(%+v) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestLabelsNotAliased(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()
	cfg := config("s")
	cfg.Labels["k"] = "v"
	inst := mustCreate(t, d, cfg)
	cfg.Labels["k"] = "changed"
	inst.Labels["k"] = "changed"
	got := mustGet(t, d, inst.ID)
	got.Labels["k"] = "changed"
	list, _ := d.ListContainers(ctx, contract.ContainerFilter{})
	list[0].Labels["k"] = "changed"
	if got := mustGet(t, d, inst.ID); got.Labels["k"] != "v" {
		t.Errorf("Labels[k] = %q, want v", got.Labels["k"])
	}

	labels := map[string]string{"k": "v"}
	v, _ := d.CreateVolume(ctx, contract.VolumeConfig{Name: "v", Labels: labels})
	n, _ := d.CreateNetwork(ctx, contract.NetworkConfig{Name: "n", Labels: labels})
	labels["k"] = "changed"
	v.Labels["k"] = "changed"
	n.Labels["k"] = "changed"
	if v2, _ := d.CreateVolume(ctx, contract.VolumeConfig{Name: "v"}); v2.Labels["k"] != "v" {
		t.Errorf("volume Labels[k] = %q, want v", v2.Labels["k"])
	}
	if n2, _ := d.CreateNetwork(contract.WithIdempotencyKey(ctx, "x"), contract.NetworkConfig{Name: "n3"}); n2.Labels == nil {
		t.Error("network Labels = nil, want an empty map")
	}
}

func TestHealthCheck(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	d := memdriver.New(memdriver.WithClock(clock.Now))
	clock.Advance(90 * time.Second)
	for range 3 {
		mustCreate(t, d, config("s"))
	}
	list, _ := d.ListContainers(ctx, contract.ContainerFilter{})
	if err := d.StartContainer(ctx, list[0].ID); err != nil {
		t.Fatal(err)
	}
	h, err := d.HealthCheck(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := contract.DriverHealth{
		Status:     contract.Healthy,
		Version:    memdriver.Version,
		Uptime:     90 * time.Second,
		Containers: contract.ContainerCounts{Total: 3, Running: 1, Stopped: 2},
	}
	if h != want {
		t.Errorf("HealthCheck = %+v, want %+v", h, want)
	}
	if ok, err := d.IsContainerHealthy(ctx, list[0].ID); !ok || err != nil {
		t.Errorf("IsContainerHealthy(running) = %v, %v", ok, err)
	}
	if ok, err := d.IsContainerHealthy(ctx, list[1].ID); ok || err != nil {
		t.Errorf("IsContainerHealthy(created) = %v, %v", ok, err)
	}
}

func TestVolumes(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	d := memdriver.New(memdriver.WithClock(clock.Now))

	v, err := d.CreateVolume(ctx, contract.VolumeConfig{Name: "data", Labels: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := contract.Volume{ID: "data", Name: "data", Driver: "local", Mountpoint: "/memdriver/volumes/data/_data",
		CreatedAt: clock.Now(), Labels: map[string]string{"a": "1"}}
	if v.ID != want.ID || v.Name != want.Name || v.Driver != want.Driver || v.Mountpoint != want.Mountpoint ||
		!v.CreatedAt.Equal(want.CreatedAt) || v.Labels["a"] != "1" {
		t.Errorf("CreateVolume = %+v, want %+v", v, want)
	}

	clock.Advance(time.Minute)
	again, err := d.CreateVolume(ctx, contract.VolumeConfig{Name: "data", Driver: "local", Labels: map[string]string{"b": "2"}})
	if err != nil || !again.CreatedAt.Equal(v.CreatedAt) || again.Labels["a"] != "1" || again.Labels["b"] != "" {
		t.Errorf("CreateVolume of an existing name = %+v, %v, want the existing volume", again, err)
	}
	_, err = d.CreateVolume(ctx, contract.VolumeConfig{Name: "data", Driver: "nfs"})
	wantCode(t, err, contract.CodeVolumeCreation, false)
	_, err = d.CreateVolume(ctx, contract.VolumeConfig{Name: "bad/name"})
	wantCode(t, err, contract.CodeConfiguration, false)

	// A stopped container still holds its volume.
	cfg := config("s")
	cfg.Volumes = []contract.VolumeMount{{Source: "data", Target: "/data"}}
	inst := mustCreate(t, d, cfg)
	wantCode(t, d.RemoveVolume(ctx, "data"), contract.CodeVolumeRemove, false)
	if err := d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveVolume(ctx, "data"); err != nil {
		t.Errorf("RemoveVolume = %v", err)
	}
	wantCode(t, d.RemoveVolume(ctx, "data"), contract.CodeVolumeNotFound, false)
}

func TestNetworks(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()

	n, err := d.CreateNetwork(ctx, contract.NetworkConfig{Name: "backend", Driver: "overlay"})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(n.ID) || n.Driver != "overlay" || n.Name != "backend" {
		t.Errorf("CreateNetwork = %+v", n)
	}
	if n, _ := d.CreateNetwork(ctx, contract.NetworkConfig{Name: "plain"}); n.Driver != "bridge" {
		t.Errorf("default network driver = %q, want bridge", n.Driver)
	}
	for _, name := range []string{"backend", "bridge", "host", "none"} {
		_, err := d.CreateNetwork(ctx, contract.NetworkConfig{Name: name})
		wantCode(t, err, contract.CodeNetworkCreation, false)
	}
	_, err = d.CreateNetwork(ctx, contract.NetworkConfig{Name: ""})
	wantCode(t, err, contract.CodeConfiguration, false)
	for _, name := range []string{"bridge", "host", "none"} {
		wantCode(t, d.RemoveNetwork(ctx, name), contract.CodeNetworkRemove, false)
	}

	cfg := config("s")
	cfg.Network = "backend"
	inst := mustCreate(t, d, cfg)
	wantCode(t, d.RemoveNetwork(ctx, n.ID), contract.CodeNetworkRemove, false)
	if err := d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveNetwork(ctx, "backend"); err != nil {
		t.Errorf("RemoveNetwork by name = %v", err)
	}
	wantCode(t, d.RemoveNetwork(ctx, n.ID), contract.CodeNetworkNotFound, false)
	if err := d.RemoveNetwork(ctx, "plain"); err != nil {
		t.Errorf("RemoveNetwork = %v", err)
	}
}

func TestLogs(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	d := memdriver.New(memdriver.WithClock(clock.Now))
	id := mustCreate(t, d, config("s")).ID
	t0 := clock.Now()
	for i, text := range []string{"one", "two\nthree\n", "four"} {
		clock.Advance(time.Second)
		stream := memdriver.Stdout
		if i == 1 {
			stream = memdriver.Stderr
		}
		if err := d.WriteLog(id, stream, text); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, d.WriteLog(id, 3, "x"), contract.CodeConfiguration, false)

	tests := []struct {
		name string
		give contract.LogOptions
		want string
	}{
		{"all", contract.LogOptions{}, "one\ntwo\nthree\nfour\n"},
		{"tail", contract.LogOptions{Tail: 2}, "three\nfour\n"},
		{"tail larger", contract.LogOptions{Tail: 10}, "one\ntwo\nthree\nfour\n"},
		{"since", contract.LogOptions{Since: t0.Add(2 * time.Second)}, "two\nthree\nfour\n"},
		{"since and tail", contract.LogOptions{Since: t0.Add(2 * time.Second), Tail: 1}, "four\n"},
		{"since future", contract.LogOptions{Since: t0.Add(time.Hour)}, ""},
		{"follow ignored", contract.LogOptions{Follow: true, Tail: 1}, "four\n"},
		{"timestamps", contract.LogOptions{Timestamps: true, Tail: 2},
			"2026-01-02T03:04:07.000000000Z three\n2026-01-02T03:04:08.000000000Z four\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.GetContainerLogs(ctx, id, tt.give)
			if err != nil || got != tt.want {
				t.Errorf("GetContainerLogs(%+v) = %q, %v, want %q", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestMaxLogLines(t *testing.T) {
	d := memdriver.New(memdriver.WithMaxLogLines(3))
	id := mustCreate(t, d, config("s")).ID
	for _, l := range []string{"1", "2", "3", "4", "5"} {
		if err := d.WriteLog(id, memdriver.Stdout, l); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := d.GetContainerLogs(t.Context(), id, contract.LogOptions{})
	if got != "3\n4\n5\n" {
		t.Errorf("logs = %q, want the last 3 lines", got)
	}
}

func TestStreamContainerLogs(t *testing.T) {
	tests := []struct {
		name string
		// end ends a followed stream of a running container.
		end     func(d *memdriver.Driver, id string, cancel, closeStream func()) error
		want    string
		wantErr error
	}{
		{"stop", func(d *memdriver.Driver, id string, _, _ func()) error {
			return d.StopContainer(context.Background(), id, contract.StopOptions{})
		}, "memdriver: stopped\n", nil},
		{"exit", func(d *memdriver.Driver, id string, _, _ func()) error { return d.Exit(id) }, "memdriver: exited\n", nil},
		{"remove", func(d *memdriver.Driver, id string, _, _ func()) error {
			return d.RemoveContainer(context.Background(), id)
		}, "", nil},
		{"cancel", func(_ *memdriver.Driver, _ string, cancel, _ func()) error { cancel(); return nil }, "", context.Canceled},
		{"close", func(_ *memdriver.Driver, _ string, _, closeStream func()) error { closeStream(); return nil }, "", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				d := memdriver.New()
				id := mustCreate(t, d, config("s")).ID
				if err := d.WriteLog(id, memdriver.Stdout, "old"); err != nil {
					t.Fatal(err)
				}
				if err := d.StartContainer(ctx, id); err != nil {
					t.Fatal(err)
				}
				rc, err := d.StreamContainerLogs(ctx, id, contract.LogOptions{Follow: true, Tail: 1})
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()

				var got []byte
				var readErr error
				done := make(chan struct{})
				go func() {
					defer close(done)
					got, readErr = io.ReadAll(rc)
				}()
				synctest.Wait()
				if err := d.WriteLog(id, memdriver.Stderr, "new"); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				select {
				case <-done:
					t.Fatal("the stream ended while the container runs")
				default:
				}
				if err := tt.end(d, id, cancel, func() { rc.Close() }); err != nil {
					t.Fatal(err)
				}
				<-done
				want := "memdriver: started alpine:3.20\nnew\n" + tt.want
				if tt.wantErr != nil {
					want = "memdriver: started alpine:3.20\nnew\n"
				}
				if string(got) != want {
					t.Errorf("stream = %q, want %q", got, want)
				}
				switch {
				case tt.wantErr == nil && readErr != nil:
					t.Errorf("ReadAll error = %v, want nil (io.EOF)", readErr)
				case tt.wantErr == errAny && readErr == nil:
					t.Error("ReadAll after Close = nil error, want one")
				case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(readErr, tt.wantErr):
					t.Errorf("ReadAll error = %v, want %v", readErr, tt.wantErr)
				}
			})
		})
	}
}

var errAny = errors.New("any error")

func TestStreamContainerLogsFollowImplied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		clock := newClock()
		d := memdriver.New(memdriver.WithClock(clock.Now))
		id := mustCreate(t, d, config("s")).ID
		if err := d.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		rc, err := d.StreamContainerLogs(ctx, id, contract.LogOptions{Timestamps: true})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var got []byte
		done := make(chan struct{})
		go func() {
			defer close(done)
			got, err = io.ReadAll(rc)
		}()
		synctest.Wait()
		clock.Advance(time.Second)
		if err := d.WriteLog(id, memdriver.Stdout, "later"); err != nil {
			t.Fatal(err)
		}
		if err := d.Exit(id); err != nil {
			t.Fatal(err)
		}
		<-done
		want := "2026-01-02T03:04:05.000000000Z memdriver: started alpine:3.20\n" +
			"2026-01-02T03:04:06.000000000Z later\n" +
			"2026-01-02T03:04:06.000000000Z memdriver: exited\n"
		if string(got) != want || err != nil {
			t.Errorf("stream = %q, %v, want %q, nil", got, err, want)
		}
	})

	// A created container's stream ends after its backlog.
	d := memdriver.New()
	id := mustCreate(t, d, config("s")).ID
	_ = d.WriteLog(id, memdriver.Stdout, "prepared")
	rc, err := d.StreamContainerLogs(t.Context(), id, contract.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); string(got) != "prepared\n" || err != nil {
		t.Errorf("stream of a created container = %q, %v, want %q, nil", got, err, "prepared\n")
	}
}

func TestStreamSmallReads(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()
	id := mustCreate(t, d, config("s")).ID
	if err := d.WriteLog(id, memdriver.Stdout, "hello\nworld"); err != nil {
		t.Fatal(err)
	}
	rc, err := d.StreamContainerLogs(ctx, id, contract.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(io.LimitReader(oneByte{rc}, 100))
	if string(got) != "hello\nworld\n" || err != nil {
		t.Errorf("byte-wise read = %q, %v", got, err)
	}
}

// oneByte reads at most one byte at a time.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

func TestConcurrentUse(t *testing.T) {
	ctx := t.Context()
	d := memdriver.New()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			cfg := config("s")
			inst, err := d.CreateContainer(ctx, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			_ = d.StartContainer(ctx, inst.ID)
			_ = d.WriteLog(inst.ID, memdriver.Stdout, "x")
			_, _ = d.ListContainers(ctx, contract.ContainerFilter{})
			_, _ = d.HealthCheck(ctx)
			_ = d.StopContainer(ctx, inst.ID, contract.StopOptions{})
			if i%2 == 0 {
				_ = d.RemoveContainer(ctx, inst.ID)
			}
		})
	}
	wg.Wait()
	h, _ := d.HealthCheck(ctx)
	if h.Containers.Total != 8 || h.Containers.Stopped != 8 {
		t.Errorf("counts = %+v, want 8 stopped", h.Containers)
	}
}
