package chaos

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/breaker"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/retry"
)

// The Podman subset of the suite runs against the rootful Podman service
// scripts/podman.sh starts; scripts/test.sh sets RESILIENT_PODMAN_HOST to
// its socket. Under CI a missing service fails the tests.

// podmanEnv is a Podman service under test.
type podmanEnv struct {
	host string // unix://<socket>
	sock string
	cli  *client.Client // bypasses every proxy, for checking what the drivers did
}

func needPodman(t *testing.T) *podmanEnv {
	t.Helper()
	host := os.Getenv("RESILIENT_PODMAN_HOST")
	if host == "" {
		msg := "RESILIENT_PODMAN_HOST is not set: run `eval \"$(scripts/podman.sh)\"` and set it to $DOCKER_HOST (scripts/test.sh does)"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run the Podman chaos tests: " + msg)
		}
		t.Skip(msg)
	}
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		t.Fatalf("RESILIENT_PODMAN_HOST=%s: want unix://<socket>", host)
	}
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		t.Fatalf("no Podman service answers at %s: %v", host, err)
	}
	if !strings.Contains(v.Components[0].Name, "Podman") {
		t.Fatalf("%s is not a Podman service: %+v", host, v.Components)
	}
	p := &podmanEnv{host: host, sock: sock, cli: cli}
	t.Cleanup(func() { p.assertNothingLeft(t) })
	return p
}

// session returns a session ID unique to the test.
func (p *podmanEnv) session(t *testing.T) string {
	return "chaos-podman-" + strings.NewReplacer("/", "-").Replace(t.Name()) + "-" + randHex(4)
}

// count asks Podman directly how many containers session sid has.
func (p *podmanEnv) count(ctx context.Context, sid string) ([]container.Summary, error) {
	return p.cli.ContainerList(ctx, containerListOptions(sid))
}

// assertNothingLeft fails the test for anything with the suite's managed
// label on Podman, and removes it.
func (p *podmanEnv) assertNothingLeft(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	managed := filters.NewArgs(filters.Arg("label", labelPrefix+".managed=true"))
	cs, err := p.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: managed})
	if err != nil {
		t.Errorf("leak check on Podman: %v", err)
	}
	for _, c := range cs {
		t.Errorf("leak: container %s %v (%s) left on Podman", c.ID[:12], c.Names, c.State)
		_ = p.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	vs, err := p.cli.VolumeList(ctx, volume.ListOptions{Filters: managed})
	if err != nil {
		t.Errorf("leak check on Podman: %v", err)
	}
	for _, v := range vs.Volumes {
		t.Errorf("leak: volume %s left on Podman", v.Name)
		_ = p.cli.VolumeRemove(ctx, v.Name, true)
	}
	ns, err := p.cli.NetworkList(ctx, network.ListOptions{Filters: managed})
	if err != nil {
		t.Errorf("leak check on Podman: %v", err)
	}
	for _, n := range ns {
		t.Errorf("leak: network %s left on Podman", n.Name)
		_ = p.cli.NetworkRemove(ctx, n.Name)
	}
}

// path returns Toxiproxy and the recording hop in front of the Podman
// socket, as newDaemonPath does for dockerd's TCP listener: the hop's
// transport dials the socket.
func (p *podmanEnv) path(t *testing.T) *daemonPath {
	t.Helper()
	h := newHop(t, "podman")
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	h.tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, "unix", p.sock)
	}
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	px := toxiproxy.NewProxy(server, "podman", "127.0.0.1:0", h.addr)
	if err := px.Start(); err != nil {
		t.Fatalf("starting toxiproxy: %v", err)
	}
	t.Cleanup(px.Stop)
	return &daemonPath{Host: "tcp://" + px.Listen, proxy: px, hop: h}
}

