package contract

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Issue is one problem found in an input, at a zod-style path such as
// "resources.memory" or "volumes.0.type".
type Issue struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// ValidationError lists every problem found in an input at once. The
// Validate functions and [DecodeContainerConfig] return it wrapped in a
// *DriverError with code CONFIGURATION, so both
// errors.Is(err, ErrConfiguration) and errors.As(err, &ve) hold.
type ValidationError struct {
	Issues []Issue
}

// Error lists the issues as "path: message; path: message".
func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		if is.Path != "" {
			b.WriteString(is.Path)
			b.WriteString(": ")
		}
		b.WriteString(is.Message)
	}
	return b.String()
}

// issues collects problems under a path prefix.
type issues struct {
	list []Issue
}

func (is *issues) add(path, format string, args ...any) {
	is.list = append(is.list, Issue{Path: path, Message: fmt.Sprintf(format, args...)})
}

// addEntry adds an issue about the entry of key k in the map at p: at
// p.k when k is short and printable, else at p with the key quoted in
// the message, so that a key from the input cannot forge the error text.
func (is *issues) addEntry(p, k, format string, args ...any) {
	if shown(k) == k {
		is.add(join(p, k), format, args...)
		return
	}
	is.add(p, "key %s: "+format, append([]any{quoted(k)}, args...)...)
}

func (is *issues) err(what string) error {
	if len(is.list) == 0 {
		return nil
	}
	return &DriverError{
		Code:    CodeConfiguration,
		Message: "invalid " + what,
		Err:     &ValidationError{Issues: is.list},
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	if name == "" {
		return prefix
	}
	return prefix + "." + name
}

func idx(prefix string, i int) string { return join(prefix, strconv.Itoa(i)) }

// ValidateContainerConfig checks cfg against the contract's schema and the
// semantic rules documented in the package doc. It returns nil or an error
// holding a *ValidationError with every issue.
func ValidateContainerConfig(cfg ContainerConfig) error {
	var is issues
	checkContainerConfig(&is, cfg)
	return is.err("container config")
}

// ValidateResourceLimits checks limits against the contract's schema (cpu
// >= 0 and finite, memory >= 1, disk >= 1, pids >= 1) and the bounds that
// make every limit convert exactly to engine units: cpu 0 or a whole
// number of millicores from [MinCPU] to [MaxCPU], memory at most
// [MaxMemory], disk at most [MaxDisk], pids at most [MaxPIDs].
func ValidateResourceLimits(limits ResourceLimits) error {
	var is issues
	checkResources(&is, "", limits)
	return is.err("resource limits")
}

// ValidateSecurityOptions checks the user's form and that every capability
// is a known Linux capability name or "ALL". It does not judge whether the
// options are safe; that is a policy's job (see middleware.Validate).
func ValidateSecurityOptions(opts SecurityOptions) error {
	var is issues
	checkSecurity(&is, "", opts)
	return is.err("security options")
}

// ValidateVolumeConfig checks the volume's name (1 to 255 characters of
// [a-zA-Z0-9_.-], starting with a letter or digit), driver name and labels.
func ValidateVolumeConfig(cfg VolumeConfig) error {
	var is issues
	checkResourceName(&is, "name", cfg.Name)
	checkDriverName(&is, "driver", cfg.Driver)
	checkLabels(&is, "labels", cfg.Labels)
	return is.err("volume config")
}

// ValidateNetworkConfig checks the network's name (as for volumes), driver
// name, labels and options.
func ValidateNetworkConfig(cfg NetworkConfig) error {
	var is issues
	checkResourceName(&is, "name", cfg.Name)
	checkDriverName(&is, "driver", cfg.Driver)
	checkLabels(&is, "labels", cfg.Labels)
	checkLabels(&is, "options", cfg.Options)
	return is.err("network config")
}

func checkContainerConfig(is *issues, cfg ContainerConfig) {
	switch {
	case cfg.SessionID == "":
		is.add("sessionId", "must not be empty")
	case len(cfg.SessionID) > 128 || !Printable(cfg.SessionID):
		is.add("sessionId", "must be at most 128 bytes of printable characters")
	}
	if msg := checkImageRef(cfg.Image); msg != "" {
		is.add("image", "%s", msg)
	}
	checkArgs(is, "command", cfg.Command)
	if cfg.Command != nil && len(cfg.Command) == 0 {
		is.add("command", "must not be empty when set; leave it nil for the image's command")
	}
	checkEnv(is, "env", cfg.Env)
	checkLabels(is, "labels", cfg.Labels)
	checkResources(is, "resources", cfg.Resources)
	for i, m := range cfg.Volumes {
		checkMount(is, idx("volumes", i), m)
	}
	if cfg.Network != "" && !resourceName.MatchString(cfg.Network) {
		is.add("network", "must be a network name of [a-zA-Z0-9_.-] starting with a letter or digit")
	}
	checkSecurity(is, "security", cfg.Security)
}

// textIssue returns what makes s unfit to send to an engine, or "": a NUL,
// which ends the C string the engine makes of it, or bytes that are not
// UTF-8. The engines' APIs take JSON, as the contract's JSON form is, and
// JSON cannot carry such bytes: encoding/json writes each as U+FFFD, so the
// engine would get other text than the one validated.
func textIssue(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL"
	case !utf8.ValidString(s):
		return "must be valid UTF-8: JSON, in which engines take it, cannot carry other bytes"
	}
	return ""
}

