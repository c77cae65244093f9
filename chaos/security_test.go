package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/registry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
	"github.com/resilientdriver/resilient/tracing"
)

// TestSecurityPolicyRefuses sends configs the default policy of
// resilient.Wrap must refuse: the engine's socket, host system paths,
// privileged capabilities, root, a writable root, new privileges and the
// host's namespaces. Each fails with a CONFIGURATION error that names the
// field, and nothing reaches the driver or the daemon.
func TestSecurityPolicyRefuses(t *testing.T) {
	r := newRig(t, rigConfig{})
	ctx := testCtx(t, 2*time.Minute)
	sid := newSession(t)
	bind := func(src string, ro bool) func(*contract.ContainerConfig) {
		return func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Type: contract.MountBind, Source: src, Target: "/host", ReadOnly: ro}}
		}
	}
	tests := []struct {
		name string
		give func(*contract.ContainerConfig)
		path string // the issue's path
	}{
		{"docker socket", bind("/var/run/docker.sock", true), "volumes.0.source"},
		{"docker socket under /run", bind("/run/docker.sock", true), "volumes.0.source"},
		{"rootless docker socket", bind("/home/dev/.docker/run/docker.sock", true), "volumes.0.source"},
		{"containerd socket", bind("/run/containerd/containerd.sock", true), "volumes.0.source"},
		{"host root", bind("/", true), "volumes.0.source"},
		{"/etc", bind("/etc", true), "volumes.0.source"},
		{"/etc/shadow", bind("/etc/shadow", true), "volumes.0.source"},
		{"/proc", bind("/proc", true), "volumes.0.source"},
		{"/sys", bind("/sys", true), "volumes.0.source"},
		{"/dev", bind("/dev", true), "volumes.0.source"},
		{"/boot", bind("/boot", true), "volumes.0.source"},
		{"/usr writable", bind("/usr", false), "volumes.0.source"},
		{"/lib writable", bind("/lib/modules", false), "volumes.0.source"},
		{"/var, which holds the socket", bind("/var", true), "volumes.0.source"},
		{"/var/lib/docker", bind("/var/lib/docker", true), "volumes.0.source"},
		{"SYS_ADMIN", func(c *contract.ContainerConfig) { c.Security.Capabilities.Add = []string{"SYS_ADMIN"} }, "security.capabilities.add.0"},
		{"cap_sys_module", func(c *contract.ContainerConfig) { c.Security.Capabilities.Add = []string{"cap_sys_module"} }, "security.capabilities.add.0"},
		{"NET_ADMIN", func(c *contract.ContainerConfig) { c.Security.Capabilities.Add = []string{"NET_ADMIN"} }, "security.capabilities.add.0"},
		{"SYS_PTRACE", func(c *contract.ContainerConfig) { c.Security.Capabilities.Add = []string{"SYS_PTRACE"} }, "security.capabilities.add.0"},
		{"ALL capabilities", func(c *contract.ContainerConfig) { c.Security.Capabilities.Add = []string{"ALL"} }, "security.capabilities.add.0"},
		{"engine default capabilities", func(c *contract.ContainerConfig) { c.Security.Capabilities.Drop = nil }, "security.capabilities.drop"},
		{"root by name", func(c *contract.ContainerConfig) { c.Security.User = "root" }, "security.user"},
		{"root by uid", func(c *contract.ContainerConfig) { c.Security.User = "0:0" }, "security.user"},
		{"image's user", func(c *contract.ContainerConfig) { c.Security.User = "" }, "security.user"},
		{"new privileges", func(c *contract.ContainerConfig) { c.Security.NoNewPrivileges = false }, "security.noNewPrivileges"},
		{"writable root", func(c *contract.ContainerConfig) { c.Security.ReadOnly = false }, "security.readOnly"},
		{"host network", func(c *contract.ContainerConfig) { c.Network = "host" }, "network"},
		{"HOST network", func(c *contract.ContainerConfig) { c.Network = "HOST" }, "network"},
		{"another container's network", func(c *contract.ContainerConfig) { c.Network = "container:db" }, "network"},
		{"no CPU limit", func(c *contract.ContainerConfig) { c.Resources.CPU = 0 }, "resources.cpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smallConfig(sid)
			tt.give(&cfg)
			_, err := r.d.CreateContainer(ctx, cfg)
			wantCode(t, "CreateContainer", err, contract.CodeConfiguration)
			if contract.IsRetryable(err) {
				t.Errorf("a refused config is retryable: %v", err)
			}
			var ve *contract.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v holds no *contract.ValidationError", err)
			}
			if !slices.ContainsFunc(ve.Issues, func(is contract.Issue) bool { return is.Path == tt.path }) {
				t.Errorf("issues %+v do not name %s", ve.Issues, tt.path)
			}
		})
	}
	if n := r.attemptsOf(contract.OpCreateContainer); n != 0 {
		t.Errorf("%d refused creates reached the driver", n)
	}
	if n, err := countContainers(ctx, sid); err != nil || n != 0 {
		t.Errorf("%d containers on the daemon after refused creates (%v)", n, err)
	}

	// A control: the same config with nothing loosened is accepted.
	inst, err := r.d.CreateContainer(ctx, smallConfig(sid))
	if err != nil {
		t.Fatalf("the default config is refused: %v", err)
	}
	if err := r.d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Error(err)
	}
}

