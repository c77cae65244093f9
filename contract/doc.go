// Package contract is the container driver contract: the [ContainerDriver]
// interface, its types and their JSON form, the error codes, validation and
// secure defaults. Drivers implement it; middleware wraps it; nothing in it
// talks to an engine.
//
// It is the Go port of a TypeScript interface package and stays
// wire-compatible with it: JSON field names are the contract's camelCase
// names, timestamps are Unix milliseconds, durations milliseconds, and
// optional fields are omitted when empty. Every type reads a key only when
// it is a field's name to the letter, as JSON.parse and the TypeScript
// types do: a key that differs in case ("ID", "readonly") is ignored like
// any unknown key, where encoding/json alone would read it, even over the
// exact one; of two equal keys the last wins.
//
// # Differences from the TypeScript contract
//
//   - Every method takes a [context.Context] first.
//   - Timestamps are [time.Time] (zero means absent) and durations
//     [time.Duration]; the JSON form converts them. A time is written in
//     Unix milliseconds rounded down, and 0 is read as the zero time, so
//     a nonzero time in the first millisecond of the epoch,
//     1970-01-01T00:00:00Z itself included, is written as 1: a since
//     filter at the epoch never becomes "all output". A duration is written
//     in whole milliseconds rounded away from zero, so that no nonzero
//     duration becomes 0, the default: 1ns to 1ms is 1, 1.2ms is 2, -0.5ms
//     is -1 (a negative stop timeout stays negative, which the Docker
//     driver refuses, rather than becoming the default). A count of
//     milliseconds beyond the range of time.Duration is read as the
//     longest duration of its sign, never wrapped around.
//   - Optional capabilities are optional interfaces, found with a type
//     assertion: [LogStreamer] follows a container's output; the sandbox
//     operations [Executor] (run a command), [FileCopier] (tar streams in
//     and out) and [StatsReader] (memory, pids, CPU time, OOM kills) have
//     their own operations in the table of operations ([Op.Info]), with
//     their retry rules, and their options are checked by
//     [ValidateExecOptions] and [ValidateContainerPath].
//   - One error type, [*DriverError], carries the whole error hierarchy; a
//     sentinel per code (ErrContainerNotFound, ...) matches with errors.Is.
//   - Memory, disk and pids are integers (MB and a count).
//
// # Errors
//
// Every error of a driver or middleware is, or wraps, a *DriverError with a
// [Code] and the contract's retryable flag. Retry logic asks
// [IsRetryable], which is false for anything that is not a *DriverError and
// for cancellation; [RetryAfter] reads a hint that circuit breakers and rate
// limiters set.
//
// # Validation
//
// The Validate functions report every problem at once as a
// [*ValidationError] whose Issues carry zod-style paths ("resources.memory",
// "volumes.0.type"), wrapped in a CONFIGURATION *DriverError.
// [DecodeContainerConfig] checks exactly the contract's zod schema; on top of
// it, [ValidateContainerConfig] applies these semantic rules:
//
//   - sessionId is not empty, at most 128 bytes and printable;
//   - image is a reference in the OCI grammar
//     [domain[:port]/]path[:tag][@digest], of at most [MaxImageRefLen]
//     (520) bytes;
//   - command, when set, is not empty;
//   - env names are not empty, are printable and have no '=';
//   - label keys are not empty and are printable;
//   - every other string the engine receives (a command argument, an env
//     or label value, a mount path) is valid UTF-8 without NUL: the
//     engines' APIs take JSON, as the contract's JSON form is, and JSON
//     cannot carry other bytes (encoding/json writes each as U+FFFD, so the
//     engine would get other text than the one validated), and a NUL ends
//     the C string the engine makes of it. Printable strings are valid
//     UTF-8, and names checked against a pattern are ASCII;
//   - cpu is finite and 0 (no limit) or a whole number of millicores from
//     [MinCPU] (0.001) to [MaxCPU] cores; memory and disk are from 1 to
//     [MaxMemory] and [MaxDisk] MB; pids from 1 to [MaxPIDs]. Within these
//     bounds [EngineLimitsOf] converts every limit exactly to engine units
//     (nanocores, bytes), so no driver rounds a limit to zero or overflows;
//   - a mount's type is "bind", "volume" or empty (bind for an absolute
//     source, volume otherwise); a bind source is an absolute, clean path; a
//     volume source is a volume name; the target is an absolute, clean path
//     other than "/";
//   - network, when set, is a network name;
//   - the user is "uid[:gid]" or "name[:group]";
//   - every capability is "ALL" or a Linux capability name, in any case,
//     with or without "CAP_".
//
// Printable, here and for the label keys of volumes and networks, the
// option keys of networks and the env names of an exec, is [Printable]:
// valid UTF-8 of Unicode graphic characters with U+0020 as the only space,
// so no control, format (bidi override, zero-width), line or paragraph
// separator, private-use or unassigned character and no other space. In an
// id such characters forge log lines, inject terminal escapes or let one
// id pass for another. No input forges or blows up the text of a
// [ValidationError]: an issue names a map key in its path ("env.HOME")
// only when the key is printable and at most 128 bytes, and is at the
// map's path with the key quoted in its message otherwise; a string of
// the input in a message (a mount type, a capability name) is quoted in
// Go syntax, and cut to 64 bytes, when it is not printable or is longer
// than 128 bytes.
//
// Whether a valid config is also safe (no Docker socket mounts, no added
// SYS_ADMIN, non-root user, ...) is a policy decision, made by the
// validation middleware (middleware.Validate), not here.
//
// # Secure defaults
//
// [DefaultSecurityOptions] gives a read-only root filesystem, no new
// privileges, user 65534:65534, every capability dropped and none added.
// [DefaultResourceLimits] bounds every resource (1 core, 512 MB memory,
// 1024 MB disk, 256 processes). The contract's helpers have Go forms that
// start from these: [NewContainerConfig] (createDriverConfig),
// [NewResourceLimits] (createResourceLimits, zero fields take defaults) and
// [NewSecurityOptions] (createSecurityOptions, each loosening is an explicit
// option). A config written as a struct literal gets no defaults: its zero
// resource limits fail validation, and the validation middleware's default
// policy refuses its zero security options, so leaving a field out is never
// silently insecure.
//
// # Idempotency
//
// [WithIdempotencyKey] puts a key on the context of a create; a driver that
// sees the same key again returns the resource it made the first time. The
// retry middleware sets one per logical call, with [WithOwnIdempotencyKey]:
// the key is that call's alone, so a driver may remove what a create made
// when the create's context ends before its answer.
package contract
