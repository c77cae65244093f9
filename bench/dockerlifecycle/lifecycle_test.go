package dockerlifecycle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
)

const (
	image   = "resilient-workload:latest"
	session = "bench-lifecycle"
	// The workload's sleep exits at once on SIGTERM, so stops are quick and
	// the grace period is never used.
	stopTimeout = 10
)

// config is what every variant creates: the contract's secure defaults with
// small limits.
func config() contract.ContainerConfig {
	cfg := contract.NewContainerConfig(session, image)
	cfg.Command = []string{"sleep", "1h"}
	cfg.Resources = contract.ResourceLimits{CPU: 0.5, Memory: 64, Disk: 16, PIDs: 64}
	return cfg
}

// needDaemon fails the benchmark when no daemon answers or the image is
// missing.
func needDaemon(b *testing.B, cli *client.Client) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		b.Fatalf("no Docker daemon answers (%v): run scripts/provision.sh", err)
	}
	if _, err := cli.ImageInspect(ctx, image); err != nil {
		b.Fatalf("image %s is missing (%v): run scripts/provision.sh", image, err)
	}
}

func newClient(b *testing.B) *client.Client {
	b.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	needDaemon(b, cli)
	// A lifecycle cut short by an error leaves its container: remove every
	// container of the benchmark's session when done.
	b.Cleanup(func() {
		ctx := context.Background()
		list, _ := cli.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", "io.resilientdriver.session="+session))})
		for _, c := range list {
			_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}
	})
	return cli
}

func randomName() string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return "bench-" + hex.EncodeToString(r[:])
}

// lifecycle runs one create, start, stop, remove per iteration, after one
// untimed warm-up.
func lifecycle(b *testing.B, once func(ctx context.Context) error) {
	ctx := context.Background()
	if err := once(ctx); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := once(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLifecycle runs the lifecycle through each variant, one after the
// other; compare them with benchstat over several -count runs.
func BenchmarkLifecycle(b *testing.B) {
	b.Run("driver", func(b *testing.B) { lifecycle(b, driverLifecycle(b)) })
	b.Run("client", func(b *testing.B) { lifecycle(b, clientLifecycle(b)) })
	b.Run("cli", func(b *testing.B) { lifecycle(b, cliLifecycle(b)) })
}

// BenchmarkLifecyclePaired runs one driver and one bare-client lifecycle per
// iteration, alternating which goes first, so that both see the same load
// on the daemon, and reports their ratio as driver/client (1.05 means the
// driver takes 5% longer). On a shared or busy daemon this ratio is far
// steadier than comparing BenchmarkLifecycle's variants.
func BenchmarkLifecyclePaired(b *testing.B) {
	viaDriver, viaClient := driverLifecycle(b), clientLifecycle(b)
	ctx := context.Background()
	var inDriver, inClient time.Duration
	timed := func(f func(context.Context) error, sum *time.Duration) {
		begin := time.Now()
		if err := f(ctx); err != nil {
			b.Fatal(err)
		}
		*sum += time.Since(begin)
	}
	timed(viaDriver, new(time.Duration)) // warm-up
	timed(viaClient, new(time.Duration))
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			timed(viaDriver, &inDriver)
			timed(viaClient, &inClient)
		} else {
			timed(viaClient, &inClient)
			timed(viaDriver, &inDriver)
		}
		i++
	}
	b.ReportMetric(float64(inDriver.Nanoseconds())/float64(i), "driver-ns/op")
	b.ReportMetric(float64(inClient.Nanoseconds())/float64(i), "client-ns/op")
	b.ReportMetric(float64(inDriver)/float64(inClient), "driver/client")
}

