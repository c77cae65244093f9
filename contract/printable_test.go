package contract_test

import (
	"strings"
	"testing"

	"github.com/resilientdriver/resilient/contract"
)

// unprintable are ids that must not pass as printable: each can forge a
// line, inject a terminal escape, hide text or pass for another id. The
// validation tests use them as session ids and label keys.
var unprintable = []struct{ name, s string }{
	{"newline", "a\nb"},
	{"carriage return", "a\rb"},
	{"tab", "a\tb"},
	{"NUL", "a\x00b"},
	{"escape", "a\x1b[31mb"},
	{"DEL", "a\x7fb"},
	{"C1 next line", "a\u0085b"},
	{"C1 control sequence introducer", "a\u009b31mb"},
	{"line separator", "a\u2028b"},
	{"paragraph separator", "a\u2029b"},
	{"right-to-left override", "a\u202eb"},
	{"left-to-right embedding", "a\u202ab"},
	{"zero-width space", "a\u200bb"},
	{"zero-width joiner", "a\u200db"},
	{"right-to-left mark", "a\u200fb"},
	{"left-to-right isolate", "a\u2066b"},
	{"pop directional isolate", "a\u2069b"},
	{"byte order mark", "\ufeffab"},
	{"soft hyphen", "a\u00adb"},
	{"tag character", "a\U000E0041b"},
	{"no-break space", "a\u00a0b"},
	{"ideographic space", "a\u3000b"},
	{"em space", "a\u2003b"},
	{"private use", "a\ue000b"},
	{"unassigned", "a\U000E0080b"},
	{"invalid UTF-8", "a\xffb"},
	{"truncated UTF-8", "a\xe2\x80"},
	{"encoded surrogate", "a\xed\xa0\x80b"},
}

func TestPrintable(t *testing.T) {
	for _, s := range []string{"", "session-1", "a b", "名前", "café", "e\u0301", "Ωμέγα", "user@example.com", "a/b:c=d", "\ufffd", "😀"} {
		if !contract.Printable(s) {
			t.Errorf("Printable(%q) = false, want true", s)
		}
	}
	for _, tt := range unprintable {
		if contract.Printable(tt.s) {
			t.Errorf("Printable(%q) (%s) = true, want false", tt.s, tt.name)
		}
	}
}

// TestErrorQuotesUnprintableIDs checks that DriverError uses the same
// definition as validation: an id that is not Printable is quoted.
func TestErrorQuotesUnprintableIDs(t *testing.T) {
	for _, tt := range unprintable {
		msg := contract.NewError(contract.CodeContainerNotFound, contract.OpStartContainer, tt.s, "", nil).Error()
		if strings.Contains(msg, tt.s) || !contract.Printable(msg) {
			t.Errorf("%s: Error() = %q shows the id as it is", tt.name, msg)
		}
	}
}
