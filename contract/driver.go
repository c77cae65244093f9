package contract

import (
	"context"
	"io"
)

// ContainerDriver is the contract every container engine driver implements.
//
// All methods take a context first; a driver stops work and returns promptly
// when it is done. Errors are *DriverError values (see [DriverError]) so that
// callers and middleware can tell retryable failures from permanent ones.
type ContainerDriver interface {
	// Name is the unique driver name, e.g. "docker".
	Name() string
	// Version is the semantic version of the driver.
	Version() string

	// CreateContainer creates a container from cfg without starting it.
	CreateContainer(ctx context.Context, cfg ContainerConfig) (ContainerInstance, error)
	// StartContainer starts a created or stopped container.
	StartContainer(ctx context.Context, id string) error
	// StopContainer stops a running container, gracefully within
	// opts.Timeout, then by force. Stopping a stopped container succeeds.
	StopContainer(ctx context.Context, id string, opts StopOptions) error
	// RemoveContainer removes a container permanently, stopping it first if
	// it runs.
	RemoveContainer(ctx context.Context, id string) error

	// GetContainer returns the container, or nil and a nil error when no
	// such container exists.
	GetContainer(ctx context.Context, id string) (*ContainerInstance, error)
	// ListContainers returns the containers that match every set field of
	// filter; the zero filter matches all of the driver's containers.
	ListContainers(ctx context.Context, filter ContainerFilter) ([]ContainerInstance, error)
	// GetContainerLogs returns the container's output. Follow mode is served
	// by [LogStreamer], where the driver implements it.
	GetContainerLogs(ctx context.Context, id string, opts LogOptions) (string, error)

	// HealthCheck reports the driver's health. An unreachable engine is
	// reported as Status "unhealthy" with Error set, not as an error.
	HealthCheck(ctx context.Context) (DriverHealth, error)
	// IsContainerHealthy reports whether the container runs and, when it has
	// a health check, passes it.
	IsContainerHealthy(ctx context.Context, id string) (bool, error)

	// CreateVolume creates a named volume.
	CreateVolume(ctx context.Context, cfg VolumeConfig) (Volume, error)
	// RemoveVolume removes a volume; it fails with VOLUME_REMOVE while a
	// container uses it.
	RemoveVolume(ctx context.Context, id string) error
	// CreateNetwork creates a network.
	CreateNetwork(ctx context.Context, cfg NetworkConfig) (Network, error)
	// RemoveNetwork removes a network; it fails with NETWORK_REMOVE while a
	// container is attached to it.
	RemoveNetwork(ctx context.Context, id string) error
}

// LogStreamer is implemented by drivers that can follow a container's
// output. StreamContainerLogs always follows, whatever opts.Follow says; Tail,
// Since and Timestamps apply. The stream ends when the container stops, when
// ctx is done, or when the caller closes it; the caller must close it.
type LogStreamer interface {
	StreamContainerLogs(ctx context.Context, id string, opts LogOptions) (io.ReadCloser, error)
}

// Op names one operation of [ContainerDriver]. Span names, metrics and
// per-operation options use it.
type Op string

// The operations of [ContainerDriver], one per method that takes a context.
const (
	OpCreateContainer    Op = "CreateContainer"
	OpStartContainer     Op = "StartContainer"
	OpStopContainer      Op = "StopContainer"
	OpRemoveContainer    Op = "RemoveContainer"
	OpGetContainer       Op = "GetContainer"
	OpListContainers     Op = "ListContainers"
	OpGetContainerLogs   Op = "GetContainerLogs"
	OpHealthCheck        Op = "HealthCheck"
	OpIsContainerHealthy Op = "IsContainerHealthy"
	OpCreateVolume       Op = "CreateVolume"
	OpRemoveVolume       Op = "RemoveVolume"
	OpCreateNetwork      Op = "CreateNetwork"
	OpRemoveNetwork      Op = "RemoveNetwork"
	// OpStreamContainerLogs is the operation of [LogStreamer].
	OpStreamContainerLogs Op = "StreamContainerLogs"
	// OpExecContainer is the operation of [Executor].
	OpExecContainer Op = "ExecContainer"
	// OpCopyToContainer and OpCopyFromContainer are the operations of
	// [FileCopier].
	OpCopyToContainer   Op = "CopyToContainer"
	OpCopyFromContainer Op = "CopyFromContainer"
	// OpContainerStats is the operation of [StatsReader].
	OpContainerStats Op = "ContainerStats"
)