// stopService stops the Podman service (SIGTERM, as systemd would) and
// waits until it has exited; its containers keep running under conmon.
func (p *podmanEnv) stopService(t *testing.T) {
	t.Helper()
	pidfile := filepath.Join(filepath.Dir(p.sock), "resilient-podman.pid")
	data, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatalf("the service was not started by scripts/podman.sh (no %s): %v", pidfile, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("%s: %v", pidfile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stopping the podman service (pid %d): %v", pid, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the podman service (pid %d) did not exit within 30s", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startService starts the service again with scripts/podman.sh.
func (p *podmanEnv) startService(t *testing.T) {
	t.Helper()
	cmd := exec.Command("../scripts/podman.sh")
	cmd.Env = append(os.Environ(), "RESILIENT_PODMAN_SOCK="+p.sock)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/podman.sh: %v", err)
	}
	if got, want := strings.TrimSpace(string(out)), "export DOCKER_HOST="+p.host; got != want {
		t.Fatalf("scripts/podman.sh printed %q, want %q", got, want)
	}
}

// TestPodmanServiceRestart stops the Podman service in the middle of a
// session and starts it again. While it is down every call fails with a
// retryable error (NETWORK, then CIRCUIT_OPEN once the operation's
// circuit opened after its threshold); once it is back, the circuits close
// and the session goes on with the container it made, which ran on under
// conmon meanwhile.
func TestPodmanServiceRestart(t *testing.T) {
	const (
		threshold   = 3
		openTimeout = 2 * time.Second
	)
	p := needPodman(t)
	r := newRig(t, rigConfig{host: p.host, wrap: []resilient.Option{
		quickRetry(retry.WithMaxAttempts(threshold), retry.WithMaxElapsedTime(time.Second)),
		resilient.WithBreaker(breaker.WithConsecutiveFailures(threshold), breaker.WithOpenTimeout(openTimeout)),
	}})
	ctx := testCtx(t, 5*time.Minute)
	sid := p.session(t)
	defer r.cleanupSession(sid)
	inst, err := r.d.CreateContainer(ctx, smallConfig(sid))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}

	ops := []struct {
		op contract.Op
		do func() error
	}{
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

	downAt := time.Now()
	p.stopService(t)
	restarted := false
	defer func() {
		if !restarted {
			p.startService(t)
		}
	}()
	for round := range 3 {
		for _, oc := range ops {
			err := r.call(oc.op, oc.do)
			if err == nil {
				t.Errorf("%s with the service down succeeded", oc.op)
				continue
			}
			if !contract.IsRetryable(err) {
				t.Errorf("%s with the service down: %v is not retryable", oc.op, err)
			}
			if c := contract.CodeOf(err); c != contract.CodeNetwork && c != contract.CodeCircuitOpen {
				t.Errorf("%s with the service down: code %s, want NETWORK or CIRCUIT_OPEN (%v)", oc.op, c, err)
			}
			if round > 0 {
				wantCode(t, string(oc.op)+" after its threshold", err, contract.CodeCircuitOpen)
			}
		}
	}
	for _, oc := range ops {
		if _, ok := r.circuits.first(oc.op, breaker.Open, downAt); !ok {
			t.Errorf("%s: circuit did not open with the service down", oc.op)
		}
	}
	if h, err := r.d.HealthCheck(ctx); err != nil || h.Status != contract.Unhealthy {
		t.Errorf("HealthCheck with the service down = %+v, %v; want unhealthy", h, err)
	}

	upAt := time.Now()
	p.startService(t)
	restarted = true
	t.Logf("service down for %v, answering %v after the restart began", upAt.Sub(downAt).Round(time.Millisecond), time.Since(upAt).Round(time.Millisecond))
	closed := map[contract.Op]bool{}
	for time.Since(upAt) < openTimeout+15*time.Second && len(closed) < len(ops) {
		for _, oc := range ops {
			if closed[oc.op] {
				continue
			}
			_ = r.call(oc.op, oc.do)
			if _, ok := r.circuits.first(oc.op, breaker.Closed, upAt); ok {
				closed[oc.op] = true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, oc := range ops {
		if !closed[oc.op] {
			t.Errorf("%s: circuit still %s %v after the service came back", oc.op, r.circuits.state(oc.op), time.Since(upAt))
		}
	}

	// The session goes on with its container.
	got, err := r.d.GetContainer(ctx, inst.ID)
	if err != nil || got == nil || got.Status != contract.StatusRunning {
		t.Fatalf("GetContainer after the restart = %+v, %v; want the container, running", got, err)
	}
	if err := r.d.StopContainer(ctx, inst.ID, contract.StopOptions{Timeout: 2 * time.Second}); err != nil {
		t.Errorf("StopContainer after the restart: %v", err)
	}
	if err := r.d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Errorf("RemoveContainer after the restart: %v", err)
	}
	if h, err := r.d.HealthCheck(ctx); err != nil || h.Status != contract.Healthy || !strings.HasPrefix(h.Version, "Podman ") {
		t.Errorf("HealthCheck after the restart = %+v, %v; want healthy on Podman", h, err)
	}
	r.report(t, "Podman service stopped, then started again")
}

// TestPodmanCreateAnswerLost lets Podman make a container and loses the
// create's answer: the retry, with the same idempotency key, finds the
// container of the first attempt. Exactly one container exists, as
// Podman itself reports.
func TestPodmanCreateAnswerLost(t *testing.T) {
	p := needPodman(t)
	path := p.path(t)
	r := newRig(t, rigConfig{host: path.Host, wrap: []resilient.Option{quickRetry()}})
	ctx := testCtx(t, 3*time.Minute)
	sid := p.session(t)
	defer r.cleanupSession(sid)
	path.hop.loseResponses(1, isCreate)
	inst, err := r.d.CreateContainer(ctx, smallConfig(sid))
	if err != nil {
		t.Fatalf("CreateContainer through a lost answer: %v", err)
	}
	list, err := p.count(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != inst.ID {
		t.Errorf("session %s has %d containers on Podman, want exactly %s", sid, len(list), inst.ID[:12])
	}
	creates := path.hop.count(func(q request) bool { return isCreate(q.Method, q.Path) })
	if creates != 2 || r.retries.Load() == 0 {
		t.Errorf("%d create requests reached Podman and %d retries; want 2 (the first answer lost) and a retry", creates, r.retries.Load())
	}
	t.Logf("%d create requests (the first answer lost), %d retries, one container %s", creates, r.retries.Load(), inst.ID[:12])
	if err := r.d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Error(err)
	}
}
