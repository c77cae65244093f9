// Command quickstart runs one container session on the local Docker daemon
// through resilient.Wrap and prints a timeline of what it did.
//
//	go run ./examples/quickstart
//
// The session creates a network and a volume, creates a container from the
// locally built image resilient-workload:latest with the secure defaults of
// contract.NewContainerConfig (read-only root filesystem, no new
// privileges, non-root user, every capability dropped, bounded resources),
// the volume mounted at /data and attached to the network, starts it, waits
// until it is healthy, reads its logs, runs "/workload whoami" in it
// (contract.Executor), copies a file into the volume and reads it back
// (contract.FileCopier), checks the driver's health, stops the
// container gracefully and removes the container, the volume and the
// network. Whatever happens (an error, Ctrl-C), everything the session
// created is removed before the program exits.
//
// # Traces
//
// When OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set, every call is traced and exported over OTLP through
// otlp.NewProviders (package tracing/otlp), which honours the standard
// OTEL_* variables (the protocol defaults to http/protobuf; set
// OTEL_EXPORTER_OTLP_PROTOCOL=grpc for port 4317). All the calls of a session
// are children of one root span, "quickstart.session", so a trace viewer
// shows the session as one trace. The service name is OTEL_SERVICE_NAME, or
// "resilient-quickstart". With a local Jaeger (scripts/jaeger.sh):
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
//	OTEL_METRICS_EXPORTER=none \
//	go run ./examples/quickstart
//
// then open http://127.0.0.1:16686 and search for the service
// "resilient-quickstart", or the trace ID the timeline prints. Jaeger accepts
// no metrics: without OTEL_METRICS_EXPORTER=none the quickstart says so after
// the timeline, and the traces arrive all the same.
//
// Flags: -engine kubernetes runs the session on the Kubernetes cluster of
// KUBECONFIG (kubedriver; scripts/kubernetes.sh starts one) instead of
// Docker, in -namespace (default: the kubeconfig's); -image runs another
// local image, -session sets the session ID (default: a random one),
// -stop-timeout the grace period of the stop (default 5s). The same
// session, the same middleware and the same trace run on either engine;
// steps whose interface the engine's driver lacks (copies on Kubernetes)
// are shown as skipped, with the reason.
//
// # Requirements
//
// A Docker daemon (DOCKER_HOST, else the default socket) holding the image
// resilient-workload:latest, which is built locally from internal/workload:
// no registry is needed. On Debian or Ubuntu, as root, scripts/provision.sh
// installs and starts Docker and builds the image; elsewhere start Docker
// first, then run scripts/provision.sh to build the image. Without either
// the quickstart says what is missing and exits with status 1.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
)

// defaultImage is the image the session's container runs. Its default
// command serves HTTP on :8080 until SIGTERM.
const defaultImage = "resilient-workload:latest"

// defaultServiceName is the service name of the traces when
// OTEL_SERVICE_NAME does not set one.
const defaultServiceName = "resilient-quickstart"

// config is what a session needs. The zero value, after withDefaults, is a
// session on the environment's Docker daemon without tracing.
type config struct {
	image       string            // image of the container; default defaultImage
	sessionID   string            // session of everything created; default a fresh random one
	engine      string            // "docker" (default) or "kubernetes"
	host        string            // Docker daemon address; "" means DOCKER_HOST, else the default socket
	kubeconfig  string            // with engine kubernetes: "" means KUBECONFIG, else ~/.kube/config
	namespace   string            // with engine kubernetes: "" means the kubeconfig's
	export      bool              // export traces over OTLP, configured by the OTEL_* variables
	serviceName string            // service name when the environment sets none; default defaultServiceName
	env         map[string]string // extra environment variables of the container
	labels      map[string]string // extra labels of the container
	stopTimeout time.Duration     // grace period of the stop; default 5s
	waitTimeout time.Duration     // how long to wait for the container to be healthy and to log; default 30s
}

