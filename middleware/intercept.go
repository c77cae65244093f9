package middleware

import (
	"context"
	"io"
	"sync"

	"github.com/resilientdriver/resilient/contract"
)

// Call describes one call of a driver method to an [Interceptor].
type Call struct {
	// Op is the operation called.
	Op contract.Op
	// ID is the container, volume or network the call concerns, "" for
	// list and health calls. For creates it is "" until the call succeeds,
	// then the ID of the new resource.
	ID string
	// Container is the config of a CreateContainer call, else nil.
	Container *contract.ContainerConfig
	// Volume is the config of a CreateVolume call, else nil.
	Volume *contract.VolumeConfig
	// Network is the config of a CreateNetwork call, else nil.
	Network *contract.NetworkConfig
	// Health is the report of a HealthCheck call, else nil. It holds the
	// zero value until next returns, then the next driver's report, which
	// an interceptor may amend before it returns (to add the state of its
	// circuits, say). The caller receives what it holds then.
	Health *contract.DriverHealth
	// Stop is the options of a StopContainer call, else nil.
	Stop *contract.StopOptions
	// Exec is the options of an ExecContainer call, else nil. Its Command,
	// Env and Stdin are the caller's secrets as much as a config's env:
	// an interceptor that records calls must not record them.
	Exec *contract.ExecOptions
	// ExecResult is the result of an ExecContainer call, else nil. It
	// holds the zero value until next returns, then the next driver's
	// result; the caller receives what it holds when the call succeeds.
	ExecResult *contract.ExecResult
	// Path is the directory of a CopyToContainer call and the path of a
	// CopyFromContainer call, else "". It names files inside the
	// container: an interceptor that records calls must not record it.
	Path string
	// Copied is, for a CopyToContainer call, how many bytes of the tar
	// stream the last attempt read, updated as the next driver reads it;
	// else 0. The adapter counts them, and reports each read to
	// contract.Progress on the attempt's context.
	Copied int64

	driver contract.ContainerDriver
}

// Driver returns the driver the call continues to, the one its [Invoker]
// calls. An interceptor may ask it questions of its own (the retry layer
// reads a container's state before it repeats a start whose outcome is
// unknown); such calls pass through the layers inside it.
func (c *Call) Driver() contract.ContainerDriver { return c.driver }

// Idempotent reports whether the call may be repeated without further care:
// its operation is idempotent (contract.Op.Idempotent), or it is an
// ExecContainer call whose options say it is (contract.ExecOptions.Idempotent).
func (c *Call) Idempotent() bool {
	return c.Op.Idempotent() || c.Exec != nil && c.Exec.Idempotent
}

// Invoker calls the next driver with the call's arguments. It may be called
// more than once (retries); each call replaces the results of the previous
// one.
type Invoker func(ctx context.Context) error

// Interceptor is a policy as a function: it receives every call with its
// description and the Invoker that continues it, and returns the call's
// error. Returning without calling next refuses the call. An interceptor
// must not use call or next after it returns: the adapter reuses them.
type Interceptor func(ctx context.Context, call *Call, next Invoker) error

// Intercept turns an interceptor into a Middleware. The driver it returns
// implements every method of contract.ContainerDriver once, routing each
// through the interceptor, and implements each optional interface of the
// contract exactly when the wrapped driver does: contract.LogStreamer (as
// OpStreamContainerLogs), contract.Executor (OpExecContainer),
// contract.FileCopier (OpCopyToContainer, OpCopyFromContainer) and
// contract.StatsReader (OpContainerStats). Name and Version pass through.
// The wrapped driver is returned by an Unwrap method.
//
// When an attempt of CopyToContainer is repeated (an Invoker called again)
// after an earlier one read part of the tar stream, the adapter seeks the
// stream back to where the call found it if it is an io.Seeker; otherwise
// the attempt fails, not retryable, with the earlier attempt's code and
// error, since the stream cannot be sent again.
//
// The adapter allocates nothing per call on its own; call descriptions are
// pooled. A nil next driver stands for one whose every call fails with
// CONFIGURATION, so that a driver left nil fails its calls with a clear
// error instead of panicking in a layer.
func Intercept(i Interceptor) Middleware {
	return func(next contract.ContainerDriver) contract.ContainerDriver {
		if next == nil {
			next = missing{}
		}
		return wrap(&driver{next: next, intercept: i})
	}
}

