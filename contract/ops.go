package contract

// Resource is the kind of thing an operation concerns.
type Resource uint8

// The resources of [OpInfo].
const (
	ResourceEngine    Resource = iota // the engine as a whole: list, health
	ResourceContainer                 // one container
	ResourceVolume                    // one volume
	ResourceNetwork                   // one network
)

// String returns the resource's name: "engine", "container", "volume" or
// "network".
func (r Resource) String() string {
	switch r {
	case ResourceEngine:
		return "engine"
	case ResourceContainer:
		return "container"
	case ResourceVolume:
		return "volume"
	case ResourceNetwork:
		return "network"
	}
	return "resource"
}

// Effect is what an operation does to the engine's state.
type Effect uint8

// The effects of [OpInfo].
const (
	EffectRead   Effect = iota // changes nothing
	EffectCreate               // makes a resource
	EffectChange               // changes a resource's state: start, stop
	EffectRemove               // removes a resource
)

// Recovery is what a retry may do after an attempt whose outcome is
// unknown: the attempt failed with a timeout, a lost connection or another
// retryable error, so the engine may have done the work and the answer
// been lost. The retry middleware applies it; see its package doc.
type Recovery uint8

// The recoveries of [OpInfo].
const (
	// RecoverRepeat: repeat the call as it is. Reads.
	RecoverRepeat Recovery = iota
	// RecoverByKey: repeat the call with the same idempotency key (see
	// [WithIdempotencyKey]), and the driver returns the resource that an
	// earlier attempt made. Creates.
	RecoverByKey
	// RecoverNotFoundIsDone: repeat the call; the resource's not-found
	// error then means an earlier attempt removed it, and the call has
	// succeeded. Removes.
	RecoverNotFoundIsDone
	// RecoverCheckState: read the container's state before repeating the
	// call, and repeat it only when the work did not happen. Start (a
	// container that started after the call began, even one that has
	// exited since, was started) and stop (a container that no longer
	// runs was stopped).
	RecoverCheckState
	// RecoverNever: never repeat. HealthCheck reports the engine's state
	// now.
	RecoverNever
	// RecoverIfIdempotent: repeat only when the caller marked the call
	// safe to repeat (ExecOptions.Idempotent); otherwise an attempt whose
	// outcome is unknown ends the call with its error. ExecContainer: a
	// command that ran and whose answer was lost (a payment, a git push)
	// must not run twice unless the caller says it may.
	RecoverIfIdempotent
)

// Class is how protective layers treat an operation under load.
type Class uint8

// The classes of [OpInfo].
const (
	// ClassRead: a cheap query of the engine (get, list, logs, container
	// health). It has capacity of its own, so that it never queues behind
	// engine work.
	ClassRead Class = iota
	// ClassContinue: engine work on a resource that exists (start, stop,
	// remove, exec, copies), which continues or ends a session already
	// admitted. It goes before new work.
	ClassContinue
	// ClassCreate: new work (creates). It is admitted last and refused
	// first when the engine is saturated.
	ClassCreate
	// ClassProbe: HealthCheck, which must answer while the engine fails or
	// is saturated: never retried, blocked by a circuit or limited.
	ClassProbe
)

// OpInfo is what layers and drivers need to know of an operation, in one
// place: [Op.Info] returns it, and a new operation is one row of the
// table.
type OpInfo struct {
	Op       Op
	Resource Resource
	Effect   Effect
	Recovery Recovery
	Class    Class
	// NotFound is the code of the error when the resource does not exist,
	// "" for operations on the engine.
	NotFound Code
	// Failure is the code of an engine failure of the operation that has
	// no more specific code (CONTAINER_START for a start, ...), DRIVER_HEALTH
	// for reads.
	Failure Code
}

