package kubedriver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/kubedriver"
)

// A container made from the secure defaults, read back through the API
// server with a client of the test's own: the pod carries every setting,
// in a namespace that enforces the "restricted" Pod Security Standard; on
// the node, its cgroup has the pids limit; and the process inside runs as
// they say.
func TestSecureDefaultsInPod(t *testing.T) {
	needCluster(t)
	t.Parallel()
	ns := testNamespace(t, restricted...)
	d := newDriver(t, ns, kubedriver.WithCPURequestFraction(1))
	ctx := ctxFor(t)
	inst := create(t, ctx, d, contract.NewContainerConfig("secure-"+randomHex(3), workloadImage))

	p, err := cluster.core.Pods(ns).Get(ctx, inst.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the pod back: %v", err)
	}
	if len(p.Spec.Containers) != 1 || len(p.Spec.InitContainers) != 0 {
		t.Fatalf("pod has %d containers and %d init containers, want 1 and 0", len(p.Spec.Containers), len(p.Spec.InitContainers))
	}
	c := p.Spec.Containers[0]
	sc, psc := c.SecurityContext, p.Spec.SecurityContext
	check := func(ok bool, format string, args ...any) {
		t.Helper()
		if !ok {
			t.Errorf(format, args...)
		}
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	isFalse := func(b *bool) bool { return b != nil && !*b }
	id := func(p *int64) int64 {
		if p == nil {
			return -1
		}
		return *p
	}
	check(sc != nil && psc != nil, "no security context")
	check(id(sc.RunAsUser) == 65534 && id(sc.RunAsGroup) == 65534, "container runs as %d:%d, want 65534:65534", id(sc.RunAsUser), id(sc.RunAsGroup))
	check(id(psc.RunAsUser) == 65534 && id(psc.RunAsGroup) == 65534, "pod runs as %d:%d, want 65534:65534", id(psc.RunAsUser), id(psc.RunAsGroup))
	check(isTrue(sc.RunAsNonRoot) && isTrue(psc.RunAsNonRoot), "runAsNonRoot is not set")
	check(isTrue(sc.ReadOnlyRootFilesystem), "readOnlyRootFilesystem is not set")
	check(isFalse(sc.AllowPrivilegeEscalation), "allowPrivilegeEscalation is not false")
	check(!isTrue(sc.Privileged), "privileged")
	check(sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0,
		"capabilities = %+v, want drop [ALL], add none", sc.Capabilities)
	check(psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault, "pod seccomp = %+v, want RuntimeDefault", psc.SeccompProfile)
	check(sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault, "container seccomp = %+v, want RuntimeDefault", sc.SeccompProfile)
	check(isFalse(p.Spec.AutomountServiceAccountToken), "the service-account token is mounted")
	check(isFalse(p.Spec.EnableServiceLinks), "service links are on")
	check(!p.Spec.HostNetwork && !p.Spec.HostPID && !p.Spec.HostIPC, "host namespaces")
	check(!isTrue(p.Spec.ShareProcessNamespace), "shared process namespace")
	check(p.Spec.RestartPolicy == corev1.RestartPolicyNever, "restartPolicy = %s, want Never", p.Spec.RestartPolicy)
	check(len(p.Spec.SchedulingGates) == 1, "created pod has gates %v, want the driver's one", p.Spec.SchedulingGates)
	check(p.Spec.NodeName == "", "created pod is bound to %s", p.Spec.NodeName)
	for _, v := range p.Spec.Volumes {
		check(v.Projected == nil && v.Secret == nil, "volume %s holds a token or secret", v.Name)
	}
	for _, r := range []struct {
		name corev1.ResourceName
		want string
	}{{corev1.ResourceCPU, "1"}, {corev1.ResourceMemory, "512Mi"}, {corev1.ResourceEphemeralStorage, "1Gi"}} {
		want := resource.MustParse(r.want)
		lim, req := c.Resources.Limits[r.name], c.Resources.Requests[r.name]
		check(lim.Cmp(want) == 0, "limits.%s = %s, want %s", r.name, lim.String(), r.want)
		check(req.Cmp(want) == 0, "requests.%s = %s, want %s", r.name, req.String(), r.want)
	}
	check(p.Status.QOSClass == corev1.PodQOSGuaranteed, "QoS class = %s, want Guaranteed", p.Status.QOSClass)
	var tmp *corev1.EmptyDirVolumeSource
	for _, m := range c.VolumeMounts {
		for _, v := range p.Spec.Volumes {
			if v.Name == m.Name && m.MountPath == "/tmp" {
				tmp = v.EmptyDir
			}
		}
	}
	check(tmp != nil && tmp.Medium == corev1.StorageMediumMemory && tmp.SizeLimit != nil && tmp.SizeLimit.Value() == 1<<30,
		"/tmp = %+v, want a memory emptyDir with sizeLimit 1Gi", tmp)
	if inst.Resources != contract.DefaultResourceLimits() {
		t.Errorf("instance Resources = %+v, want the defaults %+v", inst.Resources, contract.DefaultResourceLimits())
	}

	if err := d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	wantPodPIDsMax(t, ctx, ns, inst.ID, inst.Resources.PIDs)

	// The process inside: the workload prints who it is and exits.
	cfg := contract.NewContainerConfig("secure-"+randomHex(3), workloadImage)
	cfg.Command = []string{"whoami"}
	inst = create(t, ctx, d, cfg)
	if err := d.StartContainer(ctx, inst.ID); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	var out string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err = d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{})
		if err == nil && strings.Contains(out, "NoNewPrivs") {
			break
		}
	}
	for _, want := range []string{"uid=65534", "gid=65534", "rootfs_writable=no", "CapEff: 0000000000000000", "NoNewPrivs: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("whoami output %q lacks %q", out, want)
		}
	}
	got, err := d.GetContainer(ctx, inst.ID)
	for deadline := time.Now().Add(30 * time.Second); err == nil && got != nil && got.Status != contract.StatusExited && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		got, err = d.GetContainer(ctx, inst.ID)
	}
	if err != nil || got == nil || got.Status != contract.StatusExited {
		t.Errorf("after whoami exited: GetContainer = %+v, %v, want status exited", got, err)
	}
}

