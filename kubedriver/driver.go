package kubedriver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	networkingv1client "k8s.io/client-go/kubernetes/typed/networking/v1"
	storagev1client "k8s.io/client-go/kubernetes/typed/storage/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/resilientdriver/resilient/contract"
)

// Name is the driver's name, returned by [Driver.Name].
const Name = "kubernetes"

// version is the driver's semantic version, returned by [Driver.Version].
const version = "0.1.0"

// Clientset is the part of client-go's kubernetes.Interface the driver
// uses. A *kubernetes.Clientset and the fake clientset of
// k8s.io/client-go/kubernetes/fake satisfy it; see [WithClientset].
type Clientset interface {
	CoreV1() corev1client.CoreV1Interface
	NetworkingV1() networkingv1client.NetworkingV1Interface
	StorageV1() storagev1client.StorageV1Interface
}

// Driver is a [contract.ContainerDriver] on a Kubernetes cluster. It also
// implements [contract.LogStreamer] and [contract.Executor]. Its methods
// are safe for concurrent use. Make one with [New] and release it with
// [Driver.Close].
type Driver struct {
	core    corev1client.CoreV1Interface
	netv1   networkingv1client.NetworkingV1Interface
	storage storagev1client.StorageV1Interface
	rest    *rest.RESTClient // the core group's client, for /readyz, /version and node proxies; nil for fakes
	http    *http.Client     // the driver's own HTTP client; nil with WithClientset
	restCfg *rest.Config     // the client's config, for exec streams; nil with WithClientset
	ns      string
	cfg     config
	keys    keys
	started time.Time

	locks idLocks
	pids  pidsCache
}

var (
	_ contract.ContainerDriver = (*Driver)(nil)
	_ contract.LogStreamer     = (*Driver)(nil)
	_ contract.Executor        = (*Driver)(nil)
)

// New returns a driver for the cluster the environment names: the
// kubeconfig files KUBECONFIG lists, else ~/.kube/config, else the
// in-cluster service account of the pod it runs in, with the namespace of
// the current context (else the pod's, else "default"). Options change
// that; see [Option].
//
// New does not contact the cluster: a driver for an unreachable cluster is
// made, its calls fail with NETWORK errors and HealthCheck reports it
// unhealthy. New fails with a CONFIGURATION error for invalid options or
// when no configuration is found.
func New(opts ...Option) (*Driver, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	d := &Driver{cfg: cfg, keys: newKeys(cfg.labelPrefix), started: cfg.now()}
	if cs := cfg.clientset; cs != nil {
		d.core, d.netv1, d.storage = cs.CoreV1(), cs.NetworkingV1(), cs.StorageV1()
		if rc, ok := d.core.RESTClient().(*rest.RESTClient); ok && rc != nil {
			d.rest = rc
		}
		d.ns = cfg.namespace
		if d.ns == "" {
			d.ns = metav1.NamespaceDefault
		}
		return d, nil
	}
	rc, ns, err := loadConfig(cfg)
	if err != nil {
		return nil, err
	}
	d.ns = ns
	if err := d.connect(rc); err != nil {
		return nil, newErr("", contract.CodeConfiguration, "", "cannot make a Kubernetes client", err)
	}
	return d, nil
}

// loadConfig finds the REST config and the namespace as [New] documents.
func loadConfig(cfg config) (*rest.Config, string, error) {
	ns := cfg.namespace
	if cfg.restConfig != nil {
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		return rest.CopyConfig(cfg.restConfig), ns, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cfg.kubeconfig != "" {
		rules.ExplicitPath = cfg.kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	rc, err := cc.ClientConfig()
	if err != nil {
		msg := "cannot load the Kubernetes configuration"
		if clientcmd.IsEmptyConfig(err) {
			msg = "no Kubernetes configuration: set KUBECONFIG, use WithKubeconfig, or run in a pod of the cluster"
		}
		return nil, "", newErr("", contract.CodeConfiguration, "", msg, err)
	}
	if ns == "" {
		ns, _, err = cc.Namespace()
		if err != nil || ns == "" {
			ns = metav1.NamespaceDefault
		}
	}
	return rc, ns, nil
}

// connect makes the driver's clients from rc, which it changes: no
// client-side rate limit (the rate-limit middleware is the layer for it),
// no warnings printed to stderr, answers that say "try again later" as
// errors rather than retried inside client-go.
func (d *Driver) connect(rc *rest.Config) error {
	rc.QPS = -1
	rc.Burst = 0
	rc.RateLimiter = nil
	rc.WarningHandler = rest.NoWarnings{}
	rc.WarningHandlerWithContext = nil
	rc.UserAgent = "resilient-kubedriver/" + version
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &busyTransport{next: rt} })
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return err
	}
	core, err := corev1client.NewForConfigAndClient(rc, hc)
	if err != nil {
		return err
	}
	netv1, err := networkingv1client.NewForConfigAndClient(rc, hc)
	if err != nil {
		return err
	}
	storage, err := storagev1client.NewForConfigAndClient(rc, hc)
	if err != nil {
		return err
	}
	d.core, d.netv1, d.storage, d.http, d.restCfg = core, netv1, storage, hc, rc
	if c, ok := core.RESTClient().(*rest.RESTClient); ok {
		d.rest = c
	}
	return nil
}