func main() {
	cfg := config{
		export: (os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "") &&
			os.Getenv("OTEL_TRACES_EXPORTER") != "none",
		serviceName: defaultServiceName,
	}
	flag.StringVar(&cfg.engine, "engine", "docker", "engine to run the session on: docker (DOCKER_HOST, else the default socket) or kubernetes (KUBECONFIG)")
	flag.StringVar(&cfg.namespace, "namespace", "", "with -engine kubernetes: the namespace (default: the kubeconfig's)")
	flag.StringVar(&cfg.image, "image", defaultImage, "image the container runs")
	flag.StringVar(&cfg.sessionID, "session", "", "session ID (default: a random one)")
	flag.DurationVar(&cfg.stopTimeout, "stop-timeout", 5*time.Second, "grace period of the graceful stop")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: quickstart [flags]\n\n"+
			"Runs one container session on the local Docker daemon (or a Kubernetes cluster\n"+
			"with -engine kubernetes) through resilient.Wrap\n"+
			"and prints its timeline. Set OTEL_EXPORTER_OTLP_ENDPOINT to export its traces.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the session cleans up; a second one ends the
	// program at once.
	context.AfterFunc(ctx, stop)

	err := run(ctx, os.Stdout, cfg)
	stop()
	if err == nil {
		return
	}
	var se *setupError
	switch {
	case errors.As(err, &se):
		fmt.Fprintf(os.Stderr, "quickstart: %s\n\n%s\n", se.Error(), se.fix)
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "quickstart: interrupted")
	default:
		fmt.Fprintf(os.Stderr, "quickstart: %v\n", err)
	}
	os.Exit(1)
}

// setupError is a problem of the machine the quickstart runs on, not of the
// session: something it needs is missing.
type setupError struct {
	problem string // what is missing
	fix     string // how to get it, on lines of their own
	err     error  // cause, when there is one
}

func (e *setupError) Error() string {
	if e.err != nil {
		return e.problem + ": " + e.err.Error()
	}
	return e.problem
}

func (e *setupError) Unwrap() error { return e.err }

func (c config) withDefaults() config {
	if c.engine == "" {
		c.engine = engineDocker
	}
	if c.image == "" {
		c.image = defaultImage
	}
	if c.sessionID == "" {
		c.sessionID = "quickstart-" + randomHex(4)
	}
	if c.serviceName == "" {
		c.serviceName = defaultServiceName
	}
	if c.stopTimeout <= 0 {
		c.stopTimeout = 5 * time.Second
	}
	if c.waitTimeout <= 0 {
		c.waitTimeout = 30 * time.Second
	}
	return c
}

// names are the names of the session's network and volume, and the label
// that marks everything the session creates.
type names struct {
	network, volume string
	labelKey        string // its value is the session ID
}

func namesFor(sessionID string) names {
	return names{
		network:  sessionID + "-net",
		volume:   sessionID + "-data",
		labelKey: "quickstart.session",
	}
}

// run runs one session, printing its timeline to out. It removes what the
// session created before it returns, even when ctx is canceled.
func run(ctx context.Context, out io.Writer, cfg config) (err error) {
	cfg = cfg.withDefaults()

	eng, err := openEngine(ctx, cfg)
	if err != nil {
		return err
	}
	defer eng.driver.Close()

	tel, err := startTelemetry(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, tel.finish(out)) }()

	d := resilient.Wrap(eng.driver, tel.wrapOptions...)

	ctx, endSpan := tel.startSession(ctx, cfg.sessionID)
	fmt.Fprintf(out, "resilient quickstart: session %s on %s (%s)\n", cfg.sessionID, eng.where, eng.version)
	if id := tel.traceID; id != "" {
		fmt.Fprintf(out, "trace %s, service %q\n", id, tel.serviceName)
	}
	fmt.Fprintln(out)

	s := newSession(d, cfg, out)
	err = s.run(ctx)
	// The cleanup runs on a context that is not canceled with ctx, so that
	// Ctrl-C still removes what was made, and that keeps the session's span.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	err = errors.Join(err, s.cleanup(cctx))
	cancel()
	endSpan(err)
	s.summary(err)
	return err
}

// short returns the first 12 characters of a Docker ID, as docker ps
// shows it; names (Kubernetes' ids) stay whole.
func short(id string) string {
	if len(id) == 64 && strings.Trim(id, "0123456789abcdef") == "" {
		return id[:12]
	}
	return id
}

// oneLine makes an error fit on a timeline line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// session is one run of the quickstart: the steps, the timeline and what
// exists on the daemon, so that cleanup knows what to remove.
type session struct {
	d     contract.ContainerDriver
	cfg   config
	names names
	out   io.Writer
	start time.Time

	// What the session made and has not removed yet. A create that was
	// tried may have made its resource even when it failed (a canceled
	// call, a lost response), so cleanup looks for that too.
	networkID      string // "" until known
	networkTried   bool
	volumeTried    bool
	containerID    string // "" until known
	containerTried bool
}

