package dockerdriver

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/filters"
)

// labels are the keys of the driver's own labels, all under the prefix.
type labels struct {
	prefix   string
	managed  string // "true" on everything the driver creates
	session  string // the container's session ID
	key      string // the idempotency key of the create that made it
	disk     string // the disk limit applied, in MB
	image    string // the image reference the caller gave
	userKeys string // JSON list of the label keys the caller gave
	request  string // a container's: a hash of the create request that made it
	createID string // a volume's: a random id of the create that made it
}

func newLabels(prefix string) labels {
	return labels{
		prefix:   prefix,
		managed:  prefix + ".managed",
		session:  prefix + ".session",
		key:      prefix + ".idempotency-key",
		disk:     prefix + ".disk-mb",
		image:    prefix + ".image",
		userKeys: prefix + ".label-keys",
		request:  prefix + ".request-hash",
		createID: prefix + ".create-id",
	}
}

// reserved reports whether k is a key of the driver's namespace, which
// callers may not set.
func (l labels) reserved(k string) bool {
	return k == l.prefix || strings.HasPrefix(k, l.prefix+".")
}

// firstReserved returns the first key of m, in sorted order, that is in the
// driver's namespace.
func (l labels) firstReserved(m map[string]string) (string, bool) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if l.reserved(k) {
			return k, true
		}
	}
	return "", false
}

// isManaged reports whether a resource with these labels is the driver's.
func (l labels) isManaged(m map[string]string) bool { return m[l.managed] == "true" }

// managedFilter selects the driver's resources.
func (l labels) managedFilter() filters.Args {
	return filters.NewArgs(filters.Arg("label", l.managed+"=true"))
}

// withUser returns the labels to put on a resource: the caller's, the
// managed label and extra.
func (l labels) withUser(user map[string]string, extra map[string]string) map[string]string {
	out := make(map[string]string, len(user)+len(extra)+2)
	maps.Copy(out, user)
	maps.Copy(out, extra)
	out[l.managed] = "true"
	keys := slices.Sorted(maps.Keys(user))
	if keys == nil {
		keys = []string{}
	}
	b, _ := json.Marshal(keys)
	out[l.userKeys] = string(b)
	return out
}

// user returns the caller's labels out of a resource's labels: the keys
// recorded at create when present, otherwise every label outside the
// driver's namespace. Labels inherited from the image are left out that
// way.
func (l labels) user(all map[string]string) map[string]string {
	out := map[string]string{}
	if raw, ok := all[l.userKeys]; ok {
		var keys []string
		if json.Unmarshal([]byte(raw), &keys) == nil {
			for _, k := range keys {
				if v, ok := all[k]; ok {
					out[k] = v
				}
			}
			return out
		}
	}
	for k, v := range all {
		if !l.reserved(k) {
			out[k] = v
		}
	}
	return out
}
