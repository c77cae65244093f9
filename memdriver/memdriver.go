package memdriver

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

// DriverName is the name the driver reports.
const DriverName = "memory"

// Version is the driver's semantic version.
const Version = "0.1.0"

// DefaultNetwork is the network a container joins when its config names
// none.
const DefaultNetwork = "bridge"

// builtinNetworks exist in every driver and cannot be removed, as in Docker.
var builtinNetworks = []string{"bridge", "host", "none"}

// Driver is an in-memory [contract.ContainerDriver], [contract.LogStreamer],
// [contract.Executor], [contract.FileCopier] and [contract.StatsReader]. It runs no processes; it keeps the state a real
// engine would and follows the contract exactly, as documented in the
// package doc. Make one with [New]; it is safe for concurrent use.
type Driver struct {
	cfg   config
	birth time.Time

	mu         sync.Mutex
	seq        uint64
	containers map[string]*container // by ID
	names      map[string]string     // container name -> ID
	volumes    map[string]*volume    // by name, which is also the ID
	networks   map[string]*network   // by ID
	keys       map[keyKind]map[string]string
}

type keyKind int

const (
	containerKeys keyKind = iota
	volumeKeys
	networkKeys
)

type container struct {
	inst    contract.ContainerInstance // owned maps; cloned on the way out
	seq     uint64
	network string   // network ID
	volumes []string // names of the named volumes it mounts
	removed bool

	logs    []logLine
	dropped int           // lines dropped from the front of logs
	changed chan struct{} // closed and replaced on every new line or status change

	// sandbox: see sandbox.go
	readOnly bool                   // the root filesystem is read-only
	mounts   []contract.VolumeMount // where files may be copied to when it is
	user     string
	files    map[string]*file         // by absolute clean path; nil until a copy
	stats    *contract.ContainerStats // set by SetStats; nil for the defaults
}

type volume struct {
	v contract.Volume
}

type network struct {
	n       contract.Network
	builtin bool
}

var (
	_ contract.ContainerDriver = (*Driver)(nil)
	_ contract.LogStreamer     = (*Driver)(nil)
	_ contract.Executor        = (*Driver)(nil)
	_ contract.FileCopier      = (*Driver)(nil)
	_ contract.StatsReader     = (*Driver)(nil)
)

// New returns an empty driver: no containers or volumes, and the built-in
// networks "bridge", "host" and "none".
func New(opts ...Option) *Driver {
	cfg := newConfig(opts)
	d := &Driver{
		cfg:        cfg,
		containers: map[string]*container{},
		names:      map[string]string{},
		volumes:    map[string]*volume{},
		networks:   map[string]*network{},
		keys: map[keyKind]map[string]string{
			containerKeys: {}, volumeKeys: {}, networkKeys: {},
		},
	}
	d.birth = d.now()
	for _, name := range builtinNetworks {
		id := d.newID()
		d.networks[id] = &network{builtin: true, n: contract.Network{
			ID: id, Name: name, Driver: name, CreatedAt: d.birth, Labels: map[string]string{},
		}}
	}
	return d
}

// Name returns [DriverName].
func (d *Driver) Name() string { return DriverName }

// Version returns [Version].
func (d *Driver) Version() string { return Version }

func (d *Driver) now() time.Time { return d.cfg.clock() }

// newID returns 64 random hex digits that no container or network uses.
// Callers hold d.mu or own d exclusively.
func (d *Driver) newID() string {
	var b [32]byte
	for {
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if _, ok := d.containers[id]; ok {
			continue
		}
		if _, ok := d.networks[id]; ok {
			continue
		}
		return id
	}
}

// ctxErr returns the error of a call whose context is already done: TIMEOUT,
// never retryable, wrapping ctx.Err().
func ctxErr(ctx context.Context, op contract.Op, id string) error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	return &contract.DriverError{
		Code:    contract.CodeTimeout,
		Message: "not attempted: the context is done",
		Op:      op,
		ID:      id,
		Err:     err,
	}
}

func notFound(op contract.Op, id string) error {
	return contract.NewError(contract.CodeContainerNotFound, op, id, "no such container", nil)
}

// lookup finds a container by ID or name. Callers hold d.mu.
func (d *Driver) lookup(idOrName string) *container {
	if c, ok := d.containers[idOrName]; ok {
		return c
	}
	if id, ok := d.names[idOrName]; ok {
		return d.containers[id]
	}
	return nil
}

