package contract_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/resilientdriver/resilient/contract"
)

const validDoc = `{
  "sessionId": "s1",
  "image": "alpine:3.20",
  "command": ["sleep", "60"],
  "env": {"A": "1"},
  "labels": {"team": "infra"},
  "resources": {"cpu": 0.5, "memory": 128, "disk": 256, "pids": 64},
  "volumes": [{"source": "data", "target": "/data", "readOnly": true, "type": "volume"}],
  "network": "bridge",
  "security": {"readOnly": true, "noNewPrivileges": true, "user": "65534", "capabilities": {"drop": ["ALL"], "add": []}}
}`

// edit returns validDoc changed by f, which works on the decoded document.
func edit(t *testing.T, f func(m map[string]any)) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(validDoc), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

// TestDecodeMatchesSchema checks that DecodeContainerConfig accepts and
// refuses what the contract's zod schema does, with zod's paths and
// messages.
func TestDecodeMatchesSchema(t *testing.T) {
	tests := []struct {
		name string
		doc  func(t *testing.T) string
		want []contract.Issue // nil: accepted
	}{
		{"valid", func(*testing.T) string { return validDoc }, nil},
		{"unknown fields are ignored", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { m["extra"] = 1; obj(m, "resources")["gpu"] = 2 })
		}, nil},
		{"command is optional", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { delete(m, "command") })
		}, nil},
		{"empty strings pass the schema", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { m["sessionId"], m["image"], m["network"] = "", "", "" })
		}, nil},
		{"cpu zero and fractional", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "resources")["cpu"] = 0 })
		}, nil},
		{"integer written with exponent", func(t *testing.T) string {
			return `{"sessionId":"s","image":"a","env":{},"labels":{},"resources":{"cpu":1,"memory":1e3,"disk":1,"pids":1},"volumes":[],"network":"","security":{"readOnly":false,"noNewPrivileges":false,"user":"","capabilities":{"drop":[],"add":[]}}}`
		}, nil},
		{"volume mount optional fields", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { m["volumes"] = []any{map[string]any{"source": "v", "target": "/v"}} })
		}, nil},
		{"missing required fields", func(*testing.T) string { return `{}` }, []contract.Issue{
			{"sessionId", "Required"}, {"image", "Required"}, {"env", "Required"}, {"labels", "Required"},
			{"resources", "Required"}, {"volumes", "Required"}, {"network", "Required"}, {"security", "Required"},
		}},
		{"null is not optional", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { m["command"] = nil })
		}, []contract.Issue{{"command", "Expected array, received null"}}},
		{"wrong types", func(t *testing.T) string {
			return edit(t, func(m map[string]any) {
				m["sessionId"] = 1
				m["env"] = map[string]any{"A": 1}
				m["labels"] = []any{}
				obj(m, "security")["readOnly"] = "yes"
			})
		}, []contract.Issue{
			{"sessionId", "Expected string, received number"}, {"env.A", "Expected string, received number"},
			{"labels", "Expected object, received array"}, {"security.readOnly", "Expected boolean, received string"},
		}},
		{"number minimums", func(t *testing.T) string {
			return edit(t, func(m map[string]any) {
				r := obj(m, "resources")
				r["cpu"], r["memory"], r["disk"], r["pids"] = -0.1, 0, 0.5, -3
			})
		}, []contract.Issue{
			{"resources.cpu", "Number must be greater than or equal to 0"},
			{"resources.memory", "Number must be greater than or equal to 1"},
			{"resources.disk", "Number must be greater than or equal to 1"},
			{"resources.pids", "Number must be greater than or equal to 1"},
		}},
		{"numbers as strings", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "resources")["memory"] = "128" })
		}, []contract.Issue{{"resources.memory", "Expected number, received string"}}},
		{"missing nested fields", func(t *testing.T) string {
			return edit(t, func(m map[string]any) {
				delete(obj(m, "resources"), "pids")
				delete(obj(obj(m, "security"), "capabilities"), "add")
				m["volumes"] = []any{map[string]any{"target": "/x"}}
			})
		}, []contract.Issue{
			{"resources.pids", "Required"}, {"volumes.0.source", "Required"}, {"security.capabilities.add", "Required"},
		}},
		{"mount type enum", func(t *testing.T) string {
			return edit(t, func(m map[string]any) {
				m["volumes"] = []any{map[string]any{"source": "v", "target": "/v", "type": "tmpfs"}, "x"}
			})
		}, []contract.Issue{
			{"volumes.0.type", "Invalid enum value. Expected 'bind' | 'volume', received 'tmpfs'"},
			{"volumes.1", "Expected object, received string"},
		}},
		{"array elements", func(t *testing.T) string {
			return edit(t, func(m map[string]any) {
				m["command"] = []any{"ok", false}
				obj(obj(m, "security"), "capabilities")["drop"] = []any{nil}
			})
		}, []contract.Issue{
			{"command.1", "Expected string, received boolean"},
			{"security.capabilities.drop.0", "Expected string, received null"},
		}},
		{"top level array", func(*testing.T) string { return `[]` }, []contract.Issue{{"", "Expected object, received array"}}},
		{"top level null", func(*testing.T) string { return `null` }, []contract.Issue{{"", "Expected object, received null"}}},
		{"fractional memory (Go form is an integer)", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "resources")["memory"] = 1.5 })
		}, []contract.Issue{{"resources.memory", "Expected integer, received float"}}},
		{"cpu below the smallest float64 is 0, as JSON.parse reads it", func(*testing.T) string {
			return strings.Replace(validDoc, `"cpu": 0.5`, `"cpu": 1e-400`, 1)
		}, nil},
		{"huge pids", func(t *testing.T) string {
			return edit(t, func(m map[string]any) { obj(m, "resources")["pids"] = 1e30 })
		}, []contract.Issue{{"resources.pids", "Number must be less than or equal to 9223372036854775807"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := contract.DecodeContainerConfig([]byte(tt.doc(t)))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused a document the schema accepts: %v", err)
				}
				return
			}
			if got := issuesOf(t, err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("issues:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestDecodeIntegers checks that memory, disk and pids written as plain
// integers are read exactly, all of int64, while other forms are read as
// JSON.parse reads them and refused where the float64 they become may not
// be what was written; every message is zod's or says why.
func TestDecodeIntegers(t *testing.T) {
	const (
		tooBig   = "Number must be less than or equal to 9223372036854775807"
		tooSmall = "Number must be greater than or equal to 1"
		inexact  = "Number must be less than or equal to 9007199254740991 when written with a fraction or an exponent, " +
			"beyond which a float64 does not hold it exactly; write it as a plain integer"
	)
	tests := []struct {
		give string
		want int64  // the memory read, when msg is ""
		msg  string // the issue at resources.memory
	}{
		{give: "128", want: 128},
		{give: "9007199254740993", want: 9007199254740993},
		{give: "9223372036854775807", want: math.MaxInt64},
		{give: "1e3", want: 1000},
		{give: "1E3", want: 1000},
		{give: "1000.0", want: 1000},
		{give: "10e-1", want: 1},
		{give: "9007199254740991.0", want: 9007199254740991},
		{give: "9223372036854775808", msg: tooBig},
		{give: "99999999999999999999999", msg: tooBig},
		{give: "1e19", msg: tooBig},
		{give: "9007199254740993.0", msg: inexact},
		{give: "1e17", msg: inexact},
		{give: "1.5", msg: "Expected integer, received float"},
		{give: "0", msg: tooSmall},
		{give: "-0", msg: tooSmall},
		{give: "-9223372036854775808", msg: tooSmall},
		{give: "-1e30", msg: tooSmall},
		{give: "1e400", msg: "Expected finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			doc := strings.Replace(validDoc, `"memory": 128`, `"memory": `+tt.give, 1)
			cfg, err := contract.DecodeContainerConfig([]byte(doc))
			if tt.msg == "" {
				if err != nil || cfg.Resources.Memory != tt.want {
					t.Errorf("memory %s = %d, %v; want %d", tt.give, cfg.Resources.Memory, err, tt.want)
				}
				return
			}
			want := []contract.Issue{{Path: "resources.memory", Message: tt.msg}}
			if got := issuesOf(t, err); !reflect.DeepEqual(got, want) {
				t.Errorf("memory %s: issues %q, want %q", tt.give, got, want)
			}
		})
	}
}

// TestDecodeQuotesInput checks that a key or enum value of the document
// that could forge the error text, or blow it up, stands in an issue
// quoted and cut, at the path of its map.
func TestDecodeQuotesInput(t *testing.T) {
	for _, s := range []string{"a\nb: Required", "\x1b[31mred", "a\u202eb", "a\x00b", strings.Repeat("x", 1<<20)} {
		tests := []struct {
			name string
			doc  string
			want string // the issue's path
		}{
			{"env key", edit(t, func(m map[string]any) { m["env"] = map[string]any{s: 1} }), "env"},
			{"label key", edit(t, func(m map[string]any) { m["labels"] = map[string]any{s: nil} }), "labels"},
			{"mount type", edit(t, func(m map[string]any) {
				m["volumes"] = []any{map[string]any{"source": "v", "target": "/v", "type": s}}
			}), "volumes.0.type"},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%.20q/%s", s, tt.name), func(t *testing.T) {
				_, err := contract.DecodeContainerConfig([]byte(tt.doc))
				checkIssue(t, err, tt.want)
				if msg := err.Error(); strings.Contains(msg, s) || len(msg) > 512 {
					t.Errorf("error text shows the input as it is: %.200q", msg)
				}
			})
		}
	}
}

