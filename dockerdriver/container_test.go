package dockerdriver_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
)

func TestCreateAppliesEveryField(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)

	cfg := smallConfig(sid, "whoami")
	cfg.Resources = contract.ResourceLimits{CPU: 0.5, Memory: 48, Disk: 12, PIDs: 33}
	cfg.Env = map[string]string{"GREETING": "hello world", "EMPTY": ""}
	cfg.Labels = map[string]string{"app": "demo", "team.owner": "infra"}
	cfg.Security.Capabilities.Add = []string{"net_bind_service"}
	inst := create(t, ctx, d, cfg)

	if inst.SessionID != sid || inst.Image != workloadImage || inst.ID == "" {
		t.Errorf("instance = %+v, want session %s and image %s", inst, sid, workloadImage)
	}
	if !strings.HasPrefix(inst.Name, "resilient-") {
		t.Errorf("Name = %q, want the resilient- prefix", inst.Name)
	}
	if inst.Status != contract.StatusCreated || inst.State != contract.StateTerminated {
		t.Errorf("status/state = %s/%s, want created/terminated", inst.Status, inst.State)
	}
	if inst.Resources != cfg.Resources {
		t.Errorf("Resources = %+v, want %+v", inst.Resources, cfg.Resources)
	}
	if !maps.Equal(inst.Labels, cfg.Labels) {
		t.Errorf("Labels = %v, want exactly %v (no driver or image labels)", inst.Labels, cfg.Labels)
	}
	if inst.CreatedAt.IsZero() || !inst.StartedAt.IsZero() {
		t.Errorf("CreatedAt = %v, StartedAt = %v; want set and zero", inst.CreatedAt, inst.StartedAt)
	}

	// What the daemon really has, asked without the driver.
	c := inspect(t, ctx, inst.ID)
	h := c.HostConfig
	if h.NanoCPUs != 500_000_000 {
		t.Errorf("NanoCPUs = %d, want 5e8", h.NanoCPUs)
	}
	if h.Memory != 48<<20 || h.MemorySwap != 48<<20 {
		t.Errorf("Memory/MemorySwap = %d/%d, want %d for both", h.Memory, h.MemorySwap, 48<<20)
	}
	if h.PidsLimit == nil || *h.PidsLimit != 33 {
		t.Errorf("PidsLimit = %v, want 33", h.PidsLimit)
	}
	if !h.ReadonlyRootfs {
		t.Error("ReadonlyRootfs = false, want true")
	}
	if !slices.Contains(h.SecurityOpt, "no-new-privileges=true") {
		t.Errorf("SecurityOpt = %v, want no-new-privileges=true", h.SecurityOpt)
	}
	if !slices.Equal(h.CapDrop, []string{"ALL"}) || !slices.Equal(h.CapAdd, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("CapDrop/CapAdd = %v/%v, want [ALL]/[CAP_NET_BIND_SERVICE]", h.CapDrop, h.CapAdd)
	}
	if got := h.Tmpfs["/tmp"]; !strings.Contains(got, "size=12m") || !strings.Contains(got, "noexec") {
		t.Errorf("Tmpfs[/tmp] = %q, want a 12m noexec tmpfs", got)
	}
	if len(h.StorageOpt) != 0 {
		t.Errorf("StorageOpt = %v, want none for a read-only root", h.StorageOpt)
	}
	if c.Config.User != contract.DefaultUser {
		t.Errorf("User = %q, want %q", c.Config.User, contract.DefaultUser)
	}
	for _, want := range []string{"GREETING=hello world", "EMPTY="} {
		if !slices.Contains(c.Config.Env, want) {
			t.Errorf("Env = %v, want %q in it", c.Config.Env, want)
		}
	}
	if !slices.Equal(c.Config.Cmd, []string{"whoami"}) {
		t.Errorf("Cmd = %v, want [whoami]", c.Config.Cmd)
	}
	l := c.Config.Labels
	p := dockerdriver.DefaultLabelPrefix
	if l[p+".managed"] != "true" || l[p+".session"] != sid || l["app"] != "demo" || l["team.owner"] != "infra" {
		t.Errorf("labels = %v, want managed, session and the caller's", l)
	}

	// And what the process sees.
	start(t, ctx, d, inst.ID)
	if code := waitExit(t, ctx, inst.ID); code != 0 {
		t.Fatalf("whoami exited %d", code)
	}
	logs, err := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{})
	if err != nil {
		t.Fatalf("GetContainerLogs: %v", err)
	}
	for _, want := range []string{"uid=65534\n", "gid=65534\n", "rootfs_writable=no", "CapEff: 0000000000000000\n", "NoNewPrivs: 1\n"} {
		if !strings.Contains(logs, want) {
			t.Errorf("whoami output lacks %q:\n%s", want, logs)
		}
	}
}

