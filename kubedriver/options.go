package kubedriver

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"time"

	"k8s.io/client-go/rest"

	"github.com/resilientdriver/resilient/contract"
)

// Defaults of the options.
const (
	// DefaultLabelPrefix is the prefix of the labels, annotations and the
	// scheduling gate the driver puts on what it creates; keys are
	// "<prefix>/<name>".
	DefaultLabelPrefix = "io.resilientdriver"
	// DefaultLogLimit is the most bytes GetContainerLogs returns: 4 MiB.
	DefaultLogLimit = 4 << 20
	// DefaultStopTimeout is the grace period of StopContainer when
	// StopOptions.Timeout is zero, and the pods' terminationGracePeriodSeconds.
	DefaultStopTimeout = 10 * time.Second
	// DefaultStartTimeout bounds how long StartContainer waits for the pod
	// to run when the caller's context allows longer.
	DefaultStartTimeout = 2 * time.Minute
	// DefaultVolumeSize is the storage a volume's claim requests, in MB.
	DefaultVolumeSize = 1024
	// DefaultCPURequestFraction is the CPU request as a fraction of the CPU
	// limit: 1, so requests equal limits and pods get the Guaranteed QoS
	// class.
	DefaultCPURequestFraction = 1.0
)

// PullPolicy says when the kubelet pulls a container's image.
type PullPolicy string

// Pull policies, as the pod's imagePullPolicy.
const (
	// PullIfMissing is imagePullPolicy IfNotPresent, the default, for every
	// tag including "latest" (where Kubernetes' own default would be
	// Always). Images imported into the nodes' runtime work with it.
	PullIfMissing PullPolicy = "if-missing"
	// PullNever is imagePullPolicy Never: an image the node lacks fails the
	// start with CONFIGURATION (ErrImageNeverPull).
	PullNever PullPolicy = "never"
	// PullAlways is imagePullPolicy Always.
	PullAlways PullPolicy = "always"
)

// Option configures a [Driver]. Options apply in order; the last one of a
// kind wins.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	kubeconfig   string
	namespace    string
	restConfig   *rest.Config
	clientset    Clientset
	labelPrefix  string
	pullPolicy   PullPolicy
	logLimit     int64
	stopTimeout  time.Duration
	startTimeout time.Duration
	volumeSize   int64
	cpuFraction  float64
	podPIDs      int64 // the nodes' pids limit per pod as the operator states it; 0: read it
	now          func() time.Time
	// nodePIDs reads the pids limit of a node's pods; nil reads the
	// kubelet's configuration through the API server. Tests replace it.
	nodePIDs func(ctx context.Context, node string) (int64, error)
}

func newConfig(opts []Option) (config, error) {
	c := config{
		labelPrefix:  DefaultLabelPrefix,
		pullPolicy:   PullIfMissing,
		logLimit:     DefaultLogLimit,
		stopTimeout:  DefaultStopTimeout,
		startTimeout: DefaultStartTimeout,
		volumeSize:   DefaultVolumeSize,
		cpuFraction:  DefaultCPURequestFraction,
		now:          time.Now,
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
		bad("labelPrefix", "must be a DNS subdomain of lower-case letters, digits, '.' and '-' (at most 63 characters), e.g. %q", DefaultLabelPrefix)
	}
	switch c.pullPolicy {
	case PullIfMissing, PullNever, PullAlways:
	default:
		bad("pullPolicy", "unknown pull policy %q", c.pullPolicy)
	}
	if c.logLimit < 1 {
		bad("logLimit", "must be at least 1 byte")
	}
	if c.stopTimeout < 0 {
		bad("stopTimeout", "must not be negative")
	}
	if c.startTimeout <= 0 {
		bad("startTimeout", "must be positive")
	}
	if c.volumeSize < 1 || c.volumeSize > contract.MaxDisk {
		bad("volumeSize", "must be from 1 to %d MB", contract.MaxDisk)
	}
	if c.podPIDs < 0 || c.podPIDs > contract.MaxPIDs {
		bad("podPIDsLimit", "must be from 1 to %d", contract.MaxPIDs)
	}
	if math.IsNaN(c.cpuFraction) || c.cpuFraction <= 0 || c.cpuFraction > 1 {
		bad("cpuRequestFraction", "must be greater than 0 and at most 1")
	}
	if c.namespace != "" && !dns1123Label.MatchString(c.namespace) {
		bad("namespace", "must be a DNS label: at most 63 lower-case letters, digits and '-'")
	}
	sources := 0
	for _, set := range []bool{c.kubeconfig != "", c.restConfig != nil, c.clientset != nil} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		bad("kubeconfig", "WithKubeconfig, WithRESTConfig and WithClientset exclude each other")
	}
	if problems != nil {
		return c, &contract.DriverError{
			Code:    contract.CodeConfiguration,
			Message: "invalid kubernetes driver options",
			Err:     &contract.ValidationError{Issues: problems},
		}
	}
	return c, nil
}