func TestDecodeValues(t *testing.T) {
	cfg, err := contract.DecodeContainerConfig([]byte(validDoc))
	if err != nil {
		t.Fatal(err)
	}
	want := contract.ContainerConfig{
		SessionID: "s1", Image: "alpine:3.20", Command: []string{"sleep", "60"},
		Env: map[string]string{"A": "1"}, Labels: map[string]string{"team": "infra"},
		Resources: contract.ResourceLimits{CPU: 0.5, Memory: 128, Disk: 256, PIDs: 64},
		Volumes:   []contract.VolumeMount{{Source: "data", Target: "/data", ReadOnly: true, Type: contract.MountVolume}},
		Network:   "bridge",
		Security: contract.SecurityOptions{ReadOnly: true, NoNewPrivileges: true, User: "65534",
			Capabilities: contract.Capabilities{Drop: []string{"ALL"}, Add: []string{}}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("decoded\n %+v\nwant\n %+v", cfg, want)
	}
	var viaJSON contract.ContainerConfig
	if err := json.Unmarshal([]byte(validDoc), &viaJSON); err != nil || !reflect.DeepEqual(viaJSON, want) {
		t.Errorf("json.Unmarshal = %+v, %v", viaJSON, err)
	}
}

func TestDecodeSyntaxErrors(t *testing.T) {
	for _, doc := range []string{``, `{`, `{"a":}`, validDoc + `{}`, `{} x`} {
		_, err := contract.DecodeContainerConfig([]byte(doc))
		if !errors.Is(err, contract.ErrConfiguration) {
			t.Errorf("Decode(%q) = %v, want a CONFIGURATION error", doc, err)
		}
	}
}

// trailingData are what may follow a valid document: only JSON whitespace
// is accepted, as JSON.parse accepts it.
var trailingData = []struct {
	name, suffix string
	ok           bool
}{
	{"whitespace", " \t\r\n", true},
	{"close brace", "}", false},
	{"close bracket", "]", false},
	{"comma", ",", false},
	{"colon", ":", false},
	{"NUL", "\x00", false},
	{"bare word", " x", false},
	{"partial literal", "tru", false},
	{"lone quote", `"`, false},
	{"second document", "{}", false},
	{"number", " 1", false},
	{"form feed", "\f", false},
	{"no-break space", "\u00a0", false},
	{"byte order mark", "\ufeff", false},
	{"invalid UTF-8", "\xff", false},
	{"garbage after whitespace", "\n\n}", false},
}

func TestDecodeRefusesTrailingData(t *testing.T) {
	for _, tt := range trailingData {
		t.Run(tt.name, func(t *testing.T) {
			doc := []byte(validDoc + tt.suffix)
			_, err := contract.DecodeContainerConfig(doc)
			var viaMethod contract.ContainerConfig
			methodErr := viaMethod.UnmarshalJSON(doc)
			if tt.ok {
				if err != nil || methodErr != nil {
					t.Fatalf("refused a document followed by whitespace: %v; UnmarshalJSON: %v", err, methodErr)
				}
				return
			}
			if !errors.Is(err, contract.ErrConfiguration) {
				t.Errorf("DecodeContainerConfig(doc+%q) = %v, want a CONFIGURATION error", tt.suffix, err)
			}
			if !errors.Is(methodErr, contract.ErrConfiguration) {
				t.Errorf("ContainerConfig.UnmarshalJSON(doc+%q) = %v, want a CONFIGURATION error", tt.suffix, methodErr)
			}
			var cfg contract.ContainerConfig
			if err := json.Unmarshal(doc, &cfg); err == nil {
				t.Errorf("json.Unmarshal(doc+%q) accepted it", tt.suffix)
			}
		})
	}
}

// TestUnmarshalJSONRefusesTrailingData calls every UnmarshalJSON of the
// contract directly, as a caller holding raw bytes may: none accepts data
// after its document.
func TestUnmarshalJSONRefusesTrailingData(t *testing.T) {
	docs := []struct {
		name string
		v    json.Unmarshaler
		doc  string
	}{
		{"ContainerConfig", new(contract.ContainerConfig), validDoc},
		{"ContainerInstance", new(contract.ContainerInstance), `{"id":"c","createdAt":1}`},
		{"StopOptions", new(contract.StopOptions), `{"timeout":1}`},
		{"LogOptions", new(contract.LogOptions), `{"since":1}`},
		{"DriverHealth", new(contract.DriverHealth), `{"status":"healthy","uptime":1}`},
		{"Volume", new(contract.Volume), `{"name":"v","createdAt":1}`},
		{"Network", new(contract.Network), `{"name":"n","createdAt":1}`},
	}
	for _, d := range docs {
		if err := d.v.UnmarshalJSON([]byte(d.doc + " ")); err != nil {
			t.Errorf("%s.UnmarshalJSON refused a valid document: %v", d.name, err)
		}
		for _, tt := range trailingData {
			if tt.ok {
				continue
			}
			if err := d.v.UnmarshalJSON([]byte(d.doc + tt.suffix)); err == nil {
				t.Errorf("%s.UnmarshalJSON accepted data after the document: %q", d.name, tt.suffix)
			}
		}
	}
}

// FuzzDecodeAndValidate feeds arbitrary documents to the decoder and the
// validator: neither may panic, every refusal is a CONFIGURATION error, and
// every accepted config survives a JSON round trip.
func FuzzDecodeAndValidate(f *testing.F) {
	f.Add([]byte(validDoc))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"resources":{"cpu":1e400}}`))
	f.Add([]byte(`{"volumes":[{"source":"/../etc","target":"x","type":"bind"}]}`))
	f.Add([]byte(strings.Replace(validDoc, `"alpine:3.20"`, `"a\u0000b"`, 1)))
	for _, tt := range trailingData {
		f.Add([]byte(validDoc + tt.suffix))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := contract.DecodeContainerConfig(data)
		if err != nil {
			if !errors.Is(err, contract.ErrConfiguration) {
				t.Fatalf("decode error is not CONFIGURATION: %v", err)
			}
			return
		}
		if err := contract.ValidateContainerConfig(cfg); err != nil && !errors.Is(err, contract.ErrConfiguration) {
			t.Fatalf("validation error is not CONFIGURATION: %v", err)
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal decoded config: %v", err)
		}
		again, err := contract.DecodeContainerConfig(out)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", out, err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(cfg)) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", cfg, again)
		}
	})
}

// normalize maps the empty forms that JSON cannot tell apart to one.
func normalize(c contract.ContainerConfig) contract.ContainerConfig {
	c = c.Clone()
	if len(c.Command) == 0 {
		c.Command = nil
	}
	if len(c.Volumes) == 0 {
		c.Volumes = nil
	}
	if len(c.Security.Capabilities.Drop) == 0 {
		c.Security.Capabilities.Drop = nil
	}
	if len(c.Security.Capabilities.Add) == 0 {
		c.Security.Capabilities.Add = nil
	}
	if len(c.Env) == 0 {
		c.Env = nil
	}
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	return c
}