// checkText reports the textIssue of s at p, and whether there was none.
func checkText(is *issues, p, s string) bool {
	msg := textIssue(s)
	if msg != "" {
		is.add(p, "%s", msg)
	}
	return msg == ""
}

// checkArgs checks each argument of a command with checkText.
func checkArgs(is *issues, p string, args []string) {
	for i, arg := range args {
		checkText(is, idx(p, i), arg)
	}
}

// checkEnv checks environment variables: names not empty, printable and
// without '=', values text (see textIssue).
func checkEnv(is *issues, p string, env map[string]string) {
	checkMap(is, p, "variable name", env, func(k string) string {
		if strings.IndexByte(k, '=') >= 0 {
			return "variable name must not contain '='"
		}
		return ""
	})
}

// checkLabels checks that every key is printable and every value text (see
// textIssue).
func checkLabels(is *issues, p string, labels map[string]string) {
	checkMap(is, p, "key", labels, nil)
}

// checkMap checks a map of strings in key order: every key is not empty,
// [Printable] and passes rule, when there is one (rule returns what is
// wrong, or ""); every value is text (see textIssue). key names a key in
// the messages. The issue of a key that is not printable is at p, with
// the key quoted in the message, so that the key cannot forge the error
// text.
func checkMap(is *issues, p, key string, m map[string]string, rule func(k string) string) {
	for _, k := range sortedKeys(m) {
		switch {
		case k == "":
			is.add(p, "%s must not be empty", key)
			continue
		case !Printable(k):
			is.add(p, "%s %s must be printable: graphic characters, U+0020 the only space", key, quoted(k))
			continue
		case rule != nil:
			if msg := rule(k); msg != "" {
				is.addEntry(p, k, "%s", msg)
			}
		}
		if msg := textIssue(m[k]); msg != "" {
			is.addEntry(p, k, "value %s", msg)
		}
	}
}

func checkMount(is *issues, p string, m VolumeMount) {
	switch m.Type {
	case "", MountBind, MountVolume:
	default:
		is.add(join(p, "type"), "%s", badMountType(string(m.Type)))
		return
	}
	switch {
	case m.Source == "":
		is.add(join(p, "source"), "must not be empty")
	case m.EffectiveType() == MountBind:
		if checkText(is, join(p, "source"), m.Source) && !absClean(m.Source) {
			is.add(join(p, "source"), "bind source must be an absolute, clean host path")
		}
	default:
		if !resourceName.MatchString(m.Source) {
			is.add(join(p, "source"), "volume source must be a volume name of [a-zA-Z0-9_.-]")
		}
	}
	if checkText(is, join(p, "target"), m.Target) && (!absClean(m.Target) || m.Target == "/") {
		is.add(join(p, "target"), "must be an absolute, clean path other than /")
	}
}

// badMountType is zod's message for a mount type that is not an enum
// value, with the value as it is when it is short and printable, else
// quoted so that it cannot forge the error text.
func badMountType(s string) string {
	if shown(s) == s {
		s = "'" + s + "'"
	} else {
		s = quoted(s)
	}
	return "Invalid enum value. Expected 'bind' | 'volume', received " + s
}

// absClean reports whether p is absolute, has no NUL, no "." or ".."
// elements and no trailing or doubled slash.
func absClean(p string) bool {
	if len(p) == 0 || p[0] != '/' || strings.IndexByte(p, 0) >= 0 {
		return false
	}
	if p == "/" {
		return true
	}
	for _, el := range strings.Split(p[1:], "/") {
		if el == "" || el == "." || el == ".." {
			return false
		}
	}
	return true
}

var userRE = regexp.MustCompile(`^([0-9]{1,10}|[a-zA-Z_][a-zA-Z0-9_.-]{0,31})(:([0-9]{1,10}|[a-zA-Z_][a-zA-Z0-9_.-]{0,31}))?$`)

func checkSecurity(is *issues, p string, s SecurityOptions) {
	if s.User != "" && !userRE.MatchString(s.User) {
		is.add(join(p, "user"), "must be \"uid[:gid]\" or \"name[:group]\"")
	}
	for i, c := range s.Capabilities.Drop {
		if !KnownCapability(c) {
			is.add(idx(join(p, "capabilities.drop"), i), "unknown capability %s", quoted(c))
		}
	}
	for i, c := range s.Capabilities.Add {
		if !KnownCapability(c) {
			is.add(idx(join(p, "capabilities.add"), i), "unknown capability %s", quoted(c))
		}
	}
}