// TestSecurityDefaults creates a container from contract.NewContainerConfig
// through resilient.Wrap and checks, with docker inspect and from inside
// the container (the workload's whoami), that it runs as non-root with a
// read-only root filesystem, no new privileges and no capability at all.
func TestSecurityDefaults(t *testing.T) {
	r := newRig(t, rigConfig{})
	ctx := testCtx(t, 2*time.Minute)
	sid := newSession(t)
	cfg := contract.NewContainerConfig(sid, workloadImage) // nothing but the defaults
	cfg.Command = []string{"whoami"}
	inst, err := r.d.CreateContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.cleanupSession(sid)

	c, err := docker.ContainerInspect(ctx, inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	hc := c.HostConfig
	checks := []struct {
		what string
		ok   bool
		got  any
	}{
		{"Config.User is 65534:65534", c.Config.User == contract.DefaultUser, c.Config.User},
		{"HostConfig.ReadonlyRootfs", hc.ReadonlyRootfs, hc.ReadonlyRootfs},
		{"HostConfig.SecurityOpt has no-new-privileges", slices.ContainsFunc(hc.SecurityOpt, func(o string) bool {
			return o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
		}), hc.SecurityOpt},
		{"HostConfig.CapDrop is ALL", slices.Equal(hc.CapDrop, []string{"ALL"}), hc.CapDrop},
		{"HostConfig.CapAdd is empty", len(hc.CapAdd) == 0, hc.CapAdd},
		{"not privileged", !hc.Privileged, hc.Privileged},
		{"no host network", !hc.NetworkMode.IsHost() && !hc.NetworkMode.IsContainer(), hc.NetworkMode},
		{"no host PID or IPC namespace", !hc.PidMode.IsHost() && !hc.IpcMode.IsHost(), []any{hc.PidMode, hc.IpcMode}},
		{"no binds or mounts", len(hc.Binds) == 0 && len(hc.Mounts) == 0, []any{hc.Binds, hc.Mounts}},
		{"no devices", len(hc.Devices) == 0, hc.Devices},
		{"memory limit", hc.Memory == contract.DefaultMemory<<20, hc.Memory},
		{"pids limit", hc.PidsLimit != nil && *hc.PidsLimit == contract.DefaultPIDs, hc.PidsLimit},
		{"cpu limit", hc.NanoCPUs == int64(contract.DefaultCPU*1e9), hc.NanoCPUs},
		{"/tmp is a bounded noexec tmpfs", strings.Contains(hc.Tmpfs["/tmp"], "noexec") && strings.Contains(hc.Tmpfs["/tmp"], "size="), hc.Tmpfs},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("docker inspect: want %s; got %v", ch.what, ch.got)
		}
	}

	if err := r.d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	waitCh, errCh := docker.ContainerWait(ctx, inst.ID, container.WaitConditionNotRunning)
	select {
	case res := <-waitCh:
		if res.StatusCode != 0 {
			t.Errorf("whoami exited with %d", res.StatusCode)
		}
	case err := <-errCh:
		t.Fatal(err)
	}
	logs, err := r.d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		} else if k, v, ok := strings.Cut(line, ": "); ok {
			got[k] = v
		}
	}
	t.Logf("whoami inside the container:\n%s", strings.TrimSpace(logs))
	want := map[string]func(string) bool{
		"uid":             func(v string) bool { return v == "65534" },
		"gid":             func(v string) bool { return v == "65534" },
		"rootfs_writable": func(v string) bool { return strings.HasPrefix(v, "no (read-only file system") },
		"CapEff":          func(v string) bool { return strings.Trim(v, "0") == "" && v != "" },
		"NoNewPrivs":      func(v string) bool { return v == "1" },
	}
	for k, ok := range want {
		if v, found := got[k]; !found || !ok(v) {
			t.Errorf("inside the container: %s = %q", k, v)
		}
	}
	if err := r.d.RemoveContainer(ctx, inst.ID); err != nil {
		t.Error(err)
	}
}