func newSession(d contract.ContainerDriver, cfg config, out io.Writer) *session {
	s := &session{d: d, cfg: cfg, names: namesFor(cfg.sessionID), out: out, start: time.Now()}
	fmt.Fprintf(out, "%7s %6s  %-18s %-6s %-12s  %s\n", "at ms", "took", "step", "result", "container", "detail")
	return s
}

// detailColumn is where the detail starts on a timeline line.
const detailColumn = 56

// step runs f, one step of the timeline, and prints its line: when it
// ended, how long it took, its name, its result, the short ID of the
// container it concerns and what it returned.
func (s *session) step(name string, f func() (containerID, detail string, err error)) error {
	began := time.Now()
	id, detail, err := f()
	result := "ok"
	if err != nil {
		result, detail = "FAIL", oneLine(err)
	}
	line := fmt.Sprintf("%7d %4dms  %-18s %-6s %-12s  %s",
		time.Since(s.start).Milliseconds(), time.Since(began).Milliseconds(), name, result, short(id), detail)
	fmt.Fprintln(s.out, strings.TrimRight(line, " "))
	return err
}

// skip prints the line of a step the driver cannot do, and why.
func (s *session) skip(name, containerID, why string) {
	fmt.Fprintf(s.out, "%7d %6s  %-18s %-6s %-12s  %s\n",
		time.Since(s.start).Milliseconds(), "", name, "skip", short(containerID), why)
}

// labels marks everything the session creates, so that it can be found.
func (s *session) labels() map[string]string {
	return map[string]string{s.names.labelKey: s.cfg.sessionID}
}

func (s *session) run(ctx context.Context) error {
	err := s.step("create network", func() (string, string, error) {
		s.networkTried = true
		nw, err := s.d.CreateNetwork(ctx, contract.NetworkConfig{Name: s.names.network, Labels: s.labels()})
		if err != nil {
			return "", "", err
		}
		s.networkID = nw.ID
		return "", fmt.Sprintf("%s (%s, id %s)", nw.Name, nw.Driver, short(nw.ID)), nil
	})
	if err != nil {
		return err
	}

	err = s.step("create volume", func() (string, string, error) {
		s.volumeTried = true
		v, err := s.d.CreateVolume(ctx, contract.VolumeConfig{Name: s.names.volume, Labels: s.labels()})
		if err != nil {
			return "", "", err
		}
		return "", fmt.Sprintf("%s (%s)", v.Name, v.Driver), nil
	})
	if err != nil {
		return err
	}

	err = s.step("create container", func() (string, string, error) {
		// The secure defaults: read-only root filesystem, no new
		// privileges, user 65534:65534, every capability dropped, 1 CPU,
		// 512 MB of memory, 1024 MB of disk, 256 processes.
		cfg := contract.NewContainerConfig(s.cfg.sessionID, s.cfg.image)
		cfg.Network = s.names.network
		cfg.Volumes = []contract.VolumeMount{{Source: s.names.volume, Target: "/data", Type: contract.MountVolume}}
		cfg.Labels = s.labels()
		maps.Copy(cfg.Labels, s.cfg.labels)
		cfg.Env = map[string]string{"QUICKSTART_SESSION": s.cfg.sessionID}
		maps.Copy(cfg.Env, s.cfg.env)

		s.containerTried = true
		c, err := s.d.CreateContainer(ctx, cfg)
		if err != nil {
			return "", "", err
		}
		s.containerID = c.ID
		return c.ID, fmt.Sprintf("%s: %s as %s, read-only, %g CPU, %d MB", c.Name, c.Image,
			cfg.Security.User, c.Resources.CPU, c.Resources.Memory), nil
	})
	if err != nil {
		return err
	}
	id := s.containerID

	err = s.step("start", func() (string, string, error) {
		return id, "", s.d.StartContainer(ctx, id)
	})
	if err != nil {
		return err
	}

	err = s.step("wait healthy", func() (string, string, error) {
		checks, err := s.waitHealthy(ctx, id)
		if err != nil {
			return id, "", err
		}
		return id, fmt.Sprintf("healthy after %d check(s)", checks), nil
	})
	if err != nil {
		return err
	}

	var logs string
	err = s.step("logs", func() (string, string, error) {
		var err error
		logs, err = s.waitLogs(ctx, id)
		if err != nil {
			return id, "", err
		}
		return id, fmt.Sprintf("%d line(s)", strings.Count(logs, "\n")), nil
	})
	if err != nil {
		return err
	}
	for line := range strings.Lines(logs) {
		fmt.Fprintf(s.out, "%*s| %s", detailColumn, "", line)
	}

	if err := s.sandbox(ctx, id); err != nil {
		return err
	}

	err = s.step("health check", func() (string, string, error) {
		h, err := s.d.HealthCheck(ctx)
		if err != nil {
			return "", "", err
		}
		detail := fmt.Sprintf("%s, %s, managed containers: %d total, %d running, %d stopped",
			h.Status, engineVersion(s.cfg.engine, h.Version), h.Containers.Total, h.Containers.Running, h.Containers.Stopped)
		if h.Error != "" {
			detail += " (" + h.Error + ")"
		}
		return "", detail, nil
	})
	if err != nil {
		return err
	}

	err = s.step("stop", func() (string, string, error) {
		err := s.d.StopContainer(ctx, id, contract.StopOptions{Timeout: s.cfg.stopTimeout})
		if err != nil {
			return id, "", err
		}
		c, err := s.d.GetContainer(ctx, id)
		if err != nil {
			return id, "", err
		}
		status := "gone"
		if c != nil {
			status = string(c.Status)
		}
		return id, fmt.Sprintf("graceful (SIGTERM, then SIGKILL after %s); status %s", s.cfg.stopTimeout, status), nil
	})
	if err != nil {
		return err
	}

	if err := s.removeContainer(ctx, "remove container"); err != nil {
		return err
	}
	if err := s.removeVolume(ctx, "remove volume"); err != nil {
		return err
	}
	return s.removeNetwork(ctx, "remove network")
}

