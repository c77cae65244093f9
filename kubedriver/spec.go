package kubedriver

import (
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/resilientdriver/resilient/contract"
)

const (
	// containerName is the name of the pod's one container.
	containerName = "main"
	// tmpTarget is where a read-only root filesystem gets its writable,
	// size-limited emptyDir.
	tmpTarget = "/tmp"
	// tmpVolume is the pod volume of tmpTarget.
	tmpVolume = "tmp"
	mib       = 1 << 20
)

// podSpec is what a create needs to make and check a pod.
type podSpec struct {
	pod    *corev1.Pod
	limits contract.EngineLimits // the limits asked, in engine units
}

// mountRef is a volume mount resolved to the object behind it.
type mountRef struct {
	claim string // the PersistentVolumeClaim of a volume mount
}

// user is a parsed security.user.
type user struct {
	uid, gid *int64
}

// parseUser reads "uid[:gid]"; Kubernetes takes numeric ids only. "" is
// the image's user.
func parseUser(s string) (user, error) {
	var u user
	if s == "" {
		return u, nil
	}
	uidS, gidS, hasGid := strings.Cut(s, ":")
	num := func(v string) (*int64, bool) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > math.MaxInt32 {
			return nil, false
		}
		return &n, true
	}
	var ok bool
	if u.uid, ok = num(uidS); !ok {
		return u, fmt.Errorf("Kubernetes runs containers as numeric ids: security.user must be \"uid[:gid]\" with ids from 0 to %d, not %q", math.MaxInt32, s)
	}
	if hasGid {
		if u.gid, ok = num(gidS); !ok {
			return u, fmt.Errorf("Kubernetes runs containers as numeric ids: security.user must be \"uid[:gid]\" with ids from 0 to %d, not %q", math.MaxInt32, s)
		}
	}
	return u, nil
}

// canonicalCaps returns capability names as Kubernetes spells them: upper
// case without "CAP_"; "ALL" stays.
func canonicalCaps(caps []string) []corev1.Capability {
	if len(caps) == 0 {
		return nil
	}
	out := make([]corev1.Capability, 0, len(caps))
	for _, c := range caps {
		cc := corev1.Capability(contract.CanonicalCapability(c))
		if !slices.Contains(out, cc) {
			out = append(out, cc)
		}
	}
	return out
}