var ops = []Op{
	OpCreateContainer, OpStartContainer, OpStopContainer, OpRemoveContainer,
	OpGetContainer, OpListContainers, OpGetContainerLogs,
	OpHealthCheck, OpIsContainerHealthy,
	OpCreateVolume, OpRemoveVolume, OpCreateNetwork, OpRemoveNetwork,
}

// Ops returns the operations of [ContainerDriver] in interface order. The
// slice is a fresh copy. It does not include the operations of the
// optional interfaces ([OpStreamContainerLogs], [OpExecContainer],
// [OpCopyToContainer], [OpCopyFromContainer], [OpContainerStats]); [AllOps]
// does.
func Ops() []Op { return append([]Op(nil), ops...) }

// NumOps is the number of operations [Op.Index] knows: the operations of
// [ContainerDriver] and those of the optional interfaces.
const NumOps = 18

// Index returns a dense index in [0, NumOps) for the operations of this
// package, in the order of [AllOps]: that of [Ops], then
// OpStreamContainerLogs, OpExecContainer, OpCopyToContainer,
// OpCopyFromContainer and OpContainerStats; or -1 for
// any other value. Middleware uses it to keep per-operation state in arrays:
// a switch is several times faster than a map lookup on the path of every
// call.
func (o Op) Index() int {
	switch o {
	case OpCreateContainer:
		return 0
	case OpStartContainer:
		return 1
	case OpStopContainer:
		return 2
	case OpRemoveContainer:
		return 3
	case OpGetContainer:
		return 4
	case OpListContainers:
		return 5
	case OpGetContainerLogs:
		return 6
	case OpHealthCheck:
		return 7
	case OpIsContainerHealthy:
		return 8
	case OpCreateVolume:
		return 9
	case OpRemoveVolume:
		return 10
	case OpCreateNetwork:
		return 11
	case OpRemoveNetwork:
		return 12
	case OpStreamContainerLogs:
		return 13
	case OpExecContainer:
		return 14
	case OpCopyToContainer:
		return 15
	case OpCopyFromContainer:
		return 16
	case OpContainerStats:
		return 17
	}
	return -1
}

// String returns the operation's name.
func (o Op) String() string { return string(o) }

type idempotencyKey struct{}

// keyValue is the value of idempotencyKey.
type keyValue struct {
	key string
	own bool
}

// WithIdempotencyKey returns a context that carries key. A driver that sees a
// key on a create returns the resource an earlier call with the same key made
// instead of making a second one. The retry middleware sets one per logical
// create call; callers may set their own to dedupe across processes.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, keyValue{key: key})
}

// WithOwnIdempotencyKey is [WithIdempotencyKey] for a key that is the
// call's own: no other call uses it, and the call's attempts come one
// after another. A driver may then remove what a create of the key made
// when the create's context ends for good before its answer, as it does
// for a create without a key: nothing but the call's next attempt could
// ask for it, and there is none. A context that ends with a retryable
// *DriverError as its cause (context.Cause), as the timeout middleware's
// bound of one attempt does, has not ended for good: the next attempt
// finds what this one made. The retry middleware marks the keys it sets
// so; a key shared between callers must not be.
func WithOwnIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, keyValue{key: key, own: true})
}

// IdempotencyKey returns the key set by [WithIdempotencyKey] or
// [WithOwnIdempotencyKey], if any. An empty key counts as none.
func IdempotencyKey(ctx context.Context) (string, bool) {
	v, _ := ctx.Value(idempotencyKey{}).(keyValue)
	return v.key, v.key != ""
}

// OwnIdempotencyKey reports whether the key of ctx was set by
// [WithOwnIdempotencyKey].
func OwnIdempotencyKey(ctx context.Context) bool {
	v, _ := ctx.Value(idempotencyKey{}).(keyValue)
	return v.own && v.key != ""
}

type progressKey struct{}

// WithProgress returns a context that carries f, which a driver calls
// through [Progress] while a long operation makes progress (an image pull
// that receives data). The timeout middleware sets it, so that its
// timeout counts from the last progress: work that progresses is never
// cut by a wall clock, while work that stalls is. A nil f means none:
// Progress on the returned context does nothing, whatever ctx carried.
func WithProgress(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, progressKey{}, f)
}

// Progress tells whoever set [WithProgress] on ctx that the operation made
// progress; it does nothing when nobody did, or when the nearest
// WithProgress gave a nil func. Safe for concurrent use.
func Progress(ctx context.Context) {
	if f, ok := ctx.Value(progressKey{}).(func()); ok && f != nil {
		f()
	}
}
