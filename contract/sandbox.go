package contract

import (
	"context"
	"io"
	"path"
	"time"
)

// Executor is implemented by drivers that can run a command in a running
// container, as the container's user, with its output apart and its exit
// code.
//
// A non-zero exit code is a result, not an error: the error is for a
// command that could not be run or whose result could not be read. An
// exec is not idempotent: the retry middleware never repeats one after an
// attempt whose outcome is unknown (the command may have run and the
// answer been lost) unless [ExecOptions].Idempotent says it may
// ([RecoverIfIdempotent]).
type Executor interface {
	ExecContainer(ctx context.Context, id string, opts ExecOptions) (ExecResult, error)
}

// FileCopier is implemented by drivers that move files into and out of a
// container as tar streams, in the form the Docker API has them.
//
// CopyToContainer extracts the tar stream into the directory dir of the
// container, which must exist; entries are relative to dir and may not
// leave it. It reads the stream to its end or to the driver's copy limit
// (see [DefaultCopyLimit]): a longer stream fails with RESOURCE_LIMIT, and
// what was extracted before may remain. Copying the same tar to the same
// place again gives the same files, so the call may be repeated; the retry
// middleware repeats it only when the stream can be read again (it is an
// [io.Seeker]).
//
// CopyFromContainer returns a tar stream of the file or directory at path,
// whose entries are named from path's last element, as "docker cp" does.
// The stream ends with a RESOURCE_LIMIT error after the driver's copy
// limit. The caller must close it; it ends when ctx is done.
//
// Paths are absolute and clean, inside the container. A path that does
// not exist fails with FILE_SYSTEM.
type FileCopier interface {
	CopyToContainer(ctx context.Context, id, dir string, tarStream io.Reader) error
	CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error)
}

// StatsReader is implemented by drivers that report what a container uses
// now.
type StatsReader interface {
	ContainerStats(ctx context.Context, id string) (ContainerStats, error)
}

// Bounds of the sandbox operations: output and copies are capped so that
// an answer of any size fails clearly instead of exhausting memory.
const (
	// DefaultExecOutputLimit is the cap on each of an exec's stdout and
	// stderr when [ExecOptions].MaxOutput is zero: 1 MiB.
	DefaultExecOutputLimit int64 = 1 << 20
	// MaxExecOutputLimit is the largest [ExecOptions].MaxOutput: 64 MiB.
	MaxExecOutputLimit int64 = 64 << 20
	// MaxExecStdin is the largest [ExecOptions].Stdin: 16 MiB.
	MaxExecStdin = 16 << 20
	// DefaultCopyLimit is the default cap of drivers on the bytes of one
	// tar stream, copied in or out: 256 MiB.
	DefaultCopyLimit int64 = 256 << 20
	// MaxPathLen is the longest path a copy or an exec's working
	// directory may name, in bytes (Linux's PATH_MAX).
	MaxPathLen = 4096
)

// ExecOptions say what [Executor].ExecContainer runs and how.
type ExecOptions struct {
	// Command is the program and its arguments; required. It is run
	// directly, not through a shell: the program is found in the
	// container's PATH when it has no '/'.
	Command []string
	// Env is added to the container's environment for this command; its
	// names and values follow the rules of ContainerConfig.Env.
	Env map[string]string
	// WorkingDir is the directory the command runs in, an absolute clean
	// path; "" means the container's working directory.
	WorkingDir string
	// Stdin is the command's standard input, given whole so that a
	// repeated attempt sends it again; nil means none (the command reads
	// end of file). At most [MaxExecStdin] bytes.
	Stdin []byte
	// MaxOutput caps each of stdout and stderr, in bytes; 0 means
	// [DefaultExecOutputLimit], and it may be at most
	// [MaxExecOutputLimit]. A command that writes more fails the call
	// with RESOURCE_LIMIT (not retryable), and the driver stops reading
	// its output. There is no unlimited setting: the result is held in
	// memory.
	MaxOutput int64
	// Timeout is how long the command may take; 0 means no bound of its
	// own. The timeout middleware adds it to ExecContainer's timeout, as
	// it adds a stop's grace period, and drivers stop waiting for the
	// command after it and fail the call with TIMEOUT. Engines cannot
	// kill an exec'd process by itself, so the command may still run.
	Timeout time.Duration
	// Idempotent says that running the command twice has the effect of
	// running it once (a read, "mkdir -p"), so the retry middleware may
	// repeat it after an attempt whose outcome is unknown. Default false:
	// never repeated then.
	Idempotent bool
}

