package dockerdriver_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
)

func TestVolumes(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	name := sid + "-data"

	vol, err := d.CreateVolume(ctx, contract.VolumeConfig{Name: name, Labels: map[string]string{testLabel: sid}})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	if vol.ID != name || vol.Name != name || vol.Driver != "local" || vol.Mountpoint == "" || vol.CreatedAt.IsZero() {
		t.Errorf("volume = %+v", vol)
	}
	if !maps.Equal(vol.Labels, map[string]string{testLabel: sid}) {
		t.Errorf("Labels = %v, want only the caller's", vol.Labels)
	}
	raw, err := docker.VolumeInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Labels[dockerdriver.DefaultLabelPrefix+".managed"] != "true" {
		t.Errorf("volume labels on the daemon = %v, want the managed label", raw.Labels)
	}

	_, err = d.CreateVolume(ctx, contract.VolumeConfig{Name: name})
	wantCode(t, "volume name taken", err, contract.CodeVolumeCreation, false)
	_, err = d.CreateVolume(ctx, contract.VolumeConfig{Name: "../x"})
	wantCode(t, "invalid volume name", err, contract.CodeConfiguration, false)
	_, err = d.CreateVolume(ctx, contract.VolumeConfig{Name: sid + "-x", Labels: map[string]string{"io.resilientdriver.managed": "false"}})
	wantCode(t, "reserved volume label", err, contract.CodeConfiguration, false)

	// In use by a container (even one not running): VOLUME_REMOVE.
	cfg := smallConfig(sid, "exit", "0")
	cfg.Volumes = []contract.VolumeMount{
		{Source: name, Target: "/data"},
		{Source: name, Target: "/data-ro", ReadOnly: true, Type: contract.MountVolume},
		{Source: "/etc", Target: "/host-etc", ReadOnly: true},
	}
	inst := create(t, ctx, d, cfg)
	mounts := inspect(t, ctx, inst.ID).HostConfig.Mounts
	if len(mounts) != 3 || mounts[0].Type != "volume" || mounts[0].ReadOnly || !mounts[1].ReadOnly ||
		mounts[2].Type != "bind" || !mounts[2].ReadOnly {
		t.Errorf("mounts = %+v", mounts)
	}
	wantCode(t, "volume in use", d.RemoveVolume(ctx, name), contract.CodeVolumeRemove, false)

	if err := d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveVolume(ctx, name); err != nil {
		t.Fatalf("RemoveVolume: %v", err)
	}
	wantCode(t, "volume gone", d.RemoveVolume(ctx, name), contract.CodeVolumeNotFound, false)
}

// TestConcurrentVolumeCreates: creates of one name that run at once, each
// after finding no volume of that name, make one volume, and only the
// create that made it, or one with the same key, gets it: the engine hands
// the others that volume as if they had made it. On Podman:
// TestPodmanConcurrentVolumeCreates.
func TestConcurrentVolumeCreates(t *testing.T) {
	t.Parallel()
	concurrentVolumeCreates(t, docker)
}

// concurrentVolumeCreates runs TestConcurrentVolumeCreates on the engine
// cli talks to.
func concurrentVolumeCreates(t *testing.T, cli *client.Client) {
	ctx := ctxFor(t)
	d := newDriver(t, dockerdriver.WithHost(cli.DaemonHost()))
	sid := newSessionOn(t, cli, dockerdriver.DefaultLabelPrefix)
	const n = 8
	for round, tt := range []struct {
		name string
		key  func(i int) string
		want int // creates that succeed
	}{
		{"without keys", func(int) string { return "" }, 1},
		{"with a key each", func(i int) string { return fmt.Sprint(sid, "-", i) }, 1},
		{"with one key", func(int) string { return sid }, n},
	} {
		for try := range 3 { // the race shows within a few tries
			name := fmt.Sprintf("%s-v%d%d", sid, round, try)
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					_, errs[i] = d.CreateVolume(contract.WithIdempotencyKey(ctx, tt.key(i)),
						contract.VolumeConfig{Name: name, Labels: map[string]string{testLabel: sid}})
				})
			}
			wg.Wait()
			ok := 0
			for i, err := range errs {
				if err == nil {
					ok++
				} else if !errors.Is(err, contract.ErrVolumeCreation) || contract.IsRetryable(err) {
					t.Errorf("%s: create %d: %v; want VOLUME_CREATION, not retryable", tt.name, i, err)
				}
			}
			if ok != tt.want {
				t.Errorf("%s, try %d: %d of %d concurrent creates of volume %s succeeded, want %d", tt.name, try, ok, n, name, tt.want)
			}
			if err := d.RemoveVolume(ctx, name); err != nil {
				t.Errorf("RemoveVolume: %v", err)
			}
		}
	}
}

