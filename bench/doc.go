// Package bench measures the per-call overhead of the resilience chain of
// github.com/resilientdriver/resilient next to failsafe-go and to bare
// gobreaker and x/time/rate, and of the tracing layer with each kind of
// OpenTelemetry provider. It is a separate module so that failsafe-go
// never enters the library's go.mod. See README.md.
package bench