// invocation carries one call: its description, arguments and results.
// Pooled; run is bound once to invoke so that passing it allocates nothing.
type invocation struct {
	call   Call
	next   contract.ContainerDriver
	invoke Invoker

	// arguments
	cfg    contract.ContainerConfig
	volCfg contract.VolumeConfig
	netCfg contract.NetworkConfig
	stop   contract.StopOptions
	logs   contract.LogOptions
	filter contract.ContainerFilter

	// results
	inst     contract.ContainerInstance
	instPtr  *contract.ContainerInstance
	list     []contract.ContainerInstance
	text     string
	health   contract.DriverHealth
	ok       bool
	vol      contract.Volume
	net      contract.Network
	stream   io.ReadCloser
	streamer contract.LogStreamer

	// sandbox operations
	exec     contract.ExecOptions
	execRes  contract.ExecResult
	executor contract.Executor
	copier   contract.FileCopier
	tar      tarReader
	stats    contract.ContainerStats
	statsR   contract.StatsReader
}

var pool = sync.Pool{New: func() any {
	inv := new(invocation)
	inv.invoke = inv.run
	return inv
}}

func get(next contract.ContainerDriver, op contract.Op, id string) *invocation {
	inv := pool.Get().(*invocation)
	inv.next = next
	inv.call.driver = next
	inv.call.Op = op
	inv.call.ID = id
	return inv
}

func put(inv *invocation) {
	*inv = invocation{invoke: inv.invoke}
	pool.Put(inv)
}

func (inv *invocation) run(ctx context.Context) (err error) {
	n := inv.next
	switch inv.call.Op {
	case contract.OpCreateContainer:
		inv.inst, err = n.CreateContainer(ctx, inv.cfg)
		if err == nil {
			inv.call.ID = inv.inst.ID
		}
	case contract.OpStartContainer:
		err = n.StartContainer(ctx, inv.call.ID)
	case contract.OpStopContainer:
		err = n.StopContainer(ctx, inv.call.ID, inv.stop)
	case contract.OpRemoveContainer:
		err = n.RemoveContainer(ctx, inv.call.ID)
	case contract.OpGetContainer:
		inv.instPtr, err = n.GetContainer(ctx, inv.call.ID)
	case contract.OpListContainers:
		inv.list, err = n.ListContainers(ctx, inv.filter)
	case contract.OpGetContainerLogs:
		inv.text, err = n.GetContainerLogs(ctx, inv.call.ID, inv.logs)
	case contract.OpStreamContainerLogs:
		inv.stream, err = inv.streamer.StreamContainerLogs(ctx, inv.call.ID, inv.logs)
	case contract.OpHealthCheck:
		inv.health, err = n.HealthCheck(ctx)
	case contract.OpIsContainerHealthy:
		inv.ok, err = n.IsContainerHealthy(ctx, inv.call.ID)
	case contract.OpCreateVolume:
		inv.vol, err = n.CreateVolume(ctx, inv.volCfg)
		if err == nil {
			inv.call.ID = inv.vol.ID
		}
	case contract.OpRemoveVolume:
		err = n.RemoveVolume(ctx, inv.call.ID)
	case contract.OpCreateNetwork:
		inv.net, err = n.CreateNetwork(ctx, inv.netCfg)
		if err == nil {
			inv.call.ID = inv.net.ID
		}
	case contract.OpRemoveNetwork:
		err = n.RemoveNetwork(ctx, inv.call.ID)
	case contract.OpExecContainer:
		inv.execRes, err = inv.executor.ExecContainer(ctx, inv.call.ID, inv.exec)
	case contract.OpCopyToContainer:
		if err = inv.tar.begin(ctx, &inv.call); err == nil {
			err = inv.copier.CopyToContainer(ctx, inv.call.ID, inv.call.Path, &inv.tar)
		}
		inv.tar.end(err)
	case contract.OpCopyFromContainer:
		inv.stream, err = inv.copier.CopyFromContainer(ctx, inv.call.ID, inv.call.Path)
	case contract.OpContainerStats:
		inv.stats, err = inv.statsR.ContainerStats(ctx, inv.call.ID)
	}
	return err
}

type driver struct {
	next      contract.ContainerDriver
	intercept Interceptor
}

