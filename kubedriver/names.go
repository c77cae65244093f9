package kubedriver

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
)

// keys are the driver's label, annotation and gate keys, all
// "<prefix>/<name>".
type keys struct {
	prefix string

	// Labels, for selection.
	managed     string // "true" on everything the driver creates
	sessionHash string // hash of the session ID (label values are short)
	keyHash     string // hash of the idempotency key
	network     string // on a pod: the selector value of its network's policy

	// Annotations, the source of truth.
	session   string // the session ID
	key       string // the idempotency key of the create
	name      string // a volume's or network's name as the caller gave it
	image     string // the image reference as the caller gave it
	labels    string // JSON object of the caller's labels
	created   string // when the container was first created (RFC 3339)
	pids      string // the pids limit verified at create
	stoppedAt string // when StopContainer stopped the container (RFC 3339)
	exitCode  string // the exit code of its last run, when known
	finished  string // when its last run ended, as the kubelet reported it
	startedAt string // when its last run started (RFC 3339)
	logs      string // output of earlier runs, timestamped lines
	creator   string // the create call that made the pod or took it over (random)
	remake    string // on a pod a stop or start deletes to make it again: what for

	// gate holds a pod unscheduled until StartContainer removes it.
	gate string
}

func newKeys(prefix string) keys {
	k := func(name string) string { return prefix + "/" + name }
	return keys{
		prefix:      prefix,
		managed:     k("managed"),
		sessionHash: k("session-hash"),
		keyHash:     k("idempotency-key-hash"),
		network:     k("network"),
		session:     k("session"),
		key:         k("idempotency-key"),
		name:        k("name"),
		image:       k("image"),
		labels:      k("labels"),
		created:     k("created-at"),
		pids:        k("pids"),
		stoppedAt:   k("stopped-at"),
		exitCode:    k("exit-code"),
		finished:    k("finished-at"),
		startedAt:   k("started-at"),
		logs:        k("logs"),
		creator:     k("creator"),
		remake:      k("remake"),
		gate:        k("start"),
	}
}

// reserved reports whether a label key is in the driver's namespace, which
// callers may not use.
func (k keys) reserved(key string) bool {
	return key == k.prefix || strings.HasPrefix(key, k.prefix+"/") || strings.HasPrefix(key, k.prefix+".")
}

// firstReserved returns the first key of m, in sorted order, in the
// driver's namespace.
func (k keys) firstReserved(m map[string]string) (string, bool) {
	for _, key := range slices.Sorted(maps.Keys(m)) {
		if k.reserved(key) {
			return key, true
		}
	}
	return "", false
}

func (k keys) isManaged(labels map[string]string) bool { return labels[k.managed] == "true" }

// managedSelector selects the driver's objects.
func (k keys) managedSelector() string { return k.managed + "=true" }

// objectLabels returns the Kubernetes labels of a new object: the managed
// label, extra, and those of the caller's labels that are valid Kubernetes
// labels (see mirrored).
func (k keys) objectLabels(user, extra map[string]string) map[string]string {
	out := map[string]string{}
	for key, v := range user {
		if mirrored(key, v) {
			out[key] = v
		}
	}
	maps.Copy(out, extra)
	out[k.managed] = "true"
	return out
}

// mirrored reports whether a caller's label is also set as a Kubernetes
// label, so that selectors and kubectl see it: its key and value are
// valid, and the key is not in a prefix Kubernetes reserves.
func mirrored(key, value string) bool {
	if len(content.IsLabelKey(key)) > 0 || len(content.IsLabelValue(value)) > 0 {
		return false
	}
	if p, _, ok := strings.Cut(key, "/"); ok {
		for _, r := range []string{"kubernetes.io", "k8s.io"} {
			if p == r || strings.HasSuffix(p, "."+r) {
				return false
			}
		}
	}
	return true
}

// encodeLabels returns the caller's labels as the JSON annotation.
func encodeLabels(user map[string]string) string {
	if user == nil {
		user = map[string]string{}
	}
	b, _ := json.Marshal(user)
	return string(b)
}

// userLabels returns the caller's labels of an object: from the JSON
// annotation, else every label outside the driver's namespace.
func (k keys) userLabels(labels, annotations map[string]string) map[string]string {
	out := map[string]string{}
	if raw, ok := annotations[k.labels]; ok && json.Unmarshal([]byte(raw), &out) == nil {
		return out
	}
	out = map[string]string{}
	for key, v := range labels {
		if !k.reserved(key) {
			out[key] = v
		}
	}
	return out
}

// hash returns a label value standing for s: 32 hex digits of its SHA-256.
func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// namePrefix starts the name of every pod the driver creates.
const namePrefix = "resilient-"

// podName returns the name, and the container's id, of a new pod: derived
// from the label prefix and the idempotency key when there is one, so a
// repeated create finds the first one's pod; otherwise the session reduced
// to a DNS label and a random suffix.
func (k keys) podName(session, key string) string {
	if key != "" {
		sum := sha256.Sum256([]byte(k.prefix + "\x00" + key))
		return namePrefix + "k" + hex.EncodeToString(sum[:12])
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(session) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 40 {
			break
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if s == "" {
		s = "session"
	}
	var r [5]byte
	_, _ = rand.Read(r[:])
	return namePrefix + s + "-" + hex.EncodeToString(r[:])
}

// newCreator returns a random id of one create call, the value of the
// creator annotation of the pod it makes or takes over.
func newCreator() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// objectName returns the Kubernetes name of a volume's claim or a
// network's policy: the name itself when it is a valid object name (a DNS
// subdomain), otherwise kind and a hash of it. A name and an id map to the
// same object, so removes accept either.
func objectName(kind, name string) string {
	if validObjectName(name) {
		return name
	}
	return namePrefix + kind + "-" + hash(name)[:24]
}

// validObjectName reports whether s is a valid name of a namespaced object
// (pods, claims, policies): a DNS subdomain of at most 253 characters.
func validObjectName(s string) bool {
	return s != "" && len(content.IsDNS1123Subdomain(s)) == 0
}
