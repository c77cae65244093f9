package dockerdriver

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/resilientdriver/resilient/contract"
)

// Name is the driver's name, returned by [Driver.Name].
const Name = "docker"

// version is the driver's semantic version, returned by [Driver.Version].
const version = "0.1.0"

// cacheLimit bounds the driver's in-memory records (containers known to be
// managed, stop requests).
const cacheLimit = 4096

// Driver is a [contract.ContainerDriver] backed by a Docker daemon. It also
// implements [contract.LogStreamer] and the sandbox operations
// [contract.Executor], [contract.FileCopier] and [contract.StatsReader]. Its methods are safe for concurrent
// use. Make one with [New] and release it with [Driver.Close].
type Driver struct {
	cli       *client.Client
	ownClient bool
	cfg       config
	labels    labels
	started   time.Time

	mu    sync.Mutex
	known map[string]struct{}  // full IDs of containers known to be managed
	stops map[string]time.Time // container ID -> when this driver asked it to stop
	quota *quotaInfo           // whether the engine supports a storage quota; nil until known
	eng   *engine              // the engine behind the API; nil until known
	pulls pullGroup            // image pulls in progress

	lost sync.WaitGroup // removals of lost creates (removeLost), which outlive their calls

	closeOnce sync.Once
	closeErr  error
}

var (
	_ contract.ContainerDriver = (*Driver)(nil)
	_ contract.LogStreamer     = (*Driver)(nil)
)

// New returns a driver for the Docker daemon the environment names
// (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH; the default socket when
// unset), with API version negotiation, so it works with any daemon from
// API 1.41 (Docker 20.10) up. Options change that; see [Option].
//
// New does not contact the daemon: a driver for an unreachable daemon is
// made, its calls fail with NETWORK errors and HealthCheck reports it
// unhealthy. New fails with a CONFIGURATION error for invalid options.
func New(opts ...Option) (*Driver, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	d := &Driver{
		cli:     cfg.client,
		cfg:     cfg,
		labels:  newLabels(cfg.labelPrefix),
		started: cfg.now(),
		known:   map[string]struct{}{},
		stops:   map[string]time.Time{},
	}
	if d.cli == nil {
		// The client traces its HTTP requests with the global provider by
		// default, and those spans carry full URLs: filters with label
		// values, container names. Spans belong to the tracing middleware,
		// which exports only allowlisted attributes.
		copts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation(),
			client.WithTraceProvider(noop.NewTracerProvider())}
		if cfg.host != "" {
			copts = append(copts, client.WithHost(cfg.host))
		}
		d.cli, err = client.NewClientWithOpts(copts...)
		if err != nil {
			return nil, contract.NewError(contract.CodeConfiguration, "", "", "cannot make a Docker client", err)
		}
		d.ownClient = true
	}
	return d, nil
}

// Close releases the driver's client and its idle connections, unless the
// client came from [WithClient]. It first waits for the removals of
// creates whose answers were lost that are still under way, 3s at most
// (see "Idempotent create" in the package doc). Calls made after Close may
// fail. Close is safe to call more than once.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		d.lost.Wait() // each bounded by lostCreateTimeout
		if d.ownClient {
			d.closeErr = d.cli.Close()
		}
	})
	return d.closeErr
}

// Name returns "docker".
func (d *Driver) Name() string { return Name }

// Version returns the driver's semantic version.
func (d *Driver) Version() string { return version }

// HealthCheck pings the daemon, reads its version and counts the managed
// containers. An unreachable or failing daemon gives Status "unhealthy"
// with Error set and a nil error; only the caller's own cancellation is
// returned as an error. Version is the daemon's version (empty when it
// cannot be read): Docker's as it reports it ("20.10.24+dfsg1"), Podman's
// as "Podman 4.3.1"; Uptime is the time since [New].
func (d *Driver) HealthCheck(ctx context.Context) (contract.DriverHealth, error) {
	h := contract.DriverHealth{Status: contract.Unhealthy, Uptime: d.cfg.now().Sub(d.started)}
	fail := func(what string, err error) (contract.DriverHealth, error) {
		if errors.Is(ctx.Err(), context.Canceled) {
			return h, ctxErr(opHealth, "", ctx.Err(), err)
		}
		h.Error = what + ": " + mapErr(ctx, opHealth, "", err).Error()
		return h, nil
	}
	if _, err := d.cli.Ping(ctx); err != nil {
		return fail("ping", err)
	}
	v, err := d.cli.ServerVersion(ctx)
	if err != nil {
		return fail("version", err)
	}
	e := engineOf(v)
	d.learnt(e)
	h.Version = e.String()
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: d.labels.managedFilter()})
	if err != nil {
		return fail("list containers", err)
	}
	for _, c := range list {
		h.Containers.Total++
		if countsAsRunning(c.State) {
			h.Containers.Running++
		} else {
			h.Containers.Stopped++
		}
	}
	h.Status = contract.Healthy
	return h, nil
}

// quotaInfo is what the driver learnt about the engine's storage.
type quotaInfo struct {
	ok      bool   // StorageOpt "size" is supported
	storage string // e.g. "overlay2 on extfs", for messages
}

// remember records that the container with full id is managed.
func (d *Driver) remember(id string) {
	if len(id) != 64 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.known) >= cacheLimit {
		clear(d.known)
	}
	d.known[id] = struct{}{}
}

// isKnown reports whether id is the full id of a container known to be
// managed. Ids never change and labels are fixed at create, so the answer
// stays true while the container exists.
func (d *Driver) isKnown(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.known[id]
	return ok
}

// forget drops what the driver remembers of a removed container.
func (d *Driver) forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.known, id)
	delete(d.stops, id)
}

// stopRequested records that the driver asks the container to stop now.
func (d *Driver) stopRequested(id string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.stops) >= cacheLimit {
		var oldest string
		for k, t := range d.stops {
			if oldest == "" || t.Before(d.stops[oldest]) {
				oldest = k
			}
		}
		delete(d.stops, oldest)
	}
	d.stops[id] = at
}

func (d *Driver) stopRequestedAt(id string) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stops[id]
}
