// Package kubedriver is a [contract.ContainerDriver] on a Kubernetes
// cluster, through k8s.io/client-go: the engine to move to when one Docker
// host is not enough, behind the same contract, middleware and
// conformance suite. It also implements [contract.LogStreamer] and
// [contract.Executor], but not [contract.StatsReader] or
// [contract.FileCopier] (see "Sandbox operations").
//
//	d, err := kubedriver.New() // KUBECONFIG, else ~/.kube/config, else in-cluster
//	if err != nil { ... }
//	defer d.Close()
//	drv := resilient.Wrap(d)
//	c, err := drv.CreateContainer(ctx, contract.NewContainerConfig("session-1", "resilient-workload:latest"))
//
// The driver checks every config it gets ([contract.ValidateContainerConfig]
// and friends) but applies no security policy: wrap it with the validation
// middleware for that, and with the retry, breaker and rate-limit
// middleware for resilience. It works in one namespace, which must exist,
// and sees only the objects it labelled there.
//
// # Mapping
//
//	contract        Kubernetes
//	container       a Pod with one container ("main"); its id and name are the pod's name
//	volume          a PersistentVolumeClaim (ReadWriteOnce) of the default StorageClass,
//	                or of the StorageClass VolumeConfig.Driver names; id = the claim's name
//	network         a NetworkPolicy over a label: the pods of the network reach each
//	                other and nothing else (ingress from and egress to its pods only,
//	                no DNS); id = the policy's name
//	created         a pod held by the driver's scheduling gate: never scheduled
//	running         the gate removed: the pod is scheduled and its container runs
//	stopped         the pod deleted with the grace period, then made again, gated,
//	                with the stop recorded in annotations
//	exited          a pod that ended by itself (phase Succeeded or Failed;
//	                restartPolicy Never)
//	removed         the pod deleted
//
// A volume or network name that is not a valid Kubernetes object name (a
// DNS subdomain: lower-case) is stored under "resilient-v-<hash>" or
// "resilient-n-<hash>"; its contract name stays in an annotation, and
// removes accept either the id or the name.
//
// # Options and defaults
//
//   - [WithKubeconfig]: the kubeconfig; default the files KUBECONFIG lists,
//     else ~/.kube/config, else the pod's in-cluster service account.
//   - [WithNamespace]: the namespace of the kubeconfig's current context,
//     else the pod's, else "default".
//   - [WithRESTConfig], [WithClientset]: a client of the caller's instead.
//   - [WithLabelPrefix]: "io.resilientdriver".
//   - [WithPullPolicy]: [PullIfMissing] (imagePullPolicy IfNotPresent, even
//     for ":latest").
//   - [WithCPURequestFraction]: 1 (CPU request = CPU limit).
//   - [WithPodPIDsLimit]: 0 (read each node's podPidsLimit).
//   - [WithVolumeSize]: 1024 MB per claim.
//   - [WithStartTimeout]: 2m.
//   - [WithLogLimit]: 4 MiB.
//   - [WithDefaultStopTimeout]: 10s.
//   - [WithClock]: time.Now.
//
// The driver's client has no client-side rate limit (QPS -1: the rate-limit
// middleware is the layer for that), prints no API warnings, and does not
// repeat requests the API server answers with 429, 503 or another 5xx
// with Retry-After, which client-go would do up to ten times: they come
// back at once as retryable errors with the server's Retry-After, for the
// retry and breaker layers to decide. (client-go still repeats a GET whose
// connection broke, after a second, within the call's context.)
//
// # Ownership and labels
//
// With prefix P (default "io.resilientdriver"), everything the driver
// creates carries the label P/managed=true; the driver lists, counts and
// acts only on objects that have it. Kubernetes label values are short and
// restricted, so the contract's strings go into annotations, and labels
// carry hashes for selection:
//
//	label P/managed                 "true"
//	label P/session-hash            32 hex digits of SHA-256 of the session ID
//	label P/idempotency-key-hash    the same of the idempotency key
//	label P/network                 on a pod: the selector value of its network's policy
//	annotation P/session            the session ID
//	annotation P/idempotency-key    the idempotency key of the create
//	annotation P/image              the image reference as given
//	annotation P/labels             the caller's labels, a JSON object
//	annotation P/name               a volume's or network's name as given
//	annotation P/pids               the pids limit verified at create
//	annotation P/created-at         the first pod's creation time, once a pod is made again
//	annotation P/stopped-at         when StopContainer stopped it (its status is "stopped")
//	annotation P/exit-code          the exit code of the last run, when the kubelet reported it
//	annotation P/finished-at        when the last run ended, when the kubelet reported it
//	annotation P/started-at         when the last run started
//	annotation P/logs               output of earlier runs (see Logs)
//	annotation P/creator            a random id of the create that made the pod or took it over
//	annotation P/remake             on a pod a stop or start deletes to make it again: "stop", "start"
//	scheduling gate P/start         holds a created or stopped pod unscheduled
//
// The caller's labels are kept in P/labels and also set as Kubernetes
// labels where key and value are valid label syntax (and the key is not
// under kubernetes.io or k8s.io), so that kubectl and label selectors see
// them; ListContainers uses them for selection and always matches against
// P/labels. Callers may not set labels under P (CONFIGURATION error).
//
// # Container config
//
//	sessionId               annotation P/session, label P/session-hash; part of the pod name
//	image                   the container's image; imagePullPolicy per WithPullPolicy
//	command                 the container's args (the image's entrypoint stays)
//	env                     the container's env, sorted by name
//	labels                  see Ownership and labels
//	resources.cpu           limits.cpu = cpu in millicores exactly; requests.cpu = the
//	                        limit times WithCPURequestFraction, rounded up; 0: no CPU limit
//	resources.memory        limits.memory = requests.memory = memory MB in bytes
//	resources.disk          limits and requests of ephemeral-storage = disk MB in bytes,
//	                        and the size of /tmp under a read-only root (see below)
//	resources.pids          see "Pids limit"
//	volumes (type volume)   a persistentVolumeClaim volume of the volume's claim, which
//	                        must exist (CreateVolume): VOLUME_NOT_FOUND otherwise
//	volumes (type bind)     a hostPath volume of the source on the node the pod runs on
//	volumes[].readOnly      the mount's and the claim source's readOnly
//	network                 label P/network, selected by the network's policy; the policy
//	                        must exist (NETWORK_NOT_FOUND); "" is the namespace's default
//	                        connectivity
//	security.readOnly       readOnlyRootFilesystem; with it an emptyDir of medium Memory and
//	                        sizeLimit = disk at /tmp (unless a mount is there): the only
//	                        writable place, bounded (its pages count against memory)
//	security.noNewPrivileges allowPrivilegeEscalation = !noNewPrivileges
//	security.user           runAsUser and runAsGroup ("uid[:gid]"; Kubernetes takes no
//	                        names: a name is a CONFIGURATION error); runAsNonRoot unless
//	                        uid 0 is asked; "" is the image's user, which must be non-root
//	security.capabilities   capabilities.drop and add, "ALL" or names without "CAP_"
//
// Always, whatever the config: privileged false, seccompProfile
// RuntimeDefault (pod and container), automountServiceAccountToken false,
// enableServiceLinks false, no host network, pid or ipc namespace, no
// shared process namespace, restartPolicy Never, terminationGracePeriodSeconds
// = the default stop timeout, terminationMessagePolicy FallbackToLogsOnError.
// With the defaults of [contract.NewContainerConfig] the pod meets the
// "restricted" Pod Security Standard.
//
// After the create the driver reads the pod back from the API server and
// fails closed: when the limits and requests, the security context, the
// namespaces, the service-account token, the mounts, the restart policy or
// the gate differ from what it asked (an admission plugin or webhook
// changed them), or a container was added, the pod is deleted and the
// create fails with RESOURCE_LIMIT naming what differs. Pods made again by
// a stop or a start are checked the same way, and so is the pod a create
// with an idempotency key returns from an earlier attempt.
//
// # Pids limit
//
// Kubernetes has no per-pod pids field: the kubelet's podPidsLimit applies
// to every pod of its node. The driver reads it from each schedulable
// node's kubelet configuration (/api/v1/nodes/NODE/proxy/configz; cached
// for 30s) and accepts resources.pids only when every node limits a pod to
// at most that many processes. A node without a limit, or with a larger
// one, refuses the create with RESOURCE_LIMIT; its cause holds a
// *contract.ValidationError naming resources.pids. So does a driver that
// cannot read the nodes' configuration: it needs list on nodes and get on
// nodes/proxy, and the API server proxies only to a kubelet on an address
// other than loopback. Since get on nodes/proxy reaches the kubelet's API,
// an operator may rather state the limit with [WithPodPIDsLimit]; the
// driver then trusts it and reads nothing. An instance reports the largest
// node limit as Resources.PIDs: exactly the asked limit on a cluster
// configured with it (podPidsLimit: 256 for the contract's default). The
// limit counts every process of the pod, the sandbox's pause process
// included.
//
// # Idempotent create
//
// With a key ([contract.WithIdempotencyKey]), the pod is named
// "resilient-k" and 24 hex digits of a hash of the label prefix and the
// key, and annotated with the key; without a key, pods are named
// "resilient-<session reduced to [a-z0-9-], at most 40>-<10 random hex
// digits>". A create that finds the name taken (AlreadyExists) reads the
// holder: when it is managed and has the same key and session, it is the
// pod of an earlier attempt (one whose answer was lost, say). It is
// checked as a new pod is (see Container config: an admission webhook may
// have changed it), without the scheduling gate, since it may have been
// started since: a pod that differs is deleted and the create fails with
// RESOURCE_LIMIT, as the first attempt would have. Otherwise the create
// takes it over, updating P/creator to its own id, and returns it. A
// holder of another key or session fails the create with
// CONTAINER_CREATION, not retryable. A holder being deleted is waited
// for, then the create tries again. Volumes and networks are named by the
// caller, and the same rule applies to them: a holder of the same key is
// returned, another one fails the create.
//
// A create that may have made a pod it will not return removes it: when
// the caller's context ends while the pod's create or read-back is in
// flight, when the read-back fails, and, without a key, when the create's
// answer is lost (no retry could find the pod). It deletes the pod only
// while P/creator still names it, on the condition that the pod's
// resourceVersion has not changed since, so that a pod another create of
// the key has taken over stays. It runs past the caller's context, for at
// most 5s: the caller waits for it, and a pod it cannot delete in time is
// left to the reaper. With a key and the caller still
// waiting, the pod of a lost answer is left for the retry.
//
// # Lifecycle
//
// Kubernetes has no "created but not started" pod and no "stop, then start
// again". The driver builds them:
//
//   - CreateContainer makes the pod with the scheduling gate P/start: the
//     scheduler leaves it alone. Status "created".
//   - StartContainer removes the gate (and any stop record) and waits until
//     the container runs, or has already run and exited, bounded by the
//     caller's context and [WithStartTimeout]. It fails clearly instead of
//     waiting when the container cannot run: ErrImageNeverPull,
//     InvalidImageName, CreateContainerConfigError (a root image user under
//     runAsNonRoot, for one), CreateContainerError and a failed exec are
//     CONFIGURATION; ErrImagePull and ImagePullBackOff are CONFIGURATION
//     when the image does not exist, AUTHENTICATION when the registry
//     wants credentials, otherwise CONTAINER_START; requests that exceed
//     the allocatable resources of every node are RESOURCE_LIMIT at the
//     first Unschedulable. Other pending states (a claim not yet bound, a
//     full node) are waited for; at the start timeout the error is
//     CONTAINER_START naming the last reason, at the caller's deadline
//     TIMEOUT. A start that failed leaves the pod ungated (status
//     "created"); the kubelet may still run it later.
//   - StopContainer deletes the pod with the grace period (the kubelet
//     sends SIGTERM, then SIGKILL when it is over, never sooner than 2s),
//     waits until the pod is gone, and makes it again under the same name,
//     gated, with P/stopped-at, P/exit-code, P/finished-at and
//     P/started-at: status "stopped". A stop of a container that does not
//     run succeeds and changes nothing. StartContainer then removes the
//     gate, as after a create.
//   - StartContainer on an exited container deletes its finished pod and
//     makes it again, ungated.
//   - RemoveContainer deletes the pod (grace period 1s when it runs, 0
//     otherwise), by force when it is not gone within the grace period and
//     10s, and returns once it is gone.
//
// A pod made again keeps the first pod's labels, annotations and spec
// (without its node and priority), and its output so far. Before the
// delete, the stop (or start) marks the pod with P/remake. Once the delete
// is sent, waiting and making the pod again run even if the caller's
// context ends (bounded by a minute past the grace period), so an
// interrupted stop does not lose the container. A delete whose outcome is
// unknown (its answer lost: NETWORK or TIMEOUT, or the caller's context
// ended while it was in flight) is taken as possibly done: it is sent
// again until the API server answers, and the pod is waited for and made
// again as after any delete. While this driver stops a container, its
// reads of that container (GetContainer, logs, health) wait for the stop
// rather than see the moment without a pod; another driver instance may
// see the container absent for that moment.
//
// A stop or start that finds the pod being deleted with P/remake (the call
// that deleted it did not finish: its process ended, or the API server
// failed for longer than it waited) finishes the work: StopContainer makes
// the pod again stopped, StartContainer makes it again and starts it.
// Such a pod being deleted by a stop reads as running, so that the retry
// layer, which reads the state before it repeats a stop whose outcome is
// unknown, repeats it. A pod being deleted without P/remake is being
// removed, and is not made again. If the process dies and the pod is gone
// before another stop or start comes, the container is gone.
//
// A stop's grace period is StopOptions.Timeout, zero meaning the default
// (10s), rounded up to whole seconds. When ctx has a deadline that leaves
// less than the grace period plus 5s, the grace period is cut to fit
// (whole seconds); with less than 6s left the stop is a forced one. Force
// uses the shortest grace period the API allows without deleting the pod
// before its container stopped (1s; the kubelet makes it 2s). A negative
// timeout is a CONFIGURATION error.
//
// # Status mapping
//
//	pod                                                    status    state
//	being deleted, container running, or by a stop         running   running
//	  (P/remake "stop")
//	being deleted, otherwise                               removing  terminated
//	gated, without P/stopped-at                            created   terminated
//	gated, with P/stopped-at                               stopped   terminated
//	Succeeded or Failed                                    exited    terminated
//	Running, container running or starting                 running   running
//	Running or Pending, container terminated               exited    terminated
//	Pending (scheduling, pulling, creating the container)  created   terminated
//	Unknown (node lost)                                    dead      error
//
// Endpoint is the pod's IP while it runs. StartedAt is when the current or
// last run started (zero until the first start); CreatedAt is the first
// pod's creation time, to the second as Kubernetes records it. Resources
// are read back from the pod's limits; Resources.PIDs from P/pids.
// IsContainerHealthy is true when the container runs and the pod's Ready
// condition is true: the kubelet's readiness (a readiness probe, when the
// pod has one; the driver adds none, and an image's HEALTHCHECK is not
// used by Kubernetes).
//
// HealthCheck asks /readyz, reads /version (Version is the server's, such
// as "v1.37.2") and counts the managed pods with the status mapping above.
//
// # Logs
//
// The kubelet forgets a pod's output when the pod is deleted, and a stop
// deletes it. So a stop (and a start of an exited container) reads the
// run's output, with timestamps, following it until the container has
// exited, and keeps it in the next pod's annotation P/logs: at most the
// last 128 KiB of all earlier runs (older output is dropped and a line says
// so; the API server allows 256 KiB of annotations per object; output that
// is not UTF-8 is not kept exactly). GetContainerLogs returns the kept
// output followed by the current run's: the kubelet's, always asked with
// timestamps so that both merge and filter exactly, Since to the
// nanosecond (the API takes seconds), Tail over both, and Timestamps
// removed unless asked. Output beyond the log limit is cut and followed by
// the line "[log truncated: output exceeds the limit of N bytes; ...]".
// StreamContainerLogs follows the current run; it ends when the container
// stops (the kubelet ends it within a second of the exit), when ctx is done
// or when the reader is closed.
//
// # Errors
//
// Every error is a *contract.DriverError with Op set, ID set when a
// resource is concerned, the contract's retryable flag unless noted, and
// client-go's error as the cause. API errors map as follows, first match
// wins; "the op's NOT_FOUND" and "the op's code" are from the contract's
// table of operations ([contract.Op.Info]: NotFound and Failure):
//
//	caller's ctx deadline passed                 TIMEOUT, not retryable
//	caller's ctx canceled                        the op's code, not retryable
//	429, 503, 5xx with Retry-After (transport)   NETWORK (504: TIMEOUT), with RetryAfter
//	StatusReasonTimeout, ServerTimeout, client
//	  timeouts                                   TIMEOUT, with RetryAfter when given
//	TooManyRequests, ServiceUnavailable          NETWORK, with RetryAfter when given
//	TLS verification failed                      CONFIGURATION
//	connection refused or broken                 NETWORK
//	Unauthorized (401)                           AUTHENTICATION
//	Forbidden (403) "exceeded quota"             RESOURCE_LIMIT
//	Forbidden (403)                              AUTHORIZATION (Pod Security admission too)
//	NotFound (404) in a create                   CONFIGURATION (the namespace is missing)
//	NotFound (404), Gone (410)                   the op's NOT_FOUND
//	Invalid (422), BadRequest (400), ...         CONFIGURATION
//	AlreadyExists, Conflict (409)                the op's code
//	anything else                                the op's code
//
// Cases decided before or beside the table:
//
//	invalid config, reserved label, unknown filter status/state,
//	  a user name, negative stop timeout           CONFIGURATION
//	id that is not an object name                the op's NOT_FOUND, without asking the
//	                                             API server; GetContainer returns nil, nil
//	object without the managed label             the op's NOT_FOUND
//	network or volume of the config missing      NETWORK_NOT_FOUND, VOLUME_NOT_FOUND
//	pids limit the cluster cannot guarantee      RESOURCE_LIMIT (resources.pids)
//	settings not applied (fail closed)           RESOURCE_LIMIT
//	pod name taken by another create             CONTAINER_CREATION, not retryable
//	volume or network name taken                 VOLUME_ or NETWORK_CREATION, not retryable
//	no such StorageClass, no default StorageClass CONFIGURATION
//	volume a pod mounts                          VOLUME_REMOVE
//	network a pod of the driver is in            NETWORK_REMOVE
//	start failures                               see Lifecycle
//
// An unreachable API server is never an error of HealthCheck: it reports
// Status "unhealthy" with Error set. HealthCheck returns an error only when
// the caller cancels it.
//
// # Sandbox operations
//
// ExecContainer runs the command through the API server's pods/exec
// subresource, in the container "main" of a running pod, without a
// terminal. It speaks SPDY, and WebSocket when the API server refuses the
// SPDY upgrade (client-go's WebSocket client, kubectl's default, leaves a
// heartbeat goroutine running, and logging, for up to 5s after each exec). The command runs
// as the container runs (its runAsUser and runAsGroup: 65534:65534 with
// the contract's defaults), with stdout and stderr read apart and each
// capped at [contract.ExecOptions].OutputLimit: a command that writes more
// ends the stream and fails the call with RESOURCE_LIMIT. The exit code
// comes from the stream's status; a non-zero exit is a result, not an
// error. Stdin, when not nil, is sent and then closed. Timeout bounds the
// wait for the command, after which the call fails with TIMEOUT;
// Kubernetes cannot kill an exec'd process, so it may still run.
//
// Kubernetes' exec takes a command and streams and nothing else: it
// cannot set environment variables or a working directory, and the
// driver cannot do it inside the container without a shell or an env
// program the image may not have. ExecOptions.Env and WorkingDir are
// therefore refused, never dropped: CONFIGURATION, with a
// *contract.ValidationError naming "env" or "workingDir". Set the
// environment in the container's config instead.
//
// Exec errors, beside the table under Errors:
//
//	container not running (created, stopped, exited)   CONTAINER_START, not retryable
//	the runtime cannot start the program (missing,
//	  not executable: "OCI runtime exec failed")      CONTAINER_START, not retryable
//	the container stopped during the exec              CONTAINER_START, not retryable
//	output beyond the cap                              RESOURCE_LIMIT
//	ExecOptions.Timeout passed                         TIMEOUT, retryable
//	the stream broke or failed after it was opened     NETWORK, retryable
//
// TIMEOUT and NETWORK are unknown outcomes: the command may have run and
// its answer been lost, so the retry middleware does not run it again
// unless ExecOptions.Idempotent says it may. An API server that refuses
// the exec with 429 or 503 is NETWORK too: the driver cannot tell from the
// code that the command did not run, and errs on the safe side.
//
// The driver does not implement [contract.StatsReader]. The kubelet
// reports a container's memory and CPU (stats/summary, through the API
// server's node proxy), but its process count comes from cAdvisor, which
// refreshes every 10 to 15 seconds and reads a new container's count as 0
// until then: longer than a stats read may take, and a running container
// reading as running nothing is wrong, not late. A reader that cannot
// report the pids a limit is set on is left out rather than shipped
// half-true.
//
// The driver does not implement [contract.FileCopier]. Kubernetes has no
// copy endpoint: "kubectl cp" runs tar inside the container through exec,
// which needs a tar program in the image, and the workload image and many
// sandbox images (a static binary on a read-only root) have none. A
// driver that copied only into images with tar would break the
// interface's promise on the others; a caller that knows its image has
// tar can stream an archive through ExecContainer's Stdin (up to
// [contract.MaxExecStdin]) itself.
//
// # Reaper
//
// [Driver.Reap] removes the managed pods of sessions that are gone or that
// are older than a given age, then the managed claims and policies older
// than that age that no remaining pod uses. It never touches an object
// without the managed label.
//
// # What differs from Docker
//
//   - A container's id is its pod's name, not a hex id; it stays the same
//     across stops and starts although the pod is made again.
//   - A mount of a volume that does not exist fails (Docker makes it).
//   - A volume or network in use by a stopped container cannot be removed
//     either (Docker refuses only for volumes).
//   - Output of earlier runs is kept up to 128 KiB.
//   - Force stop waits the kubelet's 2s minimum instead of SIGKILL at once.
//   - A writable root filesystem is bounded by the ephemeral-storage limit,
//     which the kubelet enforces by evicting the pod, not by a quota.
//   - NetworkPolicies only act where the cluster's network plugin
//     enforces them; the objects are made either way.
//   - The status "paused" does not occur.
//   - ExecContainer refuses ExecOptions.Env and WorkingDir (CONFIGURATION);
//     there is no CopyToContainer or CopyFromContainer.
//   - There is no ContainerStats (see "Sandbox operations").
package kubedriver
