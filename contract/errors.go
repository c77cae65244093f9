package contract

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Code identifies a kind of driver error. The codes and their retryable
// flags are the contract's.
type Code string

// Error codes. The comment gives whether an error of the code is retryable.
const (
	CodeContainerNotFound Code = "CONTAINER_NOT_FOUND" // no
	CodeContainerCreation Code = "CONTAINER_CREATION"  // yes
	CodeContainerStart    Code = "CONTAINER_START"     // yes
	CodeContainerStop     Code = "CONTAINER_STOP"      // yes
	CodeContainerRemove   Code = "CONTAINER_REMOVE"    // no
	CodeResourceLimit     Code = "RESOURCE_LIMIT"      // no
	CodeVolumeCreation    Code = "VOLUME_CREATION"     // yes
	CodeVolumeNotFound    Code = "VOLUME_NOT_FOUND"    // no
	CodeVolumeRemove      Code = "VOLUME_REMOVE"       // no
	CodeNetworkCreation   Code = "NETWORK_CREATION"    // yes
	CodeNetworkNotFound   Code = "NETWORK_NOT_FOUND"   // no
	CodeNetworkRemove     Code = "NETWORK_REMOVE"      // no
	CodeDriverHealth      Code = "DRIVER_HEALTH"       // no
	CodeTimeout           Code = "TIMEOUT"             // yes
	CodeNetwork           Code = "NETWORK"             // yes: the engine could not be reached
	CodeFileSystem        Code = "FILE_SYSTEM"         // no
	CodeAuthentication    Code = "AUTHENTICATION"      // no
	CodeAuthorization     Code = "AUTHORIZATION"       // no
	CodeConfiguration     Code = "CONFIGURATION"       // no: invalid input
	CodeCircuitOpen       Code = "CIRCUIT_OPEN"        // yes, after RetryAfter
	CodeRateLimited       Code = "RATE_LIMITED"        // yes, after RetryAfter
)

var codeInfo = map[Code]struct {
	retryable bool
	message   string
}{
	CodeContainerNotFound: {false, "container not found"},
	CodeContainerCreation: {true, "container creation failed"},
	CodeContainerStart:    {true, "container start failed"},
	CodeContainerStop:     {true, "container stop failed"},
	CodeContainerRemove:   {false, "container removal failed"},
	CodeResourceLimit:     {false, "resource limit exceeded or not enforceable"},
	CodeVolumeCreation:    {true, "volume creation failed"},
	CodeVolumeNotFound:    {false, "volume not found"},
	CodeVolumeRemove:      {false, "volume removal failed"},
	CodeNetworkCreation:   {true, "network creation failed"},
	CodeNetworkNotFound:   {false, "network not found"},
	CodeNetworkRemove:     {false, "network removal failed"},
	CodeDriverHealth:      {false, "driver health check failed"},
	CodeTimeout:           {true, "operation timed out"},
	CodeNetwork:           {true, "container engine unreachable"},
	CodeFileSystem:        {false, "file system error"},
	CodeAuthentication:    {false, "authentication failed"},
	CodeAuthorization:     {false, "not authorized"},
	CodeConfiguration:     {false, "invalid configuration"},
	CodeCircuitOpen:       {true, "circuit open"},
	CodeRateLimited:       {true, "rate limited"},
}

// Codes returns every error code, in the order of the constants.
func Codes() []Code {
	return []Code{
		CodeContainerNotFound, CodeContainerCreation, CodeContainerStart, CodeContainerStop,
		CodeContainerRemove, CodeResourceLimit, CodeVolumeCreation, CodeVolumeNotFound,
		CodeVolumeRemove, CodeNetworkCreation, CodeNetworkNotFound, CodeNetworkRemove,
		CodeDriverHealth, CodeTimeout, CodeNetwork, CodeFileSystem, CodeAuthentication,
		CodeAuthorization, CodeConfiguration, CodeCircuitOpen, CodeRateLimited,
	}
}

// Retryable reports the contract's retryable flag for the code. Unknown
// codes are not retryable.
func (c Code) Retryable() bool { return codeInfo[c].retryable }

// String returns the code.
func (c Code) String() string { return string(c) }

// Known reports whether c is one of the contract's codes ([Codes]).
func (c Code) Known() bool {
	_, ok := codeInfo[c]
	return ok
}

// RejectedLocally reports whether err is a refusal by a layer of this
// process, an open circuit (CIRCUIT_OPEN) or a rate or concurrency limit
// (RATE_LIMITED): the call never reached the engine. Its outcome is known
// (nothing happened), and it says nothing of the engine's health. Layers
// ask this, rather than list each other's codes.
func RejectedLocally(err error) bool {
	switch CodeOf(err) {
	case CodeCircuitOpen, CodeRateLimited:
		return true
	}
	return false
}

// OtherErrorType is what [ErrorType] returns for an error without a known
// code, as the OpenTelemetry semantic conventions spell it.
const OtherErrorType = "_OTHER"

// ErrorType returns what telemetry records of err, as the attribute
// error.type: the code of the first *DriverError in its chain when it is
// one of the contract's codes, else [OtherErrorType]. It is the one
// allowlist every layer that writes error.type uses: a driver or a
// wrapped library that puts a message into a code puts nothing into
// spans or metrics, and their cardinality stays bounded. It never reads
// the error's text.
func ErrorType(err error) string {
	if c := CodeOf(err); c.Known() {
		return string(c)
	}
	return OtherErrorType
}

