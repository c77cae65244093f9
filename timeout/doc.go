// Package timeout is a middleware that bounds each call of a driver, so
// that an engine that accepts a request and never answers fails the call
// with a retryable TIMEOUT instead of holding it until the caller gives
// up.
//
//	d := timeout.New(30*time.Second, timeout.ForOp(contract.OpGetContainer, 5*time.Second))(base)
//
// A call runs under the earlier of the caller's deadline and the
// operation's timeout from its start, except creates, which may pull an
// image: a create is canceled when it runs for its timeout without
// progress. Progress is what a driver reports with contract.Progress, as
// the Docker driver does for every message of an image pull, and each
// report starts the timeout again: a pull that makes progress is never
// cut by a wall clock, one that stalls is. When the call fails after the
// layer canceled it, while the caller's context is not done, the layer
// returns a *contract.DriverError with code TIMEOUT, retryable, the call's
// Op and ID, a message saying the call made no progress for the timeout,
// and a cause that reads as context.DeadlineExceeded (with the driver's
// error as its text). When the caller's deadline or
// cancellation comes first, the driver's error is returned as it is. A
// call that succeeds is never turned into an error.
//
// # Placement
//
// Innermost, as the package resilient places it and explains: every
// attempt gets its own timeout, and the breaker counts a TIMEOUT like any
// engine failure. No layer needs to know that this one exists.
//
// # What is bounded
//
//   - StopContainer gets the stop's grace period on top of its timeout:
//     StopOptions.Timeout, or [DefaultStopGrace] when that is zero (the
//     drivers' default grace period), or none with Force.
//   - StreamContainerLogs and CopyFromContainer are never bounded: their
//     stream outlives the call, and a deadline would cut it.
//   - ExecContainer gets the command's own ExecOptions.Timeout on top of
//     its timeout, when it has one: the layer bounds the engine, not how
//     long a command runs.
//   - CopyToContainer, like creates, is canceled when it runs for its
//     timeout without progress: every read of its tar stream is progress.
//   - Every other operation, HealthCheck included, gets its timeout.
//
// A timeout of zero or less means none. [ForOp] sets one operation's
// timeout; the last option for an operation wins.
package timeout
