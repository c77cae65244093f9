package middleware

import "github.com/resilientdriver/resilient/contract"

// Middleware wraps a driver in another that adds behaviour, such as retries
// or tracing, and keeps the optional interfaces (contract.LogStreamer,
// contract.Executor, contract.FileCopier, contract.StatsReader) of what it
// wraps.
type Middleware func(contract.ContainerDriver) contract.ContainerDriver

// Chain composes middlewares into one. The first is the outermost:
// Chain(a, b, c)(d) == a(b(c(d))), so a call passes a, then b, then c,
// then reaches d. With no middlewares, Chain returns d itself. Nil
// middlewares are skipped.
func Chain(mws ...Middleware) Middleware {
	return func(d contract.ContainerDriver) contract.ContainerDriver {
		for i := len(mws) - 1; i >= 0; i-- {
			if mws[i] != nil {
				d = mws[i](d)
			}
		}
		return d
	}
}