// Close releases the driver's idle connections, unless its clients came
// from [WithClientset]. Calls made after Close open new connections. Close
// is safe to call more than once.
func (d *Driver) Close() error {
	if d.http != nil {
		utilnet.CloseIdleConnectionsFor(d.http.Transport)
	}
	return nil
}

// Name returns "kubernetes".
func (d *Driver) Name() string { return Name }

// Version returns the driver's semantic version.
func (d *Driver) Version() string { return version }

// Namespace returns the namespace the driver works in.
func (d *Driver) Namespace() string { return d.ns }

// HealthCheck asks the API server's /readyz, reads its version and counts
// the managed pods, with the status mapping of GetContainer. A server that
// cannot be reached or is not ready gives Status "unhealthy" with Error set
// and a nil error; only the caller's own cancellation is returned as an
// error. Version is the server's ("v1.37.2"); Uptime is the time since
// [New].
func (d *Driver) HealthCheck(ctx context.Context) (contract.DriverHealth, error) {
	const op = contract.OpHealthCheck
	h := contract.DriverHealth{Status: contract.Unhealthy, Uptime: d.cfg.now().Sub(d.started)}
	fail := func(what string, err error) (contract.DriverHealth, error) {
		if errors.Is(ctx.Err(), context.Canceled) {
			return h, ctxErr(op, "", ctx.Err(), err)
		}
		h.Error = what + ": " + mapErr(ctx, op, "", err).Error()
		return h, nil
	}
	if err := ctx.Err(); err != nil {
		return fail("health check", err)
	}
	h.Version = "unknown"
	if d.rest != nil {
		body, err := d.rest.Get().AbsPath("/readyz").Do(ctx).Raw()
		if err != nil {
			return fail("readyz", err)
		}
		if s := strings.TrimSpace(string(body)); s != "ok" {
			return fail("readyz", errors.New("the API server is not ready: "+s))
		}
		raw, err := d.rest.Get().AbsPath("/version").Do(ctx).Raw()
		if err != nil {
			return fail("version", err)
		}
		var v struct {
			GitVersion string `json:"gitVersion"`
		}
		if json.Unmarshal(raw, &v) == nil && v.GitVersion != "" {
			h.Version = v.GitVersion
		}
	}
	pods, err := d.listPods(ctx, op, d.keys.managedSelector())
	if err != nil {
		return fail("list pods", err)
	}
	for i := range pods {
		h.Containers.Total++
		if contract.StateOf(d.statusOf(&pods[i])) == contract.StateRunning {
			h.Containers.Running++
		} else {
			h.Containers.Stopped++
		}
	}
	h.Status = contract.Healthy
	return h, nil
}

// idLocks serializes the lifecycle changes (start, stop, remove) of one
// container within a driver, and lets readers wait for a change in
// progress: a stop deletes the pod and makes it again.
type idLocks struct {
	mu sync.Mutex
	m  map[string]*idLock
}

type idLock struct {
	ch   chan struct{} // holds one token; taking it locks
	refs int
}

// lock takes the lock of id, waiting at most until ctx is done. The
// returned function releases it.
func (l *idLocks) lock(ctx context.Context, id string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*idLock{}
	}
	e := l.m[id]
	if e == nil {
		e = &idLock{ch: make(chan struct{}, 1)}
		e.ch <- struct{}{}
		l.m[id] = e
	}
	e.refs++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
	select {
	case <-e.ch:
		return func() { e.ch <- struct{}{}; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// busy reports whether a lifecycle change of id is in progress.
func (l *idLocks) busy(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.m[id]
	return ok
}
