package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
)

// DecodeContainerConfig decodes the contract's JSON form of a container
// config. It accepts and refuses the documents the contract's zod schema
// (ContainerConfigSchema) does after JSON.parse: data is one JSON document
// with nothing but JSON whitespace (space, tab, CR, LF) after it; every
// field but command is required, types must match, and cpu >= 0, memory,
// disk and pids >= 1; unknown fields are ignored. All issues are reported
// at once in a *ValidationError wrapped in a CONFIGURATION *DriverError,
// with zod's paths and messages.
//
// Two differences follow from Go's types and are refused with an issue:
// memory, disk and pids must be integers that fit in int64, and cpu must be
// finite. An integer written as one (9007199254740993) is read exactly,
// where JSON.parse would round it to a float64; one written in another
// form (1e3, 128.0) is read as JSON.parse reads it, and is refused beyond
// 2^53-1 (Number.MAX_SAFE_INTEGER), where the float64 it becomes may
// differ from what was written. The semantic rules of
// [ValidateContainerConfig] are not applied; call it on the result.
func DecodeContainerConfig(data []byte) (ContainerConfig, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return ContainerConfig{}, NewError(CodeConfiguration, "", "", "invalid container config JSON", err)
	}
	if off := trailing(data, dec.InputOffset()); off >= 0 {
		return ContainerConfig{}, NewError(CodeConfiguration, "", "",
			fmt.Sprintf("invalid container config JSON: data after the document at offset %d", off), nil)
	}
	d := decoder{}
	cfg := d.config(doc)
	if err := d.err("container config"); err != nil {
		return ContainerConfig{}, err
	}
	return cfg, nil
}

// trailing returns the offset of the first byte of data from end on that
// is not JSON whitespace (space, tab, CR, LF), or -1 when there is none.
func trailing(data []byte, end int64) int {
	for i := int(end); i < len(data); i++ {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
		default:
			return i
		}
	}
	return -1
}

type decoder struct{ issues }

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// field returns obj[key], reporting "Required" when it is absent and not
// optional.
func (d *decoder) field(obj map[string]any, p, key string, optional bool) (any, bool) {
	v, ok := obj[key]
	if !ok {
		if !optional {
			d.add(join(p, key), "Required")
		}
		return nil, false
	}
	return v, true
}

func (d *decoder) object(p string, v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		d.add(p, "Expected object, received %s", typeName(v))
	}
	return m, ok
}

func (d *decoder) str(p string, v any) string {
	s, ok := v.(string)
	if !ok {
		d.add(p, "Expected string, received %s", typeName(v))
	}
	return s
}

func (d *decoder) boolean(p string, v any) bool {
	b, ok := v.(bool)
	if !ok {
		d.add(p, "Expected boolean, received %s", typeName(v))
	}
	return b
}

func (d *decoder) strings(p string, v any) []string {
	a, ok := v.([]any)
	if !ok {
		d.add(p, "Expected array, received %s", typeName(v))
		return nil
	}
	out := make([]string, len(a))
	for i, e := range a {
		out[i] = d.str(idx(p, i), e)
	}
	return out
}

func (d *decoder) record(p string, v any) map[string]string {
	m, ok := d.object(p, v)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s, ok := m[k].(string)
		if !ok {
			d.addEntry(p, k, "Expected string, received %s", typeName(m[k]))
		}
		out[k] = s
	}
	return out
}

func (d *decoder) number(p string, v any, min float64) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		d.add(p, "Expected number, received %s", typeName(v))
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		d.add(p, "Expected finite number")
		return 0, false
	}
	if f < min {
		d.add(p, "Number must be greater than or equal to %v", min)
		return 0, false
	}
	return f, true
}

// maxExactFloat is the largest integer below which a float64 holds every
// integer exactly: 2^53 - 1, JavaScript's Number.MAX_SAFE_INTEGER.
const maxExactFloat = 1<<53 - 1

// integer reads an integer of at least min. One written as a plain
// integer is read exactly. One in another form (1e3, 128.0) is read as
// JSON.parse reads it, as the nearest float64, which must be an integer
// and at most maxExactFloat, so that the value read is the one written.
func (d *decoder) integer(p string, v any, min int64) int64 {
	if n, ok := v.(json.Number); ok {
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			if i < min {
				d.add(p, "Number must be greater than or equal to %d", min)
				return 0
			}
			return i
		}
	}
	f, ok := d.number(p, v, float64(min))
	if !ok {
		return 0
	}
	switch {
	case f != math.Trunc(f):
		d.add(p, "Expected integer, received float")
	case f >= math.MaxInt64:
		d.add(p, "Number must be less than or equal to %d", int64(math.MaxInt64))
	case f > maxExactFloat:
		d.add(p, "Number must be less than or equal to %d when written with a fraction or an exponent, "+
			"beyond which a float64 does not hold it exactly; write it as a plain integer", maxExactFloat)
	default:
		return int64(f)
	}
	return 0
}