// wantPodPIDsMax checks, when the test runs on the node, that the pod's
// cgroup limits its processes to want.
func wantPodPIDsMax(t *testing.T, ctx context.Context, ns, name string, want int64) {
	t.Helper()
	p, err := cluster.core.Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, pattern := range []string{
		"/sys/fs/cgroup/pids/kubepods/pod%s/pids.max", "/sys/fs/cgroup/pids/kubepods/*/pod%s/pids.max", // cgroup v1, cgroupfs
		"/sys/fs/cgroup/kubepods/pod%s/pids.max", "/sys/fs/cgroup/kubepods/*/pod%s/pids.max", // cgroup v2
	} {
		m, _ := filepath.Glob(fmt.Sprintf(pattern, p.UID))
		found = append(found, m...)
	}
	if len(found) == 0 {
		t.Logf("the pod's cgroup is not on this host (the test does not run on the node): its pids limit is not checked")
		return
	}
	b, err := os.ReadFile(found[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.FormatInt(want, 10) {
		t.Errorf("%s = %s, want %d", found[0], got, want)
	}
}

// A pids limit the nodes do not enforce is refused, never dropped.
func TestPIDsLimitTheClusterCannotGuarantee(t *testing.T) {
	needCluster(t)
	t.Parallel()
	ns := testNamespace(t)
	d := newDriver(t, ns)
	ctx := ctxFor(t)
	cfg := contract.NewContainerConfig("pids-"+randomHex(3), workloadImage)
	cfg.Resources.PIDs = 16
	_, err := d.CreateContainer(ctx, cfg)
	wantCode(t, "CreateContainer with pids 16", err, contract.CodeResourceLimit)
	var ve *contract.ValidationError
	if !errors.As(err, &ve) || ve.Issues[0].Path != "resources.pids" {
		t.Errorf("CreateContainer = %v, want a ValidationError naming resources.pids", err)
	}
}

// A start that cannot succeed fails clearly and promptly: an image the
// node does not have (pull policy never), and requests no node can hold.
func TestStartFailsClearly(t *testing.T) {
	needCluster(t)
	t.Parallel()
	ns := testNamespace(t)
	ctx := ctxFor(t)

	d := newDriver(t, ns, kubedriver.WithPullPolicy(kubedriver.PullNever))
	inst := create(t, ctx, d, contract.NewContainerConfig("missing-"+randomHex(3), "resilient-workload:does-not-exist"))
	wantStartError(t, d, inst.ID, "a missing image", contract.CodeConfiguration)

	big := newDriver(t, ns, kubedriver.WithCPURequestFraction(1))
	cfg := contract.NewContainerConfig("big-"+randomHex(3), workloadImage)
	cfg.Resources.CPU = 512
	inst = create(t, ctx, big, cfg)
	wantStartError(t, big, inst.ID, "512 cores", contract.CodeResourceLimit)
}

// wantStartError fails the test unless StartContainer fails with code
// within 20s.
func wantStartError(t *testing.T, d *kubedriver.Driver, id, what string, code contract.Code) {
	t.Helper()
	start := time.Now()
	err := d.StartContainer(ctxFor(t), id)
	wantCode(t, "StartContainer of "+what, err, code)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("StartContainer of %s took %v", what, took)
	}
}

// The reaper removes the containers of sessions that are gone, and only
// those.
func TestReap(t *testing.T) {
	needCluster(t)
	t.Parallel()
	ns := testNamespace(t)
	d := newDriver(t, ns)
	ctx := ctxFor(t)
	live := create(t, ctx, d, contract.NewContainerConfig("live-"+randomHex(3), workloadImage))
	gone := create(t, ctx, d, contract.NewContainerConfig("gone-"+randomHex(3), workloadImage))
	rep, err := d.Reap(ctx, kubedriver.ReapOptions{LiveSessions: []string{live.SessionID}, DryRun: true})
	if err != nil || !slices.Equal(rep.Containers, []string{gone.ID}) {
		t.Fatalf("Reap(DryRun) = %+v, %v, want [%s]", rep, err, gone.ID)
	}
	if _, err := cluster.core.Pods(ns).Get(ctx, gone.ID, metav1.GetOptions{}); err != nil {
		t.Fatalf("a dry run removed %s: %v", gone.ID, err)
	}
	rep, err = d.Reap(ctx, kubedriver.ReapOptions{LiveSessions: []string{live.SessionID}})
	if err != nil || !slices.Equal(rep.Containers, []string{gone.ID}) {
		t.Fatalf("Reap = %+v, %v, want [%s]", rep, err, gone.ID)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		list, err := cluster.core.Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) == 1 && list.Items[0].Name == live.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Reap the namespace has %d pods, want only %s", len(list.Items), live.ID)
		}
	}
}

