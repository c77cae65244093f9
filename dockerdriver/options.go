package dockerdriver

import (
	"fmt"
	"regexp"
	"time"

	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"

	"github.com/resilientdriver/resilient/contract"
)

// Defaults of the options.
const (
	// DefaultLabelPrefix is the prefix of the labels the driver puts on what
	// it creates.
	DefaultLabelPrefix = "io.resilientdriver"
	// DefaultLogLimit is the most bytes GetContainerLogs returns: 4 MiB.
	DefaultLogLimit = 4 << 20
	// DefaultStopTimeout is the grace period of StopContainer when
	// StopOptions.Timeout is zero.
	DefaultStopTimeout = 10 * time.Second
)

// PullPolicy says when CreateContainer pulls the image.
type PullPolicy string

// Pull policies.
const (
	// PullIfMissing pulls the image only when the engine does not have it.
	// It is the default. Images built or imported locally work with it.
	PullIfMissing PullPolicy = "if-missing"
	// PullNever never pulls; a missing image is a CONFIGURATION error.
	PullNever PullPolicy = "never"
	// PullAlways pulls before every create, so a moving tag is always
	// current. It needs a registry that has the image.
	PullAlways PullPolicy = "always"
)

// DiskPolicy says how the driver enforces ResourceLimits.Disk. See the
// package documentation, section "Disk limit", for the exact rule.
type DiskPolicy string

// Disk policies.
const (
	// DiskEnforce is the default: the disk limit bounds every writable place
	// the driver controls. A read-only root filesystem gets a tmpfs at /tmp
	// of Disk megabytes; a writable root filesystem gets a storage quota
	// (HostConfig.StorageOpt size) where the engine's storage driver
	// supports one, and is refused with RESOURCE_LIMIT where it does not.
	DiskEnforce DiskPolicy = "enforce"
	// DiskAllowUnboundedRoot is DiskEnforce, except that a writable root
	// filesystem on an engine without storage quotas is accepted with no
	// disk limit. The instance then reports Resources.Disk as 0, the limit
	// actually applied. Choose it knowingly: such a container can fill the
	// engine's disk.
	DiskAllowUnboundedRoot DiskPolicy = "allow-unbounded-root"
)

// Option configures a [Driver]. Options apply in order; the last one of a
// kind wins.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	host          string
	client        *client.Client
	labelPrefix   string
	pullPolicy    PullPolicy
	diskPolicy    DiskPolicy
	auths         []registry.AuthConfig
	logLimit      int64
	copyLimit     int64
	stopTimeout   time.Duration
	now           func() time.Time
	maxConcurrent int
}

