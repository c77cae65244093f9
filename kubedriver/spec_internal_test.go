package kubedriver

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/resilientdriver/resilient/contract"
)

func build(t *testing.T, d *Driver, cfg contract.ContainerConfig) podSpec {
	t.Helper()
	lim, err := contract.EngineLimitsOf(cfg.Resources)
	if err != nil {
		t.Fatal(err)
	}
	refs := make([]mountRef, len(cfg.Volumes))
	for i, m := range cfg.Volumes {
		refs[i].claim = objectName(kindVolume, m.Source)
	}
	s, err := d.buildPod(cfg, "resilient-test-1", "", lim, cfg.Resources.PIDs, "", refs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The secure defaults of the contract, as a pod.
func TestBuildPodSecureDefaults(t *testing.T) {
	d, _ := newFake(t, 256)
	p := build(t, d, contract.NewContainerConfig("s1", "resilient-workload:latest")).pod
	c := p.Spec.Containers[0]
	sc, psc := c.SecurityContext, p.Spec.SecurityContext
	check := func(ok bool, what string) {
		t.Helper()
		if !ok {
			t.Errorf("pod spec: want %s", what)
		}
	}
	check(*sc.RunAsUser == 65534 && *sc.RunAsGroup == 65534 && *psc.RunAsUser == 65534 && *psc.RunAsGroup == 65534, "user and group 65534")
	check(*sc.RunAsNonRoot && *psc.RunAsNonRoot, "runAsNonRoot")
	check(*sc.ReadOnlyRootFilesystem, "a read-only root filesystem")
	check(!*sc.AllowPrivilegeEscalation, "allowPrivilegeEscalation false")
	check(!*sc.Privileged, "privileged false")
	check(slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0, "capabilities drop ALL, add none")
	check(sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault, "seccomp RuntimeDefault")
	check(!*p.Spec.AutomountServiceAccountToken, "no service-account token")
	check(!*p.Spec.EnableServiceLinks, "no service links")
	check(!p.Spec.HostNetwork && !p.Spec.HostPID && !p.Spec.HostIPC && !*p.Spec.ShareProcessNamespace, "no host or shared namespaces")
	check(p.Spec.RestartPolicy == corev1.RestartPolicyNever, "restartPolicy Never")
	check(hasGate(p, d.keys.gate), "the scheduling gate")
	check(c.ImagePullPolicy == corev1.PullIfNotPresent, "imagePullPolicy IfNotPresent")
	lim, req := c.Resources.Limits, c.Resources.Requests
	for _, r := range []struct {
		name corev1.ResourceName
		want string
	}{{corev1.ResourceCPU, "1"}, {corev1.ResourceMemory, "512Mi"}, {corev1.ResourceEphemeralStorage, "1Gi"}} {
		w := resource.MustParse(r.want)
		if q := lim[r.name]; q.Cmp(w) != 0 {
			t.Errorf("limits.%s = %s, want %s", r.name, q.String(), r.want)
		}
		if q := req[r.name]; q.Cmp(w) != 0 {
			t.Errorf("requests.%s = %s, want %s", r.name, q.String(), r.want)
		}
	}
	var tmp *corev1.Volume
	for i := range p.Spec.Volumes {
		if p.Spec.Volumes[i].Name == tmpVolume {
			tmp = &p.Spec.Volumes[i]
		}
	}
	if tmp == nil || tmp.EmptyDir == nil || tmp.EmptyDir.Medium != corev1.StorageMediumMemory || tmp.EmptyDir.SizeLimit.Value() != 1024*mib {
		t.Errorf("want a memory emptyDir of 1Gi at /tmp, got %+v", tmp)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == tmpTarget && m.Name == tmpVolume }) {
		t.Errorf("/tmp is not mounted: %+v", c.VolumeMounts)
	}
}

func TestBuildPodAsAsked(t *testing.T) {
	d, _ := newFake(t, 256)
	d.cfg.cpuFraction = 0.1
	cfg := contract.NewContainerConfig("s1", "resilient-workload:latest")
	cfg.Resources = contract.ResourceLimits{CPU: 0.25, Memory: 64, Disk: 16, PIDs: 64}
	cfg.Security = contract.NewSecurityOptions(contract.RunAs("1000"), contract.WritableRootFS(), contract.AllowNewPrivileges(), contract.AddCapabilities("cap_net_bind_service"))
	cfg.Command = []string{"sleep", "5"}
	cfg.Env = map[string]string{"B": "2", "A": "1"}
	cfg.Volumes = []contract.VolumeMount{{Source: "Data_1", Target: "/data", ReadOnly: true}, {Source: "/srv", Target: "/tmp", Type: contract.MountBind}}
	p := build(t, d, cfg).pod
	c := p.Spec.Containers[0]
	if q := c.Resources.Limits[corev1.ResourceCPU]; q.MilliValue() != 250 {
		t.Errorf("limits.cpu = %s, want 250m", q.String())
	}
	if q := c.Resources.Requests[corev1.ResourceCPU]; q.MilliValue() != 25 {
		t.Errorf("requests.cpu = %s, want 25m (a tenth)", q.String())
	}
	if q := c.Resources.Limits[corev1.ResourceMemory]; q.Value() != 64*mib {
		t.Errorf("limits.memory = %s, want 64Mi", q.String())
	}
	sc := c.SecurityContext
	if *sc.RunAsUser != 1000 || sc.RunAsGroup != nil || !*sc.RunAsNonRoot || *sc.ReadOnlyRootFilesystem || !*sc.AllowPrivilegeEscalation {
		t.Errorf("security context %+v: want uid 1000, no group, non-root, writable root, escalation allowed", sc)
	}
	if !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_BIND_SERVICE"}) {
		t.Errorf("capabilities.add = %v, want [NET_BIND_SERVICE]", sc.Capabilities.Add)
	}
	if !slices.Equal(c.Args, cfg.Command) || c.Env[0].Name != "A" || c.Env[1].Name != "B" {
		t.Errorf("args %v, env %v: want the command as args and env sorted", c.Args, c.Env)
	}
	if len(p.Spec.Volumes) != 2 {
		t.Fatalf("volumes = %+v, want the claim and the host path only (a mount at /tmp replaces the emptyDir)", p.Spec.Volumes)
	}
	if claim := p.Spec.Volumes[0].PersistentVolumeClaim; claim == nil || claim.ClaimName != objectName(kindVolume, "Data_1") || !claim.ReadOnly {
		t.Errorf("volume 0 = %+v, want the read-only claim of Data_1", p.Spec.Volumes[0])
	}
	if hp := p.Spec.Volumes[1].HostPath; hp == nil || hp.Path != "/srv" {
		t.Errorf("volume 1 = %+v, want host path /srv", p.Spec.Volumes[1])
	}
}

