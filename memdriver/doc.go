// Package memdriver is an in-memory container driver: the reference
// implementation of [contract.ContainerDriver], with the semantics a real
// engine has and no daemon. It runs no processes. Use it to test code that
// takes a driver, and to test middleware; it passes the conformance suite
// of package drivertest.
//
//	d := memdriver.New()
//	inst, err := d.CreateContainer(ctx, contract.NewContainerConfig("session-1", "alpine:3.20"))
//
// A [*Driver] is safe for concurrent use. It also implements
// [contract.LogStreamer].
//
// # Semantics
//
// Statuses and states follow [contract.StateOf]. Methods that take a
// container ID also accept the container's name, as Docker does.
//
//	Method              Effect                                  Errors
//	CreateContainer     new container: status created,          CONFIGURATION: config fails
//	                    state terminated                        contract.ValidateContainerConfig
//	                                                            NETWORK_NOT_FOUND: unknown network
//	StartContainer      created/stopped/exited -> running,      CONTAINER_NOT_FOUND
//	                    StartedAt set; running: no-op
//	StopContainer       running -> stopped (terminated),        CONTAINER_NOT_FOUND
//	                    at once; otherwise no-op
//	RemoveContainer     removes it in any status (running:      CONTAINER_NOT_FOUND
//	                    killed first, like "docker rm -f")
//	GetContainer        the container, or nil, nil              -
//	ListContainers      matches of contract.ContainerFilter,    -
//	                    in creation order, never nil
//	GetContainerLogs    output so far (see Logs)                CONTAINER_NOT_FOUND
//	StreamContainerLogs output as a stream (see Logs)           CONTAINER_NOT_FOUND
//	HealthCheck         healthy, Version, uptime, counts        -
//	IsContainerHealthy  true iff status running                 CONTAINER_NOT_FOUND
//	CreateVolume        new volume, or the existing one of      CONFIGURATION; VOLUME_CREATION
//	                    that name                               (name taken by another driver)
//	RemoveVolume        removes it (by ID or name)              VOLUME_NOT_FOUND; VOLUME_REMOVE
//	                                                            (mounted by a container)
//	CreateNetwork       new network                             CONFIGURATION; NETWORK_CREATION
//	                                                            (name taken)
//	RemoveNetwork       removes it (by ID or name)              NETWORK_NOT_FOUND; NETWORK_REMOVE
//	                                                            (container attached, built-in)
//
// Every method of the contract first checks its context: when it is already done, the method
// does nothing and returns a TIMEOUT *contract.DriverError that is not
// retryable and wraps ctx.Err(), so errors.Is(err, context.Canceled) or
// errors.Is(err, context.DeadlineExceeded) holds. Errors that trying again
// cannot fix are not retryable even where the code's default is (a taken
// name with VOLUME_CREATION or NETWORK_CREATION). Not-found errors carry the
// ID they were asked for.
//
// # Containers
//
// IDs are 64 random hex digits. The name is "resilient-<session>-<first 12
// digits of the ID>", where characters of the session ID that a Docker
// container name cannot hold become '-' and the session part is cut to 64
// bytes. The endpoint is "memory://<name>"; nothing listens there.
// Resources are the limits of the config, which the driver takes as
// applied. Labels are copied in and out: changing the config's map after
// the call, or a returned map, changes nothing in the driver. Command and
// Env are validated, but nothing runs: a container runs until it is
// stopped or removed, or until [Driver.Exit] simulates its process ending
// (status exited).
//
// A config's network "" means [DefaultNetwork] ("bridge"). The networks
// "bridge", "host" and "none" always exist and cannot be removed. Any other
// network must have been created (by name or ID) or the create fails with
// NETWORK_NOT_FOUND, not retryable. Docker's API accepts such a create and
// fails only at start; failing at once is clearer, and the bundled Docker
// driver does the same. Bind mounts are accepted as they are. A volume
// mount of a volume that does not exist creates it with driver "local" and
// no labels, as Docker does; it stays when the container is removed.
//
// # Idempotency
//
// When the context of CreateContainer, CreateVolume or CreateNetwork carries
// a key (contract.WithIdempotencyKey) that an earlier successful create of
// the same kind used, and that create's resource still exists, the driver
// returns that resource and makes nothing, whatever the new config says:
// the key, not the config, identifies the logical call. Once the resource
// is removed, the key is free again. Without a key every CreateContainer
// makes a new container.
//
// # Volumes and networks
//
// A volume's ID is its name, as in Docker; its mountpoint is
// "/memdriver/volumes/<name>/_data" and its driver "local" unless the config
// names one. Creating a volume whose name exists returns the existing
// volume with its original labels (Docker's behaviour); naming a different
// driver fails with VOLUME_CREATION, not retryable. Networks get random
// 64-digit hex IDs and driver "bridge" unless the config names one;
// creating a network whose name exists fails with NETWORK_CREATION, not
// retryable. Both are removed by ID or name, and neither can be removed
// while a container in any status (not only a running one) uses it.
//
// # Logs
//
// Starting a container logs "memdriver: started <image>"; stopping it logs
// "memdriver: stopped"; [Driver.Exit] logs "memdriver: exited".
// [Driver.WriteLog] adds output as if the process had written it. Logs
// interleave stdout and stderr in write order, keep the last
// [DefaultMaxLogLines] lines (see [WithMaxLogLines]), and are kept across
// restarts until the container is removed. Since ([contract.LogOptions]) drops lines
// stamped before it, then Tail keeps the last lines; Timestamps prefixes
// each line with its time in RFC 3339 with nanoseconds, UTC, and a space,
// as Docker does.
//
// [Driver.StreamContainerLogs] follows the output (Follow is implied): the
// stream ends with io.EOF once the container does not run (created,
// stopped, exited, removed) and every line is delivered; it returns
// ctx.Err() when ctx is done and an error after Close. It starts no
// goroutine. GetContainerLogs ignores Follow and returns the output so far.
//
// # Health
//
// HealthCheck is always healthy. Uptime is the time since [New] on the
// driver's clock ([WithClock]); Running counts containers in state running
// and Stopped all others, so Total = Running + Stopped.
//
// # Options and defaults
//
//   - [WithClock]: the clock for every timestamp; default [time.Now].
//   - [WithMaxLogLines]: log lines kept per container; default
//     [DefaultMaxLogLines] (10000).
package memdriver