func newConfig(opts []Option) (config, error) {
	c := config{
		labelPrefix:   DefaultLabelPrefix,
		pullPolicy:    PullIfMissing,
		diskPolicy:    DiskEnforce,
		logLimit:      DefaultLogLimit,
		copyLimit:     contract.DefaultCopyLimit,
		stopTimeout:   DefaultStopTimeout,
		now:           time.Now,
		maxConcurrent: 8,
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	var problems []contract.Issue
	bad := func(path, format string, args ...any) {
		problems = append(problems, contract.Issue{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if !labelPrefixRE.MatchString(c.labelPrefix) {
		bad("labelPrefix", "must be lower-case letters, digits, '.' and '-', starting and ending with a letter or digit, e.g. %q", DefaultLabelPrefix)
	}
	switch c.pullPolicy {
	case PullIfMissing, PullNever, PullAlways:
	default:
		bad("pullPolicy", "unknown pull policy %q", c.pullPolicy)
	}
	switch c.diskPolicy {
	case DiskEnforce, DiskAllowUnboundedRoot:
	default:
		bad("diskPolicy", "unknown disk policy %q", c.diskPolicy)
	}
	if c.logLimit < 1 {
		bad("logLimit", "must be at least 1 byte")
	}
	if c.copyLimit < 1 {
		bad("copyLimit", "must be at least 1 byte")
	}
	if c.stopTimeout < 0 {
		bad("stopTimeout", "must not be negative")
	}
	if c.host != "" && c.client != nil {
		bad("host", "WithHost and WithClient exclude each other")
	}
	if problems != nil {
		return c, &contract.DriverError{
			Code:    contract.CodeConfiguration,
			Message: "invalid docker driver options",
			Err:     &contract.ValidationError{Issues: problems},
		}
	}
	return c, nil
}

var labelPrefixRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,62}[a-z0-9])?$`)

// WithHost makes the driver talk to the daemon at host, e.g.
// "unix:///var/run/docker.sock" or "tcp://127.0.0.1:2375", instead of the
// one the environment names (DOCKER_HOST, else the default socket). TLS
// settings still come from the environment (DOCKER_TLS_VERIFY,
// DOCKER_CERT_PATH). The API version is negotiated.
func WithHost(host string) Option {
	return optionFunc(func(c *config) { c.host = host })
}

// WithClient makes the driver use cli instead of making its own client. The
// caller keeps ownership: [Driver.Close] does not close it. Give it
// client.WithAPIVersionNegotiation() unless it pins a version the daemon
// supports, and client.WithTraceProvider(noop.NewTracerProvider()): the
// client's own HTTP spans carry full request URLs, label values in list
// filters included, which the tracing middleware never exports. A nil cli
// is ignored.
func WithClient(cli *client.Client) Option {
	return optionFunc(func(c *config) {
		if cli != nil {
			c.client = cli
		}
	})
}

// WithLabelPrefix sets the prefix of the driver's own labels (default
// [DefaultLabelPrefix], "io.resilientdriver"). Drivers with different
// prefixes do not see each other's containers, volumes and networks.
func WithLabelPrefix(prefix string) Option {
	return optionFunc(func(c *config) { c.labelPrefix = prefix })
}

// WithPullPolicy sets when images are pulled (default [PullIfMissing]).
func WithPullPolicy(p PullPolicy) Option {
	return optionFunc(func(c *config) { c.pullPolicy = p })
}

// WithDiskPolicy sets how the disk limit is enforced (default
// [DiskEnforce]).
func WithDiskPolicy(p DiskPolicy) Option {
	return optionFunc(func(c *config) { c.diskPolicy = p })
}

// WithRegistryAuth adds credentials for the registry named by
// auth.ServerAddress ("" or "docker.io" for Docker Hub, otherwise a host
// such as "registry.example.com:5000"). Give it once per registry. A pull
// sends only the credentials of the image's own registry. Credentials are
// never logged and never appear in errors.
func WithRegistryAuth(auth registry.AuthConfig) Option {
	return optionFunc(func(c *config) { c.auths = append(c.auths, auth) })
}

// WithLogLimit caps the output GetContainerLogs returns at n bytes (default
// [DefaultLogLimit], 4 MiB). Longer output is cut at n bytes and followed by
// a line that says so; see the package documentation.
func WithLogLimit(n int64) Option {
	return optionFunc(func(c *config) { c.logLimit = n })
}

// WithCopyLimit caps the bytes of one tar stream that CopyToContainer sends
// or CopyFromContainer returns at n (default contract.DefaultCopyLimit,
// 256 MiB). A longer stream fails with RESOURCE_LIMIT; see the package
// documentation.
func WithCopyLimit(n int64) Option {
	return optionFunc(func(c *config) { c.copyLimit = n })
}

// WithDefaultStopTimeout sets the grace period StopContainer gives a
// container when StopOptions.Timeout is zero (default
// [DefaultStopTimeout], 10s).
func WithDefaultStopTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.stopTimeout = d })
}

// WithClock sets the clock the reaper measures container age with and that
// HealthCheck measures uptime with (default time.Now).
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.now = now
		}
	})
}
