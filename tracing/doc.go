// Package tracing is the OpenTelemetry middleware of a
// contract.ContainerDriver: one span and one set of measurements per logical
// call, with attributes from a fixed allowlist, so that no secret of a
// container's configuration or of an error's text is ever exported. It
// imports the OpenTelemetry API only; package
// github.com/resilientdriver/resilient/tracing/otlp builds SDK providers that
// export over OTLP, configured by the standard OTEL_* variables.
//
//	tp := sdktrace.NewTracerProvider(...)
//	d := middleware.Chain(
//		tracing.New(tracing.WithTracerProvider(tp)),
//		retry.New(),
//	)(base)
//
// # Order
//
// Outermost, as the package resilient places it and explains: one span
// per logical call, on which the layers inside record their events.
// Placed inside retry it would make one span per attempt.
//
// # Spans
//
// Each call is one span of kind client named "ContainerDriver." followed by
// the operation ([SpanName]), e.g. "ContainerDriver.CreateContainer". The
// span is on the context the wrapped driver receives: layers inside add
// events to it, and spans the driver starts from that context are its
// children. For StreamContainerLogs and CopyFromContainer the span covers
// opening the stream, not reading it.
//
// On success the status is left unset. On failure it is Error with the
// description set to the error.type value (see below) and never to the
// error's text: DriverError messages carry daemon and registry output, which
// may quote a command line or a credential. For the same reason the
// middleware does not call span.RecordError, which would export err.Error()
// as exception.message. The error returned to the caller is the one the
// wrapped driver returned, untouched.
//
// # Attributes
//
// Only these keys are ever set, and only from these sources:
//
//	resilient.op          the operation, e.g. "StartContainer"
//	driver.name           Name() of the wrapped driver
//	driver.version        Version() of the wrapped driver
//	container.id          the container a call concerns; for CreateContainer,
//	                      the new container's ID, once it exists
//	container.image.name  CreateContainer: the image reference, whole (tag and
//	                      digest included), only if it is a valid OCI
//	                      reference; anything else, which could carry
//	                      "user:password@", is left out
//	session.id            CreateContainer: the config's session ID, only if
//	                      it is printable (contract.Printable): an ID with
//	                      controls, bidi overrides or invalid UTF-8 is left
//	                      out, as validation will refuse it anyway
//	volume.id             RemoveVolume; CreateVolume once the volume exists
//	volume.name           CreateVolume: the config's name
//	network.id            RemoveNetwork; CreateNetwork once the network exists
//	network.name          CreateNetwork: the config's name
//	process.exit.code     ExecContainer, on success: the command's exit code
//	resilient.exec.stdout_bytes, resilient.exec.stderr_bytes
//	                      ExecContainer, on success: the sizes of its output
//	resilient.copy.bytes  CopyToContainer: the bytes of the tar stream the
//	                      last attempt read
//	error.type            on failure: the contract code of the first
//	                      *contract.DriverError in the error's chain
//	                      ("CONTAINER_NOT_FOUND", ...), or "_OTHER" for an
//	                      error without one (a bare context error) or with a
//	                      code the contract does not define
//	                      (contract.ErrorType, the one allowlist the retry
//	                      layer's events use too)
//
// Values that come from the caller (IDs, names, session IDs) are recorded
// before validation has run, so they are made valid UTF-8 and cut to 256
// bytes. Env values, label keys and values, command arguments, mounts,
// security options, filters and log options are never read; nor, of the
// sandbox operations, an exec's command, environment, working directory,
// input or output, or the paths and contents of copies: only ids, exit
// codes and sizes. Samplers see
// resilient.op, driver.name and driver.version at span start; the other
// attributes are set only on spans that record.
//
// # Events added by the policies
//
// The policies of this module add events to the call's span through the
// OpenTelemetry API, trace.SpanFromContext(ctx).AddEvent(name, ...), on the
// context they receive, without importing this package. These are the
// conventions; attribute values follow the same secrecy rules (codes, never
// error texts):
//
//	retry                 an attempt failed and another follows:
//	                      retry.attempt (int, the attempt about to be made:
//	                      2 for the first retry), retry.delay_ms (int, the
//	                      wait before it), error.type (the failed attempt's
//	                      code, or "_OTHER")
//	breaker.rejected      an open or half-open breaker refused an attempt:
//	                      breaker.state ("open" or "half-open"),
//	                      breaker.retry_after_ms (int, time until half-open)
//	breaker.state_change  the breaker of the operation changed state:
//	                      breaker.from, breaker.to ("closed", "half-open",
//	                      "open")
//	ratelimit.wait        an attempt waited for a token or a concurrency slot:
//	                      ratelimit.wait_ms (float64)
//	ratelimit.rejected    a limit refused an attempt: ratelimit.reason (a
//	                      fixed text, e.g. "too many calls in flight"),
//	                      ratelimit.retry_after_ms (float64)
//
// Breaker events carry breaker.key too when the breaker splits circuits by a
// key (breaker.WithKey); such keys come from a bounded set the user chooses,
// such as the image reference. A policy may skip its events when the span
// does not record.
//
// # Metrics
//
// The instruments are created once, when [New] runs, on a meter named
// [ScopeName]. Every measurement has the attributes driver.name and
// resilient.op.
//
//	resilient.call.duration         histogram, s: duration of a logical call,
//	                                retries and waits included; with
//	                                resilient.outcome ("ok" or "error") and,
//	                                on error, error.type
//	resilient.call.attempts         histogram, {attempt}: attempts made for a
//	                                logical call; same attributes
//	resilient.breaker.rejections    counter, {call}: calls that ended with
//	                                CIRCUIT_OPEN
//	resilient.ratelimit.rejections  counter, {call}: calls that ended with
//	                                RATE_LIMITED
//	resilient.breaker.circuits      recorded by package breaker, not here
//	resilient.ratelimit.wait        recorded by package ratelimit, not here
//
// Attempts are counted by the retry layer, which calls
// middleware.CountAttempt before each attempt; the count is kept on the span
// this middleware puts on the context ([middleware.WithAttemptCounter]), not
// in a context value of its own, and only while resilient.call.attempts
// records. Without a retry layer every call counts as one attempt, including
// a call that validation refuses.
//
// This layer sees the outcome of a logical call, not the policies' inner
// state: a breaker rejection or rate-limit refusal that a retry absorbed
// shows as an event on the span, not in the rejection counters, and the
// breaker's current state and the time spent waiting for tokens are not
// measured here; they are on the span as breaker.state_change and
// ratelimit.wait events.
//
// # Providers
//
// [WithTracerProvider] and [WithMeterProvider] default to the OpenTelemetry
// globals, read when [New] runs, as otelhttp does. Until a program installs
// its own, the globals are delegating no-ops that forward to the providers
// later passed to otel.SetTracerProvider and otel.SetMeterProvider, so
// installing them after New still takes effect.
//
// To export, build providers with package tracing/otlp and pass them:
//
//	p, err := otlp.NewProviders(ctx)
//	if err != nil { ... }
//	defer p.Shutdown(ctx)
//	d := tracing.New(p.Options()...)(base)
//
// # Cost
//
// The middleware decides once per call what records: a span, unless the
// tracer's provider is a no-op one or the globals' placeholder (no provider
// installed yet) and the caller's span does not record either; the
// duration and attempt histograms, as their instruments' Enabled report.
// When nothing records, as with the no-op providers and the default
// globals, the call goes straight to the wrapped driver: no span is
// started, the clock is not read, no attempt is counted and nothing is
// allocated, 5 to 10ns more than any middleware.Intercept layer in the
// bench module's benchmarks.
package tracing