// driverLifecycle goes through dockerdriver.
func driverLifecycle(b *testing.B) func(context.Context) error {
	newClient(b) // checks the daemon
	d, err := dockerdriver.New()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	cfg := config()
	return func(ctx context.Context) error {
		c, err := d.CreateContainer(ctx, cfg)
		if err != nil {
			return err
		}
		if err := d.StartContainer(ctx, c.ID); err != nil {
			return err
		}
		if err := d.StopContainer(ctx, c.ID, contract.StopOptions{Timeout: stopTimeout * time.Second}); err != nil {
			return err
		}
		return d.RemoveContainer(ctx, c.ID)
	}
}

// clientLifecycle makes the same calls on the bare client, with the
// settings the driver sends.
func clientLifecycle(b *testing.B) func(context.Context) error {
	cli := newClient(b)
	cfg := config()
	pids := cfg.Resources.PIDs
	mem := cfg.Resources.Memory << 20
	timeout := stopTimeout
	cc := &container.Config{
		Image:  cfg.Image,
		Cmd:    cfg.Command,
		User:   cfg.Security.User,
		Labels: map[string]string{"io.resilientdriver.managed": "true", "io.resilientdriver.session": session},
	}
	hc := &container.HostConfig{
		Resources: container.Resources{
			NanoCPUs: int64(cfg.Resources.CPU * 1e9), Memory: mem, MemorySwap: mem, PidsLimit: &pids,
		},
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges=true"},
		ReadonlyRootfs: true,
		Tmpfs:          map[string]string{"/tmp": "rw,nosuid,nodev,noexec,size=" + strconv.FormatInt(cfg.Resources.Disk, 10) + "m,mode=1777"},
	}
	return func(ctx context.Context) error {
		c, err := cli.ContainerCreate(ctx, cc, hc, nil, nil, randomName())
		if err != nil {
			return err
		}
		if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			return err
		}
		if err := cli.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil {
			return err
		}
		return cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
}

// cliLifecycle runs the docker CLI, one process per call, with the same
// settings.
func cliLifecycle(b *testing.B) func(context.Context) error {
	newClient(b)
	if _, err := exec.LookPath("docker"); err != nil {
		b.Fatalf("the docker CLI is not on PATH: %v", err)
	}
	cfg := config()
	docker := func(ctx context.Context, args ...string) error {
		out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
		if err != nil {
			b.Logf("docker %v: %s", args, out)
		}
		return err
	}
	return func(ctx context.Context) error {
		name := randomName()
		err := docker(ctx, "create", "--name", name,
			"--cpus", "0.5", "--memory", "64m", "--memory-swap", "64m", "--pids-limit", "64",
			"--cap-drop", "ALL", "--security-opt", "no-new-privileges=true", "--read-only",
			"--tmpfs", "/tmp:rw,nosuid,nodev,noexec,size=16m,mode=1777", "--user", cfg.Security.User,
			"--label", "io.resilientdriver.managed=true", "--label", "io.resilientdriver.session="+session,
			cfg.Image, "sleep", "1h")
		if err != nil {
			return err
		}
		if err := docker(ctx, "start", name); err != nil {
			return err
		}
		if err := docker(ctx, "stop", "-t", strconv.Itoa(stopTimeout), name); err != nil {
			return err
		}
		return docker(ctx, "rm", "-f", "-v", name)
	}
}

// BenchmarkDriverExtraWork is what the driver does per lifecycle beyond the
// bare client's four calls: validate the config and inspect the new
// container to check that its limits were applied. Start, stop and remove
// add nothing for a container the driver created. Divide by a lifecycle's
// time for the driver's overhead without the daemon's noise.
func BenchmarkDriverExtraWork(b *testing.B) {
	cli := newClient(b)
	ctx := context.Background()
	cfg := config()
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Cmd: cfg.Command}, nil, nil, nil, randomName())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	})
	b.ReportAllocs()
	for b.Loop() {
		if err := contract.ValidateContainerConfig(cfg); err != nil {
			b.Fatal(err)
		}
		if _, err := cli.ContainerInspect(ctx, c.ID); err != nil {
			b.Fatal(err)
		}
	}
}