// opTable is in the order of [Op.Index].
var opTable = [NumOps]OpInfo{
	{OpCreateContainer, ResourceContainer, EffectCreate, RecoverByKey, ClassCreate, "", CodeContainerCreation},
	{OpStartContainer, ResourceContainer, EffectChange, RecoverCheckState, ClassContinue, CodeContainerNotFound, CodeContainerStart},
	{OpStopContainer, ResourceContainer, EffectChange, RecoverCheckState, ClassContinue, CodeContainerNotFound, CodeContainerStop},
	{OpRemoveContainer, ResourceContainer, EffectRemove, RecoverNotFoundIsDone, ClassContinue, CodeContainerNotFound, CodeContainerRemove},
	{OpGetContainer, ResourceContainer, EffectRead, RecoverRepeat, ClassRead, CodeContainerNotFound, CodeDriverHealth},
	{OpListContainers, ResourceEngine, EffectRead, RecoverRepeat, ClassRead, "", CodeDriverHealth},
	{OpGetContainerLogs, ResourceContainer, EffectRead, RecoverRepeat, ClassRead, CodeContainerNotFound, CodeDriverHealth},
	{OpHealthCheck, ResourceEngine, EffectRead, RecoverNever, ClassProbe, "", CodeDriverHealth},
	{OpIsContainerHealthy, ResourceContainer, EffectRead, RecoverRepeat, ClassRead, CodeContainerNotFound, CodeDriverHealth},
	{OpCreateVolume, ResourceVolume, EffectCreate, RecoverByKey, ClassCreate, "", CodeVolumeCreation},
	{OpRemoveVolume, ResourceVolume, EffectRemove, RecoverNotFoundIsDone, ClassContinue, CodeVolumeNotFound, CodeVolumeRemove},
	{OpCreateNetwork, ResourceNetwork, EffectCreate, RecoverByKey, ClassCreate, "", CodeNetworkCreation},
	{OpRemoveNetwork, ResourceNetwork, EffectRemove, RecoverNotFoundIsDone, ClassContinue, CodeNetworkNotFound, CodeNetworkRemove},
	{OpStreamContainerLogs, ResourceContainer, EffectRead, RecoverRepeat, ClassRead, CodeContainerNotFound, CodeDriverHealth},
	{OpExecContainer, ResourceContainer, EffectChange, RecoverIfIdempotent, ClassContinue, CodeContainerNotFound, CodeContainerStart},
	{OpCopyToContainer, ResourceContainer, EffectChange, RecoverRepeat, ClassContinue, CodeContainerNotFound, CodeFileSystem},
	{OpCopyFromContainer, ResourceContainer, EffectRead, RecoverRepeat, ClassContinue, CodeContainerNotFound, CodeFileSystem},
	{OpContainerStats, ResourceContainer, EffectRead, RecoverRepeat, ClassRead, CodeContainerNotFound, CodeDriverHealth},
}

// AllOps returns every operation of the table in [Op.Index] order: those
// of [ContainerDriver] (as [Ops]), then those of the optional interfaces.
// The slice is a fresh copy.
func AllOps() []Op {
	all := make([]Op, NumOps)
	for i, info := range opTable {
		all[i] = info.Op
	}
	return all
}

// Info returns the operation's row of the table of operations; for an
// unknown operation, an OpInfo with only Op set (an engine read that may
// be repeated).
//
//	op                   resource   effect  after an unknown outcome      not found
//	CreateContainer      container  create  repeat with the same key
//	StartContainer       container  change  check state, then repeat      CONTAINER_NOT_FOUND
//	StopContainer        container  change  check state, then repeat      CONTAINER_NOT_FOUND
//	RemoveContainer      container  remove  repeat; not found is done     CONTAINER_NOT_FOUND
//	GetContainer         container  read    repeat                        CONTAINER_NOT_FOUND
//	ListContainers       engine     read    repeat
//	GetContainerLogs     container  read    repeat                        CONTAINER_NOT_FOUND
//	HealthCheck          engine     read    never repeat
//	IsContainerHealthy   container  read    repeat                        CONTAINER_NOT_FOUND
//	CreateVolume         volume     create  repeat with the same key
//	RemoveVolume         volume     remove  repeat; not found is done     VOLUME_NOT_FOUND
//	CreateNetwork        network    create  repeat with the same key
//	RemoveNetwork        network    remove  repeat; not found is done     NETWORK_NOT_FOUND
//	StreamContainerLogs  container  read    repeat                        CONTAINER_NOT_FOUND
//	ExecContainer        container  change  only if marked idempotent     CONTAINER_NOT_FOUND
//	CopyToContainer      container  change  repeat (same tar, same place) CONTAINER_NOT_FOUND
//	CopyFromContainer    container  read    repeat                        CONTAINER_NOT_FOUND
//	ContainerStats       container  read    repeat                        CONTAINER_NOT_FOUND
//
// ExecContainer fails with CONTAINER_START when the engine cannot run the
// command; the copies with FILE_SYSTEM. Exec and the copies are engine
// work that continues a session (ClassContinue); ContainerStats is a
// cheap read (ClassRead).
func (o Op) Info() OpInfo {
	if i := o.Index(); i >= 0 {
		return opTable[i]
	}
	return OpInfo{Op: o}
}

// Idempotent reports whether calling the operation twice has the same
// effect as calling it once, so that it may be repeated without further
// care: the reads, and CopyToContainer (the same tar to the same place
// gives the same files). Creates, removes, start, stop and exec need the
// care their [Recovery] describes.
func (o Op) Idempotent() bool {
	info := o.Info()
	return info.Effect == EffectRead || info.Recovery == RecoverRepeat
}
