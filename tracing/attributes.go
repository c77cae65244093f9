package tracing

import (
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

// The allowlist: the only attribute keys the middleware ever sets. doc.go
// describes each; a test pins the list.
const (
	keyOp            = attribute.Key("resilient.op")
	keyOutcome       = attribute.Key("resilient.outcome")
	keyDriverName    = attribute.Key("driver.name")
	keyDriverVersion = attribute.Key("driver.version")
	keyContainerID   = attribute.Key("container.id")
	keyImageName     = attribute.Key("container.image.name")
	keySessionID     = attribute.Key("session.id")
	keyVolumeID      = attribute.Key("volume.id")
	keyVolumeName    = attribute.Key("volume.name")
	keyNetworkID     = attribute.Key("network.id")
	keyNetworkName   = attribute.Key("network.name")
	keyErrorType     = attribute.Key("error.type")
	keyExitCode      = attribute.Key("process.exit.code")
	keyStdoutBytes   = attribute.Key("resilient.exec.stdout_bytes")
	keyStderrBytes   = attribute.Key("resilient.exec.stderr_bytes")
	keyCopyBytes     = attribute.Key("resilient.copy.bytes")
)

// Values of resilient.outcome and error.type.
const (
	outcomeOK      = "ok"
	outcomeError   = "error"
	otherErrorType = contract.OtherErrorType
)

// maxValueLen caps identifier values (IDs, names, session IDs, image
// references), which reach this layer before validation and could be of any
// length.
const maxValueLen = 256

// idKey returns the key under which the resource ID of a call of op is
// recorded, or "" when the op concerns no single resource.
func idKey(op contract.Op) attribute.Key {
	switch op.Info().Resource {
	case contract.ResourceContainer:
		return keyContainerID
	case contract.ResourceVolume:
		return keyVolumeID
	case contract.ResourceNetwork:
		return keyNetworkID
	}
	return ""
}

// callAttributes appends the attributes that describe call before it runs:
// the resource ID, and for creates the allowlisted fields of the config.
// Nothing else of a config is read: not env, labels, command, mounts or
// security options.
func callAttributes(attrs []attribute.KeyValue, call *middleware.Call) []attribute.KeyValue {
	if k := idKey(call.Op); k != "" && call.ID != "" {
		attrs = append(attrs, k.String(clean(call.ID)))
	}
	switch {
	case call.Container != nil:
		if s := call.Container.SessionID; s != "" && contract.Printable(s) {
			attrs = append(attrs, keySessionID.String(clean(s)))
		}
		if img := imageName(call.Container.Image); img != "" {
			attrs = append(attrs, keyImageName.String(img))
		}
	case call.Volume != nil:
		if n := call.Volume.Name; n != "" {
			attrs = append(attrs, keyVolumeName.String(clean(n)))
		}
	case call.Network != nil:
		if n := call.Network.Name; n != "" {
			attrs = append(attrs, keyNetworkName.String(clean(n)))
		}
	}
	return attrs
}

// imageName returns the image reference to record, or "" to record none. Only
// a reference that matches the OCI grammar is recorded, whole (registry,
// path, tag and digest): that grammar has no room for userinfo, so a string
// such as "user:token@registry/app" is never exported. An invalid reference
// is left out rather than repaired, as it will fail validation anyway.
func imageName(ref string) string {
	if len(ref) > maxValueLen || !contract.ValidImageRef(ref) {
		return ""
	}
	return ref
}

// clean makes an identifier safe to export: valid UTF-8 (OTLP rejects
// anything else) and at most maxValueLen bytes, cut at a rune boundary.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= maxValueLen {
		return s
	}
	n := maxValueLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// resultAttributes appends the attributes that describe what call did, once
// it returned: an exec's exit code and the sizes of its output, and the
// bytes a copy into a container read from its tar stream. Never the
// command, its environment, its input or output, or a path.
func resultAttributes(attrs []attribute.KeyValue, call *middleware.Call, err error) []attribute.KeyValue {
	switch {
	case call.ExecResult != nil && err == nil:
		r := call.ExecResult
		attrs = append(attrs,
			keyExitCode.Int(r.ExitCode),
			keyStdoutBytes.Int(len(r.Stdout)),
			keyStderrBytes.Int(len(r.Stderr)))
	case call.Op == contract.OpCopyToContainer:
		attrs = append(attrs, keyCopyBytes.Int64(call.Copied))
	}
	return attrs
}
