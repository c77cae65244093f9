// Package dockerdriver is a [contract.ContainerDriver] backed by a Docker
// daemon through github.com/docker/docker/client. It negotiates the API
// version and works with any daemon from API 1.41 (Docker 20.10, Debian's
// docker.io) up. It also implements [contract.LogStreamer] and the sandbox
// operations [contract.Executor], [contract.FileCopier] and
// [contract.StatsReader] (see Sandbox).
//
//	d, err := dockerdriver.New() // DOCKER_HOST, else the default socket
//	if err != nil { ... }
//	defer d.Close()
//	c, err := d.CreateContainer(ctx, contract.NewContainerConfig("session-1", "alpine:3.20"))
//
// The driver checks every config it gets ([contract.ValidateContainerConfig]
// and friends) but applies no security policy: wrap it with the validation
// middleware for that, and with the retry, breaker and rate-limit
// middleware for resilience.
//
// # Options and defaults
//
//   - [WithHost]: the daemon address; default the environment (DOCKER_HOST,
//     DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), else unix:///var/run/docker.sock.
//   - [WithClient]: a client of the caller's, which Close leaves open.
//   - [WithLabelPrefix]: "io.resilientdriver".
//   - [WithPullPolicy]: [PullIfMissing].
//   - [WithRegistryAuth]: none; credentials per registry.
//   - [WithDiskPolicy]: [DiskEnforce].
//   - [WithLogLimit]: 4 MiB.
//   - [WithCopyLimit]: contract.DefaultCopyLimit, 256 MiB.
//   - [WithDefaultStopTimeout]: 10s.
//   - [WithClock]: time.Now.
//
// # Ownership and labels
//
// Everything the driver creates carries labels under its prefix P
// (default "io.resilientdriver"):
//
//	P.managed          "true"; the driver sees only resources that have it
//	P.session          the container's session ID
//	P.idempotency-key  the idempotency key of the create, when there was one
//	P.disk-mb          the disk limit applied, in MB (0 when none)
//	P.image            the image reference as the create gave it
//	P.label-keys       the keys of the caller's labels, as a JSON list
//	P.request-hash     on a container, a hash of the create request that
//	                   made it (see "Idempotent create")
//	P.create-id        on a volume, a random id of the create that made it:
//	                   the engines answer a create of a name in use with the
//	                   volume they have, so it tells which create made it
//
// Callers may not set labels under P (CONFIGURATION error). ListContainers,
// GetContainer, HealthCheck counts and the reaper consider only managed
// resources; every operation by id treats a resource without P.managed as
// absent (NOT_FOUND, or nil from GetContainer). An instance's Labels are
// the labels given at create: the driver's own and those inherited from the
// image are left out.
//
// # Container config
//
//	sessionId               label P.session; part of the container name
//	image                   Config.Image, pulled per the pull policy
//	command                 Config.Cmd (the image's entrypoint stays)
//	env                     Config.Env, sorted by name
//	labels                  Config.Labels, plus the driver's labels
//	resources.cpu           HostConfig.NanoCPUs = cpu * 1e9; 0 means no CPU limit
//	resources.memory        HostConfig.Memory = memory MB in bytes, and
//	                        MemorySwap = Memory, so swap cannot bypass the limit
//	resources.pids          HostConfig.PidsLimit
//	resources.disk          see "Disk limit"
//	volumes (type volume)   HostConfig.Mounts type volume; a volume the engine
//	                        creates on the fly gets the managed and session labels
//	volumes (type bind)     HostConfig.Mounts type bind; the source must exist
//	volumes[].readOnly      Mount.ReadOnly
//	network                 HostConfig.NetworkMode; "" is the default bridge
//	security.readOnly       HostConfig.ReadonlyRootfs
//	security.noNewPrivileges HostConfig.SecurityOpt "no-new-privileges=true"
//	security.user           Config.User; "" is the image's user
//	security.capabilities   HostConfig.CapDrop and CapAdd, as "ALL" or "CAP_NAME"
//
// Containers are named "resilient-<session>-<random>" (the session reduced
// to [a-zA-Z0-9_.-] and 40 characters), or "resilient-k<24 hex digits>"
// derived from the idempotency key, see "Idempotent create".
//
// After the create, the driver fails closed: when the daemon returns
// warnings (its way of saying that it dropped a setting, e.g. a limit the
// kernel cannot enforce), or when the CPU, memory, swap, pids, read-only,
// security option, capability, user, /tmp or quota settings read back
// differ from what was asked, the container is removed and the create fails
// with RESOURCE_LIMIT naming what was dropped.
//
// # Disk limit
//
// The contract asks for a disk limit on every container (disk >= 1 MB). A
// container can write to its root filesystem, its tmpfs mounts and its
// volumes and binds. Volumes and binds are storage the caller chose and are
// not bounded by the limit. The rule for the rest, under [DiskEnforce]:
//
//   - security.readOnly = true: the root filesystem cannot be written. The
//     container gets a tmpfs at /tmp of exactly resources.disk MB (options
//     rw,nosuid,nodev,noexec,mode=1777), unless a volume or bind is mounted
//     there. tmpfs pages also count against the memory limit.
//   - security.readOnly = false, on an engine whose storage driver has
//     quotas (btrfs, zfs, devicemapper, windowsfilter; overlay2 and vfs on
//     xfs mounted with pquota): HostConfig.StorageOpt {"size": "<disk>M"}
//     bounds the writable layer. An engine that refuses the quota at create
//     gives RESOURCE_LIMIT.
//   - security.readOnly = false, on an engine without quotas (overlay2 on
//     ext4, the common case): refused with RESOURCE_LIMIT before anything is
//     created, since the writable root could grow without bound.
//
// [DiskAllowUnboundedRoot] accepts the last case, with no disk limit, and
// reports Resources.Disk = 0 for such a container. The limit is never
// silently ignored.
//
// # Idempotent create
//
// When the context carries a key ([contract.WithIdempotencyKey]), the
// container is named from a hash of the label prefix and the key, and
// labelled with the key. A create that finds the name taken inspects the
// holder: when it is managed and has the same key and session, it is the
// container of an earlier attempt (whose response was lost); otherwise the
// create fails with a CONTAINER_CREATION error that is not retryable. The
// holder is returned only after the checks of a new container (see
// "Container config"; the engine's warnings went with the lost response,
// the settings read back remain). A holder that fails them is refused:
// when it was made from the same request (P.request-hash), it is removed
// and the create fails with RESOURCE_LIMIT, as the first attempt would
// have; when a create with the key and another config made it, it is left
// as it is and the create fails with CONTAINER_CREATION, not retryable.
// When the holder disappears meanwhile, the create is tried again.
// Concurrent creates with one key therefore make one container. The same
// holds for volumes and networks by name (their names are the caller's).
//
// A create whose answer does not come (its context ends, or the connection
// breaks, after the request was sent) may still have made its container.
// Without a key, nothing could find that container again: the driver
// returns the error at once and, beside the caller, waits for the name as
// above, up to 3s, and removes the container (Close waits for that); one
// the engine makes later is
// left to the reaper. So is the container of a create whose key is its
// own (contract.WithOwnIdempotencyKey, as the retry middleware sets them)
// when its context ends for good: there is no next attempt to ask for it.
// One ended by a retryable cause, as the timeout middleware's bound of an
// attempt, stays for the next attempt, which adopts it. With any other key, the container stays, as
// does one whose settings could not be read back: a concurrent create with
// the key may have made or adopted it, and the key's next create (the
// retry middleware's next attempt) checks and returns it.
//
// # Status mapping
//
// The contract's status and state come from Docker's State.Status:
//
//	Docker      status                 state
//	created     created                terminated
//	running     running                running
//	restarting  running                running
//	paused      paused                 running
//	removing    removing               terminated
//	exited      stopped or exited      terminated
//	dead        dead                   error
//	(other)     dead                   error
//
// Docker does not record why a container exited. It counts as "stopped"
// when this driver asked it to stop since it last started, or when its exit
// code is 143 (SIGTERM) or 137 (SIGKILL) and it was not killed for lack of
// memory; otherwise it "exited" by itself. A container stopped by another
// driver instance whose process handles SIGTERM and exits 0 therefore shows
// as "exited" there. A restarting container (only possible with a restart
// policy set outside this driver) counts as running.
//
// Endpoint is the container's IP address on the first of its networks, by
// name, while it runs; empty otherwise. Resources are read back from the
// daemon (CPU, memory, pids) and from P.disk-mb (disk). StartedAt is zero
// until the container first started.
//
// IsContainerHealthy is true when the container runs (not paused or
// restarting) and, when it has a HEALTHCHECK, its health status is
// "healthy" ("starting" is not).
//
// # Stop and remove
//
// StopContainer calls the daemon's stop with the grace period
// (StopOptions.Timeout, zero meaning the driver's default, rounded up to
// whole seconds): the image's stop signal (SIGTERM by default), then SIGKILL
// when the period is over; the call returns once the container has exited.
// Force sends SIGKILL at once and waits until the container no longer runs.
// API 1.41 ignores a stop signal given with the stop request, so the driver
// never sends one. Stopping a container that does not run succeeds.
//
// A stop needs its context to outlive the grace period. When ctx has a
// deadline that leaves less than the grace period plus 2s, the grace period
// is cut to fit (whole seconds), so the container is still stopped, by
// SIGKILL if need be, before the deadline; with less than 3s left, it is
// killed at once. A negative timeout is a CONFIGURATION error.
//
// RemoveContainer force-removes: a running container is killed, then
// removed with its anonymous volumes. Named volumes stay. When another
// removal of the container is under way (a second caller's, or that of an
// attempt whose answer was lost), Docker refuses the remove as already in
// progress; RemoveContainer then waits, within ctx, until the container is
// gone and succeeds, instead of failing with CONTAINER_REMOVE, which is not
// retryable.
//
// # Logs
//
// GetContainerLogs demultiplexes Docker's stream itself, so stdout and
// stderr come back interleaved in their original order, without frame
// headers. Tail 0 means all lines; Since and Timestamps are passed to the
// daemon. Output beyond the log limit is cut and followed by the line
// "[log truncated: output exceeds the limit of N bytes; ...]".
// StreamContainerLogs always follows, has no limit, and ends the daemon
// request when closed; it starts no goroutine.
//
// # Sandbox
//
// ExecContainer inspects the container (CONTAINER_NOT_FOUND when it is not
// the driver's; CONTAINER_START, not retryable, when it does not run),
// creates an exec instance with the user of the container's config (so a
// command runs as the container does, 65534:65534 with the contract's
// defaults), no terminal, the options' env (sorted) and working
// directory, attaches to it, writes Stdin and closes it, reads stdout and
// stderr apart through the demultiplexer of the logs, each at most
// ExecOptions.OutputLimit (beyond it: RESOURCE_LIMIT, and the connection
// is closed), and reads the exit code from the exec's inspect. When
// ExecOptions.Timeout passes first the call fails with TIMEOUT; the
// process is not killed, which the API cannot do. A lost connection at
// any step is NETWORK, an outcome the retry layer does not repeat.
//
// CopyToContainer checks that dir is a directory of the container (HEAD
// /containers/{id}/archive; Podman would make a missing one), then sends
// the tar stream to the archive endpoint (PUT
// /containers/{id}/archive) through a pipe: the stream is read only while
// the call runs, at most the copy limit (beyond it: RESOURCE_LIMIT, and
// what the engine extracted before stays), and the call returns once the
// stream's current Read has. CopyFromContainer returns the archive
// endpoint's tar stream, which fails with RESOURCE_LIMIT past the copy
// limit. A missing path is FILE_SYSTEM. Docker writes only to the
// container's writable layer and its volumes and binds: with a read-only
// root, copy into a volume; a tmpfs (such as /tmp) is not reached by the
// archive endpoints on Docker (the files would land under it, unseen).
//
// ContainerStats reads the container's state (OOMKilled, and whether it
// runs) and, for a running container, the engine's one-shot stats:
// MemoryBytes is the usage less the inactive page cache, as "docker
// stats" shows it, PIDs the pids cgroup's count, CPUTime the cgroup's
// total CPU usage; MemoryLimitBytes is the limit of the container's
// config. A container that does not run reports no use.
//
// # Errors
//
// Every error is a *contract.DriverError with Op set, ID set when a
// resource is concerned, the contract's retryable flag unless noted, and
// the daemon's error as the cause (so its message is kept). Errors of the
// docker client map as follows, first match wins:
//
//	caller's ctx deadline passed         TIMEOUT, not retryable
//	caller's ctx canceled                the op's code, not retryable
//	other deadline (cerrdefs.IsDeadlineExceeded)  TIMEOUT
//	connection failed (client.IsErrConnectionFailed, net errors,
//	  connection reset or refused, unexpected EOF)  NETWORK (retryable)
//	not found (404) in a create          CONFIGURATION (a plugin or driver
//	                                     it names is missing)
//	not found (404)                      CONTAINER_, VOLUME_ or NETWORK_NOT_FOUND
//	invalid parameter (400), not implemented  CONFIGURATION
//	unauthorized (401)                   AUTHENTICATION
//	forbidden (403)                      AUTHORIZATION
//	resource exhausted                   RESOURCE_LIMIT
//	unavailable (503)                    NETWORK (retryable)
//	conflict (409) and anything else     the op's code
//
// The op's code is CONTAINER_CREATION, CONTAINER_START, CONTAINER_STOP,
// CONTAINER_REMOVE, VOLUME_CREATION, VOLUME_REMOVE, NETWORK_CREATION or
// NETWORK_REMOVE; for GetContainer, ListContainers, GetContainerLogs,
// StreamContainerLogs and IsContainerHealthy, which have none, it is
// DRIVER_HEALTH. Cases decided before or beside that table:
//
//	invalid config, reserved label, unknown filter status/state  CONFIGURATION
//	id that cannot name a resource (empty, longer than 255, outside
//	  [a-zA-Z0-9_.-], starting with '.', '_' or '-', or with "..")
//	                                     the resource's NOT_FOUND, without
//	                                     asking the daemon; GetContainer
//	                                     returns nil, nil
//	resource without the managed label   the resource's NOT_FOUND
//	image missing, pull policy never     CONFIGURATION
//	image the registry does not have     CONFIGURATION
//	registry refused credentials, or
//	  asked for some and none were given AUTHENTICATION
//	registry denied access               AUTHORIZATION
//	network of the config missing        NETWORK_NOT_FOUND (asked before the
//	                                     create; at start if it went since)
//	daemon warnings, settings not applied, writable root without quota,
//	  limits the engine cannot grant (memory below its 6 MB minimum, more
//	  CPUs than it has)                  RESOURCE_LIMIT
//	name taken by another create         CONTAINER_CREATION, not retryable
//	volume or network name taken         VOLUME_ or NETWORK_CREATION, not retryable
//	start refused (403) for a network endpoint an interrupted start left
//	  behind (dockerd stopped mid-start) CONTAINER_START (retryable)
//	volume in use                        VOLUME_REMOVE
//	network in use                       NETWORK_REMOVE
//
// An unreachable daemon is never an error of HealthCheck: it reports
// Status "unhealthy" with Error set. HealthCheck returns an error only
// when the caller cancels it.
//
// # Reaper
//
// [Driver.Reap] removes the managed containers of sessions that are gone or
// that are older than a given age, then the managed volumes and networks no
// container uses that belong to a gone session or are that old. It never
// touches a resource without the managed label.
//
// # Engines
//
// The driver serves Docker (20.10 and up) and Podman (4.3 and up, through
// its Docker-compatible service, e.g. `podman system service`). It learns
// which engine it talks to from the engine's /version (Podman lists a
// component "Podman Engine"), once per driver, at the first create,
// filtered list, network remove or health check; there is no option for
// it. What differs on Podman:
//
//   - Podman reports what it applied in its own spelling. The driver reads
//     each for what it means and still fails closed. CapDrop lists the
//     capabilities of a default set one by one instead of "ALL", relative
//     to a set of Podman's choice (not the one it grants), so it proves
//     nothing by itself: the driver reads the bounding and effective sets
//     of the container's process from Podman's own inspect
//     (/libpod/containers/{id}/json). No dropped capability may be in the
//     bounding set (with ALL dropped: exactly the added ones are), every
//     added one must be, and the effective set must lie within it.
//     SecurityOpt "no-new-privileges" means "no-new-privileges=true".
//     tmpfs options are parsed: the last of each pair (nosuid/suid,
//     nodev/dev, noexec/exec, ro/rw) counts and must be as asked, size=
//     and mode= must be as asked and given once, and only propagation and
//     tmpcopyup may be added. Volumes are read from the container's Mounts
//     (Podman leaves HostConfig.Mounts empty).
//   - On a read-only root, Podman mounts writable tmpfs of no size at /tmp,
//     /var/tmp and /run. The driver mounts read-only tmpfs at /var/tmp and
//     /run (the image's content copied up), so /tmp stays the only
//     writable place, bounded by the disk limit, as on Docker. On both
//     engines a writable tmpfs the driver did not ask for fails the create.
//   - Podman makes the volume a mount names without the labels asked, so
//     the driver creates missing volumes of a create itself, managed and
//     with the session, as Docker would.
//   - Podman removes a network named by its id even while containers use
//     it; the driver names it by its name there, so that a network in use
//     is refused (NETWORK_REMOVE) and the reaper leaves it.
//   - Its error texts differ ("that name is already in use" with status
//     500, "can only kill running containers", "network is being used");
//     they map to the same codes. Its states "stopping" (running) and
//     "stopped" (exited, before Podman cleaned up) map as noted; Podman's
//     status filter knows neither Docker's "restarting" nor "stopping", so
//     there a status filter is applied after mapping only.
//   - Config.Image is the name Podman resolved ("localhost/name:tag"); an
//     instance's Image is the reference given at create (P.image).
//   - HealthCheck reports Version "Podman 4.3.1" (Docker's stays as it
//     reports it, "20.10.24+dfsg1").
//
// Differences the driver does not hide: Podman runs an image's
// HEALTHCHECK with systemd timers, so on a host without systemd a
// container with one never becomes healthy; an added capability is
// effective for a non-root user on Podman, only bounding on Docker;
// Podman accepts a bind source that does not exist and creates it on the
// host (rootful: as root), accepts memory below Docker's 6 MB minimum and
// more CPUs than the host has; it pulls from a plain-HTTP registry only when registries.conf
// marks it insecure.
//
// # Credentials
//
// Registry credentials given with [WithRegistryAuth] are sent only to the
// registry they name, only with a pull, and never appear in an error, a
// label or a log.
package dockerdriver
