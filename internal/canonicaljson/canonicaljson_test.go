package canonicaljson

import (
	"errors"
	"strings"
	"testing"
)

// specExamples are every example of the "Canonical JSON" section of the Matrix
// specification's appendices (matrix-org/matrix-spec content/appendices.md,
// "Examples"), input and expected output.
var specExamples = []struct{ in, want string }{
	{`{}`, `{}`},
	{"{\n    \"one\": 1,\n    \"two\": \"Two\"\n}", `{"one":1,"two":"Two"}`},
	{"{\n    \"b\": \"2\",\n    \"a\": \"1\"\n}", `{"a":"1","b":"2"}`},
	{`{"b":"2","a":"1"}`, `{"a":"1","b":"2"}`},
	{`{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {
                    "medium": "email",
                    "address": "john.doe@example.org"
                },
                {
                    "medium": "msisdn",
                    "address": "123456789"
                }
            ]
        }
    }
}`, `{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}`},
	{"{\n    \"a\": \"日本語\"\n}", `{"a":"日本語"}`},
	{"{\n    \"本\": 2,\n    \"日\": 1\n}", `{"日":1,"本":2}`},
	{"{\n    \"a\": \"\\u65E5\"\n}", `{"a":"日"}`},
	{"{\n    \"a\": null\n}", `{"a":null}`},
	{"{\n    \"a\": -0,\n    \"b\": 1e10\n}", `{"a":0,"b":10000000000}`},
}

func TestSpecExamples(t *testing.T) {
	for _, ex := range specExamples {
		got, err := Canonicalize([]byte(ex.in))
		if err != nil {
			t.Errorf("Canonicalize(%q): %v", ex.in, err)
			continue
		}
		if string(got) != ex.want {
			t.Errorf("Canonicalize(%q) = %s, want %s", ex.in, got, ex.want)
		}
	}
}

// TestEscapes pins the string grammar of the spec's appendix: the seven short
// escapes, \u00xx in lowercase hex for the other control characters, and
// nothing else escaped.
func TestEscapes(t *testing.T) {
	cases := []struct{ in, want string }{
		{`"\b\t\n\f\r\"\\"`, `"\b\t\n\f\r\"\\"`},
		{`"\u0008\u0009\u000A\u000c\u000D\u0022\u005C"`, `"\b\t\n\f\r\"\\"`},
		{`"\u0000\u0001\u000b\u000E\u001f"`, `"\u0000\u0001\u000b\u000e\u001f"`},
		{`"\/ / < > & \u003c\u003e\u0026"`, `"/ / < > & <>&"`},
		{`"\u007f\u0080\u00e9\u2028\u2029\ufeff"`, "\"\x7f\u0080é\u2028\u2029\ufeff\""},
		{`"\ud83d\ude00 😀"`, `"😀 😀"`},
		{`{"\u0061":"\u0062"}`, `{"a":"b"}`},
	}
	for _, c := range cases {
		got, err := Canonicalize([]byte(c.in))
		if err != nil {
			t.Errorf("Canonicalize(%s): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	// Every control character has exactly one form.
	for c := range 0x20 {
		got, err := Canonicalize([]byte(`"\u00` + string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15]) + `"`))
		if err != nil {
			t.Fatal(err)
		}
		var want string
		switch c {
		case '\b', '\t', '\n', '\f', '\r':
			want = `"\` + string("btnfr"[strings.IndexByte("\b\t\n\f\r", byte(c))]) + `"`
		default:
			want = `"\u00` + string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15]) + `"`
		}
		if string(got) != want {
			t.Errorf("control character %#x: got %s, want %s", c, got, want)
		}
	}
}

