package kubedriver_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	networkingv1client "k8s.io/client-go/kubernetes/typed/networking/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/kubedriver"
)

// workloadImage is the image scripts/kubernetes.sh imports into the
// cluster's containerd.
const workloadImage = "resilient-workload:latest"

// cluster is a client independent of the driver, for setting up and
// checking what the driver did; err says why there is none.
var cluster struct {
	rest *rest.Config
	core corev1client.CoreV1Interface
	net  networkingv1client.NetworkingV1Interface
	err  error
	// podPIDs is the kubelets' podPidsLimit as the tests read it from a
	// kubelet itself, when the API server cannot proxy to it (a kubelet on
	// loopback); 0 when the driver can read it through the API server.
	podPIDs int64
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	cluster.err = connect()
	if cluster.err != nil {
		msg := fmt.Sprintf("kubedriver tests: no cluster: %v\n", cluster.err)
		if os.Getenv("CI") == "true" {
			msg += "CI must provide a cluster: run scripts/kubernetes.sh and eval its output before the tests.\n"
		} else {
			msg += "The tests against a cluster are skipped. Run scripts/kubernetes.sh (as root on Debian it builds and starts a " +
				"single-node cluster with the workload image) and export the KUBECONFIG it prints.\n"
		}
		fmt.Fprint(os.Stderr, msg)
	}
	code := m.Run()
	if cluster.core != nil {
		if rc, ok := cluster.core.RESTClient().(*rest.RESTClient); ok {
			utilnet.CloseIdleConnectionsFor(rc.Client.Transport)
		}
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1")); err != nil {
			fmt.Fprintf(os.Stderr, "kubedriver tests: goroutines leaked: %v\n", err)
			code = 1
		}
	}
	return code
}

// connect makes the test's own client from KUBECONFIG and checks that the
// cluster is ready and has the workload image.
func connect() error {
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		return errors.New("KUBECONFIG is not set")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return fmt.Errorf("loading %s: %w", path, err)
	}
	rc.QPS, rc.Burst = 100, 200
	rc.WarningHandler = rest.NoWarnings{}
	core, err := corev1client.NewForConfig(rc)
	if err != nil {
		return err
	}
	netv1, err := networkingv1client.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if body, err := core.RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil || strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("the API server at %s is not ready: %v %s", rc.Host, err, body)
	}
	nodes, err := core.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	found := false
	for _, n := range nodes.Items {
		for _, img := range n.Status.Images {
			if slices.ContainsFunc(img.Names, func(s string) bool { return strings.HasSuffix(s, "/"+workloadImage) || s == workloadImage }) {
				found = true
			}
		}
	}
	if !found {
		return fmt.Errorf("no node of the cluster at %s has the image %s", rc.Host, workloadImage)
	}
	cluster.rest, cluster.core, cluster.net = rc, core, netv1
	if _, err := core.RESTClient().Get().AbsPath("/api/v1/nodes", nodes.Items[0].Name, "proxy", "configz").DoRaw(ctx); err != nil {
		// The API server does not proxy to a kubelet on loopback, as on
		// the test cluster: read its limit from the kubelet, and state it
		// to the drivers with WithPodPIDsLimit.
		n, kerr := kubeletPIDs(ctx, rc, nodes.Items[0])
		if kerr != nil {
			return fmt.Errorf("cannot read the kubelet's podPidsLimit, through the API server (%v) or from the kubelet (%v)", err, kerr)
		}
		if n <= 0 {
			fmt.Fprintf(os.Stderr, "kubedriver tests: node %s has no podPidsLimit: the driver refuses every create there (set podPidsLimit: %d in the kubelet configuration)\n",
				nodes.Items[0].Name, contract.DefaultPIDs)
			n = 0
		}
		cluster.podPIDs = n
	}
	return nil
}

// kubeletPIDs reads a node's podPidsLimit from its kubelet's /configz,
// with the kubeconfig's credentials; -1 when it is unset.
func kubeletPIDs(ctx context.Context, rc *rest.Config, node corev1.Node) (int64, error) {
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	var errs []error
	for _, a := range node.Status.Addresses {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://%s/configz", net.JoinHostPort(a.Address, fmt.Sprint(port))), nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+rc.BearerToken)
		// The kubelet's serving certificate is its own; what it says is
		// only the test's hint to the driver.
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := hc.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var cz struct {
			KubeletConfig struct {
				PodPidsLimit *int64 `json:"podPidsLimit"`
			} `json:"kubeletconfig"`
		}
		err = json.NewDecoder(resp.Body).Decode(&cz)
		resp.Body.Close()
		hc.CloseIdleConnections()
		if err != nil || resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Errorf("%s: %s: %v", a.Address, resp.Status, err))
			continue
		}
		if cz.KubeletConfig.PodPidsLimit == nil {
			return -1, nil
		}
		return *cz.KubeletConfig.PodPidsLimit, nil
	}
	return 0, errors.Join(errs...)
}