func (d *decoder) config(doc any) ContainerConfig {
	var cfg ContainerConfig
	obj, ok := d.object("", doc)
	if !ok {
		return cfg
	}
	if v, ok := d.field(obj, "", "sessionId", false); ok {
		cfg.SessionID = d.str("sessionId", v)
	}
	if v, ok := d.field(obj, "", "image", false); ok {
		cfg.Image = d.str("image", v)
	}
	if v, ok := d.field(obj, "", "command", true); ok {
		cfg.Command = d.strings("command", v)
	}
	if v, ok := d.field(obj, "", "env", false); ok {
		cfg.Env = d.record("env", v)
	}
	if v, ok := d.field(obj, "", "labels", false); ok {
		cfg.Labels = d.record("labels", v)
	}
	if v, ok := d.field(obj, "", "resources", false); ok {
		cfg.Resources = d.resources("resources", v)
	}
	if v, ok := d.field(obj, "", "volumes", false); ok {
		cfg.Volumes = d.volumes("volumes", v)
	}
	if v, ok := d.field(obj, "", "network", false); ok {
		cfg.Network = d.str("network", v)
	}
	if v, ok := d.field(obj, "", "security", false); ok {
		cfg.Security = d.security("security", v)
	}
	return cfg
}

func (d *decoder) resources(p string, v any) ResourceLimits {
	var r ResourceLimits
	obj, ok := d.object(p, v)
	if !ok {
		return r
	}
	if v, ok := d.field(obj, p, "cpu", false); ok {
		r.CPU, _ = d.number(join(p, "cpu"), v, 0)
	}
	if v, ok := d.field(obj, p, "memory", false); ok {
		r.Memory = d.integer(join(p, "memory"), v, 1)
	}
	if v, ok := d.field(obj, p, "disk", false); ok {
		r.Disk = d.integer(join(p, "disk"), v, 1)
	}
	if v, ok := d.field(obj, p, "pids", false); ok {
		r.PIDs = d.integer(join(p, "pids"), v, 1)
	}
	return r
}

func (d *decoder) volumes(p string, v any) []VolumeMount {
	a, ok := v.([]any)
	if !ok {
		d.add(p, "Expected array, received %s", typeName(v))
		return nil
	}
	out := make([]VolumeMount, len(a))
	for i, e := range a {
		ip := idx(p, i)
		obj, ok := d.object(ip, e)
		if !ok {
			continue
		}
		m := &out[i]
		if v, ok := d.field(obj, ip, "source", false); ok {
			m.Source = d.str(join(ip, "source"), v)
		}
		if v, ok := d.field(obj, ip, "target", false); ok {
			m.Target = d.str(join(ip, "target"), v)
		}
		if v, ok := d.field(obj, ip, "readOnly", true); ok {
			m.ReadOnly = d.boolean(join(ip, "readOnly"), v)
		}
		if v, ok := d.field(obj, ip, "type", true); ok {
			s, isStr := v.(string)
			switch {
			case isStr && (s == string(MountBind) || s == string(MountVolume)):
				m.Type = MountType(s)
			case isStr:
				d.add(join(ip, "type"), "%s", badMountType(s))
			default:
				d.add(join(ip, "type"), "Expected 'bind' | 'volume', received %s", typeName(v))
			}
		}
	}
	return out
}

func (d *decoder) security(p string, v any) SecurityOptions {
	var s SecurityOptions
	obj, ok := d.object(p, v)
	if !ok {
		return s
	}
	if v, ok := d.field(obj, p, "readOnly", false); ok {
		s.ReadOnly = d.boolean(join(p, "readOnly"), v)
	}
	if v, ok := d.field(obj, p, "noNewPrivileges", false); ok {
		s.NoNewPrivileges = d.boolean(join(p, "noNewPrivileges"), v)
	}
	if v, ok := d.field(obj, p, "user", false); ok {
		s.User = d.str(join(p, "user"), v)
	}
	if v, ok := d.field(obj, p, "capabilities", false); ok {
		cp := join(p, "capabilities")
		if caps, ok := d.object(cp, v); ok {
			if v, ok := d.field(caps, cp, "drop", false); ok {
				s.Capabilities.Drop = d.strings(join(cp, "drop"), v)
			}
			if v, ok := d.field(caps, cp, "add", false); ok {
				s.Capabilities.Add = d.strings(join(cp, "add"), v)
			}
		}
	}
	return s
}
