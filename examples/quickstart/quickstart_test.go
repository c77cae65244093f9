package main

// These are integration tests: they run the quickstart against the real
// Docker daemon and export its traces to a real Jaeger, which
// scripts/provision.sh and scripts/jaeger.sh start (scripts/test.sh runs
// both). Without them the tests fail with instructions; they never skip.
//
// Environment:
//
//	DOCKER_HOST               the daemon (default: the default socket)
//	RESILIENT_OTLP_ENDPOINT   Jaeger's OTLP endpoint (default http://127.0.0.1:4318)
//	RESILIENT_OTLP_PROTOCOL   "grpc" or "http/protobuf"; default grpc when the
//	                          endpoint's port is 4317, else http/protobuf
//	RESILIENT_JAEGER_QUERY    Jaeger's query API (default http://127.0.0.1:16686)
//	CI                        "true" says so in the failure messages

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"go.uber.org/goleak"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
	"github.com/resilientdriver/resilient/kubedriver"
)

func TestMain(m *testing.M) {
	// Nothing is ignored: the docker clients, the OTLP exporters and the
	// HTTP clients of the tests must all be closed when a test ends.
	goleak.VerifyTestMain(m)
}

// sessionLabel is the label the driver puts on a session's containers.
const sessionLabel = dockerdriver.DefaultLabelPrefix + ".session"

// jaegerWait bounds the wait for a trace to show in Jaeger's query API.
const jaegerWait = 30 * time.Second