// needCluster skips the test without a cluster, or fails it under CI=true.
func needCluster(t *testing.T) {
	t.Helper()
	if cluster.err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no cluster under CI: %v", cluster.err)
	}
	t.Skipf("no cluster: %v (run scripts/kubernetes.sh and export its KUBECONFIG)", cluster.err)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testNamespace makes a namespace for the test, with labels given as key,
// value, key, value... When the test ends it
// checks through the API server that no pod, claim or policy is left in
// it, and deletes it.
func testNamespace(t *testing.T, labels ...string) string {
	t.Helper()
	ns := "kubedriver-test-" + randomHex(4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := map[string]string{"test.resilientdriver/kubedriver": "true"}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	_, err := cluster.core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: l}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", ns, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		assertNothingLeft(t, ctx, ns)
		if err := cluster.core.Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", ns, err)
		}
	})
	return ns
}

// assertNothingLeft reports every pod, claim and policy left in ns.
func assertNothingLeft(t *testing.T, ctx context.Context, ns string) {
	t.Helper()
	pods, err := cluster.core.Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("listing pods of %s: %v", ns, err)
	} else {
		for _, p := range pods.Items {
			t.Errorf("pod %s/%s (%s) left behind", ns, p.Name, p.Status.Phase)
		}
	}
	pvcs, err := cluster.core.PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("listing claims of %s: %v", ns, err)
	} else {
		for _, c := range pvcs.Items {
			t.Errorf("claim %s/%s left behind", ns, c.Name)
		}
	}
	nps, err := cluster.net.NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("listing network policies of %s: %v", ns, err)
	} else {
		for _, n := range nps.Items {
			t.Errorf("network policy %s/%s left behind", ns, n.Name)
		}
	}
}

// newDriver returns a driver for namespace ns, closed when the test ends.
// The node has two cores: a small CPU request lets the suite's eight
// concurrent containers of one core each run at once.
func newDriver(t *testing.T, ns string, opts ...kubedriver.Option) *kubedriver.Driver {
	t.Helper()
	return newDriverVia(t, kubedriver.WithKubeconfig(os.Getenv("KUBECONFIG")), ns, opts...)
}

// newDriverVia is newDriver reaching the cluster as connect says
// (WithKubeconfig, WithRESTConfig).
func newDriverVia(t *testing.T, connect kubedriver.Option, ns string, opts ...kubedriver.Option) *kubedriver.Driver {
	t.Helper()
	base := []kubedriver.Option{
		connect,
		kubedriver.WithNamespace(ns),
		kubedriver.WithCPURequestFraction(0.01),
		kubedriver.WithStartTimeout(time.Minute),
	}
	if cluster.podPIDs > 0 {
		base = append(base, kubedriver.WithPodPIDsLimit(cluster.podPIDs))
	}
	opts = append(base, opts...)
	d, err := kubedriver.New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// create creates a container and removes it through the driver when the
// test ends.
func create(t *testing.T, ctx context.Context, d *kubedriver.Driver, cfg contract.ContainerConfig) contract.ContainerInstance {
	t.Helper()
	inst, err := d.CreateContainer(ctx, cfg)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := d.RemoveContainer(ctx, inst.ID); err != nil && !errors.Is(err, contract.ErrContainerNotFound) {
			t.Errorf("RemoveContainer(%s): %v", inst.ID, err)
		}
	})
	return inst
}

// wantCode fails the test unless err is a *contract.DriverError of code
// with the code's retryable flag.
func wantCode(t *testing.T, what string, err error, code contract.Code) {
	t.Helper()
	var de *contract.DriverError
	switch {
	case !errors.As(err, &de):
		t.Fatalf("%s: error = %v, want a *contract.DriverError %s", what, err, code)
	case de.Code != code:
		t.Fatalf("%s: code = %s, want %s (error: %v)", what, de.Code, code, err)
	case contract.IsRetryable(err) != code.Retryable():
		t.Errorf("%s: IsRetryable = %v, want %v (error: %v)", what, contract.IsRetryable(err), code.Retryable(), err)
	}
}