func TestCreateRefusesReservedLabels(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	for _, k := range []string{"io.resilientdriver.managed", "io.resilientdriver.session", "io.resilientdriver"} {
		cfg := smallConfig(sid)
		cfg.Labels = map[string]string{k: "forged"}
		_, err := d.CreateContainer(ctx, cfg)
		wantCode(t, "label "+k, err, contract.CodeConfiguration, false)
	}
}

func TestCreateInvalid(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)

	tests := []struct {
		name   string
		modify func(*contract.ContainerConfig)
		want   contract.Code
	}{
		{"zero memory", func(c *contract.ContainerConfig) { c.Resources.Memory = 0 }, contract.CodeConfiguration},
		{"bad image reference", func(c *contract.ContainerConfig) { c.Image = "UPPER/Case" }, contract.CodeConfiguration},
		{"relative target", func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: "vol", Target: "data"}}
		}, contract.CodeConfiguration},
		{"bind source missing", func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: "/nonexistent/resilient-test", Target: "/data", Type: contract.MountBind}}
		}, contract.CodeConfiguration},
		{"memory below the engine's minimum", func(c *contract.ContainerConfig) { c.Resources.Memory = 1 }, contract.CodeResourceLimit},
		{"more CPUs than the host has", func(c *contract.ContainerConfig) { c.Resources.CPU = 4096 }, contract.CodeResourceLimit},
		{"network missing", func(c *contract.ContainerConfig) { c.Network = "resilient-no-such-network" }, contract.CodeNetworkNotFound},
	}
	for _, tt := range tests {
		cfg := smallConfig(sid)
		tt.modify(&cfg)
		inst, err := d.CreateContainer(ctx, cfg)
		if err == nil {
			removeQuietly(t, d, inst.ID)
		}
		wantCode(t, tt.name, err, tt.want, false)
	}
}

func TestWritableRootDiskPolicy(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	sid := newSession(t)
	info, err := docker.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	quota := false
	switch info.Driver {
	case "btrfs", "zfs", "devicemapper":
		quota = true
	}
	cfg := smallConfig(sid)
	cfg.Security.ReadOnly = false

	d := newDriver(t)
	if quota {
		inst := create(t, ctx, d, cfg)
		if got := inspect(t, ctx, inst.ID).HostConfig.StorageOpt["size"]; got != "16M" {
			t.Errorf("StorageOpt size = %q, want 16M", got)
		}
	} else {
		_, err := d.CreateContainer(ctx, cfg)
		wantCode(t, "writable root on "+info.Driver, err, contract.CodeResourceLimit, false)
		if err != nil && !strings.Contains(err.Error(), "security.readOnly") {
			t.Errorf("the error does not say how to fix it: %v", err)
		}
	}

	// The explicit opt-out accepts it and says the limit is not applied.
	u := newDriver(t, dockerdriver.WithDiskPolicy(dockerdriver.DiskAllowUnboundedRoot))
	inst := create(t, ctx, u, cfg)
	if !quota && inst.Resources.Disk != 0 {
		t.Errorf("Resources.Disk = %d, want 0 (not enforced)", inst.Resources.Disk)
	}
	if len(inspect(t, ctx, inst.ID).HostConfig.Tmpfs) != 0 {
		t.Error("a writable root got a tmpfs")
	}
}