// A stop gives the process its grace period, then kills it; Force kills
// after the kubelet's shortest grace period. The stopped container records
// the exit code of the kill and keeps the output of its run.
func TestStopGraceThenKill(t *testing.T) {
	needCluster(t)
	t.Parallel()
	ns := testNamespace(t, restricted...)
	d := newDriver(t, ns)
	ctx := ctxFor(t)
	for _, tt := range []struct {
		name     string
		opts     contract.StopOptions
		min, max time.Duration
	}{
		{"grace", contract.StopOptions{Timeout: 4 * time.Second}, 4 * time.Second, 12 * time.Second},
		{"force", contract.StopOptions{Force: true}, 0, 8 * time.Second},
	} {
		cfg := contract.NewContainerConfig("stop-"+randomHex(3), workloadImage)
		cfg.Command = []string{"ignore-term"}
		inst := create(t, ctx, d, cfg)
		if err := d.StartContainer(ctx, inst.ID); err != nil {
			t.Fatalf("%s: StartContainer: %v", tt.name, err)
		}
		start := time.Now()
		if err := d.StopContainer(ctx, inst.ID, tt.opts); err != nil {
			t.Fatalf("%s: StopContainer: %v", tt.name, err)
		}
		if took := time.Since(start); took < tt.min || took > tt.max {
			t.Errorf("%s: StopContainer of a process that ignores SIGTERM took %v, want %v to %v", tt.name, took, tt.min, tt.max)
		}
		got, err := d.GetContainer(ctx, inst.ID)
		if err != nil || got == nil || got.Status != contract.StatusStopped {
			t.Fatalf("%s: after the stop GetContainer = %+v, %v, want stopped", tt.name, got, err)
		}
		p, err := cluster.core.Pods(ns).Get(ctx, inst.ID, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if code := p.Annotations[kubedriver.DefaultLabelPrefix+"/exit-code"]; code != "137" {
			t.Errorf("%s: exit code recorded = %q, want 137 (SIGKILL)", tt.name, code)
		}
		if out, err := d.GetContainerLogs(ctx, inst.ID, contract.LogOptions{}); err != nil || !strings.Contains(out, "ignoring SIGTERM") {
			t.Errorf("%s: logs of the stopped container = %q, %v, want the run's output", tt.name, out, err)
		}
	}
}
