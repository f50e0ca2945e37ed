package stratum

import (
	"strconv"

	"github.com/valyala/fastjson"
)

// Kind tells requests, notifications and responses apart.
type Kind uint8

// The kinds of message.
const (
	// KindRequest has a method and a non-null id: it expects a response.
	KindRequest Kind = iota + 1
	// KindNotification has a method and a null or missing id.
	KindNotification
	// KindResponse has no method: it answers the request with the same id.
	KindResponse
)

// Message is one decoded line. It belongs to the Decoder that produced it and, with
// every slice it returns, stays valid only until that Decoder's next Decode.
type Message struct {
	Kind Kind
	// Method is the parsed method (requests and notifications); MethodUnknown for a
	// method this package does not know, whose name is in MethodName.
	Method     Method
	MethodName []byte
	// ID is the raw JSON of the id ("null" when null or missing), to echo back.
	ID []byte

	params []*fastjson.Value // nil when missing or not an array
	result *fastjson.Value   // responses; nil when absent
	errv   *fastjson.Value   // responses; nil when absent or null
	root   *fastjson.Value
}

// Decoder decodes Stratum lines, reusing its memory from line to line: one per
// connection, never shared between goroutines. Decoding allocates nothing once warm.
type Decoder struct {
	p   fastjson.Parser
	msg Message
	id  []byte
}

var nullID = []byte("null")

// Decode parses one line (without its newline). A "jsonrpc" member is ignored. It
// returns ErrNotJSON for anything but a JSON object and ErrNotMessage for an object
// that is neither a request nor a response.
func (d *Decoder) Decode(line []byte) (*Message, error) {
	v, err := d.p.ParseBytes(line)
	if err != nil || v.Type() != fastjson.TypeObject {
		return nil, ErrNotJSON
	}
	m := &d.msg
	*m = Message{root: v, ID: nullID}
	if idv := v.Get("id"); idv != nil {
		// MarshalTo before any Type call: fastjson then writes a string id exactly as
		// sent, escapes included. Type would unescape it in place, and MarshalTo would
		// re-quote it in Go syntax ("\x01"), which is not always JSON.
		d.id = idv.MarshalTo(d.id[:0])
		if string(d.id) != "null" {
			m.ID = d.id
		}
	}
	if mv := v.Get("method"); mv != nil {
		name, err := mv.StringBytes()
		if err != nil {
			return nil, ErrNotMessage
		}
		m.MethodName = name
		m.Method = ParseMethod(name)
		if pv := v.Get("params"); pv != nil && pv.Type() == fastjson.TypeArray {
			m.params, _ = pv.Array() // fastjson's own slice: no copy
		}
		if string(m.ID) == "null" {
			m.Kind = KindNotification
		} else {
			m.Kind = KindRequest
		}
		return m, nil
	}
	m.result = v.Get("result")
	if ev := v.Get("error"); ev != nil && ev.Type() != fastjson.TypeNull {
		m.errv = ev
	}
	if m.result == nil && m.errv == nil {
		return nil, ErrNotMessage
	}
	m.Kind = KindResponse
	return m, nil
}

// param returns params[i], or nil.
func (m *Message) param(i int) *fastjson.Value {
	if i >= len(m.params) {
		return nil
	}
	return m.params[i]
}

// NumParams returns the number of params (0 when missing or not an array).
func (m *Message) NumParams() int { return len(m.params) }

// paramString returns params[i] as string bytes.
func (m *Message) paramString(i int) ([]byte, bool) {
	v := m.param(i)
	if v == nil || v.Type() != fastjson.TypeString {
		return nil, false
	}
	b, _ := v.StringBytes()
	return b, true
}

// paramNumber returns params[i] as a float64, accepting a number or a numeric string.
func (m *Message) paramNumber(i int) (float64, bool) {
	v := m.param(i)
	if v == nil {
		return 0, false
	}
	switch v.Type() {
	case fastjson.TypeNumber:
		return numberValue(v)
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		f, err := strconv.ParseFloat(string(b), 64)
		return f, err == nil
	}
	return 0, false
}

// numberValue parses a JSON number from its raw text with strconv, which rounds
// correctly: fastjson's Float64 reads 3e-05 as 3.0000000000000004e-05, a unit off at
// a difficulty boundary. Only difficulties take this path, never a share.
func numberValue(v *fastjson.Value) (float64, bool) {
	var buf [64]byte
	f, err := strconv.ParseFloat(string(v.MarshalTo(buf[:0])), 64)
	return f, err == nil
}