var _ contract.ContainerDriver = (*driver)(nil)

// do runs inv through the interceptor.
func (d *driver) do(ctx context.Context, inv *invocation) error {
	return d.intercept(ctx, &inv.call, inv.invoke)
}

func (d *driver) Unwrap() contract.ContainerDriver { return d.next }
func (d *driver) Name() string                     { return d.next.Name() }
func (d *driver) Version() string                  { return d.next.Version() }

func (d *driver) CreateContainer(ctx context.Context, cfg contract.ContainerConfig) (contract.ContainerInstance, error) {
	inv := get(d.next, contract.OpCreateContainer, "")
	inv.cfg = cfg
	inv.call.Container = &inv.cfg
	err := d.do(ctx, inv)
	res := inv.inst
	put(inv)
	if err != nil {
		return contract.ContainerInstance{}, err
	}
	return res, nil
}

func (d *driver) StartContainer(ctx context.Context, id string) error {
	inv := get(d.next, contract.OpStartContainer, id)
	err := d.do(ctx, inv)
	put(inv)
	return err
}

func (d *driver) StopContainer(ctx context.Context, id string, opts contract.StopOptions) error {
	inv := get(d.next, contract.OpStopContainer, id)
	inv.stop = opts
	inv.call.Stop = &inv.stop
	err := d.do(ctx, inv)
	put(inv)
	return err
}

func (d *driver) RemoveContainer(ctx context.Context, id string) error {
	inv := get(d.next, contract.OpRemoveContainer, id)
	err := d.do(ctx, inv)
	put(inv)
	return err
}

func (d *driver) GetContainer(ctx context.Context, id string) (*contract.ContainerInstance, error) {
	inv := get(d.next, contract.OpGetContainer, id)
	err := d.do(ctx, inv)
	res := inv.instPtr
	put(inv)
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (d *driver) ListContainers(ctx context.Context, filter contract.ContainerFilter) ([]contract.ContainerInstance, error) {
	inv := get(d.next, contract.OpListContainers, "")
	inv.filter = filter
	err := d.do(ctx, inv)
	res := inv.list
	put(inv)
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (d *driver) GetContainerLogs(ctx context.Context, id string, opts contract.LogOptions) (string, error) {
	inv := get(d.next, contract.OpGetContainerLogs, id)
	inv.logs = opts
	err := d.do(ctx, inv)
	res := inv.text
	put(inv)
	if err != nil {
		return "", err
	}
	return res, nil
}

func (d *driver) HealthCheck(ctx context.Context) (contract.DriverHealth, error) {
	inv := get(d.next, contract.OpHealthCheck, "")
	inv.call.Health = &inv.health
	err := d.do(ctx, inv)
	res := inv.health
	put(inv)
	return res, err
}

func (d *driver) IsContainerHealthy(ctx context.Context, id string) (bool, error) {
	inv := get(d.next, contract.OpIsContainerHealthy, id)
	err := d.do(ctx, inv)
	res := inv.ok
	put(inv)
	if err != nil {
		return false, err
	}
	return res, nil
}

func (d *driver) CreateVolume(ctx context.Context, cfg contract.VolumeConfig) (contract.Volume, error) {
	inv := get(d.next, contract.OpCreateVolume, "")
	inv.volCfg = cfg
	inv.call.Volume = &inv.volCfg
	err := d.do(ctx, inv)
	res := inv.vol
	put(inv)
	if err != nil {
		return contract.Volume{}, err
	}
	return res, nil
}

func (d *driver) RemoveVolume(ctx context.Context, id string) error {
	inv := get(d.next, contract.OpRemoveVolume, id)
	err := d.do(ctx, inv)
	put(inv)
	return err
}

func (d *driver) CreateNetwork(ctx context.Context, cfg contract.NetworkConfig) (contract.Network, error) {
	inv := get(d.next, contract.OpCreateNetwork, "")
	inv.netCfg = cfg
	inv.call.Network = &inv.netCfg
	err := d.do(ctx, inv)
	res := inv.net
	put(inv)
	if err != nil {
		return contract.Network{}, err
	}
	return res, nil
}

func (d *driver) RemoveNetwork(ctx context.Context, id string) error {
	inv := get(d.next, contract.OpRemoveNetwork, id)
	err := d.do(ctx, inv)
	put(inv)
	return err
}