// TestKeyOrder sorts by code point, which differs from UTF-16 order for
// characters beyond the Basic Multilingual Plane.
func TestKeyOrder(t *testing.T) {
	in := `{"\uffff":1,"😀":2,"\ue000":3,"é":4,"Z":5,"a":6,"":7,"aa":8}`
	want := `{"":7,"Z":5,"a":6,"aa":8,"é":4,"` + "\ue000" + `":3,"` + "\uffff" + `":1,"😀":2}`
	got, err := Canonicalize([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestNumbers(t *testing.T) {
	valid := map[string]string{
		"0": "0", "-0": "0", "0.0": "0", "-0e5": "0", "0e99999999999": "0",
		"1": "1", "-1": "-1", "1.0": "1", "1.50e1": "15", "1E2": "100", "1e+2": "100",
		"100e-2": "1", "12300e-2": "123", "0.000123e6": "123",
		"9007199254740991": "9007199254740991", "-9007199254740991": "-9007199254740991",
		"9.007199254740991e15": "9007199254740991", "90071992547409910e-1": "9007199254740991",
		"1e15": "1000000000000000",
	}
	for in, want := range valid {
		got, err := Canonicalize([]byte(in))
		if err != nil {
			t.Errorf("Canonicalize(%s): %v", in, err)
			continue
		}
		if string(got) != want {
			t.Errorf("Canonicalize(%s) = %s, want %s", in, got, want)
		}
	}
	invalid := []string{
		"0.5", "-0.5", "1.05e1", "1e-1", "15e-1", "9007199254740992", "-9007199254740992",
		"1e16", "10000000000000000", "1e9999999", "1e-9999999", "123456789012345678901234567890",
		"1.0000000000000000001", "9007199254740991.5",
	}
	for _, in := range invalid {
		_, err := Canonicalize([]byte(in))
		var ne *NumberError
		if !errors.As(err, &ne) || ne.Literal != in || !errors.Is(err, ErrNumber) {
			t.Errorf("Canonicalize(%s) error = %v, want a *NumberError for it", in, err)
		}
	}
}

func TestRejections(t *testing.T) {
	cases := []struct {
		in   string
		want error
	}{
		{"", ErrSyntax},
		{"{", ErrSyntax},
		{`{"a":1,}`, ErrSyntax},
		{`[1,]`, ErrSyntax},
		{`{"a" 1}`, ErrSyntax},
		{`{1:2}`, ErrSyntax},
		{`{} {}`, ErrSyntax},
		{`{}x`, ErrSyntax},
		{`'a'`, ErrSyntax},
		{`NaN`, ErrSyntax},
		{`01`, ErrSyntax},
		{`"\x"`, ErrSyntax},
		{"\"a\x01\"", ErrSyntax}, // raw control character
		{"\xef\xbb\xbf{}", ErrSyntax},
		{"\"\xff\"", ErrInvalidUTF8},
		{"\"\xed\xa0\x80\"", ErrInvalidUTF8}, // a surrogate encoded in UTF-8
		{`"\ud800"`, ErrInvalidUTF8},
		{`"\udc00"`, ErrInvalidUTF8},
		{`"\ud800\u0041"`, ErrInvalidUTF8},
		{`"\ud800\ud800"`, ErrInvalidUTF8},
		{`{"k":"\\ud800 \ude00"}`, ErrInvalidUTF8},
		{`{"a":1,"a":1}`, ErrDuplicateKey},
		{`{"a":1,"\u0061":2}`, ErrDuplicateKey},
		{`[{"x":{"b":1,"c":2,"b":3}}]`, ErrDuplicateKey},
	}
	for _, c := range cases {
		got, err := Canonicalize([]byte(c.in))
		if !errors.Is(err, c.want) || got != nil {
			t.Errorf("Canonicalize(%q) = %q, %v; want %v", c.in, got, err, c.want)
		}
	}
	// Escaped backslashes are not escapes: "\\ud800" is six characters.
	if got, err := Canonicalize([]byte(`"\\ud800"`)); err != nil || string(got) != `"\\ud800"` {
		t.Errorf(`Canonicalize("\\ud800") = %s, %v`, got, err)
	}
	var dup *DuplicateKeyError
	if _, err := Canonicalize([]byte(`{"b":1,"a":{"z":1,"z":2}}`)); !errors.As(err, &dup) || dup.Key != "z" {
		t.Errorf("duplicate key error %v, want one naming \"z\"", err)
	}
}

func TestLimits(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if _, err := Canonicalize([]byte(deep)); err != nil {
		t.Fatalf("depth %d: %v", MaxDepth, err)
	}
	tooDeep := "[" + deep + "]"
	var le *LimitError
	if _, err := Canonicalize([]byte(tooDeep)); !errors.As(err, &le) || le.Limit != "depth" ||
		le.Value != MaxDepth+1 || le.Max != MaxDepth || !errors.Is(err, ErrLimit) {
		t.Fatalf("depth %d: %v, want a depth *LimitError", MaxDepth+1, err)
	}
	deepObject := strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1)
	if _, err := Canonicalize([]byte(deepObject)); !errors.Is(err, ErrLimit) {
		t.Fatalf("objects nested %d deep: %v", MaxDepth+1, err)
	}

	fits := `"` + strings.Repeat("x", MaxInputSize-2) + `"`
	if out, err := Canonicalize([]byte(fits)); err != nil || len(out) != MaxInputSize {
		t.Fatalf("input of exactly MaxInputSize: %d bytes, %v", len(out), err)
	}
	over := `"` + strings.Repeat("x", MaxInputSize-1) + `"`
	if _, err := Canonicalize([]byte(over)); !errors.As(err, &le) || le.Limit != "size" ||
		le.Value != MaxInputSize+1 || le.Max != MaxInputSize {
		t.Fatalf("input over MaxInputSize: %v", err)
	}
	if !strings.Contains(le.Error(), "1048577") || !strings.Contains(le.Error(), "1048576") {
		t.Fatalf("limit error %q does not say both numbers", le)
	}
}

func TestMarshal(t *testing.T) {
	type keysObj struct {
		UserID     string            `json:"user_id"`
		Keys       map[string]string `json:"keys"`
		Algorithms []string          `json:"algorithms"`
		Count      float64           `json:"count"`
		HTML       string            `json:"html"`
	}
	got, err := Marshal(keysObj{
		UserID: "@alice:example.org", Keys: map[string]string{"z": "1", "a": "2"},
		Algorithms: []string{"b", "a"}, Count: 3, HTML: "<a href='x'>&</a>",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"algorithms":["b","a"],"count":3,"html":"<a href='x'>&</a>","keys":{"a":"2","z":"1"},"user_id":"@alice:example.org"}`
	if string(got) != want {
		t.Fatalf("Marshal = %s\nwant      %s", got, want)
	}
	if _, err := Marshal(map[string]float64{"x": 0.5}); !errors.Is(err, ErrNumber) {
		t.Fatalf("Marshal of a fraction: %v, want ErrNumber", err)
	}
	if _, err := Marshal(map[string]int64{"x": 1 << 53}); !errors.Is(err, ErrNumber) {
		t.Fatalf("Marshal of 2^53: %v, want ErrNumber", err)
	}
	if _, err := Marshal(func() {}); err == nil {
		t.Fatal("Marshal of a func succeeded")
	}
}

// TestErrorMessagesShortened keeps attacker-sized text out of error strings.
func TestErrorMessagesShortened(t *testing.T) {
	long := strings.Repeat("9", 10000)
	_, err := Canonicalize([]byte(long))
	if err == nil || len(err.Error()) > 200 {
		t.Fatalf("error for a 10000-digit number is %d bytes long", len(err.Error()))
	}
	key := strings.Repeat("é", 5000)
	_, err = Canonicalize([]byte(`{"` + key + `":1,"` + key + `":2}`))
	if !errors.Is(err, ErrDuplicateKey) || len(err.Error()) > 200 {
		t.Fatalf("duplicate long key: %v", err)
	}
}