func TestQuickstartTraceInJaeger(t *testing.T) {
	dk := needDocker(t)
	jg := needJaeger(t)

	suffix := randomHex(6)
	sessionID := "qs-test-" + suffix
	service := "resilient-quickstart-test-" + suffix
	canaries := []string{
		"QS_CANARY_ENV_NAME_" + strings.ToUpper(suffix),
		"canary-env-value-" + suffix,
		"canary.label.key." + suffix,
		"canary-label-value-" + suffix,
	}

	clearOTelEnv(t)
	endpoint := jg.otlpEndpoint
	if jg.otlpProtocol != "grpc" {
		endpoint = relay(t, endpoint)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", jg.otlpProtocol)
	t.Setenv("OTEL_SERVICE_NAME", service)
	// OTEL_METRICS_EXPORTER stays unset: Jaeger refuses metrics, and the
	// quickstart must still succeed and deliver its traces.

	cfg := config{
		sessionID: sessionID,
		export:    true,
		env:       map[string]string{canaries[0]: canaries[1]},
		labels:    map[string]string{canaries[2]: canaries[3]},
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	var out bytes.Buffer
	err := run(ctx, &out, cfg)
	took := time.Since(began)
	t.Logf("run took %s; output:\n%s", took.Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}

	// The output: every step succeeded, in order.
	steps := []string{"create network", "create volume", "create container", "start", "wait healthy",
		"logs", "exec", "copy in", "copy out", "health check", "stop", "remove container", "remove volume", "remove network"}
	checkTimeline(t, out.String(), steps)
	if s := out.String(); !strings.Contains(s, "workload: serving on :8080") {
		t.Errorf("output does not show the container's log line %q", "workload: serving on :8080")
	}
	m := regexp.MustCompile(`(?m)^trace ([0-9a-f]{32}), service "([^"]+)"$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output has no line %q", "trace <id>, service <name>")
	}
	traceID := m[1]
	if m[2] != service {
		t.Errorf("output names service %q, want %q", m[2], service)
	}

	// The daemon's view: what was made, with which IDs, and that it is gone.
	ev := sessionEvents(t, dk, namesFor(sessionID), sessionID, began)
	checkEvents(t, ev, canaries[2], canaries[3])
	checkNothingLeft(t, dk, sessionID)
	if ev.containerID == "" {
		t.Fatal("the daemon reported no container of the session")
	}
	if want := "  " + short(ev.containerID) + "  "; !strings.Contains(out.String(), want) {
		t.Errorf("output does not show the container's short ID %s", short(ev.containerID))
	}

	// Jaeger's view.
	tr, raw := waitForTrace(t, jg, service, traceID)
	checkTrace(t, tr, traceSpec{
		service:     service,
		sessionID:   sessionID,
		containerID: ev.containerID,
		networkID:   ev.networkID,
		names:       namesFor(sessionID),
	})
	for _, c := range canaries {
		if bytes.Contains(raw, []byte(c)) {
			t.Errorf("the trace in Jaeger contains the canary %q planted in the container's env or labels", c)
		}
	}
}

// TestQuickstartOnKubernetes runs the session on the cluster of KUBECONFIG
// (scripts/kubernetes.sh; under CI a missing cluster fails the test) and
// finds its trace in Jaeger: the same timeline and the same spans as on
// Docker, from the Kubernetes driver, and nothing left in the namespace.
func TestQuickstartOnKubernetes(t *testing.T) {
	if os.Getenv("KUBECONFIG") == "" {
		msg := "KUBECONFIG is not set: run `eval \"$(scripts/kubernetes.sh)\"` (scripts/test.sh does)"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run the quickstart on Kubernetes: " + msg)
		}
		t.Skip(msg)
	}
	jg := needJaeger(t)
	suffix := randomHex(6)
	sessionID := "qs-kube-" + suffix
	service := "resilient-quickstart-kube-" + suffix
	clearOTelEnv(t)
	endpoint := jg.otlpEndpoint
	if jg.otlpProtocol != "grpc" {
		endpoint = relay(t, endpoint)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", jg.otlpProtocol)
	t.Setenv("OTEL_SERVICE_NAME", service)
	t.Setenv("OTEL_METRICS_EXPORTER", "none")

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, &out, config{engine: engineKubernetes, sessionID: sessionID, export: true})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	// The sandbox steps run where the driver has the interfaces and are
	// skipped, with the reason, where it has not.
	var steps []string
	for line := range strings.Lines(out.String()) {
		if res, ok := parseStep(line); ok && res == "ok" {
			steps = append(steps, stepName(line))
		}
	}
	steps = slices.DeleteFunc(steps, func(s string) bool { return s == "exec" || s == "copy in" || s == "copy out" })
	want := []string{"create network", "create volume", "create container", "start", "wait healthy",
		"logs", "health check", "stop", "remove container", "remove volume", "remove network"}
	if !slices.Equal(steps, want) {
		t.Errorf("steps that succeeded but the sandbox ones:\n got %q\nwant %q", steps, want)
	}
	if !strings.Contains(out.String(), "Kubernetes v") {
		t.Error("the output does not name the Kubernetes version")
	}
	m := regexp.MustCompile(`(?m)^trace ([0-9a-f]{32}), service "([^"]+)"$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output has no line %q", "trace <id>, service <name>")
	}
	cid := regexp.MustCompile(`create container\s+ok\s+(\S+)`).FindStringSubmatch(out.String())
	if cid == nil {
		t.Fatal("output shows no container id")
	}
	nid := regexp.MustCompile(`\(networkpolicy, id (\S+)\)`).FindStringSubmatch(out.String())
	if nid == nil {
		t.Fatal("output shows no network id")
	}

	// Nothing of the session is left, per a driver of the test's own.
	d, err := kubedriver.New()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	left, err := d.ListContainers(ctx, contract.ContainerFilter{SessionID: sessionID})
	if err != nil || len(left) != 0 {
		t.Errorf("containers of the session left: %v, %v", left, err)
	}

	tr, _ := waitForTrace(t, jg, service, m[1])
	checkTrace(t, tr, traceSpec{
		service:     service,
		sessionID:   sessionID,
		containerID: cid[1],
		networkID:   nid[1],
		names:       namesFor(sessionID),
		driver:      kubedriver.Name,
	})
}

// TestQuickstartCleansUp interrupts or fails a session at several points
// and checks that it removes what it made.
func TestQuickstartCleansUp(t *testing.T) {
	dk := needDocker(t)
	clearOTelEnv(t)

	tests := []struct {
		name      string
		cancelAt  string            // cancel the context when this step's line is printed
		labels    map[string]string // extra container labels
		wantErr   error
		wantSteps []string // steps printed with "ok", in order
	}{
		{
			name:      "canceled after the volume",
			cancelAt:  "create volume",
			wantErr:   context.Canceled,
			wantSteps: []string{"create network", "create volume", "cleanup: volume", "cleanup: network"},
		},
		{
			name:     "canceled after the start",
			cancelAt: "start",
			wantErr:  context.Canceled,
			wantSteps: []string{"create network", "create volume", "create container", "start",
				"cleanup: container", "cleanup: volume", "cleanup: network"},
		},
		{
			name:     "canceled after the stop",
			cancelAt: "stop",
			wantErr:  context.Canceled,
			wantSteps: []string{"create network", "create volume", "create container", "start", "wait healthy",
				"logs", "exec", "copy in", "copy out", "health check", "stop", "cleanup: container", "cleanup: volume", "cleanup: network"},
		},
		{
			// The driver refuses labels in its own namespace: the create
			// fails, so cleanup must look for a container by session.
			name:      "create fails",
			labels:    map[string]string{dockerdriver.DefaultLabelPrefix + ".forged": "x"},
			wantErr:   contract.ErrConfiguration,
			wantSteps: []string{"create network", "create volume", "cleanup: volume", "cleanup: network"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sessionID := "qs-test-" + randomHex(6)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			out := &cancelingWriter{step: tt.cancelAt, cancel: cancel}
			began := time.Now()
			err := run(ctx, out, config{sessionID: sessionID, labels: tt.labels})
			t.Logf("run took %s; output:\n%s", time.Since(began).Round(time.Millisecond), out.String())
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("run: %v, want an error matching %v", err, tt.wantErr)
			}
			checkTimeline(t, out.String(), tt.wantSteps)
			if !strings.Contains(out.String(), "everything it created is removed") {
				t.Errorf("summary does not say everything is removed")
			}
			checkNothingLeft(t, dk, sessionID)
		})
	}
}

func TestQuickstartWithoutDaemon(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), &out, config{host: "unix:///nonexistent/resilient/docker.sock"})
	var se *setupError
	if !errors.As(err, &se) {
		t.Fatalf("run: %v, want a *setupError", err)
	}
	for _, want := range []string{"unix:///nonexistent/resilient/docker.sock"} {
		if !strings.Contains(se.Error(), want) {
			t.Errorf("error %q does not mention %q", se.Error(), want)
		}
	}
	for _, want := range []string{"scripts/provision.sh", "DOCKER_HOST", "as root"} {
		if !strings.Contains(se.fix, want) {
			t.Errorf("advice %q does not mention %q", se.fix, want)
		}
	}
	if out.Len() != 0 {
		t.Errorf("run printed %q before finding that the daemon is missing", out.String())
	}
}

func TestQuickstartWithoutImage(t *testing.T) {
	dk := needDocker(t)
	sessionID := "qs-test-" + randomHex(6)
	image := "resilient-workload:missing-" + randomHex(4)
	var out bytes.Buffer
	err := run(t.Context(), &out, config{sessionID: sessionID, image: image})
	var se *setupError
	if !errors.As(err, &se) {
		t.Fatalf("run: %v, want a *setupError", err)
	}
	if !strings.Contains(se.Error(), image) {
		t.Errorf("error %q does not name the image %s", se.Error(), image)
	}
	if out.Len() != 0 {
		t.Errorf("run printed %q before finding that the image is missing", out.String())
	}
	if !strings.Contains(se.fix, image) {
		t.Errorf("advice %q does not name the image %s", se.fix, image)
	}
	checkNothingLeft(t, dk, sessionID)
}

// relay returns the URL of an HTTP server that forwards every request to
// target, Jaeger's OTLP/HTTP receiver, and closes its connections when the
// test ends.
//
// The OTLP/HTTP exporters of OpenTelemetry Go send through a transport
// shared by the whole package, and their Shutdown leaves its keep-alive
// connection open, so its two goroutines outlive the exporter. Closing the
// connection from the server's side ends them, which lets goleak stay
// strict about every other goroutine. The gRPC exporter closes its
// connection itself and needs no relay.
func relay(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		t.Fatalf("RESILIENT_OTLP_ENDPOINT %q is not a URL: %v", target, err)
	}
	tr := &http.Transport{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = tr
	srv := httptest.NewServer(rp)
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	return srv.URL
}

// cancelingWriter collects the output and cancels when the line of a step
// has been printed.
type cancelingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	step   string
	cancel context.CancelFunc
}

func (w *cancelingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.step != "" {
		if _, ok := parseStep(string(p)); ok && stepName(string(p)) == w.step {
			w.cancel()
		}
	}
	return w.buf.Write(p)
}

func (w *cancelingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// stepLine matches a timeline line: at ms, took, step, result, container
// and detail.
var stepLine = regexp.MustCompile(`^\s*(\d+)\s+(\d+)ms  (.{18}) (ok|FAIL)\s`)

// parseStep returns the result of a timeline line.
func parseStep(line string) (result string, ok bool) {
	m := stepLine.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	return m[4], true
}

func stepName(line string) string {
	m := stepLine.FindStringSubmatch(line)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[3])
}

// checkTimeline checks that the steps that succeeded are exactly want, in
// order.
func checkTimeline(t *testing.T, out string, want []string) {
	t.Helper()
	var got []string
	for line := range strings.Lines(out) {
		if res, ok := parseStep(line); ok && res == "ok" {
			got = append(got, stepName(line))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("steps that succeeded:\n got %q\nwant %q", got, want)
	}
}

// dockerEnv is the test's own view of the daemon.
type dockerEnv struct {
	cli *client.Client
}

// needDocker returns a client for the daemon the quickstart uses, and fails
// the test with instructions when it does not answer or lacks the image.
func needDocker(t *testing.T) *dockerEnv {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		t.Fatalf("%sno Docker daemon answers at %s: %v\n"+
			"Run scripts/provision.sh as root on Debian or Ubuntu (it installs and starts dockerd and builds the "+
			"workload images), or start Docker, set DOCKER_HOST and run scripts/provision.sh; scripts/test.sh does both.",
			ciPrefix(), cli.DaemonHost(), err)
	}
	if _, err := cli.ImageInspect(ctx, defaultImage); err != nil {
		t.Fatalf("%sthe daemon at %s has no image %s (%v): run scripts/provision.sh to build it",
			ciPrefix(), cli.DaemonHost(), defaultImage, err)
	}
	return &dockerEnv{cli: cli}
}

// jaegerEnv says where Jaeger is.
type jaegerEnv struct {
	otlpEndpoint string
	otlpProtocol string
	query        string
	http         *http.Client
}

// needJaeger returns Jaeger's endpoints, and fails the test with
// instructions when its query API does not answer.
func needJaeger(t *testing.T) *jaegerEnv {
	t.Helper()
	jg := &jaegerEnv{
		otlpEndpoint: envOr("RESILIENT_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
		otlpProtocol: os.Getenv("RESILIENT_OTLP_PROTOCOL"),
		query:        strings.TrimRight(envOr("RESILIENT_JAEGER_QUERY", "http://127.0.0.1:16686"), "/"),
	}
	if jg.otlpProtocol == "" {
		jg.otlpProtocol = "http/protobuf"
		if u, err := url.Parse(jg.otlpEndpoint); err == nil && u.Port() == "4317" {
			jg.otlpProtocol = "grpc"
		}
	}
	tr := &http.Transport{}
	jg.http = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)

	resp, err := jg.http.Get(jg.query + "/api/services")
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %s", resp.Status)
		}
	}
	if err != nil {
		t.Fatalf("%sJaeger's query API does not answer at %s: %v\n"+
			"Run scripts/jaeger.sh (it builds and starts Jaeger all-in-one: OTLP on 127.0.0.1:4317 and :4318, "+
			"queries on :16686), or set RESILIENT_JAEGER_QUERY and RESILIENT_OTLP_ENDPOINT; scripts/test.sh does it.",
			ciPrefix(), jg.query, err)
	}
	return jg
}

func ciPrefix() string {
	if os.Getenv("CI") == "true" {
		return "CI=true, and the integration tests need this: "
	}
	return ""
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// clearOTelEnv unsets every OTEL_ variable for the test, so that the
// environment the tests run in cannot change where the traces go.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// daemonEvents is what the daemon reported about one session.
type daemonEvents struct {
	containerIDs      []string // distinct, in order of appearance
	containerID       string   // the first
	networkID         string
	container         []events.Message
	network, volume   []events.Message
	createAttrs       map[string]string // of the container's create event
	networkConnectsTo []string          // containers connected to the network
	volumeMountedBy   []string          // containers that mounted the volume
}

// sessionEvents reads the daemon's events since began about the session's
// container, network and volume.
func sessionEvents(t *testing.T, dk *dockerEnv, n names, sessionID string, began time.Time) daemonEvents {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	since := began.Add(-time.Second)
	until := time.Now().Add(time.Second)
	msgs, errs := dk.cli.Events(ctx, events.ListOptions{
		Since: fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		Until: fmt.Sprintf("%d.%09d", until.Unix(), until.Nanosecond()),
	})
	var ev daemonEvents
	for {
		select {
		case m := <-msgs:
			switch {
			case m.Type == events.ContainerEventType && m.Actor.Attributes[sessionLabel] == sessionID:
				ev.container = append(ev.container, m)
				if !slices.Contains(ev.containerIDs, m.Actor.ID) {
					ev.containerIDs = append(ev.containerIDs, m.Actor.ID)
				}
				if m.Action == events.ActionCreate {
					ev.createAttrs = m.Actor.Attributes
				}
			case m.Type == events.NetworkEventType && m.Actor.Attributes["name"] == n.network:
				ev.network = append(ev.network, m)
				ev.networkID = m.Actor.ID
				if m.Action == events.ActionConnect {
					ev.networkConnectsTo = append(ev.networkConnectsTo, m.Actor.Attributes["container"])
				}
			case m.Type == events.VolumeEventType && m.Actor.ID == n.volume:
				ev.volume = append(ev.volume, m)
				if m.Action == events.ActionMount {
					ev.volumeMountedBy = append(ev.volumeMountedBy, m.Actor.Attributes["container"])
				}
			}
		case err := <-errs:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("reading the daemon's events: %v", err)
			}
			if len(ev.containerIDs) > 0 {
				ev.containerID = ev.containerIDs[0]
			}
			return ev
		}
	}
}

func actions(ms []events.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Action))
	}
	return out
}

// checkEvents checks what the daemon saw: one container, created with the
// planted label, started, stopped with SIGTERM (never SIGKILL) and
// destroyed; the network and the volume created, used by that container and
// destroyed.
func checkEvents(t *testing.T, ev daemonEvents, labelKey, labelValue string) {
	t.Helper()
	if len(ev.containerIDs) != 1 {
		t.Errorf("the session made %d containers %q, want 1", len(ev.containerIDs), ev.containerIDs)
	}
	got := actions(ev.container)
	for _, want := range []string{"create", "start", "kill", "die", "stop", "destroy"} {
		if !slices.Contains(got, want) {
			t.Errorf("container events %q lack %q", got, want)
		}
	}
	for _, m := range ev.container {
		if m.Action == events.ActionKill && m.Actor.Attributes["signal"] != "15" {
			t.Errorf("container was sent signal %s, want only 15 (SIGTERM): the stop was not graceful",
				m.Actor.Attributes["signal"])
		}
	}
	if v := ev.createAttrs[labelKey]; v != labelValue {
		t.Errorf("the container's create event has label %s=%q, want the planted %q: the canary did not reach the daemon",
			labelKey, v, labelValue)
	}

	for _, c := range []struct {
		what    string
		ms      []events.Message
		usedBy  []string
		actions []string
	}{
		{"network", ev.network, ev.networkConnectsTo, []string{"create", "connect", "disconnect", "destroy"}},
		{"volume", ev.volume, ev.volumeMountedBy, []string{"create", "mount", "destroy"}},
	} {
		got := actions(c.ms)
		for _, want := range c.actions {
			if !slices.Contains(got, want) {
				t.Errorf("%s events %q lack %q", c.what, got, want)
			}
		}
		// A copy through the archive endpoints mounts the volume again:
		// the same container, more than once.
		if ev.containerID != "" && !slices.Equal(slices.Compact(slices.Sorted(slices.Values(c.usedBy))), []string{ev.containerID}) {
			t.Errorf("%s used by containers %q, want only %s", c.what, c.usedBy, ev.containerID)
		}
	}
}

// checkNothingLeft checks that no container, volume or network of the
// session is left on the daemon.
func checkNothingLeft(t *testing.T, dk *dockerEnv, sessionID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	n := namesFor(sessionID)
	ours := filters.NewArgs(filters.Arg("label", n.labelKey+"="+sessionID))

	for _, f := range []filters.Args{ours, filters.NewArgs(filters.Arg("label", sessionLabel+"="+sessionID))} {
		cs, err := dk.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatalf("listing containers: %v", err)
		}
		for _, c := range cs {
			t.Errorf("container %s (%s, %s) of the session is left on the daemon", short(c.ID), c.Names, c.State)
		}
	}
	for _, f := range []filters.Args{ours, filters.NewArgs(filters.Arg("name", n.volume))} {
		vs, err := dk.cli.VolumeList(ctx, volume.ListOptions{Filters: f})
		if err != nil {
			t.Fatalf("listing volumes: %v", err)
		}
		for _, v := range vs.Volumes {
			if v.Name == n.volume || v.Labels[n.labelKey] == sessionID {
				t.Errorf("volume %s of the session is left on the daemon", v.Name)
			}
		}
	}
	for _, f := range []filters.Args{ours, filters.NewArgs(filters.Arg("name", n.network))} {
		ns, err := dk.cli.NetworkList(ctx, network.ListOptions{Filters: f})
		if err != nil {
			t.Fatalf("listing networks: %v", err)
		}
		for _, nw := range ns {
			// The name filter matches substrings.
			if nw.Name == n.network || nw.Labels[n.labelKey] == sessionID {
				t.Errorf("network %s (%s) of the session is left on the daemon", nw.Name, short(nw.ID))
			}
		}
	}
}

// The parts of Jaeger's /api/traces answer the test reads.
type (
	jaegerResponse struct {
		Data   []jaegerTrace `json:"data"`
		Errors []struct {
			Msg string `json:"msg"`
		} `json:"errors"`
	}
	jaegerTrace struct {
		TraceID   string                   `json:"traceID"`
		Spans     []jaegerSpan             `json:"spans"`
		Processes map[string]jaegerProcess `json:"processes"`
	}
	jaegerProcess struct {
		ServiceName string `json:"serviceName"`
	}
	jaegerSpan struct {
		TraceID       string      `json:"traceID"`
		SpanID        string      `json:"spanID"`
		OperationName string      `json:"operationName"`
		References    []jaegerRef `json:"references"`
		StartTime     int64       `json:"startTime"` // µs since the epoch
		Duration      int64       `json:"duration"`  // µs
		Tags          []jaegerTag `json:"tags"`
		ProcessID     string      `json:"processID"`
	}
	jaegerRef struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}
	jaegerTag struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	}
)

func (s jaegerSpan) tag(key string) (string, bool) {
	for _, tg := range s.Tags {
		if tg.Key == key {
			return fmt.Sprint(tg.Value), true
		}
	}
	return "", false
}

// driverOps are the operations every session calls, in the order it first
// calls them.
var driverOps = []contract.Op{
	contract.OpCreateNetwork, contract.OpCreateVolume, contract.OpCreateContainer,
	contract.OpStartContainer, contract.OpIsContainerHealthy, contract.OpGetContainerLogs,
	contract.OpHealthCheck, contract.OpStopContainer, contract.OpGetContainer,
	contract.OpRemoveContainer, contract.OpRemoveVolume, contract.OpRemoveNetwork,
}

// waitForTrace polls Jaeger until the service's trace holds the root span
// and a span of every driver operation, and returns it with the raw answer.
func waitForTrace(t *testing.T, jg *jaegerEnv, service, traceID string) (jaegerTrace, []byte) {
	t.Helper()
	u := jg.query + "/api/traces?" + url.Values{
		"service":  {service},
		"lookback": {"1h"},
		"limit":    {"20"},
	}.Encode()
	deadline := time.Now().Add(jaegerWait)
	var last string
	for {
		tr, raw, err := fetchTrace(t, jg, u, traceID)
		if err == nil {
			return tr, raw
		}
		last = err.Error()
		if time.Now().After(deadline) {
			t.Fatalf("no complete trace of service %q in Jaeger at %s after %s: %s", service, jg.query, jaegerWait, last)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func fetchTrace(t *testing.T, jg *jaegerEnv, u, traceID string) (jaegerTrace, []byte, error) {
	resp, err := jg.http.Get(u)
	if err != nil {
		return jaegerTrace{}, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return jaegerTrace{}, nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return jaegerTrace{}, nil, errors.New("service not known yet")
	}
	if resp.StatusCode != http.StatusOK {
		return jaegerTrace{}, nil, fmt.Errorf("status %s: %s", resp.Status, raw)
	}
	var r jaegerResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return jaegerTrace{}, nil, fmt.Errorf("decoding %s: %w", raw, err)
	}
	if len(r.Errors) > 0 {
		return jaegerTrace{}, nil, fmt.Errorf("jaeger: %s", r.Errors[0].Msg)
	}
	if len(r.Data) == 0 {
		return jaegerTrace{}, nil, errors.New("no trace yet")
	}
	if len(r.Data) > 1 {
		// A unique service name, one session: more traces means the calls
		// were not all under the root span.
		ids := make([]string, 0, len(r.Data))
		for _, tr := range r.Data {
			ids = append(ids, fmt.Sprintf("%s (%d spans)", tr.TraceID, len(tr.Spans)))
		}
		t.Fatalf("Jaeger holds %d traces of the service, want 1: %s", len(r.Data), strings.Join(ids, ", "))
	}
	tr := r.Data[0]
	if tr.TraceID != traceID {
		t.Fatalf("Jaeger's trace is %s, the quickstart printed %s", tr.TraceID, traceID)
	}
	names := make(map[string]bool)
	for _, s := range tr.Spans {
		names[s.OperationName] = true
	}
	var missing []string
	for _, op := range driverOps {
		if !names[spanName(op)] {
			missing = append(missing, spanName(op))
		}
	}
	if !names[rootSpanName] {
		missing = append(missing, rootSpanName)
	}
	if len(missing) > 0 {
		return jaegerTrace{}, nil, fmt.Errorf("trace %s lacks %q so far", tr.TraceID, missing)
	}
	return tr, raw, nil
}

func spanName(op contract.Op) string { return "ContainerDriver." + string(op) }

type traceSpec struct {
	service, sessionID, containerID, networkID string
	names                                      names
	driver                                     string // driver.name; default dockerdriver.Name
}

// checkTrace checks the span tree: one root, every driver call a client
// span directly under it, with the IDs the daemon reported, in the order
// of the session's steps, and none failed.
func checkTrace(t *testing.T, tr jaegerTrace, want traceSpec) {
	t.Helper()
	var root *jaegerSpan
	for i, s := range tr.Spans {
		if s.OperationName == rootSpanName {
			if root != nil {
				t.Errorf("two root spans %s and %s", root.SpanID, s.SpanID)
			}
			root = &tr.Spans[i]
		}
	}
	if root == nil {
		t.Fatal("no root span")
	}
	if len(root.References) != 0 {
		t.Errorf("root span has references %+v, want none", root.References)
	}
	if v, _ := root.tag("session.id"); v != want.sessionID {
		t.Errorf("root span session.id = %q, want %q", v, want.sessionID)
	}
	if p := tr.Processes[root.ProcessID]; p.ServiceName != want.service {
		t.Errorf("service name %q, want %q", p.ServiceName, want.service)
	}
	if v, ok := root.tag("otel.status_code"); ok {
		t.Errorf("root span status %s, want unset", v)
	}

	// Every span of the trace descends from the root.
	byID := make(map[string]jaegerSpan, len(tr.Spans))
	for _, s := range tr.Spans {
		byID[s.SpanID] = s
	}
	for _, s := range tr.Spans {
		for cur, hops := s, 0; cur.SpanID != root.SpanID; hops++ {
			if len(cur.References) != 1 || cur.References[0].RefType != "CHILD_OF" || hops > len(tr.Spans) {
				t.Errorf("span %s %q does not descend from the root span (references %+v)", s.SpanID, s.OperationName, cur.References)
				break
			}
			cur = byID[cur.References[0].SpanID]
		}
	}

	first := make(map[string]int64) // span name -> earliest start
	for _, s := range tr.Spans {
		if !strings.HasPrefix(s.OperationName, "ContainerDriver.") {
			continue
		}
		name := s.OperationName
		op := strings.TrimPrefix(name, "ContainerDriver.")
		if st, ok := first[name]; !ok || s.StartTime < st {
			first[name] = s.StartTime
		}
		if len(s.References) != 1 || s.References[0].RefType != "CHILD_OF" ||
			s.References[0].SpanID != root.SpanID || s.References[0].TraceID != tr.TraceID {
			t.Errorf("%s %s: references %+v, want CHILD_OF the root span %s", name, s.SpanID, s.References, root.SpanID)
		}
		if s.StartTime < root.StartTime || s.StartTime+s.Duration > root.StartTime+root.Duration {
			t.Errorf("%s %s does not lie within the root span", name, s.SpanID)
		}
		tags := map[string]string{
			"span.kind":    "client",
			"driver.name":  cmp.Or(want.driver, dockerdriver.Name),
			"resilient.op": op,
		}
		switch contract.Op(op) {
		case contract.OpCreateContainer:
			tags["container.id"] = want.containerID
			tags["session.id"] = want.sessionID
			tags["container.image.name"] = defaultImage
		case contract.OpStartContainer, contract.OpIsContainerHealthy, contract.OpGetContainerLogs,
			contract.OpStopContainer, contract.OpGetContainer, contract.OpRemoveContainer:
			tags["container.id"] = want.containerID
		case contract.OpCreateVolume:
			tags["volume.id"] = want.names.volume
			tags["volume.name"] = want.names.volume
		case contract.OpRemoveVolume:
			tags["volume.id"] = want.names.volume
		case contract.OpCreateNetwork:
			tags["network.id"] = want.networkID
			tags["network.name"] = want.names.network
		case contract.OpRemoveNetwork:
			tags["network.id"] = want.networkID
		}
		for k, v := range tags {
			if got, _ := s.tag(k); got != v {
				t.Errorf("%s %s: %s = %q, want %q", name, s.SpanID, k, got, v)
			}
		}
		if v, ok := s.tag("otel.status_code"); ok {
			et, _ := s.tag("error.type")
			t.Errorf("%s %s: status %s (error.type %s), want unset", name, s.SpanID, v, et)
		}
	}

	// The operations began in the order of the session's steps.
	for i := 1; i < len(driverOps); i++ {
		a, b := spanName(driverOps[i-1]), spanName(driverOps[i])
		if first[a] > first[b] {
			t.Errorf("%s began after %s", a, b)
		}
	}
}
