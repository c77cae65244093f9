// Package drivertest tests container drivers: [Run] is the conformance
// suite every [contract.ContainerDriver] must pass, [Faulty] wraps a
// driver to inject errors and latency, counted and deterministic, and
// [Stub] is a driver that only counts its calls and fails as told: both
// are for testing the policies that wrap drivers.
//
// The package is for tests; it imports package testing, and only test code
// should import it.
//
// # Conformance suite
//
// Like testing/fstest.TestFS, [Run] takes a factory and runs named
// subtests, "<Method>/<Case>", each against a fresh driver:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, func(t *testing.T) contract.ContainerDriver {
//			return memdriver.New()
//		})
//	}
//
// Run a single case with go test -run 'TestConformance/StopContainer/Force'.
//
// The suite checks, for every method and error contract:
//
//   - CreateContainer: the instance's fields (status created, state
//     terminated, no StartedAt, labels, the applied resources), labels
//     copied in and out, invalid configs refused with a CONFIGURATION error
//     that is not retryable and holds a *contract.ValidationError, an unknown
//     network refused without retry (at create or at start), created
//     networks and volumes usable,
//     idempotency keys (contract.WithIdempotencyKey: the same key returns
//     the same container, one container in all).
//   - StartContainer, StopContainer, RemoveContainer: the lifecycle and its
//     status and state transitions, repeated starts and stops succeeding,
//     removal of containers in any status.
//   - GetContainer (nil, nil when absent), ListContainers (each filter
//     field), GetContainerLogs (output, Tail, Since, Timestamps),
//     HealthCheck (healthy; counts consistent with ListContainers),
//     IsContainerHealthy.
//   - Volumes and networks: create, remove, VOLUME_REMOVE and
//     NETWORK_REMOVE while a running container uses them.
//   - Not-found errors of every method that takes an ID: CONTAINER_NOT_FOUND,
//     VOLUME_NOT_FOUND, NETWORK_NOT_FOUND, none of them retryable.
//   - Canceled: every method called with a cancelled context fails with an
//     error that is not retryable and does nothing. HealthCheck may instead
//     report status unhealthy.
//   - Concurrency: containers created, started and removed from several
//     goroutines at once are neither lost nor duplicated; concurrent creates
//     with one idempotency key make at most one container.
//   - StreamContainerLogs, when the driver implements contract.LogStreamer:
//     the stream delivers output and ends when the container stops, and
//     unblocks on Close and on cancellation. The subtests are skipped for
//     other drivers.
//   - The sandbox operations, each when the driver implements its
//     interface (skipped otherwise): ExecContainer (exit code, stdout and
//     stderr apart, stdin, the output cap as RESOURCE_LIMIT, invalid
//     options, a container that does not run as CONTAINER_START that is
//     not retryable, not found, cancelled), Copy (a tar copied into a
//     volume mounted at /data and read back, by file and by directory;
//     repeated; missing paths as FILE_SYSTEM; invalid paths; not found;
//     cancelled) and ContainerStats (processes and memory of a running
//     container, the memory limit, no use once stopped, not found,
//     cancelled).
//
// What the suite asserts also holds for a real engine: it waits for states
// an engine reaches asynchronously (output to appear, health checks to
// pass, a stopped container to be recorded as stopped or exited) and checks
// log output only for being there, not for its text.
//
// # Resources and safety on a shared engine
//
// Every subtest uses its own random session IDs and volume and network
// names, labels its containers "drivertest.run=<random run ID>", and on
// cleanup removes every container, volume and network it made, then checks
// that ListContainers of its sessions is empty. Several runs may share one
// engine. The suite runs its subtests one at a time; the concurrency tests
// use 8 containers, and stops use a 2 second timeout.
//
// # Options and defaults
//
//   - [WithImage]: the image the containers run; default [DefaultImage]
//     ("resilient-workload:latest"). It must exist for the driver, print at
//     least one line when started and run until stopped. memdriver accepts
//     any valid reference.
//   - [WithCommand]: the containers' command; default the image's own.
//   - [WithExecProgram]: the program the exec subtests run; default
//     [DefaultExecProgram] ("/workload"). [WorkloadExec] emulates it.
//   - [WithTimeout]: a watchdog per subtest; default [DefaultTimeout] (2
//     minutes). A subtest that takes longer fails and its context is
//     cancelled; one that still does not return a minute later panics the
//     test binary with every goroutine's stack.
//
// # Fault injection
//
// [NewFaulty] wraps a driver. [Faulty.Inject] adds a [Fault] for one
// operation: which calls it covers (Nth and Count, counting the calls of
// that operation), the error they return, whether the wrapped driver is
// called first (After: the action happens, its response is lost) and an
// added latency that stops early when the call's context is done.
// [Faulty.Calls] counts the calls of an operation exactly, under any
// concurrency, and [Faulty.Reset] starts over.
//
//	f := drivertest.NewFaulty(memdriver.New())
//	// The first two creates fail as an engine under load would.
//	f.Inject(contract.OpCreateContainer, drivertest.Fault{
//		Count: 2,
//		Err:   contract.NewError(contract.CodeContainerCreation, contract.OpCreateContainer, "", "daemon busy", nil),
//	})
//
// Faulty is built the way the policies it tests are, with
// [middleware.Intercept]: the counting and the rules are one interceptor
// that sees every operation, so it covers each operation of the contract,
// and only those, exactly as a policy does.
//
// # Stub
//
// [NewStub] makes a driver without state: every call is counted
// ([Stub.Calls]) and returns the error of a function of the operation
// ([Stub.SetFunc] replaces it), with fixed results on success.
//
// Stub writes its methods by hand, a line or two each over one counting
// function, rather than sitting on middleware.Intercept: policies' tests
// hold their success paths to zero allocations through a Stub, under the
// race detector as well, where sync.Pool drops pooled call descriptions at
// random, and a Stub on the adapter would add its own share to what they
// measure.
package drivertest
