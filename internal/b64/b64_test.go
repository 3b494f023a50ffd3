package b64

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// Examples from the Matrix specification, appendices "Unpadded Base64", and
// libolm tests/test_base64.cpp.
func TestVectors(t *testing.T) {
	for _, v := range []struct{ in, out string }{
		{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"},
		{"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"Hello World", "SGVsbG8gV29ybGQ"},
	} {
		if got := Encode([]byte(v.in)); got != v.out {
			t.Errorf("Encode(%q) = %q, want %q", v.in, got, v.out)
		}
		for _, s := range []string{v.out, base64.StdEncoding.EncodeToString([]byte(v.in))} {
			got, err := Decode(s)
			if err != nil || !bytes.Equal(got, []byte(v.in)) {
				t.Errorf("Decode(%q) = %q, %v", s, got, err)
			}
			got, err = DecodeBytes([]byte(s))
			if err != nil || !bytes.Equal(got, []byte(v.in)) {
				t.Errorf("DecodeBytes(%q) = %q, %v", s, got, err)
			}
		}
	}
}

func TestRejects(t *testing.T) {
	for _, s := range []string{"Z", "Zg ", " Zg", "Z\ng", "Zh", "Zm9v!", "Zm9v_-", "SGVsbG8gV29ybGQ\n", "Zg=", "Zg===", "Zm8==", "Zm9v=", "Zg=====", "="} {
		if _, err := Decode(s); err != ErrInvalid {
			t.Errorf("Decode(%q): err = %v, want ErrInvalid", s, err)
		}
		if _, err := DecodeBytes([]byte(s)); err != ErrInvalid {
			t.Errorf("DecodeBytes(%q): err = %v, want ErrInvalid", s, err)
		}
	}
	if _, err := DecodeFixed("Zm9v", 4); err != ErrInvalid {
		t.Errorf("DecodeFixed wrong length: %v", err)
	}
}
