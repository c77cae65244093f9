// Package middleware composes behaviour around a contract.ContainerDriver.
//
// A [Middleware] wraps a driver in another. [Chain] composes middlewares,
// first outermost. [Intercept] turns an [Interceptor], a function of
// (ctx, call, next), into a Middleware: the adapter implements the driver's
// methods once, describes each call with a [Call] (operation, resource ID,
// config) and hands the interceptor an [Invoker] that continues the call.
// Every policy of this module (validation, retry, breaker, rate limit,
// tracing) is an interceptor, and every wrapper keeps the optional
// interfaces of what it wraps, such as contract.LogStreamer.
//
// # Order
//
// In Chain(a, b)(d), a call runs a's code before b's, and b's before d.
// An interceptor that calls next more than once (retry) runs everything
// after it again on every attempt: in Chain(retry, breaker) each attempt
// passes the breaker; in Chain(breaker, retry) the breaker sees one result
// per logical call. resilient.Wrap builds the recommended order.
package middleware