// TestSecretsStayOut plants a canary in env values, in a command argument
// and in registry credentials, and runs calls that succeed and calls that
// fail on the real daemon (a pull the registry refuses, a missing network,
// limits the daemon refuses, a config the policy refuses). The canary reaches no span, span event,
// metric, log line or error message.
func TestSecretsStayOut(t *testing.T) {
	canary := "canary-" + randHex(12)
	ctx := testCtx(t, 2*time.Minute)
	sid := newSession(t)

	// A registry on loopback that wants credentials and refuses them all,
	// so that the pull fails after the driver sent the canary to it.
	var sawCanary sync.Once
	sent := make(chan struct{})
	reg := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, ok := r.BasicAuth(); ok && pass == canary {
			sawCanary.Do(func() { close(sent) })
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="chaos"`)
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg.Listener = ln
	reg.Start()
	defer reg.Close()
	regHost := ln.Addr().String()
	auth := registry.AuthConfig{Username: "robot", Password: canary, ServerAddress: regHost}
	encoded, _ := registry.EncodeAuthConfig(auth)
	secrets := []string{canary, encoded, base64.StdEncoding.EncodeToString([]byte("robot:" + canary))}

	// Everything that leaves the library: spans, metrics, logs, errors.
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	var logBuf lockedBuffer
	log.SetOutput(&logBuf)
	defer log.SetOutput(defaultLogOutput)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { fmt.Fprintf(&logBuf, "otel: %v\n", err) }))

	r := newRig(t, rigConfig{
		driver: []dockerdriver.Option{dockerdriver.WithRegistryAuth(auth), dockerdriver.WithPullPolicy(dockerdriver.PullIfMissing)},
		wrap:   []resilient.Option{resilient.WithTracing(tracing.WithTracerProvider(tp), tracing.WithMeterProvider(mp))},
	})
	defer r.cleanupSession(sid)
	var errs []error
	note := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}

	cfg := smallConfig(sid, "print", "3")
	cfg.Env = map[string]string{"API_TOKEN": canary, "DATABASE_URL": "postgres://app:" + canary + "@db/app"}
	inst, err := r.d.CreateContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	note("start", r.d.StartContainer(ctx, inst.ID))
	_, err = r.d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{})
	note("logs", err)
	note("stop", r.d.StopContainer(ctx, inst.ID, contract.StopOptions{Timeout: time.Second}))
	note("remove", r.d.RemoveContainer(ctx, inst.ID))
	if len(errs) > 0 {
		t.Fatalf("a plain session failed: %v", errs)
	}

	// Failures: a pull with the canary as password, a missing network,
	// limits the daemon refuses, a config the policy refuses.
	pull := cfg.Clone()
	pull.Image = regHost + "/chaos/private:1"
	_, err = r.d.CreateContainer(ctx, pull)
	wantCode(t, "pull refused by the registry", err, contract.CodeAuthentication)
	note("pull", err)
	select {
	case <-sent:
	default:
		t.Errorf("the registry never received the credentials; the canary was not exercised")
	}

	nonet := cfg.Clone()
	nonet.Network = "chaos-no-such-network-" + randHex(4)
	_, err = r.d.CreateContainer(ctx, nonet)
	wantCode(t, "missing network", err, contract.CodeNetworkNotFound)
	note("network", err)

	tiny := cfg.Clone()
	tiny.Resources.Memory = 1 // below the engine's minimum: the daemon refuses it
	_, err = r.d.CreateContainer(ctx, tiny)
	wantCode(t, "memory below the engine's minimum", err, contract.CodeResourceLimit)
	note("tiny", err)

	refused := cfg.Clone()
	refused.Security.User = "root"
	_, err = r.d.CreateContainer(ctx, refused)
	wantCode(t, "refused config", err, contract.CodeConfiguration)
	note("refused", err)

	// Look everywhere.
	var out []string
	for _, err := range errs {
		out = append(out, "error: "+err.Error(), fmt.Sprintf("error %%+v: %+v", err), fmt.Sprintf("error %%#v: %#v", err))
	}
	for _, s := range spans.Ended() {
		out = append(out, "span: "+s.Name()+" "+s.Status().Description+" "+attrString(s.Attributes()))
		for _, e := range s.Events() {
			out = append(out, "span event: "+e.Name+" "+attrString(e.Attributes))
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	metrics := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			metrics++
			out = append(out, "metric: "+m.Name+" "+metricAttrs(m.Data))
		}
	}
	out = append(out, "log: "+logBuf.String())
	leaks := 0
	for _, s := range out {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				leaks++
				t.Errorf("a secret leaked: %.300s", s)
			}
		}
	}
	t.Logf("checked %d errors, %d spans, %d metrics and %d bytes of logs for the canary: %d leaks",
		len(errs), len(spans.Ended()), metrics, len(logBuf.String()), leaks)
	for _, err := range errs {
		t.Logf("  %v", err)
	}
}

func attrString(attrs []attribute.KeyValue) string {
	var b strings.Builder
	for _, a := range attrs {
		fmt.Fprintf(&b, "%s=%s ", a.Key, a.Value.Emit())
	}
	return b.String()
}

func metricAttrs(data metricdata.Aggregation) string {
	var sets []attribute.Set
	switch d := data.(type) {
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Histogram[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	}
	var b strings.Builder
	for _, s := range sets {
		b.WriteString(attrString(s.ToSlice()))
		b.WriteString("; ")
	}
	return b.String()
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var defaultLogOutput = log.Writer()
