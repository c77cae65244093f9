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
)

// OpInfo is what layers and drivers need to know of an operation, in one
// place: [Op.Info] returns it, and a new operation is one row of the
// table.
type OpInfo struct {
	Resource Resource
	Effect   Effect
	Recovery Recovery
	// NotFound is the code of the error when the resource does not exist,
	// "" for operations on the engine.
	NotFound Code
}

var opTable = [NumOps]OpInfo{
	0:  {ResourceContainer, EffectCreate, RecoverByKey, ""}, // CreateContainer
	1:  {ResourceContainer, EffectChange, RecoverCheckState, CodeContainerNotFound},
	2:  {ResourceContainer, EffectChange, RecoverCheckState, CodeContainerNotFound},
	3:  {ResourceContainer, EffectRemove, RecoverNotFoundIsDone, CodeContainerNotFound},
	4:  {ResourceContainer, EffectRead, RecoverRepeat, CodeContainerNotFound},
	5:  {ResourceEngine, EffectRead, RecoverRepeat, ""},
	6:  {ResourceContainer, EffectRead, RecoverRepeat, CodeContainerNotFound},
	7:  {ResourceEngine, EffectRead, RecoverNever, ""},
	8:  {ResourceContainer, EffectRead, RecoverRepeat, CodeContainerNotFound},
	9:  {ResourceVolume, EffectCreate, RecoverByKey, ""},
	10: {ResourceVolume, EffectRemove, RecoverNotFoundIsDone, CodeVolumeNotFound},
	11: {ResourceNetwork, EffectCreate, RecoverByKey, ""},
	12: {ResourceNetwork, EffectRemove, RecoverNotFoundIsDone, CodeNetworkNotFound},
	13: {ResourceContainer, EffectRead, RecoverRepeat, CodeContainerNotFound}, // StreamContainerLogs
}

// Info returns the operation's row of the table of operations; the zero
// OpInfo (an engine read that may be repeated) for an unknown operation.
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
func (o Op) Info() OpInfo {
	if i := o.Index(); i >= 0 {
		return opTable[i]
	}
	return OpInfo{}
}

// Idempotent reports whether calling the operation twice has the same
// effect as calling it once, so that it may be repeated without further
// care: the reads. Creates, removes, start and stop need the care their
// [Recovery] describes.
func (o Op) Idempotent() bool { return o.Info().Effect == EffectRead }