func TestBuildPodRoot(t *testing.T) {
	d, _ := newFake(t, 256)
	cfg := contract.NewContainerConfig("s1", "resilient-workload:latest")
	cfg.Security.User = "0:0"
	if p := build(t, d, cfg).pod; *p.Spec.Containers[0].SecurityContext.RunAsNonRoot {
		t.Errorf("runAsNonRoot with uid 0 asked: the container could never start")
	}
	cfg.Security.User = ""
	if p := build(t, d, cfg).pod; !*p.Spec.Containers[0].SecurityContext.RunAsNonRoot || p.Spec.Containers[0].SecurityContext.RunAsUser != nil {
		t.Errorf("the image's user: want runAsNonRoot and no runAsUser")
	}
}

func TestParseUser(t *testing.T) {
	for _, tt := range []struct {
		give     string
		uid, gid int64 // -1: unset
		ok       bool
	}{
		{"", -1, -1, true},
		{"1000", 1000, -1, true},
		{"65534:65534", 65534, 65534, true},
		{"nobody", 0, 0, false},
		{"1000:staff", 0, 0, false},
		{"4294967296", 0, 0, false},
	} {
		u, err := parseUser(tt.give)
		if (err == nil) != tt.ok {
			t.Errorf("parseUser(%q) error = %v, want ok %v", tt.give, err, tt.ok)
			continue
		}
		if !tt.ok {
			continue
		}
		get := func(p *int64) int64 {
			if p == nil {
				return -1
			}
			return *p
		}
		if get(u.uid) != tt.uid || get(u.gid) != tt.gid {
			t.Errorf("parseUser(%q) = %d:%d, want %d:%d", tt.give, get(u.uid), get(u.gid), tt.uid, tt.gid)
		}
	}
}