// buildPod maps a validated config to a pod held by the driver's
// scheduling gate. name is the pod's name, key the idempotency key ("" for
// none), pids the pids limit the cluster enforces, netValue the pod
// selector value of the config's network ("" for none), refs the objects
// behind cfg.Volumes.
func (d *Driver) buildPod(cfg contract.ContainerConfig, name, key string, lim contract.EngineLimits, pids int64, netValue string, refs []mountRef) (podSpec, error) {
	u, err := parseUser(cfg.Security.User)
	if err != nil {
		return podSpec{}, newErr(contract.OpCreateContainer, contract.CodeConfiguration, "", err.Error(), nil)
	}
	k := d.keys
	extra := map[string]string{k.sessionHash: hash(cfg.SessionID)}
	ann := map[string]string{
		k.session: cfg.SessionID,
		k.image:   cfg.Image,
		k.labels:  encodeLabels(cfg.Labels),
		k.pids:    strconv.FormatInt(pids, 10),
	}
	if key != "" {
		extra[k.keyHash] = hash(key)
		ann[k.key] = key
	}
	if netValue != "" {
		extra[k.network] = netValue
	}

	env := make([]corev1.EnvVar, 0, len(cfg.Env))
	for _, name := range slices.Sorted(maps.Keys(cfg.Env)) {
		env = append(env, corev1.EnvVar{Name: name, Value: cfg.Env[name]})
	}

	res := corev1.ResourceRequirements{Limits: corev1.ResourceList{}, Requests: corev1.ResourceList{}}
	if m := lim.MilliCPUs(); m > 0 {
		res.Limits[corev1.ResourceCPU] = *resource.NewMilliQuantity(m, resource.DecimalSI)
		res.Requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(d.cpuRequest(m), resource.DecimalSI)
	}
	res.Limits[corev1.ResourceMemory] = *resource.NewQuantity(lim.MemoryBytes, resource.BinarySI)
	res.Requests[corev1.ResourceMemory] = *resource.NewQuantity(lim.MemoryBytes, resource.BinarySI)
	res.Limits[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(lim.DiskBytes, resource.BinarySI)
	res.Requests[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(lim.DiskBytes, resource.BinarySI)

	nonRoot := u.uid == nil || *u.uid != 0
	c := corev1.Container{
		Name:            containerName,
		Image:           cfg.Image,
		Args:            slices.Clone(cfg.Command),
		Env:             env,
		Resources:       res,
		ImagePullPolicy: d.pullPolicy(),
		SecurityContext: &corev1.SecurityContext{
			Privileged:               new(false),
			AllowPrivilegeEscalation: new(!cfg.Security.NoNewPrivileges),
			ReadOnlyRootFilesystem:   new(cfg.Security.ReadOnly),
			RunAsNonRoot:             new(nonRoot),
			RunAsUser:                u.uid,
			RunAsGroup:               u.gid,
			Capabilities: &corev1.Capabilities{
				Drop: canonicalCaps(cfg.Security.Capabilities.Drop),
				Add:  canonicalCaps(cfg.Security.Capabilities.Add),
			},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	var vols []corev1.Volume
	taken := map[string]bool{}
	for i, m := range cfg.Volumes {
		vname := "v" + strconv.Itoa(i)
		v := corev1.Volume{Name: vname}
		if m.EffectiveType() == contract.MountBind {
			v.HostPath = &corev1.HostPathVolumeSource{Path: m.Source}
		} else {
			v.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: refs[i].claim, ReadOnly: m.ReadOnly}
		}
		vols = append(vols, v)
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: vname, MountPath: m.Target, ReadOnly: m.ReadOnly})
		taken[path.Clean(m.Target)] = true
	}
	if cfg.Security.ReadOnly && !taken[tmpTarget] {
		vols = append(vols, corev1.Volume{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
			Medium:    corev1.StorageMediumMemory,
			SizeLimit: resource.NewQuantity(lim.DiskBytes, resource.BinarySI),
		}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: tmpVolume, MountPath: tmpTarget})
	}

	grace := int64(math.Ceil(d.cfg.stopTimeout.Seconds()))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   d.ns,
			Labels:      k.objectLabels(cfg.Labels, extra),
			Annotations: ann,
		},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{c},
			Volumes:                       vols,
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &grace,
			AutomountServiceAccountToken:  new(false),
			EnableServiceLinks:            new(false),
			HostNetwork:                   false,
			HostPID:                       false,
			HostIPC:                       false,
			ShareProcessNamespace:         new(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   new(nonRoot),
				RunAsUser:      u.uid,
				RunAsGroup:     u.gid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			SchedulingGates: []corev1.PodSchedulingGate{{Name: k.gate}},
		},
	}
	return podSpec{pod: pod, limits: lim}, nil
}

// cpuRequest returns the CPU request for a limit of m millicores: the
// configured fraction of it, rounded up, at least one millicore.
func (d *Driver) cpuRequest(m int64) int64 {
	if d.cfg.cpuFraction >= 1 {
		return m
	}
	return max(1, int64(math.Ceil(float64(m)*d.cfg.cpuFraction)))
}

