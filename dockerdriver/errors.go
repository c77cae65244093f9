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

// The operations' rows of the contract's table. Reap is not an operation
// of the contract; its errors say which resource the reaper was removing.
var (
	opCreate        = contract.OpCreateContainer.Info()
	opStart         = contract.OpStartContainer.Info()
	opStop          = contract.OpStopContainer.Info()
	opRemove        = contract.OpRemoveContainer.Info()
	opGet           = contract.OpGetContainer.Info()
	opList          = contract.OpListContainers.Info()
	opLogs          = contract.OpGetContainerLogs.Info()
	opStream        = contract.OpStreamContainerLogs.Info()
	opHealth        = contract.OpHealthCheck.Info()
	opIsHealthy     = contract.OpIsContainerHealthy.Info()
	opCreateVolume  = contract.OpCreateVolume.Info()
	opRemoveVolume  = contract.OpRemoveVolume.Info()
	opCreateNetwork = contract.OpCreateNetwork.Info()
	opRemoveNetwork = contract.OpRemoveNetwork.Info()
	opExec          = contract.OpExecContainer.Info()
	opCopyTo        = contract.OpCopyToContainer.Info()
	opCopyFrom      = contract.OpCopyFromContainer.Info()
	opStats         = contract.OpContainerStats.Info()
	opReap          = contract.OpInfo{Op: contract.OpReap, Resource: contract.ResourceEngine, Failure: contract.CodeDriverHealth}
	opReapContainer = reapOf(opRemove)
	opReapVolume    = reapOf(opRemoveVolume)
	opReapNetwork   = reapOf(opRemoveNetwork)
)

// reapOf is the reaper's row for removing what remove removes.
func reapOf(remove contract.OpInfo) contract.OpInfo {
	remove.Op = opReap.Op
	return remove
}

// newErr returns a *DriverError of code for op with the code's retryable
// flag.
func newErr(o contract.OpInfo, code contract.Code, id, msg string, cause error) *contract.DriverError {
	return contract.NewError(code, o.Op, id, msg, cause)
}

// mapErr turns an error of the docker client into a *DriverError following
// the table in the package documentation. ctx is the caller's context: when
// it is done, the error is the caller's cancellation and never retryable.
func mapErr(ctx context.Context, o contract.OpInfo, id string, err error) error {
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
	case cerrdefs.IsNotFound(err) && o.Effect == contract.EffectCreate:
		// Something the new resource needs (a plugin, a driver) is missing.
		return newErr(o, contract.CodeConfiguration, id, "the engine lacks something the request names", err)
	case cerrdefs.IsNotFound(err) && o.NotFound != "":
		return newErr(o, o.NotFound, id, o.Resource.String()+" not found", err)
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
		return newErr(o, o.Failure, id, o.Resource.String()+" is in a conflicting state", err)
	}
	return newErr(o, o.Failure, id, "", err)
}

// ctxErr is the error for a call whose own context is done: TIMEOUT for a
// deadline, the op's code for a cancellation, and never retryable.
func ctxErr(o contract.OpInfo, id string, cerr, err error) error {
	if err == nil || errors.Is(err, cerr) {
		err = cerr
	} else {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	if errors.Is(cerr, context.DeadlineExceeded) {
		return &contract.DriverError{Code: contract.CodeTimeout, Message: "the caller's deadline passed", Op: o.Op, ID: id, Err: err}
	}
	return &contract.DriverError{Code: o.Failure, Message: "canceled by the caller", Op: o.Op, ID: id, Err: err}
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
func checkID(o contract.OpInfo, id string) error {
	if idRE.MatchString(id) && !strings.Contains(id, "..") {
		return nil
	}
	shown := id
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	return newErr(o, o.NotFound, "", fmt.Sprintf("invalid %s id %q: an id is 1 to 255 characters of [a-zA-Z0-9_.-] starting with a letter or digit, without \"..\"", o.Resource, shown), nil)
}