// sandbox runs a command in the container and copies a file in and out
// of its volume, through the driver's optional interfaces: exec runs as the
// container's user, and a copy goes as a tar stream.
func (s *session) sandbox(ctx context.Context, id string) error {
	e, ok := s.d.(contract.Executor)
	if !ok {
		s.skip("exec", id, "the "+s.d.Name()+" driver runs no commands (no contract.Executor)")
	} else if err := s.step("exec", func() (string, string, error) {
		res, err := e.ExecContainer(ctx, id, contract.ExecOptions{Command: []string{"/workload", "whoami"}})
		if err != nil {
			return id, "", err
		}
		uid, _, _ := strings.Cut(res.Stdout, "\n")
		return id, fmt.Sprintf("/workload whoami: exit code %d, %s, %d bytes of stdout", res.ExitCode, uid, len(res.Stdout)), nil
	}); err != nil {
		return err
	}
	c, ok := s.d.(contract.FileCopier)
	if !ok {
		reason := "the " + s.d.Name() + " driver copies no files (no contract.FileCopier)"
		s.skip("copy in", id, reason)
		s.skip("copy out", id, reason)
		return nil
	}
	const note = "written by the quickstart\n"
	err := s.step("copy in", func() (string, string, error) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "note.txt", Mode: 0o644, Size: int64(len(note))}); err != nil {
			return id, "", err
		}
		if _, err := io.WriteString(tw, note); err != nil {
			return id, "", err
		}
		if err := tw.Close(); err != nil {
			return id, "", err
		}
		n := buf.Len()
		// A *bytes.Reader can be read again, so a copy whose answer is lost
		// is repeated.
		if err := c.CopyToContainer(ctx, id, "/data", bytes.NewReader(buf.Bytes())); err != nil {
			return id, "", err
		}
		return id, fmt.Sprintf("/data/note.txt (a tar of %d bytes)", n), nil
	})
	if err != nil {
		return err
	}
	return s.step("copy out", func() (string, string, error) {
		rc, err := c.CopyFromContainer(ctx, id, "/data/note.txt")
		if err != nil {
			return id, "", err
		}
		defer rc.Close()
		tr := tar.NewReader(rc)
		h, err := tr.Next()
		if err != nil {
			return id, "", err
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return id, "", err
		}
		if string(b) != note {
			return id, "", fmt.Errorf("read back %q, want %q", b, note)
		}
		return id, fmt.Sprintf("%s: %d bytes, as written", h.Name, len(b)), nil
	})
}

// poll calls f every pollInterval until it reports done, f fails, ctx is
// done or the session's wait timeout passes.
func (s *session) poll(ctx context.Context, what string, f func() (done bool, err error)) (calls int, err error) {
	const pollInterval = 50 * time.Millisecond
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.cfg.waitTimeout)
	defer cancel()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if parent.Err() == nil {
				return calls, fmt.Errorf("no %s after %s: %w", what, s.cfg.waitTimeout, ctx.Err())
			}
			return calls, parent.Err()
		case <-t.C:
		}
		calls++
		done, err := f()
		if err != nil || done {
			return calls, err
		}
		t.Reset(pollInterval)
	}
}

