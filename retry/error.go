package retry

import (
	"errors"
	"strconv"
	"strings"
)

// Reasons to stop retrying, found in [Error.Reason] and matched with
// errors.Is on the error a call returns.
var (
	// ErrMaxAttempts: the call made as many attempts as allowed.
	ErrMaxAttempts = errors.New("attempts exhausted")
	// ErrMaxElapsedTime: the next attempt would start after the call's
	// max elapsed time.
	ErrMaxElapsedTime = errors.New("max elapsed time reached")
	// ErrDeadline: the next attempt would start at or after the caller's
	// context deadline.
	ErrDeadline = errors.New("next attempt would pass the context deadline")
	// ErrBudgetExhausted: the retry budget had no retry left.
	ErrBudgetExhausted = errors.New("retry budget exhausted")
	// ErrOutcomeUnknown: an attempt of an operation that must not be
	// repeated blindly (an exec not marked idempotent) failed in a way
	// that may have done the work, so it was not repeated.
	ErrOutcomeUnknown = errors.New("outcome unknown and the call is not idempotent")
)

// Error is returned when the retry layer gives up on a call: after more
// than one attempt, or when it stopped retrying an error it would have
// retried (no attempts, time or budget left, or the caller's context was
// done). An error that is not retryable on the first attempt is returned as
// it is.
//
// Error keeps the last attempt's error: Unwrap returns it, so errors.Is
// with the contract's sentinels, errors.As to *contract.DriverError,
// contract.IsRetryable and contract.RetryAfter see the last cause.
// errors.Is also matches Reason, so errors.Is(err, retry.ErrMaxAttempts)
// and errors.Is(err, context.DeadlineExceeded) tell why retrying stopped;
// once the caller has cancelled, errors.Is(err, context.Canceled) holds and
// contract.IsRetryable is false, whatever the last cause.
type Error struct {
	// Attempts is the number of calls made, the first one included.
	Attempts int
	// Err is the last attempt's error.
	Err error
	// Reason is why no further attempt was made: ErrMaxAttempts,
	// ErrMaxElapsedTime, ErrDeadline, ErrBudgetExhausted,
	// ErrOutcomeUnknown, or the caller's
	// context error. It is nil when the last error was not retryable.
	Reason error
}

// Error returns "gave up after N attempts (reason): last error".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("gave up after ")
	b.WriteString(strconv.Itoa(e.Attempts))
	if e.Attempts == 1 {
		b.WriteString(" attempt")
	} else {
		b.WriteString(" attempts")
	}
	if e.Reason != nil {
		b.WriteString(" (")
		b.WriteString(e.Reason.Error())
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the last attempt's error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target matches the reason retrying stopped.
func (e *Error) Is(target error) bool {
	return e.Reason != nil && errors.Is(e.Reason, target)
}
