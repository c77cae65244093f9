package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
	"github.com/resilientdriver/resilient/kubedriver"
	"github.com/resilientdriver/resilient/tracing/otlp"
)

// scopeName is the instrumentation scope of the session's root span.
const scopeName = "github.com/resilientdriver/resilient/examples/quickstart"

// rootSpanName is the name of the span that holds every call of a session.
const rootSpanName = "quickstart.session"

// howToGetDocker and howToGetImage are printed when the daemon or the image
// is missing.
const (
	howToGetDocker = `To get one:
  - on Debian or Ubuntu, as root: scripts/provision.sh
    (installs docker.io, starts dockerd and builds the workload images);
  - elsewhere: start Docker (Docker Engine, Docker Desktop, colima, ...),
    set DOCKER_HOST if it does not listen on the default socket, check that
    "docker info" works, then run scripts/provision.sh to build the images.`
	howToGetImage = `The image is built locally from internal/workload; no registry is needed.
Run scripts/provision.sh from the repository root (as root on Debian or
Ubuntu, or as any user who can reach the daemon): it builds
resilient-workload:latest and resilient-workload:health.`
)

// Engines of the -engine flag.
const (
	engineDocker     = "docker"
	engineKubernetes = "kubernetes"
)

// howToGetKubernetes is printed when no cluster answers.
const howToGetKubernetes = `To get one on Debian as root: eval "$(scripts/kubernetes.sh)"
(builds Kubernetes from the Go module proxy the first time, starts a
single-node cluster with the workload images and sets KUBECONFIG);
elsewhere point KUBECONFIG at a cluster whose nodes hold the image.`

// engine is the base driver of a session and where it runs.
type engine struct {
	driver interface {
		contract.ContainerDriver
		Close() error
	}
	where   string // the daemon's or API server's address
	version string // the engine and its version, for the timeline
}

// openEngine checks that the engine cfg names answers (and, for Docker,
// has the image) before the session creates anything, and returns its
// base driver.
func openEngine(ctx context.Context, cfg config) (*engine, error) {
	switch cfg.engine {
	case engineDocker:
		addr, version, err := preflight(ctx, cfg.host, cfg.image)
		if err != nil {
			return nil, err
		}
		d, err := newDockerDriver(cfg.host)
		if err != nil {
			return nil, err
		}
		return &engine{driver: d, where: addr, version: engineVersion(engineDocker, version)}, nil
	case engineKubernetes:
		return openKubernetes(ctx, cfg)
	}
	return nil, fmt.Errorf("unknown engine %q: want %s or %s", cfg.engine, engineDocker, engineKubernetes)
}

// openKubernetes returns a kubedriver for the cluster of cfg's
// kubeconfig, once its API server answers healthy.
func openKubernetes(ctx context.Context, cfg config) (*engine, error) {
	var opts []kubedriver.Option
	if cfg.kubeconfig != "" {
		opts = append(opts, kubedriver.WithKubeconfig(cfg.kubeconfig))
	}
	if cfg.namespace != "" {
		opts = append(opts, kubedriver.WithNamespace(cfg.namespace))
	}
	d, err := kubedriver.New(opts...)
	if err != nil {
		return nil, &setupError{problem: "the Kubernetes settings are invalid (KUBECONFIG)", fix: howToGetKubernetes, err: err}
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	h, err := d.HealthCheck(pctx)
	if err == nil && h.Status != contract.Healthy {
		err = errors.New(h.Error)
	}
	if err != nil {
		d.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &setupError{problem: "no Kubernetes API server answers healthy", fix: howToGetKubernetes, err: err}
	}
	return &engine{driver: d, where: "Kubernetes namespace " + d.Namespace(), version: engineVersion(engineKubernetes, h.Version)}, nil
}

// engineVersion names the engine with its version as drivers report it:
// Docker's bare ("20.10.24"), Podman's behind Docker's API with its name.
func engineVersion(eng, version string) string {
	switch {
	case eng == engineKubernetes:
		return "Kubernetes " + version
	case strings.HasPrefix(version, "Podman "):
		return version
	}
	return "Docker " + version
}

// preflight checks that the Docker daemon at host (or the one the
// environment names) answers and has the image, before the session creates
// anything, and returns the daemon's address and version.
func preflight(ctx context.Context, host, image string) (addr, version string, err error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return "", "", &setupError{
			problem: "the Docker settings in the environment are invalid (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)",
			fix:     howToGetDocker,
			err:     err,
		}
	}
	defer cli.Close()
	addr = cli.DaemonHost()

	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := cli.ServerVersion(pctx)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		return "", "", &setupError{
			problem: fmt.Sprintf("no Docker daemon answers at %s", addr),
			fix:     howToGetDocker,
			err:     err,
		}
	}
	if _, err := cli.ImageInspect(pctx, image); err != nil {
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		if cerrdefs.IsNotFound(err) {
			fix := howToGetImage
			if image != defaultImage {
				fix = fmt.Sprintf("Pull or build %s first; the quickstart never pulls.", image)
			}
			return "", "", &setupError{
				problem: fmt.Sprintf("the Docker daemon at %s has no image %s", addr, image),
				fix:     fix,
			}
		}
		return "", "", fmt.Errorf("inspecting image %s: %w", image, err)
	}
	return addr, v.Version, nil
}