// waitHealthy waits until the container is healthy: running, and passing
// its image's HEALTHCHECK when it has one. A container that stops running
// on its own will not become healthy, so that ends the wait early.
func (s *session) waitHealthy(ctx context.Context, id string) (int, error) {
	return s.poll(ctx, "healthy container", func() (bool, error) {
		ok, err := s.d.IsContainerHealthy(ctx, id)
		if err != nil || ok {
			return ok, err
		}
		c, err := s.d.GetContainer(ctx, id)
		if err != nil {
			return false, err
		}
		if c == nil || c.State != contract.StateRunning {
			status := "gone"
			if c != nil {
				status = string(c.Status)
			}
			return false, fmt.Errorf("container %s is %s, not running", short(id), status)
		}
		return false, nil
	})
}

// waitLogs returns the container's logs once it has written something.
func (s *session) waitLogs(ctx context.Context, id string) (string, error) {
	var logs string
	_, err := s.poll(ctx, "container output", func() (bool, error) {
		var err error
		logs, err = s.d.GetContainerLogs(ctx, id, contract.LogOptions{Tail: 20})
		return logs != "", err
	})
	if logs != "" && !strings.HasSuffix(logs, "\n") {
		logs += "\n"
	}
	return logs, err
}

func (s *session) removeContainer(ctx context.Context, step string) error {
	id := s.containerID
	return s.step(step, func() (string, string, error) {
		if err := s.d.RemoveContainer(ctx, id); err != nil && !errors.Is(err, contract.ErrContainerNotFound) {
			return id, "", err
		}
		s.containerID, s.containerTried = "", false
		return id, "", nil
	})
}

func (s *session) removeVolume(ctx context.Context, step string) error {
	return s.step(step, func() (string, string, error) {
		if err := s.d.RemoveVolume(ctx, s.names.volume); err != nil && !errors.Is(err, contract.ErrVolumeNotFound) {
			return "", "", err
		}
		s.volumeTried = false
		return "", s.names.volume, nil
	})
}

func (s *session) removeNetwork(ctx context.Context, step string) error {
	ref := s.networkID
	if ref == "" {
		ref = s.names.network
	}
	return s.step(step, func() (string, string, error) {
		if err := s.d.RemoveNetwork(ctx, ref); err != nil && !errors.Is(err, contract.ErrNetworkNotFound) {
			return "", "", err
		}
		s.networkID, s.networkTried = "", false
		return "", s.names.network, nil
	})
}

// cleanup removes what the session made and has not removed: after a
// failed step, or when ctx was canceled. It goes on after a failure and
// returns every error.
func (s *session) cleanup(ctx context.Context) error {
	var errs []error
	if s.containerID == "" && s.containerTried {
		// The create failed or was interrupted; it may still have made a
		// container, which carries the session's label.
		cs, err := s.d.ListContainers(ctx, contract.ContainerFilter{SessionID: s.cfg.sessionID})
		errs = append(errs, err)
		for _, c := range cs {
			s.containerID = c.ID
			errs = append(errs, s.removeContainer(ctx, "cleanup: container"))
		}
		if err == nil && len(cs) == 0 {
			s.containerTried = false
		}
	}
	if s.containerID != "" {
		errs = append(errs, s.removeContainer(ctx, "cleanup: container"))
	}
	if s.volumeTried {
		errs = append(errs, s.removeVolume(ctx, "cleanup: volume"))
	}
	if s.networkTried {
		errs = append(errs, s.removeNetwork(ctx, "cleanup: network"))
	}
	return errors.Join(errs...)
}

// summary prints the session's last line.
func (s *session) summary(err error) {
	ms := time.Since(s.start).Milliseconds()
	fmt.Fprintln(s.out)
	switch {
	case err == nil:
		fmt.Fprintf(s.out, "session %s done in %d ms; everything it created is removed\n", s.cfg.sessionID, ms)
	case s.containerID != "" || s.containerTried || s.volumeTried || s.networkTried:
		fmt.Fprintf(s.out, "session %s failed after %d ms; some of what it created may be left (label %s=%s)\n",
			s.cfg.sessionID, ms, s.names.labelKey, s.cfg.sessionID)
	default:
		fmt.Fprintf(s.out, "session %s failed after %d ms; everything it created is removed\n", s.cfg.sessionID, ms)
	}
}