func TestAppliedDiffSame(t *testing.T) {
	d, _ := newFake(t, 256)
	s := build(t, d, contract.NewContainerConfig("s1", "resilient-workload:latest"))
	got := s.pod.DeepCopy()
	// What the API server adds by defaulting changes nothing that matters.
	got.Spec.DNSPolicy = corev1.DNSClusterFirst
	got.Spec.SchedulerName = corev1.DefaultSchedulerName
	got.Spec.Containers[0].TerminationMessagePath = "/dev/termination-log"
	got.Spec.Tolerations = []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists}}
	if diff := appliedDiff(s.pod, got, s.limits, d.keys.gate); diff != nil {
		t.Errorf("appliedDiff of a defaulted pod = %v, want none", diff)
	}
	got.Spec.SchedulingGates = nil
	if diff := appliedDiff(s.pod, got, s.limits, d.keys.gate); !slices.Equal(diff, []string{"the scheduling gate"}) {
		t.Errorf("appliedDiff without the gate = %v", diff)
	}
	got = s.pod.DeepCopy()
	got.Spec.Containers[0].Resources.Requests[corev1.ResourceEphemeralStorage] = resource.MustParse("1")
	if diff := appliedDiff(s.pod, got, s.limits, d.keys.gate); len(diff) != 1 || !strings.Contains(diff[0], "ephemeral-storage request") {
		t.Errorf("appliedDiff with another ephemeral-storage request = %v", diff)
	}
}

func TestNames(t *testing.T) {
	k := newKeys(DefaultLabelPrefix)
	a, b := k.podName("Session 42 / ÄÖ", ""), k.podName("Session 42 / ÄÖ", "")
	if a == b || !validObjectName(a) || len(a) > 63 || !strings.HasPrefix(a, "resilient-session-42-") {
		t.Errorf("podName without key = %q, %q: want distinct DNS labels from the session", a, b)
	}
	long := k.podName(strings.Repeat("x", 200), "")
	if len(long) > 63 {
		t.Errorf("podName of a long session = %q, longer than a DNS label", long)
	}
	if k.podName("s1", "key") != k.podName("s2", "key") || k.podName("s1", "key") == k.podName("s1", "key2") {
		t.Errorf("podName with key must depend on the key only")
	}
	if other := newKeys("example.com").podName("s1", "key"); other == k.podName("s1", "key") {
		t.Errorf("podName with key must depend on the label prefix")
	}
	for _, tt := range []struct{ give, want string }{
		{"data", "data"},
		{"drivertest-1a-vol-3f", "drivertest-1a-vol-3f"},
		{"Data_1", "resilient-v-" + hash("Data_1")[:24]},
	} {
		if got := objectName(kindVolume, tt.give); got != tt.want || !validObjectName(got) {
			t.Errorf("objectName(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
	if !k.reserved("io.resilientdriver/managed") || !k.reserved("io.resilientdriver.x") || k.reserved("io.resilientdriverx") {
		t.Errorf("reserved is wrong")
	}
	if mirrored("kubernetes.io/x", "y") || mirrored("a b", "c") || !mirrored("drivertest.run", "ab12") || mirrored("app", strings.Repeat("v", 64)) {
		t.Errorf("mirrored is wrong")
	}
}