func TestVolumeMadeByTheEngineIsManaged(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	cfg := smallConfig(sid)
	cfg.Volumes = []contract.VolumeMount{{Source: sid + "-auto", Target: "/data"}}
	inst := create(t, ctx, d, cfg)
	v, err := docker.VolumeInspect(ctx, sid+"-auto")
	if err != nil {
		t.Fatal(err)
	}
	p := dockerdriver.DefaultLabelPrefix
	if v.Labels[p+".managed"] != "true" || v.Labels[p+".session"] != sid {
		t.Errorf("volume made for the mount has labels %v, want managed and session", v.Labels)
	}
	if err := d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveVolume(ctx, sid+"-auto"); err != nil {
		t.Errorf("RemoveVolume: %v", err)
	}
}

func TestNetworks(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	d := newDriver(t)
	sid := newSession(t)
	name := sid + "-net"

	n, err := d.CreateNetwork(ctx, contract.NetworkConfig{
		Name:    name,
		Labels:  map[string]string{testLabel: sid},
		Options: map[string]string{"com.docker.network.driver.mtu": "1400"},
	})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	t.Cleanup(func() { _ = d.RemoveNetwork(context.Background(), n.ID) })
	if n.ID == "" || n.Name != name || n.Driver != "bridge" || n.CreatedAt.IsZero() {
		t.Errorf("network = %+v", n)
	}
	raw, err := docker.NetworkInspect(ctx, n.ID, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if raw.Driver != "bridge" || raw.Options["com.docker.network.driver.mtu"] != "1400" ||
		raw.Labels[dockerdriver.DefaultLabelPrefix+".managed"] != "true" {
		t.Errorf("daemon's network: driver %s, options %v, labels %v", raw.Driver, raw.Options, raw.Labels)
	}

	_, err = d.CreateNetwork(ctx, contract.NetworkConfig{Name: name})
	wantCode(t, "network name taken", err, contract.CodeNetworkCreation, false)

	// Idempotent by key.
	kctx := contract.WithIdempotencyKey(ctx, "net-"+sid)
	n2, err := d.CreateNetwork(kctx, contract.NetworkConfig{Name: name + "2", Labels: map[string]string{testLabel: sid}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.RemoveNetwork(context.Background(), n2.ID) })
	again, err := d.CreateNetwork(kctx, contract.NetworkConfig{Name: name + "2", Labels: map[string]string{testLabel: sid}})
	if err != nil || again.ID != n2.ID {
		t.Errorf("retried CreateNetwork = %v, %v; want %s", again.ID, err, n2.ID)
	}

	// A running container on it: its endpoint is in the network, and the
	// network cannot go.
	cfg := smallConfig(sid)
	cfg.Network = name
	inst := create(t, ctx, d, cfg)
	start(t, ctx, d, inst.ID)
	got, err := d.GetContainer(ctx, inst.ID)
	if err != nil || got == nil {
		t.Fatal(got, err)
	}
	_, subnet, err := net.ParseCIDR(raw.IPAM.Config[0].Subnet)
	if err != nil || !subnet.Contains(net.ParseIP(got.Endpoint)) {
		t.Errorf("endpoint %q is not in the network %v", got.Endpoint, raw.IPAM.Config)
	}
	wantCode(t, "network in use", d.RemoveNetwork(ctx, n.ID), contract.CodeNetworkRemove, false)

	if err := d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveNetwork(ctx, name); err != nil { // by name
		t.Fatalf("RemoveNetwork: %v", err)
	}
	if err := d.RemoveNetwork(ctx, n2.ID); err != nil {
		t.Fatalf("RemoveNetwork: %v", err)
	}
	wantCode(t, "network gone", d.RemoveNetwork(ctx, n.ID), contract.CodeNetworkNotFound, false)
}

func TestImages(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	sid := newSession(t)

	// A locally built image works with both policies that do not insist on
	// a registry.
	for _, p := range []dockerdriver.PullPolicy{dockerdriver.PullNever, dockerdriver.PullIfMissing} {
		d := newDriver(t, dockerdriver.WithPullPolicy(p))
		inst := create(t, ctx, d, smallConfig(sid))
		removeQuietly(t, d, inst.ID)
	}

	never := newDriver(t, dockerdriver.WithPullPolicy(dockerdriver.PullNever))
	cfg := smallConfig(sid)
	cfg.Image = "resilient-workload:no-such-tag"
	_, err := never.CreateContainer(ctx, cfg)
	wantCode(t, "missing image, pull never", err, contract.CodeConfiguration, false)

	// With a pull, a registry that cannot be reached is worth retrying.
	ifMissing := newDriver(t, dockerdriver.WithPullPolicy(dockerdriver.PullIfMissing))
	cfg.Image = "127.0.0.1:1/resilient/no-such-image:1"
	_, err = ifMissing.CreateContainer(ctx, cfg)
	wantCode(t, "unreachable registry", err, contract.CodeContainerCreation, true)
}

func TestReap(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	// A prefix of its own keeps the reaper away from other tests' containers.
	prefix := "io.resilientdriver-reap-" + hex.EncodeToString(b[:])
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	d := newDriver(t, dockerdriver.WithLabelPrefix(prefix), dockerdriver.WithClock(clock))
	live := newSessionWithPrefix(t, prefix)
	gone := newSessionWithPrefix(t, prefix)

	keep := create(t, ctx, d, smallConfig(live))
	running := create(t, ctx, d, smallConfig(gone))
	start(t, ctx, d, running.ID)
	cfg := smallConfig(gone)
	cfg.Volumes = []contract.VolumeMount{{Source: gone + "-auto", Target: "/data"}}
	stopped := create(t, ctx, d, cfg)
	vol, err := d.CreateVolume(ctx, contract.VolumeConfig{Name: live + "-vol", Labels: map[string]string{testLabel: live}})
	if err != nil {
		t.Fatal(err)
	}
	nw, err := d.CreateNetwork(ctx, contract.NetworkConfig{Name: live + "-net", Labels: map[string]string{testLabel: live}})
	if err != nil {
		t.Fatal(err)
	}

	_, err = d.Reap(ctx, dockerdriver.ReapOptions{})
	wantCode(t, "no criterion", err, contract.CodeConfiguration, false)

	// Dry run: reports, removes nothing.
	rep, err := d.Reap(ctx, dockerdriver.ReapOptions{LiveSessions: []string{live}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{running.ID, stopped.ID}; !sameIDs(rep.Containers, want) {
		t.Errorf("dry run containers = %v, want %v", rep.Containers, want)
	}
	if got, _ := d.GetContainer(ctx, running.ID); got == nil {
		t.Error("a dry run removed a container")
	}

	// By session: the gone session's containers and its engine-made volume.
	rep, err = d.Reap(ctx, dockerdriver.ReapOptions{LiveSessions: []string{live}})
	if err != nil {
		t.Fatalf("Reap: %v", err)
	}
	if want := []string{running.ID, stopped.ID}; !sameIDs(rep.Containers, want) {
		t.Errorf("reaped containers = %v, want %v", rep.Containers, want)
	}
	if !slices.Equal(rep.Volumes, []string{gone + "-auto"}) || len(rep.Networks) != 0 {
		t.Errorf("reaped volumes %v and networks %v, want only %s-auto", rep.Volumes, rep.Networks, gone)
	}
	if got, _ := d.GetContainer(ctx, keep.ID); got == nil {
		t.Error("the live session's container was reaped")
	}

	// By age: everything older than an hour, an hour and a bit from now.
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	rep, err = d.Reap(ctx, dockerdriver.ReapOptions{MaxAge: time.Hour})
	if err != nil {
		t.Fatalf("Reap: %v", err)
	}
	if !slices.Equal(rep.Containers, []string{keep.ID}) || !slices.Equal(rep.Volumes, []string{vol.Name}) ||
		!slices.Equal(rep.Networks, []string{nw.ID}) {
		t.Errorf("reaped by age: %+v", rep)
	}
}

func sameIDs(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// TestReapSkipsNetworkInUse: a network the reaper would remove by age is
// left, without an error, while a running container uses it, and removed
// once the container is gone. The container is another driver's (another
// label prefix), so that the reaper leaves it. On Podman:
// TestPodmanReapSkipsNetworkInUse.
func TestReapSkipsNetworkInUse(t *testing.T) {
	t.Parallel()
	reapNetworkInUse(t, docker)
}

// reapNetworkInUse runs TestReapSkipsNetworkInUse on the engine cli talks
// to.
func reapNetworkInUse(t *testing.T, cli *client.Client) {
	ctx := ctxFor(t)
	host := dockerdriver.WithHost(cli.DaemonHost())
	users := newDriver(t, host)
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	reaper := newDriver(t, host, dockerdriver.WithClock(later), dockerdriver.WithLabelPrefix("io.resilientdriver-reapnet-"+randSuffix()))
	sid := newSessionOn(t, cli, dockerdriver.DefaultLabelPrefix)
	n, err := reaper.CreateNetwork(ctx, contract.NetworkConfig{Name: sid + "-net", Labels: map[string]string{testLabel: sid}})
	if err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	cfg := smallConfig(sid)
	cfg.Network = n.Name
	inst := create(t, ctx, users, cfg)
	start(t, ctx, users, inst.ID)

	old := dockerdriver.ReapOptions{MaxAge: time.Hour}
	for _, dry := range []bool{true, false} {
		old.DryRun = dry
		rep, err := reaper.Reap(ctx, old)
		if err != nil || len(rep.Networks) != 0 {
			t.Errorf("Reap (dry run %v) with the network in use = %+v, %v; want nothing reaped, no error", dry, rep, err)
		}
	}
	if _, err := cli.NetworkInspect(ctx, n.ID, network.InspectOptions{}); err != nil {
		t.Fatalf("the network of a running container was removed: %v", err)
	}
	if got, err := users.GetContainer(ctx, inst.ID); err != nil || got == nil || got.Endpoint == "" {
		t.Errorf("the container after the reap: %+v, %v; want it running on the network", got, err)
	}

	removeQuietly(t, users, inst.ID)
	old.DryRun = false
	rep, err := reaper.Reap(ctx, old)
	if err != nil || !slices.Equal(rep.Networks, []string{n.ID}) {
		t.Errorf("Reap once the network is free = %+v, %v; want network %s reaped", rep, err, n.ID)
	}
	if _, err := cli.NetworkInspect(ctx, n.ID, network.InspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("the reaped network is still there: %v", err)
	}
}