func TestIdempotentCreate(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	cfg := smallConfig(sid)

	// A create whose response was lost, then retried with the same key.
	kctx := contract.WithIdempotencyKey(ctx, "key-"+sid)
	first := create(t, kctx, d, cfg)
	again, err := d.CreateContainer(kctx, cfg)
	if err != nil {
		t.Fatalf("second create with the same key: %v", err)
	}
	if again.ID != first.ID {
		t.Errorf("second create made %s, want the first one %s", again.ID, first.ID)
	}

	// A fresh driver (another process) dedupes too, and so do concurrent
	// creates.
	other := newDriver(t)
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Go(func() {
			inst, err := other.CreateContainer(kctx, cfg)
			ids[i], errs[i] = inst.ID, err
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != first.ID {
			t.Errorf("concurrent create %d: id %s, err %v; want %s", i, ids[i], errs[i], first.ID)
		}
	}

	// Concurrent creates with a fresh key make exactly one container.
	k2 := contract.WithIdempotencyKey(ctx, "key2-"+sid)
	ids2 := make([]string, 6)
	for i := range ids2 {
		wg.Go(func() {
			inst, err := d.CreateContainer(k2, cfg)
			if err != nil {
				t.Errorf("concurrent create with a new key: %v", err)
			}
			ids2[i] = inst.ID
		})
	}
	wg.Wait()
	t.Cleanup(func() { removeQuietly(t, d, ids2[0]) })
	for _, id := range ids2 {
		if id != ids2[0] {
			t.Errorf("concurrent creates with one key made %v", ids2)
			break
		}
	}

	list, err := docker.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", dockerdriver.DefaultLabelPrefix+".session="+sid))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Errorf("the daemon has %d containers of the session, want 2 (one per key)", len(list))
	}

	// The same key from another session is a conflict retrying cannot fix.
	cfg2 := smallConfig(sid + "-other")
	_, err = d.CreateContainer(kctx, cfg2)
	wantCode(t, "same key, other session", err, contract.CodeContainerCreation, false)
}

func TestStartStopRemove(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	inst := create(t, ctx, d, smallConfig(sid))

	// Stopping a container that never ran succeeds.
	if err := d.StopContainer(ctx, inst.ID, contract.StopOptions{}); err != nil {
		t.Errorf("StopContainer of a created container: %v", err)
	}
	start(t, ctx, d, inst.ID)
	start(t, ctx, d, inst.ID) // starting a running container succeeds

	got, err := d.GetContainer(ctx, inst.ID)
	if err != nil || got == nil {
		t.Fatalf("GetContainer = %v, %v", got, err)
	}
	if got.Status != contract.StatusRunning || got.State != contract.StateRunning || got.StartedAt.IsZero() {
		t.Errorf("running container: status %s, state %s, startedAt %v", got.Status, got.State, got.StartedAt)
	}
	if got.Endpoint == "" {
		t.Error("running container has no endpoint")
	}
	if ok, err := d.IsContainerHealthy(ctx, inst.ID); err != nil || !ok {
		t.Errorf("IsContainerHealthy without HEALTHCHECK = %v, %v; want true", ok, err)
	}

	// The workload exits 0 on SIGTERM once it handles the signal, which
	// it says on its first line: before that, Go's default exits 2.
	waitForLine(t, ctx, d, inst.ID, "workload: serving on :8080")
	begin := time.Now()
	if err := d.StopContainer(ctx, inst.ID, contract.StopOptions{Timeout: 10 * time.Second}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("graceful stop took %v", took)
	}
	c := inspect(t, ctx, inst.ID)
	if c.State.Running || c.State.ExitCode != 0 {
		t.Errorf("after stop: running %v, exit code %d; want stopped with 0", c.State.Running, c.State.ExitCode)
	}
	got, _ = d.GetContainer(ctx, inst.ID)
	if got == nil || got.Status != contract.StatusStopped || got.State != contract.StateTerminated || got.Endpoint != "" {
		t.Errorf("after stop: %+v, want stopped/terminated without endpoint", got)
	}
	if ok, err := d.IsContainerHealthy(ctx, inst.ID); err != nil || ok {
		t.Errorf("IsContainerHealthy of a stopped container = %v, %v; want false", ok, err)
	}
	if err := d.StopContainer(ctx, inst.ID, contract.StopOptions{}); err != nil {
		t.Errorf("stopping a stopped container: %v", err)
	}

	// Restart, then remove while running.
	start(t, ctx, d, inst.ID)
	if got, _ := d.GetContainer(ctx, inst.ID); got == nil || got.Status != contract.StatusRunning {
		t.Errorf("after restart: %+v, want running", got)
	}
	if err := d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Fatalf("RemoveContainer of a running container: %v", err)
	}
	if _, err := docker.ContainerInspect(ctx, inst.ID); err == nil {
		t.Error("the container still exists after RemoveContainer")
	}
	if got, err := d.GetContainer(ctx, inst.ID); got != nil || err != nil {
		t.Errorf("GetContainer after remove = %v, %v; want nil, nil", got, err)
	}
	err = d.RemoveContainer(ctx, inst.ID)
	wantCode(t, "second remove", err, contract.ErrContainerNotFound.Code, false)
}