// keyed returns the resource an earlier create with the context's
// idempotency key made, if the context has a key; ok reports whether it has.
// Callers hold d.mu.
func (d *Driver) keyed(ctx context.Context, kind keyKind) (key, id string) {
	key, ok := contract.IdempotencyKey(ctx)
	if !ok {
		return "", ""
	}
	return key, d.keys[kind][key]
}

// CreateContainer validates cfg with [contract.ValidateContainerConfig] and
// records a container in status created. See the package doc for names,
// networks, volumes and idempotency keys.
func (d *Driver) CreateContainer(ctx context.Context, cfg contract.ContainerConfig) (contract.ContainerInstance, error) {
	const op = contract.OpCreateContainer
	if err := ctxErr(ctx, op, ""); err != nil {
		return contract.ContainerInstance{}, err
	}
	if err := contract.ValidateContainerConfig(cfg); err != nil {
		return contract.ContainerInstance{}, withOp(err, op)
	}
	cfg = cfg.Clone()

	d.mu.Lock()
	defer d.mu.Unlock()
	key, id := d.keyed(ctx, containerKeys)
	if c := d.containers[id]; c != nil {
		return cloneInstance(c.inst), nil
	}
	netName := cmp.Or(cfg.Network, DefaultNetwork)
	net := d.lookupNetwork(netName)
	if net == nil {
		return contract.ContainerInstance{}, contract.NewError(contract.CodeNetworkNotFound, op, netName,
			fmt.Sprintf("network %q does not exist; create it first or leave the network empty for %q", netName, DefaultNetwork), nil)
	}
	now := d.now()
	var vols []string
	for _, m := range cfg.Volumes {
		if m.EffectiveType() != contract.MountVolume {
			continue
		}
		if _, ok := d.volumes[m.Source]; !ok {
			d.volumes[m.Source] = &volume{newVolume(m.Source, "", nil, now)}
		}
		if !slices.Contains(vols, m.Source) {
			vols = append(vols, m.Source)
		}
	}

	id = d.newID()
	name := containerName(cfg.SessionID, id)
	labels := cfg.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	d.seq++
	c := &container{
		seq:      d.seq,
		network:  net.n.ID,
		volumes:  vols,
		changed:  make(chan struct{}),
		readOnly: cfg.Security.ReadOnly,
		mounts:   cfg.Volumes,
		user:     cfg.Security.User,
		inst: contract.ContainerInstance{
			ID:        id,
			Name:      name,
			SessionID: cfg.SessionID,
			Image:     cfg.Image,
			Status:    contract.StatusCreated,
			State:     contract.StateTerminated,
			Endpoint:  "memory://" + name,
			CreatedAt: now,
			Labels:    labels,
			Resources: cfg.Resources,
		},
	}
	d.containers[id] = c
	d.names[name] = id
	if key != "" {
		d.keys[containerKeys][key] = id
	}
	return cloneInstance(c.inst), nil
}

// withOp sets the operation on a validation error from the contract package.
func withOp(err error, op contract.Op) error {
	if de, ok := err.(*contract.DriverError); ok && de.Op == "" {
		c := *de
		c.Op = op
		return &c
	}
	return err
}

// containerName is "resilient-<session>-<first 12 digits of id>", with the
// characters of the session that a Docker container name cannot hold
// replaced by '-' and the session cut to 64 bytes.
func containerName(session, id string) string {
	s := []byte(session)
	if len(s) > 64 {
		s = s[:64]
	}
	for i, b := range s {
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '_', b == '.', b == '-':
		default:
			s[i] = '-'
		}
	}
	return "resilient-" + string(s) + "-" + id[:12]
}

func cloneInstance(inst contract.ContainerInstance) contract.ContainerInstance {
	inst.Labels = maps.Clone(inst.Labels)
	if inst.Labels == nil {
		inst.Labels = map[string]string{}
	}
	return inst
}

// StartContainer moves a created, stopped or exited container to running,
// sets StartedAt and logs a line. Starting a running container succeeds and
// changes nothing.
func (d *Driver) StartContainer(ctx context.Context, id string) error {
	const op = contract.OpStartContainer
	if err := ctxErr(ctx, op, id); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return notFound(op, id)
	}
	if c.inst.Status == contract.StatusRunning {
		return nil
	}
	c.inst.StartedAt = d.now()
	d.setStatus(c, contract.StatusRunning)
	d.appendLog(c, Stdout, "memdriver: started "+c.inst.Image)
	return nil
}

// setStatus sets the status and its state and wakes log followers. Callers
// hold d.mu.
func (d *Driver) setStatus(c *container, s contract.ContainerStatus) {
	c.inst.Status = s
	c.inst.State = contract.StateOf(s)
	c.notify()
}