var (
	labelPrefixRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)
	dns1123Label  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// WithKubeconfig loads the cluster, credentials and namespace from the
// kubeconfig file at path instead of the default (the files KUBECONFIG
// lists, else ~/.kube/config, else the in-cluster service account). An
// empty path is ignored.
func WithKubeconfig(path string) Option {
	return optionFunc(func(c *config) { c.kubeconfig = path })
}

// WithNamespace puts everything the driver creates into namespace ns and
// confines it to that namespace; the default is the namespace of the
// kubeconfig's current context, else the in-cluster pod's, else
// "default". The namespace must exist. An empty ns is ignored.
func WithNamespace(ns string) Option {
	return optionFunc(func(c *config) {
		if ns != "" {
			c.namespace = ns
		}
	})
}

// WithRESTConfig makes the driver talk to the cluster cfg describes. The
// driver copies cfg and changes its copy as the package doc says (no
// client-side rate limit, no printed warnings, no retries hidden in the
// client). A nil cfg is ignored.
func WithRESTConfig(cfg *rest.Config) Option {
	return optionFunc(func(c *config) {
		if cfg != nil {
			c.restConfig = cfg
		}
	})
}

// WithClientset makes the driver use cs as it is: a *kubernetes.Clientset,
// or a fake clientset in tests. The caller keeps ownership; [Driver.Close]
// leaves it alone. Such a driver cannot verify the nodes' pids limit (and
// so refuses every create) unless cs is a real clientset. A nil cs is
// ignored.
func WithClientset(cs Clientset) Option {
	return optionFunc(func(c *config) {
		if cs != nil {
			c.clientset = cs
		}
	})
}

// WithLabelPrefix sets the prefix of the driver's own labels, annotations
// and scheduling gate (default [DefaultLabelPrefix], "io.resilientdriver").
// Drivers with different prefixes do not see each other's resources.
func WithLabelPrefix(prefix string) Option {
	return optionFunc(func(c *config) { c.labelPrefix = prefix })
}

// WithPullPolicy sets the pods' image pull policy (default
// [PullIfMissing]).
func WithPullPolicy(p PullPolicy) Option {
	return optionFunc(func(c *config) { c.pullPolicy = p })
}

// WithLogLimit caps the output GetContainerLogs returns at n bytes
// (default [DefaultLogLimit], 4 MiB).
func WithLogLimit(n int64) Option {
	return optionFunc(func(c *config) { c.logLimit = n })
}

// WithDefaultStopTimeout sets the grace period StopContainer gives when
// StopOptions.Timeout is zero, and the pods' terminationGracePeriodSeconds
// (default [DefaultStopTimeout], 10s).
func WithDefaultStopTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.stopTimeout = d })
}

// WithStartTimeout bounds how long StartContainer waits for the pod to run
// (default [DefaultStartTimeout], 2m); the caller's deadline bounds it as
// well.
func WithStartTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.startTimeout = d })
}

// WithVolumeSize sets the storage a volume's claim requests, in MB
// (default [DefaultVolumeSize], 1024).
func WithVolumeSize(mb int64) Option {
	return optionFunc(func(c *config) { c.volumeSize = mb })
}

// WithCPURequestFraction sets a pod's CPU request to f times its CPU limit,
// f in (0, 1] (default 1: the request equals the limit). A smaller f lets
// more pods share a node's cores, which CPU, unlike memory, tolerates: the
// limit still caps every pod. Memory and ephemeral-storage requests always
// equal their limits.
func WithCPURequestFraction(f float64) Option {
	return optionFunc(func(c *config) { c.cpuFraction = f })
}

// WithPodPIDsLimit states that every node of the cluster limits each pod
// to n processes (the kubelets' podPidsLimit), so the driver need not read
// the kubelets' configuration, which takes get on nodes/proxy: a
// permission that reaches the kubelet API, and one the API server cannot
// serve for a kubelet on a loopback address. The driver trusts n as it
// trusts the cluster: a wrong n makes it report and accept a limit the
// nodes do not enforce. The default, 0, reads each node's limit; see
// "Pids limit" in the package documentation.
func WithPodPIDsLimit(n int64) Option {
	return optionFunc(func(c *config) { c.podPIDs = n })
}

// WithClock sets the clock the reaper measures age with and HealthCheck
// measures uptime with (default time.Now).
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) {
		if now != nil {
			c.now = now
		}
	})
}
