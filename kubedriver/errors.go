package kubedriver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/resilientdriver/resilient/contract"
)

// opReap is the operation of [Driver.Reap] in errors.
const opReap = contract.OpReap

// noun names the kind of object an operation concerns, for messages.
func noun(op contract.Op) string {
	switch op.Info().Resource {
	case contract.ResourceVolume:
		return "volume"
	case contract.ResourceNetwork:
		return "network"
	case contract.ResourceContainer:
		return "container"
	}
	return "object"
}

// notFoundCode is the code of op's not-found errors, from the contract's
// table of operations.
func notFoundCode(op contract.Op) contract.Code {
	if c := op.Info().NotFound; c != "" {
		return c
	}
	return contract.CodeContainerNotFound
}

// failureCode is the code of an engine failure of op without a more
// specific code.
func failureCode(op contract.Op) contract.Code {
	if c := op.Info().Failure; c != "" {
		return c
	}
	return contract.CodeDriverHealth
}

func newErr(op contract.Op, code contract.Code, id, msg string, cause error) *contract.DriverError {
	return contract.NewError(code, op, id, msg, cause)
}

func notFound(op contract.Op, id string) error {
	return newErr(op, notFoundCode(op), id, noun(op)+" not found among the driver's "+noun(op)+"s", nil)
}

// mapErr turns an error of client-go into a *contract.DriverError as the
// table in the package documentation says. ctx is the caller's context:
// when it is done, the error is the caller's and never retryable.
func mapErr(ctx context.Context, op contract.Op, id string, err error) error {
	if err == nil {
		return nil
	}
	var de *contract.DriverError
	if errors.As(err, &de) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return ctxErr(op, id, cerr, err)
	}
	var busy *serverBusyError
	if errors.As(err, &busy) {
		code := contract.CodeNetwork
		if busy.status == http.StatusGatewayTimeout {
			code = contract.CodeTimeout
		}
		e := newErr(op, code, id, "the API server is overloaded or unavailable; try again later", err)
		e.RetryAfter = busy.retryAfter
		return e
	}
	creates := op.Info().Effect == contract.EffectCreate
	switch {
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), errors.Is(err, context.DeadlineExceeded), isNetTimeout(err):
		e := newErr(op, contract.CodeTimeout, id, "the API server did not answer in time", err)
		if s, ok := apierrors.SuggestsClientDelay(err); ok {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	case apierrors.IsTooManyRequests(err), apierrors.IsServiceUnavailable(err):
		e := newErr(op, contract.CodeNetwork, id, "the API server is overloaded or unavailable; try again later", err)
		if s, ok := apierrors.SuggestsClientDelay(err); ok {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	case badCertificate(err):
		return newErr(op, contract.CodeConfiguration, id, "the API server's certificate is not trusted by the kubeconfig", err)
	case unreachable(err):
		return newErr(op, contract.CodeNetwork, id, "cannot reach the Kubernetes API server", err)
	case apierrors.IsUnauthorized(err):
		return newErr(op, contract.CodeAuthentication, id, "the API server refused the credentials", err)
	case apierrors.IsForbidden(err) && mentions(err, "exceeded quota"):
		return newErr(op, contract.CodeResourceLimit, id, "the namespace's resource quota does not allow this", err)
	case apierrors.IsForbidden(err):
		return newErr(op, contract.CodeAuthorization, id, "the API server does not allow this", err)
	case apierrors.IsNotFound(err) && creates:
		return newErr(op, contract.CodeConfiguration, id, "the namespace or something the request names does not exist", err)
	case apierrors.IsNotFound(err), apierrors.IsGone(err):
		return newErr(op, notFoundCode(op), id, noun(op)+" not found", err)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsRequestEntityTooLargeError(err),
		apierrors.IsMethodNotSupported(err), apierrors.IsNotAcceptable(err), apierrors.IsUnsupportedMediaType(err):
		return newErr(op, contract.CodeConfiguration, id, "the API server refused the request as invalid", err)
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
		return newErr(op, failureCode(op), id, noun(op)+" was changed or taken meanwhile", err)
	}
	return newErr(op, failureCode(op), id, "", err)
}