// DriverError is the one error type of the contract. Every error a driver or
// middleware returns is, or wraps, a *DriverError.
//
// errors.Is(err, ErrX) matches by Code through any wrapping, so
// errors.Is(err, ErrContainerNotFound) holds for every not-found error
// whatever its message. errors.As(err, &de) reaches the value.
type DriverError struct {
	Code       Code          // kind of error
	Message    string        // descriptive and actionable; the code's default when empty
	Retryable  bool          // whether trying again may succeed
	Op         Op            // where it happened, when known
	ID         string        // container, volume or network it concerns, when known
	RetryAfter time.Duration // when to try again, a hint from the source
	Err        error         // cause; Unwrap returns it
}

// NewError returns a *DriverError with code's retryable flag. message may be
// empty, and cause nil.
func NewError(code Code, op Op, id, message string, cause error) *DriverError {
	return &DriverError{Code: code, Message: message, Retryable: code.Retryable(), Op: op, ID: id, Err: cause}
}

// Error formats the error as "op id: message: cause", leaving out what is
// unset. An ID longer than 128 bytes, or that is not [Printable] (a
// newline, NUL, bidi override, invalid UTF-8), is shown quoted in Go syntax
// and cut to 64 bytes, so that an ID taken from the input cannot forge log
// lines or blow up a message.
func (e *DriverError) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(string(e.Op))
		if e.ID != "" {
			b.WriteString(" ")
			b.WriteString(shown(e.ID))
		}
		b.WriteString(": ")
	}
	msg := e.Message
	if msg == "" {
		msg = codeInfo[e.Code].message
		if msg == "" {
			msg = string(e.Code)
		}
	}
	b.WriteString(msg)
	if e.Err != nil {
		if cause := e.Err.Error(); cause != msg {
			b.WriteString(": ")
			b.WriteString(cause)
		}
	}
	return b.String()
}

// maxShownID is the longest ID, or other string from the input, that an
// error text shows as it is.
const maxShownID = 128

// shown returns s as it is when it is at most maxShownID bytes and
// [Printable], else quoted: the form in which a string from the input
// stands in an error text, where it cannot forge a line or blow up the
// message.
func shown(s string) string {
	if len(s) <= maxShownID && Printable(s) {
		return s
	}
	return quoted(s)
}

// quoted returns s quoted in Go syntax, cut to half of maxShownID bytes at
// a rune boundary and followed by its length when it is longer.
func quoted(s string) string {
	if len(s) <= maxShownID/2 {
		return strconv.Quote(s)
	}
	n := maxShownID / 2
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "...(" + strconv.Itoa(len(s)) + " bytes)"
}

// Unwrap returns the cause.
func (e *DriverError) Unwrap() error { return e.Err }

// Is reports whether target is a *DriverError with the same code, so that
// the sentinels match every error of their code. A nil *DriverError
// matches nothing.
func (e *DriverError) Is(target error) bool {
	t, ok := target.(*DriverError)
	return ok && t != nil && t.Code == e.Code
}

func sentinel(c Code) *DriverError { return &DriverError{Code: c, Retryable: c.Retryable()} }

// Sentinels, one per code, for errors.Is. They match by code; do not modify
// them.
var (
	ErrContainerNotFound = sentinel(CodeContainerNotFound)
	ErrContainerCreation = sentinel(CodeContainerCreation)
	ErrContainerStart    = sentinel(CodeContainerStart)
	ErrContainerStop     = sentinel(CodeContainerStop)
	ErrContainerRemove   = sentinel(CodeContainerRemove)
	ErrResourceLimit     = sentinel(CodeResourceLimit)
	ErrVolumeCreation    = sentinel(CodeVolumeCreation)
	ErrVolumeNotFound    = sentinel(CodeVolumeNotFound)
	ErrVolumeRemove      = sentinel(CodeVolumeRemove)
	ErrNetworkCreation   = sentinel(CodeNetworkCreation)
	ErrNetworkNotFound   = sentinel(CodeNetworkNotFound)
	ErrNetworkRemove     = sentinel(CodeNetworkRemove)
	ErrDriverHealth      = sentinel(CodeDriverHealth)
	ErrTimeout           = sentinel(CodeTimeout)
	ErrNetwork           = sentinel(CodeNetwork)
	ErrFileSystem        = sentinel(CodeFileSystem)
	ErrAuthentication    = sentinel(CodeAuthentication)
	ErrAuthorization     = sentinel(CodeAuthorization)
	ErrConfiguration     = sentinel(CodeConfiguration)
	ErrCircuitOpen       = sentinel(CodeCircuitOpen)
	ErrRateLimited       = sentinel(CodeRateLimited)
)

// IsRetryable reports whether err is worth retrying: it holds a *DriverError
// whose Retryable flag is set, and it is not a cancellation. A bare
// context.Canceled or context.DeadlineExceeded, any error that is not a
// *DriverError, and any error that wraps context.Canceled are never
// retryable. A retryable *DriverError that wraps DeadlineExceeded (a TIMEOUT
// of one attempt) stays retryable: callers must still stop when their own
// context is done.
func IsRetryable(err error) bool {
	var de *DriverError
	if !errors.As(err, &de) || !de.Retryable {
		return false
	}
	return !errors.Is(err, context.Canceled)
}

// RetryAfter returns the retry-after hint of the first *DriverError in err's
// chain, or zero.
func RetryAfter(err error) time.Duration {
	var de *DriverError
	if errors.As(err, &de) {
		return de.RetryAfter
	}
	return 0
}

// CodeOf returns the code of the first *DriverError in err's chain, or ""
// when there is none.
func CodeOf(err error) Code {
	var de *DriverError
	if errors.As(err, &de) {
		return de.Code
	}
	return ""
}
