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
// [contract.LogStreamer] and the sandbox operations [contract.Executor],
// [contract.FileCopier] and [contract.StatsReader] (see Sandbox).
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
//	ExecContainer       the handler's result (see Sandbox)      CONTAINER_NOT_FOUND; CONTAINER_START
//	CopyToContainer     files into its memory (see Sandbox)     CONTAINER_NOT_FOUND; FILE_SYSTEM
//	CopyFromContainer   a tar of its files (see Sandbox)        CONTAINER_NOT_FOUND; FILE_SYSTEM
//	ContainerStats      fixed use while running (see Sandbox)   CONTAINER_NOT_FOUND
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
// # Sandbox
//
// ExecContainer runs nothing itself: it checks the options
// (contract.ValidateExecOptions, CONFIGURATION), that the container exists
// (CONTAINER_NOT_FOUND) and runs (else CONTAINER_START, not retryable), and
// calls the handler of [WithExecHandler] (without one, CONFIGURATION), under
// ExecOptions.Timeout when set (TIMEOUT when it passes). Output beyond
// ExecOptions.OutputLimit on either stream fails with RESOURCE_LIMIT.
//
// Each container has an in-memory file system of directories and regular
// files, holding at first "/", "/tmp" and the targets of its mounts.
// CopyToContainer reads the whole tar stream (at most the copy limit of
// [WithCopyLimit], else RESOURCE_LIMIT) before it changes anything, so a
// failed copy leaves nothing; it extracts directories and regular files
// (other entries and names with ".." are refused with CONFIGURATION) into
// dir, which must be a directory (else FILE_SYSTEM), making missing parent
// directories. When the container's root filesystem is read-only, only
// writable mounts take files, as with Docker (else FILE_SYSTEM).
// CopyFromContainer returns a tar of the file or directory at path, named
// from its last element, entries in name order (FILE_SYSTEM when it does
// not exist). Files live with the container: a volume's files are not
// shared with other containers. [Driver.ReadFile] and [Driver.WriteFile]
// give exec handlers the files.
//
// ContainerStats reports [DefaultMemoryBytes] and one process for a
// running container, or what [Driver.SetStats] set, and no use for one that
// does not run; the memory limit of its config; OOMKilled as SetStats set
// it.
//
// # Options and defaults
//
//   - [WithClock]: the clock for every timestamp; default [time.Now].
//   - [WithMaxLogLines]: log lines kept per container; default
//     [DefaultMaxLogLines] (10000).
//   - [WithExecHandler]: what runs an exec's command; default none.
//   - [WithCopyLimit]: bytes of one tar stream; default
//     contract.DefaultCopyLimit (256 MiB).
package memdriver