// outcomeUnknown reports whether a request that failed with err may still
// have been carried out: the caller's context ended while it was in
// flight, or the answer was lost or came too late (NETWORK, TIMEOUT).
func outcomeUnknown(ctx context.Context, op contract.Op, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	code := contract.CodeOf(mapErr(ctx, op, "", err))
	return code == contract.CodeNetwork || code == contract.CodeTimeout
}

// replacedErr is the error of a change to a container whose pod another
// pod replaced meanwhile (a precondition on its UID failed).
func replacedErr(op contract.Op, id string, err error) error {
	return newErr(op, failureCode(op), id, "the container's pod was replaced meanwhile; try again", err)
}

// ctxErr is the error of a call whose own context is done: TIMEOUT for a
// deadline, the op's code for a cancellation, never retryable.
func ctxErr(op contract.Op, id string, cerr, err error) error {
	if err == nil || errors.Is(err, cerr) {
		err = cerr
	} else {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	if errors.Is(cerr, context.DeadlineExceeded) {
		return &contract.DriverError{Code: contract.CodeTimeout, Message: "the caller's deadline passed", Op: op, ID: id, Err: err}
	}
	return &contract.DriverError{Code: failureCode(op), Message: "canceled by the caller", Op: op, ID: id, Err: err}
}

// checkCtx returns the caller's error when ctx is already done, so that a
// call does nothing then.
func checkCtx(ctx context.Context, op contract.Op, id string) error {
	if err := ctx.Err(); err != nil {
		return ctxErr(op, id, err, nil)
	}
	return nil
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// badCertificate reports whether err is a TLS verification failure, which
// trying again cannot fix.
func badCertificate(err error) bool {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	var tv *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he) || errors.As(err, &tv)
}

// unreachable reports whether err means the API server could not be
// reached or the connection broke.
func unreachable(err error) bool {
	var ue *url.Error
	var oe *net.OpError
	return errors.As(err, &oe) || errors.As(err, &ue) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// mentions reports whether err's text contains any of the words, ignoring
// case.
func mentions(err error, words ...string) bool {
	msg := strings.ToLower(err.Error())
	for _, w := range words {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

// withOp sets op on a validation error of the contract package.
func withOp(err error, op contract.Op) error {
	var de *contract.DriverError
	if errors.As(err, &de) {
		cp := *de
		cp.Op = op
		return &cp
	}
	return newErr(op, contract.CodeConfiguration, "", "", err)
}

// serverBusyError is what the driver's transport makes of an answer that
// says "try again later": 429, 503, or any 5xx with a Retry-After header.
// client-go would otherwise repeat such requests itself, up to ten times,
// hidden from the retry, breaker and rate-limit layers that decide about
// repeating; as a transport error it reaches them at once, with the
// server's Retry-After.
type serverBusyError struct {
	status     int
	retryAfter time.Duration
	message    string
}

func (e *serverBusyError) Error() string {
	msg := fmt.Sprintf("the API server answered %d %s", e.status, http.StatusText(e.status))
	if e.retryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %v)", e.retryAfter)
	}
	if e.message != "" {
		msg += ": " + e.message
	}
	return msg
}

// busyTransport turns "try again later" answers into [serverBusyError].
type busyTransport struct {
	next http.RoundTripper
}

// WrappedRoundTripper returns the transport busyTransport wraps, so that
// client-go's helpers reach it (closing idle connections).
func (t *busyTransport) WrappedRoundTripper() http.RoundTripper { return t.next }

// maxBusyBody bounds what is read of a busy answer's body.
const maxBusyBody = 2 << 10

func (t *busyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp == nil {
		return resp, err
	}
	ra := resp.Header.Get("Retry-After")
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable &&
		(resp.StatusCode < 500 || ra == "") {
		return resp, nil
	}
	e := &serverBusyError{status: resp.StatusCode}
	if s, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && s > 0 {
		e.retryAfter = time.Duration(s) * time.Second
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBusyBody))
	resp.Body.Close()
	e.message = busyMessage(body)
	return nil, e
}

// busyMessage returns the message of a Status body, or the body's text.
func busyMessage(body []byte) string {
	s := strings.TrimSpace(string(body))
	if i := strings.Index(s, `"message":"`); i >= 0 {
		rest := s[i+len(`"message":"`):]
		if j := strings.Index(rest, `"`); j >= 0 {
			return rest[:j]
		}
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
