package machine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// The scanner under readObject: it checks JSON text (RFC 8259) byte by byte
// in one pass, without recursion, and reports where the text is wrong.

// jsonReader is a position in a JSON text.
type jsonReader struct {
	data  []byte
	pos   int
	valid bool // the text was checked before: strings need not be
}

func (r *jsonReader) fail(msg string) error { return &jsonError{Offset: r.pos, Msg: msg} }

func (r *jsonReader) peek() byte {
	if r.pos < len(r.data) {
		return r.data[r.pos]
	}
	return 0
}

func (r *jsonReader) space() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// object reads the object at r.pos, picking out members.
func (r *jsonReader) object(members []jsonMember) error {
	r.pos++ // '{'
	r.space()
	if r.peek() == '}' {
		r.pos++
		return nil
	}
	for {
		key, escaped, err := r.key()
		if err != nil {
			return err
		}
		start := r.pos
		if err := r.value(); err != nil {
			return err
		}
		if m := findMember(members, key, escaped); m != nil {
			if *m.val != nil {
				// (Named from the text, not from m: members must not escape.)
				return &jsonError{Offset: start, Msg: fmt.Sprintf("member %q given twice", key)}
			}
			*m.val = r.data[start:r.pos]
		}
		r.space()
		switch r.peek() {
		case ',':
			r.pos++
		case '}':
			r.pos++
			return nil
		default:
			return r.fail("want ',' or '}'")
		}
	}
}

// key reads an object member's name and the colon after it, and the space
// around them; it returns the name as written, and whether it has escapes.
func (r *jsonReader) key() ([]byte, bool, error) {
	r.space()
	start := r.pos
	escaped, err := r.str()
	if err != nil {
		return nil, false, err
	}
	key := r.data[start+1 : r.pos-1]
	r.space()
	if r.peek() != ':' {
		return nil, false, r.fail("want ':'")
	}
	r.pos++
	r.space()
	return key, escaped, nil
}

func findMember(members []jsonMember, key []byte, escaped bool) *jsonMember {
	if escaped { // rare: unescape it as encoding/json would
		var s string
		if json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &s) != nil {
			return nil
		}
		key = []byte(s)
	}
	for i := range members {
		if members[i].name == string(key) {
			return &members[i]
		}
	}
	return nil
}

// value reads one JSON value at r.pos. Nested arrays and objects are read
// without recursion: open holds the kind of each container being read.
func (r *jsonReader) value() error {
	var stack [32]byte
	open := stack[:0]
	for {
		switch c := r.peek(); c {
		case '{', '[':
			r.pos++
			r.space()
			if r.peek() == c+2 { // '}' or ']': empty
				r.pos++
				break
			}
			open = append(open, c)
			if c == '{' {
				if _, _, err := r.key(); err != nil {
					return err
				}
			}
			continue
		case '"':
			if _, err := r.str(); err != nil {
				return err
			}
		case 't':
			if err := r.literal("true"); err != nil {
				return err
			}
		case 'f':
			if err := r.literal("false"); err != nil {
				return err
			}
		case 'n':
			if err := r.literal("null"); err != nil {
				return err
			}
		default:
			if err := r.number(); err != nil {
				return err
			}
		}
		// A value ended: close containers until one continues.
		for {
			if len(open) == 0 {
				return nil
			}
			r.space()
			c := open[len(open)-1]
			if r.peek() == c+2 {
				r.pos++
				open = open[:len(open)-1]
				continue
			}
			if r.peek() != ',' {
				return r.fail("want ',' or the end of the container")
			}
			r.pos++
			r.space()
			if c == '{' {
				if _, _, err := r.key(); err != nil {
					return err
				}
			}
			break
		}
	}
}

// str reads a string, checking its escapes and its UTF-8, and reports
// whether it has escapes.
func (r *jsonReader) str() (escaped bool, err error) {
	if r.peek() != '"' {
		return false, r.fail("want a string")
	}
	r.pos++
	if r.valid {
		return r.skipValidString()
	}
	for {
		for r.pos+8 <= len(r.data) && plainASCII8(binary.LittleEndian.Uint64(r.data[r.pos:])) {
			r.pos += 8
		}
		if r.pos >= len(r.data) {
			return false, r.fail("unterminated string")
		}
		c := r.data[r.pos]
		switch {
		case c == '"':
			r.pos++
			return escaped, nil
		case c == '\\':
			escaped = true
			if err := r.escape(); err != nil {
				return false, err
			}
		case c < 0x20:
			return false, r.fail("control character in a string")
		case c < utf8.RuneSelf:
			r.pos++
		default:
			_, n := utf8.DecodeRune(r.data[r.pos:])
			if n == 1 {
				return false, r.fail("invalid UTF-8")
			}
			r.pos += n
		}
	}
}

// skipValidString moves past the rest of a string known to be valid: to
// the first quote that is not escaped by an odd number of backslashes.
func (r *jsonReader) skipValidString() (escaped bool, err error) {
	start := r.pos
	for {
		i := bytes.IndexByte(r.data[r.pos:], '"')
		if i < 0 {
			return false, r.fail("unterminated string")
		}
		end := r.pos + i
		r.pos = end + 1
		backslashes := 0
		for end-backslashes > start && r.data[end-backslashes-1] == '\\' {
			backslashes++
		}
		if backslashes%2 == 0 {
			return bytes.IndexByte(r.data[start:end], '\\') >= 0, nil
		}
	}
}

// plainASCII8 reports whether the 8 bytes packed in x can all stand in a
// string as themselves and need no further look: ASCII, neither a control
// character nor '"' nor '\\'. (Bit tricks: a byte below n leaves its high
// bit set in (x - n) &^ x, and a byte equal to c is a zero byte of x ^ c.)
func plainASCII8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	control := (x - 0x20*ones) &^ x
	q := x ^ '"'*ones
	quote := (q - ones) &^ q
	bs := x ^ '\\'*ones
	backslash := (bs - ones) &^ bs
	return (x|control|quote|backslash)&highs == 0
}

// escape reads one escape sequence in a string.
func (r *jsonReader) escape() error {
	r.pos++ // '\\'
	switch r.peek() {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		r.pos++
		return nil
	case 'u':
		if r.pos+5 > len(r.data) {
			return r.fail("short \\u escape")
		}
		for _, h := range r.data[r.pos+1 : r.pos+5] {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				return r.fail("invalid \\u escape")
			}
		}
		r.pos += 5
		return nil
	}
	return r.fail("invalid escape")
}

func (r *jsonReader) literal(word string) error {
	if !bytes.HasPrefix(r.data[r.pos:], []byte(word)) {
		return r.fail("invalid literal")
	}
	r.pos += len(word)
	return nil
}

// number reads a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *jsonReader) number() error {
	if r.peek() == '-' {
		r.pos++
	}
	switch c := r.peek(); {
	case c == '0':
		r.pos++
	case '1' <= c && c <= '9':
		r.digits()
	default:
		return r.fail("invalid value")
	}
	if r.peek() == '.' {
		r.pos++
		if r.digits() == 0 {
			return r.fail("want digits after '.'")
		}
	}
	if c := r.peek(); c == 'e' || c == 'E' {
		r.pos++
		if c := r.peek(); c == '+' || c == '-' {
			r.pos++
		}
		if r.digits() == 0 {
			return r.fail("want digits in the exponent")
		}
	}
	return nil
}

func (r *jsonReader) digits() int {
	start := r.pos
	for r.pos < len(r.data) && '0' <= r.data[r.pos] && r.data[r.pos] <= '9' {
		r.pos++
	}
	return r.pos - start
}