// OutputLimit returns the cap on each output stream: MaxOutput, or
// [DefaultExecOutputLimit] when it is zero or less.
func (o ExecOptions) OutputLimit() int64 {
	if o.MaxOutput <= 0 {
		return DefaultExecOutputLimit
	}
	return o.MaxOutput
}

// ExecResult is what a command run by [Executor].ExecContainer did.
type ExecResult struct {
	// ExitCode is the command's exit status: 0 for success, 128+n for a
	// command killed by signal n, as a shell reports it.
	ExitCode int
	// Stdout is what the command wrote to its standard output.
	Stdout string
	// Stderr is what the command wrote to its standard error, apart from
	// Stdout.
	Stderr string
}

// ContainerStats is what a container uses, as [StatsReader] reports it.
// A container that does not run uses nothing: its usage fields are zero.
type ContainerStats struct {
	// MemoryBytes is the memory the container uses now, page cache that
	// the kernel can reclaim left out, as "docker stats" shows it.
	MemoryBytes int64
	// MemoryLimitBytes is the memory limit the engine applies; 0 when it
	// reports none.
	MemoryLimitBytes int64
	// PIDs is the number of processes and threads in the container now.
	PIDs int64
	// CPUTime is the CPU time the container's processes have used since
	// it started, in all cores; two readings give the CPU use between
	// them.
	CPUTime time.Duration
	// OOMKilled reports whether the kernel killed a process of the
	// container for using more memory than its limit, as the engine last
	// recorded it.
	OOMKilled bool
	// Read is when the engine took the reading; zero when unknown.
	Read time.Time
}

// ValidateExecOptions checks opts against the rules of [ExecOptions]: a
// command with a non-empty program and every argument valid UTF-8 without
// NUL, env as ContainerConfig.Env, a working directory as
// [ValidateContainerPath] checks a path, stdin and the output cap within
// their bounds, and a timeout that is not negative. It returns nil or a CONFIGURATION error with every issue.
func ValidateExecOptions(opts ExecOptions) error {
	var is issues
	switch {
	case len(opts.Command) == 0:
		is.add("command", "Required: the program to run and its arguments")
	case opts.Command[0] == "":
		is.add("command.0", "the program must not be empty")
	}
	checkArgs(&is, "command", opts.Command)
	checkEnv(&is, "env", opts.Env)
	if opts.WorkingDir != "" {
		checkContainerPath(&is, "workingDir", opts.WorkingDir)
	}
	if len(opts.Stdin) > MaxExecStdin {
		is.add("stdin", "must be at most %d bytes", MaxExecStdin)
	}
	switch {
	case opts.MaxOutput < 0:
		is.add("maxOutput", "Number must be greater than or equal to 0")
	case opts.MaxOutput > MaxExecOutputLimit:
		is.add("maxOutput", "Number must be less than or equal to %d", MaxExecOutputLimit)
	}
	if opts.Timeout < 0 {
		is.add("timeout", "must not be negative")
	}
	return is.err("exec options")
}

// ValidateContainerPath checks a path inside a container that a copy
// names: absolute, clean (as path.Clean leaves it), valid UTF-8 without
// NUL (engines take paths in JSON, which cannot carry other bytes) and at
// most [MaxPathLen] bytes. It returns nil or a CONFIGURATION error.
func ValidateContainerPath(p string) error {
	var is issues
	checkContainerPath(&is, "path", p)
	return is.err("container path")
}

func checkContainerPath(is *issues, at, p string) {
	if p == "" {
		is.add(at, "Required: an absolute path inside the container")
		return
	}
	if !checkText(is, at, p) {
		return
	}
	switch {
	case len(p) > MaxPathLen:
		is.add(at, "must be at most %d bytes", MaxPathLen)
	case !path.IsAbs(p):
		is.add(at, "must be an absolute path")
	case path.Clean(p) != p:
		is.add(at, "must be a clean path (no \".\" or \"..\" elements, repeated or trailing '/')")
	}
}