func (c *container) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// StopContainer moves a running container to stopped (state terminated) at
// once, whatever opts say, and logs a line. Stopping a container that does
// not run succeeds and changes nothing.
func (d *Driver) StopContainer(ctx context.Context, id string, opts contract.StopOptions) error {
	const op = contract.OpStopContainer
	if err := ctxErr(ctx, op, id); err != nil {
		return err
	}
	if opts.Timeout < 0 {
		return contract.NewError(contract.CodeConfiguration, op, id, "stop timeout must not be negative", nil)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return notFound(op, id)
	}
	if c.inst.Status != contract.StatusRunning {
		return nil
	}
	d.appendLog(c, Stdout, "memdriver: stopped")
	d.setStatus(c, contract.StatusStopped)
	return nil
}

// RemoveContainer removes a container in any status; a running one is
// killed first, like "docker rm -f". Log streams of the container end.
func (d *Driver) RemoveContainer(ctx context.Context, id string) error {
	const op = contract.OpRemoveContainer
	if err := ctxErr(ctx, op, id); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return notFound(op, id)
	}
	delete(d.containers, c.inst.ID)
	delete(d.names, c.inst.Name)
	c.removed = true
	c.notify()
	return nil
}

// Exit simulates the container's process ending by itself: a running
// container logs a line and moves to status exited (state terminated), and
// its log streams end. It fails with CONTAINER_NOT_FOUND when there is no
// such container and with CONTAINER_STOP, not retryable, when it does not
// run.
func (d *Driver) Exit(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return notFound("", id)
	}
	if c.inst.Status != contract.StatusRunning {
		return &contract.DriverError{Code: contract.CodeContainerStop, ID: id,
			Message: fmt.Sprintf("container is %s, not running", c.inst.Status)}
	}
	d.appendLog(c, Stdout, "memdriver: exited")
	d.setStatus(c, contract.StatusExited)
	return nil
}

// GetContainer returns the container with the given ID or name, or nil and
// a nil error when there is none.
func (d *Driver) GetContainer(ctx context.Context, id string) (*contract.ContainerInstance, error) {
	if err := ctxErr(ctx, contract.OpGetContainer, id); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return nil, nil
	}
	inst := cloneInstance(c.inst)
	return &inst, nil
}

// ListContainers returns the containers that match filter, in the order
// they were created. It returns an empty, non-nil slice when none match.
func (d *Driver) ListContainers(ctx context.Context, filter contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	if err := ctxErr(ctx, contract.OpListContainers, ""); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	list := make([]*container, 0, len(d.containers))
	for _, c := range d.containers {
		if filter.Matches(c.inst) {
			list = append(list, c)
		}
	}
	slices.SortFunc(list, func(a, b *container) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]contract.ContainerInstance, len(list))
	for i, c := range list {
		out[i] = cloneInstance(c.inst)
	}
	return out, nil
}

// HealthCheck reports status healthy, the driver's [Version], the time
// since [New] on the driver's clock and the container counts: Running
// counts containers whose state is running, Stopped all others.
func (d *Driver) HealthCheck(ctx context.Context) (contract.DriverHealth, error) {
	if err := ctxErr(ctx, contract.OpHealthCheck, ""); err != nil {
		return contract.DriverHealth{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	h := contract.DriverHealth{
		Status:  contract.Healthy,
		Version: Version,
		Uptime:  max(d.now().Sub(d.birth), 0),
	}
	for _, c := range d.containers {
		h.Containers.Total++
		if c.inst.State == contract.StateRunning {
			h.Containers.Running++
		} else {
			h.Containers.Stopped++
		}
	}
	return h, nil
}

// IsContainerHealthy reports whether the container runs. Containers of this
// driver have no health checks of their own.
func (d *Driver) IsContainerHealthy(ctx context.Context, id string) (bool, error) {
	const op = contract.OpIsContainerHealthy
	if err := ctxErr(ctx, op, id); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.lookup(id)
	if c == nil {
		return false, notFound(op, id)
	}
	return c.inst.Status == contract.StatusRunning, nil
}

// usedBy returns the name of a container for which in reports true, or "".
// Callers hold d.mu.
func (d *Driver) usedBy(in func(*container) bool) string {
	var first *container
	for _, c := range d.containers {
		if in(c) && (first == nil || c.seq < first.seq) {
			first = c
		}
	}
	if first == nil {
		return ""
	}
	return first.inst.Name
}
