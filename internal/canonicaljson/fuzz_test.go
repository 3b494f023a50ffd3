package canonicaljson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"
)

// FuzzCanonicalize checks, for any input: no panic; no output with an error;
// and for accepted input, that it was valid JSON, that the output is valid
// UTF-8 JSON holding the same value (numbers compared by value), and that
// the output is a fixed point of Canonicalize.
func FuzzCanonicalize(f *testing.F) {
	for _, ex := range specExamples {
		f.Add([]byte(ex.in))
	}
	f.Add([]byte(specSigned))
	for _, s := range []string{
		`"\b\t\n\f\r\"\\\/\u0000\u001f\u007f\u2028"`, `"\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800"`,
		`{"a":1,"\u0061":2}`, `[1e2,-0,0.0,1.5,9007199254740991,9007199254740992,1E-0,-1e+1]`,
		`{"😀":1,"\ue000":2}`, "\"\xff\"", `[[[[[]]]]]`, `{"a":[{"b":null,"a":true}],"":false}`,
		`1 2`, `{"a":}`, ` {} `, "\t[\n]\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		if err != nil {
			if out != nil {
				t.Fatalf("output %q with error %v", out, err)
			}
			return
		}
		if !json.Valid(in) || !utf8.Valid(in) {
			t.Fatalf("accepted invalid input %q", in)
		}
		if !utf8.Valid(out) || !json.Valid(out) {
			t.Fatalf("output %q is not valid UTF-8 JSON", out)
		}
		again, err := Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not a fixed point: %q → %q, %v", out, again, err)
		}
		if a, b := decode(t, in), decode(t, out); !reflect.DeepEqual(a, b) {
			t.Fatalf("value changed: %q (%v) → %q (%v)", in, a, out, b)
		}
	})
}

// decode reads JSON with numbers as float64 values, exact for the integers
// canonical JSON allows.
func decode(t *testing.T, b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return numbersToFloats(t, v)
}

func numbersToFloats(t *testing.T, v any) any {
	switch v := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			t.Fatalf("number %s: %v", v, err)
		}
		return f + 0 // -0 and 0 are one value
	case []any:
		for i := range v {
			v[i] = numbersToFloats(t, v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = numbersToFloats(t, v[k])
		}
	}
	return v
}

func BenchmarkCanonicalize(b *testing.B) {
	in := []byte(specExamples[4].in)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Canonicalize(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompact is the floor Canonicalize is compared with: encoding/json
// removing the whitespace of the same input without parsing it into values.
func BenchmarkCompact(b *testing.B) {
	in := []byte(specExamples[4].in)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := json.Compact(&buf, in); err != nil {
			b.Fatal(err)
		}
	}
}