// newDockerDriver returns the base driver for the daemon at host, or the
// one the environment names. It never pulls: the image is local, and the
// preflight has found it.
func newDockerDriver(host string) (*dockerdriver.Driver, error) {
	opts := []dockerdriver.Option{dockerdriver.WithPullPolicy(dockerdriver.PullNever)}
	if host != "" {
		opts = append(opts, dockerdriver.WithHost(host))
	}
	return dockerdriver.New(opts...)
}

// telemetry is the session's tracing: OTLP providers when exporting, and
// the tracer of the root span.
type telemetry struct {
	providers   *otlp.Providers // nil when not exporting
	tracer      trace.Tracer
	wrapOptions []resilient.Option
	serviceName string
	endpoint    string
	traceID     string // of the session, once started, when exporting
}

// startTelemetry sets up the OTLP export when cfg asks for it. Without it,
// the session is traced with the OpenTelemetry globals, which record nothing
// unless the program installed providers.
func startTelemetry(ctx context.Context, cfg config) (*telemetry, error) {
	t := &telemetry{tracer: otel.Tracer(scopeName)}
	if !cfg.export {
		return t, nil
	}
	p, err := otlp.NewProviders(ctx, otlp.WithServiceName(cfg.serviceName))
	if err != nil {
		return nil, fmt.Errorf("setting up the OTLP export: %w", err)
	}
	t.providers = p
	t.tracer = p.TracerProvider.Tracer(scopeName)
	t.wrapOptions = []resilient.Option{resilient.WithTracing(p.Options()...)}
	t.serviceName = serviceName(ctx, cfg.serviceName)
	t.endpoint = tracesEndpoint()
	return t, nil
}

// startSession starts the root span. The function it returns ends it,
// marking it failed when err is not nil. The span's description is the
// error's code, never its text, which may quote the daemon.
func (t *telemetry) startSession(ctx context.Context, sessionID string) (context.Context, func(err error)) {
	ctx, span := t.tracer.Start(ctx, rootSpanName, trace.WithAttributes(attribute.String("session.id", sessionID)))
	if t.providers != nil {
		t.traceID = span.SpanContext().TraceID().String()
	}
	return ctx, func(err error) {
		if err != nil {
			code := contract.ErrorType(err)
			span.SetAttributes(attribute.String("error.type", code))
			span.SetStatus(codes.Error, code)
		}
		span.End()
	}
}

// finish exports what is left and shuts the providers down. An error means
// the traces did not reach the endpoint. Jaeger refuses metrics, which is
// not an error here: the traces are what the session exports for.
func (t *telemetry) finish(out io.Writer) error {
	if t.providers == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := t.providers.TracerProvider.ForceFlush(ctx); err != nil {
		_ = t.providers.Shutdown(ctx)
		return fmt.Errorf("exporting the traces to %s: %w", t.endpoint, err)
	}
	fmt.Fprintf(out, "traces exported to %s\n", t.endpoint)
	if err := t.providers.Shutdown(ctx); err != nil {
		fmt.Fprintf(out, "note: the metrics were not exported: %s\n", oneLine(err))
		if strings.TrimSpace(os.Getenv("OTEL_METRICS_EXPORTER")) == "" {
			fmt.Fprintln(out, "note: Jaeger accepts traces only; set OTEL_METRICS_EXPORTER=none to export none")
		}
	}
	return nil
}

// serviceName returns the service name the exported traces carry: what the
// environment sets (OTEL_SERVICE_NAME, else service.name in
// OTEL_RESOURCE_ATTRIBUTES), else def.
func serviceName(ctx context.Context, def string) string {
	res, err := resource.New(ctx, resource.WithFromEnv())
	if err == nil {
		if v, ok := res.Set().Value("service.name"); ok && v.AsString() != "" {
			return v.AsString()
		}
	}
	return def
}

// tracesEndpoint returns where the spans go, as the OTLP exporter reads it.
func tracesEndpoint() string {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	p := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if strings.TrimSpace(p) == "grpc" {
		return "localhost:4317"
	}
	return "http://localhost:4318"
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails, per crypto/rand
	return hex.EncodeToString(b)
}
