package dockerdriver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/resilientdriver/resilient/contract"
)

// resource is the kind of object an operation works on.
type resource int

const (
	resContainer resource = iota
	resVolume
	resNetwork
	resEngine
)

func (r resource) notFound() contract.Code {
	switch r {
	case resVolume:
		return contract.CodeVolumeNotFound
	case resNetwork:
		return contract.CodeNetworkNotFound
	}
	return contract.CodeContainerNotFound
}

func (r resource) String() string {
	switch r {
	case resVolume:
		return "volume"
	case resNetwork:
		return "network"
	case resEngine:
		return "engine"
	}
	return "container"
}

// opInfo describes an operation for the error mapping.
type opInfo struct {
	op   contract.Op
	res  resource
	fail contract.Code // code of a failure of the engine while doing op
}

// creates reports whether the op creates a resource.
func (o opInfo) creates() bool {
	switch o.fail {
	case contract.CodeContainerCreation, contract.CodeVolumeCreation, contract.CodeNetworkCreation:
		return true
	}
	return false
}

// The operations. fail is the op's own code; read operations that have
// none use DRIVER_HEALTH.
var (
	opCreate   = opInfo{contract.OpCreateContainer, resContainer, contract.CodeContainerCreation}
	opStart    = opInfo{contract.OpStartContainer, resContainer, contract.CodeContainerStart}
	opStop     = opInfo{contract.OpStopContainer, resContainer, contract.CodeContainerStop}
	opRemove   = opInfo{contract.OpRemoveContainer, resContainer, contract.CodeContainerRemove}
	opGet      = opInfo{contract.OpGetContainer, resContainer, contract.CodeDriverHealth}
	opList     = opInfo{contract.OpListContainers, resContainer, contract.CodeDriverHealth}
	opLogs     = opInfo{contract.OpGetContainerLogs, resContainer, contract.CodeDriverHealth}
	opStream   = opInfo{contract.OpStreamContainerLogs, resContainer, contract.CodeDriverHealth}
	opHealth   = opInfo{contract.OpHealthCheck, resEngine, contract.CodeDriverHealth}
	opHealthy  = opInfo{contract.OpIsContainerHealthy, resContainer, contract.CodeDriverHealth}
	opVolCr    = opInfo{contract.OpCreateVolume, resVolume, contract.CodeVolumeCreation}
	opVolRm    = opInfo{contract.OpRemoveVolume, resVolume, contract.CodeVolumeRemove}
	opNetCr    = opInfo{contract.OpCreateNetwork, resNetwork, contract.CodeNetworkCreation}
	opNetRm    = opInfo{contract.OpRemoveNetwork, resNetwork, contract.CodeNetworkRemove}
	opReap     = opInfo{"Reap", resEngine, contract.CodeDriverHealth}
	opReapVol  = opInfo{"Reap", resVolume, contract.CodeVolumeRemove}
	opReapNet  = opInfo{"Reap", resNetwork, contract.CodeNetworkRemove}
	opReapCont = opInfo{"Reap", resContainer, contract.CodeContainerRemove}
)

// newErr returns a *DriverError of code for op with the code's retryable
// flag.
func newErr(o opInfo, code contract.Code, id, msg string, cause error) *contract.DriverError {
	return contract.NewError(code, o.op, id, msg, cause)
}

// mapErr turns an error of the docker client into a *DriverError following
// the table in the package documentation. ctx is the caller's context: when
// it is done, the error is the caller's cancellation and never retryable.
func mapErr(ctx context.Context, o opInfo, id string, err error) error {
	if err == nil {
		return nil
	}
	var de *contract.DriverError
	if errors.As(err, &de) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return ctxErr(o, id, cerr, err)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), cerrdefs.IsDeadlineExceeded(err):
		return newErr(o, contract.CodeTimeout, id, "the engine did not answer in time", err)
	case unreachable(err):
		return newErr(o, contract.CodeNetwork, id, "cannot reach the Docker daemon", err)
	case cerrdefs.IsNotFound(err) && o.creates():
		// Something the new resource needs (a plugin, a driver) is missing.
		return newErr(o, contract.CodeConfiguration, id, "the engine lacks something the request names", err)
	case cerrdefs.IsNotFound(err):
		return newErr(o, o.res.notFound(), id, o.res.String()+" not found", err)
	case cerrdefs.IsInvalidArgument(err), cerrdefs.IsNotImplemented(err):
		return newErr(o, contract.CodeConfiguration, id, "the engine refused the request as invalid", err)
	case cerrdefs.IsUnauthorized(err):
		return newErr(o, contract.CodeAuthentication, id, "the engine or registry refused the credentials", err)
	case cerrdefs.IsPermissionDenied(err):
		return newErr(o, contract.CodeAuthorization, id, "the engine does not allow this", err)
	case cerrdefs.IsResourceExhausted(err):
		return newErr(o, contract.CodeResourceLimit, id, "the engine is out of resources", err)
	case cerrdefs.IsUnavailable(err):
		return newErr(o, contract.CodeNetwork, id, "the engine is unavailable", err)
	case cerrdefs.IsConflict(err):
		return newErr(o, o.fail, id, o.res.String()+" is in a conflicting state", err)
	}
	return newErr(o, o.fail, id, "", err)
}

// ctxErr is the error for a call whose own context is done: TIMEOUT for a
// deadline, the op's code for a cancellation, and never retryable.
func ctxErr(o opInfo, id string, cerr, err error) error {
	if err == nil || errors.Is(err, cerr) {
		err = cerr
	} else {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	if errors.Is(cerr, context.DeadlineExceeded) {
		return &contract.DriverError{Code: contract.CodeTimeout, Message: "the caller's deadline passed", Op: o.op, ID: id, Err: err}
	}
	return &contract.DriverError{Code: o.fail, Message: "canceled by the caller", Op: o.op, ID: id, Err: err}
}

// unreachable reports whether err means that the daemon could not be reached
// or the connection broke.
func unreachable(err error) bool {
	if client.IsErrConnectionFailed(err) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ENOENT) && strings.Contains(err.Error(), "dial")
}

// idRE is what an id may look like: a Docker id or name. Anything else
// could change the path of the API request it is put into.
var idRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$`)

// checkID refuses an id that cannot name a resource with the resource's
// NOT_FOUND code, without asking the daemon.
func checkID(o opInfo, id string) error {
	if idRE.MatchString(id) && !strings.Contains(id, "..") {
		return nil
	}
	shown := id
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	return newErr(o, o.res.notFound(), "", fmt.Sprintf("invalid %s id %q: an id is 1 to 255 characters of [a-zA-Z0-9_.-] starting with a letter or digit, without \"..\"", o.res, shown), nil)
}