var resourceName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$`)

func checkResourceName(is *issues, p, name string) {
	if !resourceName.MatchString(name) {
		is.add(p, "must be 1 to 255 characters of [a-zA-Z0-9_.-] starting with a letter or digit")
	}
}

var driverName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.:/-]{0,127}$`)

func checkDriverName(is *issues, p, name string) {
	if name != "" && !driverName.MatchString(name) {
		is.add(p, "must be a driver name of [a-zA-Z0-9_.:/-]")
	}
}

// The image reference grammar of the OCI distribution spec:
// [domain[:port]/]path[:tag][@digest].
var imageRE = func() *regexp.Regexp {
	const (
		domainComp = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		domain     = domainComp + `(?:\.` + domainComp + `)*(?::[0-9]+)?`
		pathComp   = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
		name       = `(?:` + domain + `/)?` + pathComp + `(?:/` + pathComp + `)*`
		tag        = `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
		digest     = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	)
	return regexp.MustCompile(`^(` + name + `)(?::` + tag + `)?(?:@` + digest + `)?$`)
}()

// MaxImageRefLen is the longest image reference validation accepts, in
// bytes: the longest the parts allow with a registered digest algorithm.
// A name is at most 255 characters, domain and port included (the limit of
// Docker's reference package); a tag at most 128 (the grammar); a digest
// of sha512, the longest algorithm the OCI image spec registers, 7+128. A
// longer input is refused before the reference grammar runs, whose cost
// grows with the input (a megabyte would take a fraction of a second).
const MaxImageRefLen = 255 + len(":") + 128 + len("@sha512:") + 128

var imageTooLong = "must be at most " + strconv.Itoa(MaxImageRefLen) +
	" bytes: a name of at most 255 characters, a tag of at most 128 and a sha512 digest"

// ValidImageRef reports whether ref is a valid image reference:
// [domain[:port]/]path[:tag][@digest], name at most 255 characters, the
// whole at most [MaxImageRefLen] bytes.
func ValidImageRef(ref string) bool { return checkImageRef(ref) == "" }

func checkImageRef(ref string) string {
	switch {
	case ref == "":
		return "must not be empty"
	case len(ref) > MaxImageRefLen:
		return imageTooLong
	}
	m := imageRE.FindStringSubmatch(ref)
	if m == nil {
		return "must be an image reference such as \"alpine:3.20\" or \"registry:5000/team/app@sha256:<hex>\""
	}
	if len(m[1]) > 255 {
		return "repository name must be at most 255 characters"
	}
	return ""
}

var capabilities = map[string]bool{}

func init() {
	for _, c := range strings.Fields(`AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND BPF
		CHECKPOINT_RESTORE CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER
		KILL LEASE LINUX_IMMUTABLE MAC_ADMIN MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE
		NET_BROADCAST NET_RAW PERFMON SETFCAP SETGID SETPCAP SETUID SYSLOG SYS_ADMIN SYS_BOOT
		SYS_CHROOT SYS_MODULE SYS_NICE SYS_PACCT SYS_PTRACE SYS_RAWIO SYS_RESOURCE SYS_TIME
		SYS_TTY_CONFIG WAKE_ALARM`) {
		capabilities[c] = true
	}
}

// CanonicalCapability returns a capability name in canonical form: upper
// case without the "CAP_" prefix, e.g. "cap_net_raw" becomes "NET_RAW".
func CanonicalCapability(name string) string {
	return strings.TrimPrefix(strings.ToUpper(name), "CAP_")
}

// KnownCapability reports whether name is "ALL" or a Linux capability, in
// any case, with or without the "CAP_" prefix.
func KnownCapability(name string) bool {
	c := CanonicalCapability(name)
	return c == "ALL" || capabilities[c]
}

// Printable reports whether s is printable as the contract means it for
// session ids and label keys: valid UTF-8 in which every rune is a Unicode
// graphic character (unicode.IsGraphic: a letter, mark, number,
// punctuation, symbol or space) and the only space is U+0020. It refuses
// control characters (C0, DEL and C1 such as U+0085 and U+009B), format
// characters (bidi overrides and isolates such as U+202E and
// U+2066..U+2069, zero-width U+200B..U+200F, U+FEFF), the line and
// paragraph separators U+2028 and U+2029, private-use and unassigned code
// points, and every other space separator (U+00A0, U+3000, ...), which
// would let one id pass for another. Such characters in an id forge log
// lines, inject terminal escapes or hide text in labels, logs and span
// attributes. The empty string is printable.
func Printable(s string) bool {
	// unicode.IsPrint is IsGraphic with U+0020 as the only space.
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}