func (d *Driver) pullPolicy() corev1.PullPolicy {
	switch d.cfg.pullPolicy {
	case PullNever:
		return corev1.PullNever
	case PullAlways:
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// appliedLimits reads the limits a pod's container has, in engine units;
// pids is the limit recorded at create, as no pod field holds it.
func appliedLimits(p *corev1.Pod, pids int64) contract.EngineLimits {
	c := mainContainer(p)
	if c == nil {
		return contract.EngineLimits{}
	}
	l := c.Resources.Limits
	e := contract.EngineLimits{PIDs: pids}
	if q, ok := l[corev1.ResourceCPU]; ok {
		e.NanoCPUs = q.MilliValue() * 1e6
	}
	if q, ok := l[corev1.ResourceMemory]; ok {
		e.MemoryBytes = q.Value()
	}
	if q, ok := l[corev1.ResourceEphemeralStorage]; ok {
		e.DiskBytes = q.Value()
	}
	return e
}

// mainContainer returns the pod's container, nil when the pod is not
// shaped as the driver makes them.
func mainContainer(p *corev1.Pod) *corev1.Container {
	if p == nil || len(p.Spec.Containers) != 1 {
		return nil
	}
	return &p.Spec.Containers[0]
}

// appliedDiff compares the settings that bound and confine a pod that the
// API server stored (got) with those of the pod asked for (want), and
// names each that differs; nil when all were applied. Admission plugins
// and webhooks may change a pod on its way in: a limit, a security
// setting, a mount or a container they add or drop is caught here.
func appliedDiff(want, got *corev1.Pod, limits contract.EngineLimits, gate string) []string {
	var diffs []string
	check := func(ok bool, what string) {
		if !ok {
			diffs = append(diffs, what)
		}
	}
	wc, gc := mainContainer(want), mainContainer(got)
	if gc == nil {
		return []string{"the pod's shape (one container)"}
	}
	check(len(got.Spec.InitContainers) == 0 && len(got.Spec.EphemeralContainers) == 0, "the pod's containers (others were added)")
	for _, f := range limits.Diff(appliedLimits(got, limits.PIDs)) {
		diffs = append(diffs, "the "+f+" limit")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		check(sameQuantity(wc.Resources.Requests, gc.Resources.Requests, r), "the "+string(r)+" request")
		check(sameQuantity(wc.Resources.Limits, gc.Resources.Limits, r), "the "+string(r)+" limit")
	}
	ws, gs := effectiveSecurity(want, wc), effectiveSecurity(got, gc)
	check(!gs.privileged, "the unprivileged mode")
	check(ws.noEscalation == gs.noEscalation, "allowPrivilegeEscalation")
	check(ws.readOnly == gs.readOnly, "the read-only root filesystem")
	check(ws.nonRoot == gs.nonRoot, "runAsNonRoot")
	check(sameID(ws.uid, gs.uid), "the user (runAsUser)")
	check(sameID(ws.gid, gs.gid), "the group (runAsGroup)")
	check(ws.seccomp == gs.seccomp, "the seccomp profile")
	check(gs.procMount == "" || gs.procMount == string(corev1.DefaultProcMount), "the default /proc mount")
	check(sameCaps(ws.drop, gs.drop), "the dropped capabilities")
	check(sameCaps(ws.add, gs.add), "the added capabilities")
	check(!got.Spec.HostNetwork && !got.Spec.HostPID && !got.Spec.HostIPC, "the pod's own network, pid and ipc namespaces")
	check(got.Spec.ShareProcessNamespace == nil || !*got.Spec.ShareProcessNamespace, "the pod's unshared process namespace")
	check(isFalse(got.Spec.AutomountServiceAccountToken), "automountServiceAccountToken false")
	check(isFalse(got.Spec.EnableServiceLinks), "enableServiceLinks false")
	check(sameHostUsers(want.Spec.HostUsers, got.Spec.HostUsers), "hostUsers")
	check(got.Spec.RestartPolicy == want.Spec.RestartPolicy, "the restart policy")
	check(hasGate(got, gate) == hasGate(want, gate), "the scheduling gate")
	check(sameMounts(want, got), "the volumes and mounts")
	return diffs
}

// security is the effective security settings of a pod's container.
type security struct {
	privileged, noEscalation, readOnly, nonRoot bool
	uid, gid                                    *int64
	seccomp                                     string
	procMount                                   string
	drop, add                                   []corev1.Capability
}

func effectiveSecurity(p *corev1.Pod, c *corev1.Container) security {
	var s security
	// Defaults of the runtime: escalation is allowed unless said otherwise.
	s.noEscalation = false
	if ps := p.Spec.SecurityContext; ps != nil {
		s.uid, s.gid = ps.RunAsUser, ps.RunAsGroup
		s.nonRoot = ps.RunAsNonRoot != nil && *ps.RunAsNonRoot
		if ps.SeccompProfile != nil {
			s.seccomp = string(ps.SeccompProfile.Type) + ":" + strOr(ps.SeccompProfile.LocalhostProfile)
		}
	}
	if cs := c.SecurityContext; cs != nil {
		s.privileged = cs.Privileged != nil && *cs.Privileged
		s.noEscalation = cs.AllowPrivilegeEscalation != nil && !*cs.AllowPrivilegeEscalation
		s.readOnly = cs.ReadOnlyRootFilesystem != nil && *cs.ReadOnlyRootFilesystem
		if cs.RunAsNonRoot != nil {
			s.nonRoot = *cs.RunAsNonRoot
		}
		if cs.RunAsUser != nil {
			s.uid = cs.RunAsUser
		}
		if cs.RunAsGroup != nil {
			s.gid = cs.RunAsGroup
		}
		if cs.SeccompProfile != nil {
			s.seccomp = string(cs.SeccompProfile.Type) + ":" + strOr(cs.SeccompProfile.LocalhostProfile)
		}
		if cs.ProcMount != nil {
			s.procMount = string(*cs.ProcMount)
		}
		if cs.Capabilities != nil {
			s.drop, s.add = cs.Capabilities.Drop, cs.Capabilities.Add
		}
	}
	return s
}

func strOr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func isFalse(b *bool) bool { return b != nil && !*b }

func sameID(a, b *int64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func sameHostUsers(a, b *bool) bool {
	// Unset and true both mean the host's user namespace.
	return (a == nil || *a) == (b == nil || *b)
}

func sameQuantity(want, got corev1.ResourceList, r corev1.ResourceName) bool {
	w, wok := want[r]
	g, gok := got[r]
	if !wok || !gok {
		return wok == gok
	}
	return w.Cmp(g) == 0
}

func sameCaps(a, b []corev1.Capability) bool {
	norm := func(l []corev1.Capability) []string {
		out := make([]string, len(l))
		for i, c := range l {
			out[i] = contract.CanonicalCapability(string(c))
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(norm(a), norm(b))
}

// sameMounts reports whether got mounts exactly the volumes want mounts,
// at the same paths, with the same read-only flags and sources, and the
// same size-limited emptyDirs.
func sameMounts(want, got *corev1.Pod) bool {
	type mount struct {
		path     string
		readOnly bool
		source   string
	}
	mounts := func(p *corev1.Pod) []mount {
		c := mainContainer(p)
		vols := map[string]corev1.Volume{}
		for _, v := range p.Spec.Volumes {
			vols[v.Name] = v
		}
		var out []mount
		for _, m := range c.VolumeMounts {
			out = append(out, mount{path: m.MountPath, readOnly: m.ReadOnly, source: describeVolume(vols[m.Name])})
		}
		slices.SortFunc(out, func(a, b mount) int { return strings.Compare(a.path, b.path) })
		return out
	}
	return slices.Equal(mounts(want), mounts(got)) && len(got.Spec.Volumes) == len(want.Spec.Volumes)
}

func describeVolume(v corev1.Volume) string {
	switch {
	case v.PersistentVolumeClaim != nil:
		return fmt.Sprintf("pvc:%s:%v", v.PersistentVolumeClaim.ClaimName, v.PersistentVolumeClaim.ReadOnly)
	case v.HostPath != nil:
		return "host:" + v.HostPath.Path
	case v.EmptyDir != nil:
		size := ""
		if v.EmptyDir.SizeLimit != nil {
			size = strconv.FormatInt(v.EmptyDir.SizeLimit.Value(), 10)
		}
		return "emptydir:" + string(v.EmptyDir.Medium) + ":" + size
	}
	return "other:" + v.Name
}

// hasGate reports whether the pod carries the scheduling gate.
func hasGate(p *corev1.Pod, gate string) bool {
	return slices.ContainsFunc(p.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == gate })
}

// formatTime writes a time for an annotation.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// parseTime reads a time of an annotation; garbage is the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