// TestConcurrentRemoves: two removes of one container at once (two
// callers, or a remove and the retry of one whose answer was lost) both
// succeed, or the later one finds nothing to remove; Docker's "removal
// already in progress" refusal of the second never reaches the caller.
func TestConcurrentRemoves(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	var ids []string
	for range 4 {
		inst := create(t, ctx, d, smallConfig(sid))
		start(t, ctx, d, inst.ID)
		ids = append(ids, inst.ID)
	}
	errs := make([]error, 2*len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		for j := range 2 {
			wg.Go(func() { errs[2*i+j] = d.RemoveContainer(ctx, id) })
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, contract.ErrContainerNotFound) {
			t.Errorf("remove %d of container %s: %v; want nil or CONTAINER_NOT_FOUND", i%2, ids[i/2], err)
		}
	}
	for _, id := range ids {
		if _, err := docker.ContainerInspect(ctx, id); !cerrdefs.IsNotFound(err) {
			t.Errorf("container %s after the removes: inspect = %v, want not found", id, err)
		}
	}
}

func TestStopTimeoutThenKill(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	inst := create(t, ctx, d, smallConfig(sid, "ignore-term"))
	start(t, ctx, d, inst.ID)
	time.Sleep(300 * time.Millisecond) // let it install its signal handler

	begin := time.Now()
	if err := d.StopContainer(ctx, inst.ID, contract.StopOptions{Timeout: 1500 * time.Millisecond}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	took := time.Since(begin)
	if took < time.Second || took > 8*time.Second {
		t.Errorf("stop took %v, want the grace period (1.5s, rounded up to 2s) then a kill", took)
	}
	c := inspect(t, ctx, inst.ID)
	if c.State.Running || c.State.ExitCode != 137 {
		t.Errorf("after stop: running %v, exit code %d; want killed (137)", c.State.Running, c.State.ExitCode)
	}
	got, _ := d.GetContainer(ctx, inst.ID)
	if got == nil || got.Status != contract.StatusStopped {
		t.Errorf("after stop: %+v, want stopped", got)
	}
	// Another driver instance did not see the stop request, but a kill
	// counts as a stop.
	if got, _ := newDriver(t).GetContainer(ctx, inst.ID); got == nil || got.Status != contract.StatusStopped {
		t.Errorf("seen by another driver: %+v, want stopped", got)
	}
}

func TestStopForceAndDeadline(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)

	forced := create(t, ctx, d, smallConfig(sid, "ignore-term"))
	start(t, ctx, d, forced.ID)
	begin := time.Now()
	if err := d.StopContainer(ctx, forced.ID, contract.StopOptions{Timeout: time.Minute, Force: true}); err != nil {
		t.Fatalf("StopContainer(Force): %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("forced stop took %v, want at once", took)
	}
	if c := inspect(t, ctx, forced.ID); c.State.Running || c.State.ExitCode != 137 {
		t.Errorf("after forced stop: running %v, exit %d", c.State.Running, c.State.ExitCode)
	}
	if err := d.StopContainer(ctx, forced.ID, contract.StopOptions{Force: true}); err != nil {
		t.Errorf("forced stop of a stopped container: %v", err)
	}

	// A deadline shorter than the grace period: the container is still
	// stopped within it.
	short := create(t, ctx, d, smallConfig(sid, "ignore-term"))
	start(t, ctx, d, short.ID)
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.StopContainer(dctx, short.ID, contract.StopOptions{Timeout: time.Minute}); err != nil {
		t.Fatalf("StopContainer within a 5s deadline: %v", err)
	}
	if c := inspect(t, ctx, short.ID); c.State.Running {
		t.Error("container still runs after a stop within a short deadline")
	}

	err := d.StopContainer(ctx, short.ID, contract.StopOptions{Timeout: -time.Second})
	wantCode(t, "negative timeout", err, contract.CodeConfiguration, false)
}

func TestExitedByItself(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	inst := create(t, ctx, d, smallConfig(sid, "exit", "3"))
	start(t, ctx, d, inst.ID)
	if code := waitExit(t, ctx, inst.ID); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	got, err := d.GetContainer(ctx, inst.ID)
	if err != nil || got == nil {
		t.Fatalf("GetContainer = %v, %v", got, err)
	}
	if got.Status != contract.StatusExited || got.State != contract.StateTerminated {
		t.Errorf("status/state = %s/%s, want exited/terminated", got.Status, got.State)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)

	// A container the driver does not manage counts as absent.
	raw, err := docker.ContainerCreate(ctx, &container.Config{Image: workloadImage,
		Labels: map[string]string{dockerdriver.DefaultLabelPrefix + ".session": sid}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = docker.ContainerRemove(context.Background(), raw.ID, container.RemoveOptions{Force: true})
	})

	ids := []string{
		"resilient-no-such-container", raw.ID,
		"", "../../images/json", "a/b", "a?b", "a#b", "a b", "a\x00b", "a..b", ".hidden", strings.Repeat("a", 300),
	}
	for _, id := range ids {
		what := func(m string) string { return m + "(" + strings.ToValidUTF8(id, "?") + ")" }
		wantCode(t, what("StartContainer"), d.StartContainer(ctx, id), contract.CodeContainerNotFound, false)
		wantCode(t, what("StopContainer"), d.StopContainer(ctx, id, contract.StopOptions{}), contract.CodeContainerNotFound, false)
		wantCode(t, what("RemoveContainer"), d.RemoveContainer(ctx, id), contract.CodeContainerNotFound, false)
		_, err := d.GetContainerLogs(ctx, id, contract.LogOptions{})
		wantCode(t, what("GetContainerLogs"), err, contract.CodeContainerNotFound, false)
		_, err = d.StreamContainerLogs(ctx, id, contract.LogOptions{})
		wantCode(t, what("StreamContainerLogs"), err, contract.CodeContainerNotFound, false)
		_, err = d.IsContainerHealthy(ctx, id)
		wantCode(t, what("IsContainerHealthy"), err, contract.CodeContainerNotFound, false)
		if got, err := d.GetContainer(ctx, id); got != nil || err != nil {
			t.Errorf("%s = %v, %v; want nil, nil", what("GetContainer"), got, err)
		}
		wantCode(t, what("RemoveVolume"), d.RemoveVolume(ctx, id), contract.CodeVolumeNotFound, false)
		wantCode(t, what("RemoveNetwork"), d.RemoveNetwork(ctx, id), contract.CodeNetworkNotFound, false)
	}
	if c := inspect(t, ctx, raw.ID); c.State.Status != "created" {
		t.Errorf("the unmanaged container was touched: %s", c.State.Status)
	}
	list, err := d.ListContainers(ctx, contract.ContainerFilter{SessionID: sid})
	if err != nil || len(list) != 0 {
		t.Errorf("ListContainers lists an unmanaged container: %v, %v", list, err)
	}
}

func TestListContainers(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	other := newSession(t)

	plain := create(t, ctx, d, smallConfig(sid))
	labelled := smallConfig(sid)
	labelled.Labels = map[string]string{"role": "db"}
	db := create(t, ctx, d, labelled)
	running := create(t, ctx, d, smallConfig(sid))
	start(t, ctx, d, running.ID)
	create(t, ctx, d, smallConfig(other))

	ids := func(list []contract.ContainerInstance) []string {
		var out []string
		for _, c := range list {
			out = append(out, c.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	tests := []struct {
		name   string
		filter contract.ContainerFilter
		want   []string
	}{
		{"session", contract.ContainerFilter{SessionID: sid}, sorted(plain.ID, db.ID, running.ID)},
		{"label", contract.ContainerFilter{SessionID: sid, Label: map[string]string{"role": "db"}}, []string{db.ID}},
		{"label value differs", contract.ContainerFilter{SessionID: sid, Label: map[string]string{"role": "web"}}, nil},
		{"status running", contract.ContainerFilter{SessionID: sid, Status: contract.StatusRunning}, []string{running.ID}},
		{"status created", contract.ContainerFilter{SessionID: sid, Status: contract.StatusCreated}, sorted(plain.ID, db.ID)},
		{"state terminated", contract.ContainerFilter{SessionID: sid, State: contract.StateTerminated}, sorted(plain.ID, db.ID)},
		{"state running", contract.ContainerFilter{SessionID: sid, State: contract.StateRunning}, []string{running.ID}},
		{"state error", contract.ContainerFilter{SessionID: sid, State: contract.StateError}, nil},
		{"driver label", contract.ContainerFilter{Label: map[string]string{"io.resilientdriver.managed": "true"}}, nil},
	}
	for _, tt := range tests {
		list, err := d.ListContainers(ctx, tt.filter)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := ids(list); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}

	all, err := d.ListContainers(ctx, contract.ContainerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(all); !slices.Contains(got, plain.ID) || !slices.Contains(got, running.ID) {
		t.Errorf("the zero filter misses containers of the session")
	}
	for i := 1; i < len(all); i++ {
		if all[i].CreatedAt.Before(all[i-1].CreatedAt) {
			t.Errorf("not sorted by creation time")
		}
	}

	_, err = d.ListContainers(ctx, contract.ContainerFilter{Status: "sleeping"})
	wantCode(t, "unknown status", err, contract.CodeConfiguration, false)
	_, err = d.ListContainers(ctx, contract.ContainerFilter{State: "zombie"})
	wantCode(t, "unknown state", err, contract.CodeConfiguration, false)
}

func TestHealthcheckImage(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	cfg := smallConfig(sid)
	cfg.Image = healthImage
	inst := create(t, ctx, d, cfg)
	if ok, err := d.IsContainerHealthy(ctx, inst.ID); err != nil || ok {
		t.Errorf("before start: %v, %v; want false", ok, err)
	}
	start(t, ctx, d, inst.ID)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := d.IsContainerHealthy(ctx, inst.ID)
		if err != nil {
			t.Fatalf("IsContainerHealthy: %v", err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			c := inspect(t, ctx, inst.ID)
			t.Fatalf("not healthy after 30s; health: %+v", c.State.Health)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if h := inspect(t, ctx, inst.ID).State.Health; h == nil || h.Status != "healthy" {
		t.Errorf("the daemon says %+v", h)
	}
}

func TestHealthCheck(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	running := create(t, ctx, d, smallConfig(sid))
	start(t, ctx, d, running.ID)
	create(t, ctx, d, smallConfig(sid))

	h, err := d.HealthCheck(ctx)
	if err != nil {
		t.Fatalf("HealthCheck: %v", err)
	}
	if h.Status != contract.Healthy || h.Error != "" || h.Version == "" || h.Uptime <= 0 {
		t.Errorf("HealthCheck = %+v", h)
	}
	c := h.Containers
	if c.Total < 2 || c.Running < 1 || c.Stopped < 1 || c.Total != c.Running+c.Stopped {
		t.Errorf("counts = %+v, want at least 1 running and 1 stopped, total = running + stopped", c)
	}
}

func TestUnreachableDaemon(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t, dockerdriver.WithHost("tcp://127.0.0.1:1"))
	sid := "unreachable"

	h, err := d.HealthCheck(ctx)
	if err != nil {
		t.Fatalf("HealthCheck returned an error: %v", err)
	}
	if h.Status != contract.Unhealthy || h.Error == "" {
		t.Errorf("HealthCheck = %+v, want unhealthy with the reason", h)
	}

	_, err = d.CreateContainer(ctx, smallConfig(sid))
	wantCode(t, "CreateContainer", err, contract.CodeNetwork, true)
	wantCode(t, "StartContainer", d.StartContainer(ctx, "abc"), contract.CodeNetwork, true)
	wantCode(t, "StopContainer", d.StopContainer(ctx, "abc", contract.StopOptions{}), contract.CodeNetwork, true)
	wantCode(t, "RemoveContainer", d.RemoveContainer(ctx, "abc"), contract.CodeNetwork, true)
	_, err = d.GetContainer(ctx, "abc")
	wantCode(t, "GetContainer", err, contract.CodeNetwork, true)
	_, err = d.ListContainers(ctx, contract.ContainerFilter{})
	wantCode(t, "ListContainers", err, contract.CodeNetwork, true)
	_, err = d.GetContainerLogs(ctx, "abc", contract.LogOptions{})
	wantCode(t, "GetContainerLogs", err, contract.CodeNetwork, true)
	_, err = d.IsContainerHealthy(ctx, "abc")
	wantCode(t, "IsContainerHealthy", err, contract.CodeNetwork, true)
	_, err = d.CreateVolume(ctx, contract.VolumeConfig{Name: "v"})
	wantCode(t, "CreateVolume", err, contract.CodeNetwork, true)
	wantCode(t, "RemoveVolume", d.RemoveVolume(ctx, "v"), contract.CodeNetwork, true)
	_, err = d.CreateNetwork(ctx, contract.NetworkConfig{Name: "n"})
	wantCode(t, "CreateNetwork", err, contract.CodeNetwork, true)
	wantCode(t, "RemoveNetwork", d.RemoveNetwork(ctx, "n"), contract.CodeNetwork, true)
}

func TestCallerCancellation(t *testing.T) {
	t.Parallel()
	d := newDriver(t)
	sid := newSession(t)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := d.CreateContainer(canceled, smallConfig(sid))
	if !errors.Is(err, context.Canceled) || contract.IsRetryable(err) {
		t.Errorf("canceled: %v (retryable %v); want context.Canceled, not retryable", err, contract.IsRetryable(err))
	}
	wantCode(t, "canceled create", err, contract.CodeContainerCreation, false)

	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	_, err = d.ListContainers(expired, contract.ContainerFilter{SessionID: sid})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("expired: %v, want context.DeadlineExceeded in the chain", err)
	}
	wantCode(t, "expired list", err, contract.CodeTimeout, false)

	if _, err := d.HealthCheck(canceled); err == nil {
		t.Error("HealthCheck with a canceled context returned no error")
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]dockerdriver.Option{
		"prefix":      dockerdriver.WithLabelPrefix("Bad Prefix"),
		"pull policy": dockerdriver.WithPullPolicy("sometimes"),
		"disk policy": dockerdriver.WithDiskPolicy("ignore"),
		"log limit":   dockerdriver.WithLogLimit(0),
		"stop":        dockerdriver.WithDefaultStopTimeout(-time.Second),
		"host":        dockerdriver.WithHost("no scheme"),
	} {
		d, err := dockerdriver.New(opt)
		if err == nil {
			d.Close()
		}
		wantCode(t, name, withOp(err), contract.CodeConfiguration, false)
	}
}

// withOp fills in an Op for errors of New, which has none, so that
// wantCode can be used on them.
func withOp(err error) error {
	var de *contract.DriverError
	if errors.As(err, &de) && de.Op == "" {
		cp := *de
		cp.Op = "New"
		return &cp
	}
	return err
}

func TestWithClient(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := dockerdriver.New(dockerdriver.WithClient(cli), dockerdriver.WithHost("tcp://127.0.0.1:2375")); err == nil {
		t.Error("New accepted both WithClient and WithHost")
	}
	d, err := dockerdriver.New(dockerdriver.WithClient(cli))
	if err != nil {
		t.Fatal(err)
	}
	if h, err := d.HealthCheck(ctx); err != nil || h.Status != contract.Healthy {
		t.Errorf("HealthCheck through the caller's client = %+v, %v", h, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Ping(ctx); err != nil {
		t.Errorf("Close broke the caller's client: %v", err)
	}
}

// waitForLine waits until the container's logs hold line.
func waitForLine(t *testing.T, ctx context.Context, d *dockerdriver.Driver, id, line string) {
	t.Helper()
	for {
		logs, err := d.GetContainerLogs(ctx, id, contract.LogOptions{})
		if err != nil {
			t.Fatalf("GetContainerLogs: %v", err)
		}
		if slices.Contains(strings.Split(logs, "\n"), line) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no line %q in the logs: %v", line, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
