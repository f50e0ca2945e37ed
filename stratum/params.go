package stratum

import (
	"fmt"
	"math"

	"github.com/valyala/fastjson"
)

// badParams wraps ErrBadParams with the method and what was wrong.
func badParams(m Method, what string) error {
	return fmt.Errorf("%w: %s: %s", ErrBadParams, m, what)
}

// Submit decodes mining.submit params [worker, job_id, extranonce2, ntime, nonce
// (, version_bits)] into s without allocating. ntime, nonce and version bits must be
// exactly 8 hex digits; extranonce2 is checked by the share check.
func (m *Message) Submit(s *Submit) error {
	n := m.NumParams()
	if n != 5 && n != 6 {
		return badParams(MethodSubmit, "want 5 or 6 params")
	}
	var ok bool
	if s.Worker, ok = m.paramString(0); !ok {
		return badParams(MethodSubmit, "worker is not a string")
	}
	if s.JobID, ok = m.paramString(1); !ok {
		return badParams(MethodSubmit, "job id is not a string")
	}
	if s.Extranonce2, ok = m.paramString(2); !ok {
		return badParams(MethodSubmit, "extranonce2 is not a string")
	}
	if s.NTime, ok = m.paramHex32(3); !ok {
		return badParams(MethodSubmit, "ntime is not 8 hex digits")
	}
	if s.Nonce, ok = m.paramHex32(4); !ok {
		return badParams(MethodSubmit, "nonce is not 8 hex digits")
	}
	s.VersionBits, s.HasVersionBits = 0, n == 6
	if s.HasVersionBits {
		if s.VersionBits, ok = m.paramHex32(5); !ok {
			return badParams(MethodSubmit, "version bits are not 8 hex digits")
		}
	}
	return nil
}

// paramHex32 returns params[i], 8 hex digits, as a uint32.
func (m *Message) paramHex32(i int) (uint32, bool) {
	b, ok := m.paramString(i)
	if !ok {
		return 0, false
	}
	return parseHex32(b)
}

// Notify decodes mining.notify params [job_id, prevhash, coinb1, coinb2, branch,
// version, nbits, ntime, clean_jobs] into a new Job, undoing the prevhash word swap.
// A missing clean_jobs reads as false.
func (m *Message) Notify() (*Job, error) {
	if n := m.NumParams(); n != 8 && n != 9 {
		return nil, badParams(MethodNotify, "want 9 params")
	}
	var j Job
	id, ok := m.paramString(0)
	if !ok {
		return nil, badParams(MethodNotify, "job id is not a string")
	}
	j.ID = string(id)
	prev, ok := m.paramString(1)
	if !ok || len(prev) != 64 {
		return nil, badParams(MethodNotify, "prevhash is not 64 hex digits")
	}
	var wire Hash
	if _, ok := decodeHex(wire[:], prev); !ok {
		return nil, badParams(MethodNotify, "prevhash is not 64 hex digits")
	}
	j.PrevHash = SwapWords(wire)
	if j.Coinb1, ok = m.paramHexBytes(2); !ok {
		return nil, badParams(MethodNotify, "coinb1 is not hex")
	}
	if j.Coinb2, ok = m.paramHexBytes(3); !ok {
		return nil, badParams(MethodNotify, "coinb2 is not hex")
	}
	bv := m.param(4)
	if bv == nil || bv.Type() != fastjson.TypeArray {
		return nil, badParams(MethodNotify, "merkle branch is not an array")
	}
	branch, _ := bv.Array()
	if len(branch) > MaxBranchLen {
		return nil, badParams(MethodNotify, "merkle branch too long")
	}
	j.Branch = make([]Hash, len(branch))
	for i, b := range branch {
		s, err := b.StringBytes()
		if err != nil || len(s) != 64 {
			return nil, badParams(MethodNotify, "merkle branch entry is not 64 hex digits")
		}
		if _, ok := decodeHex(j.Branch[i][:], s); !ok {
			return nil, badParams(MethodNotify, "merkle branch entry is not 64 hex digits")
		}
	}
	if j.Version, ok = m.paramHex32(5); !ok {
		return nil, badParams(MethodNotify, "version is not 8 hex digits")
	}
	if j.NBits, ok = m.paramHex32(6); !ok {
		return nil, badParams(MethodNotify, "nbits is not 8 hex digits")
	}
	if j.NTime, ok = m.paramHex32(7); !ok {
		return nil, badParams(MethodNotify, "ntime is not 8 hex digits")
	}
	if v := m.param(8); v != nil {
		j.Clean = v.Type() == fastjson.TypeTrue
	}
	job, err := NewJob(j)
	if err != nil {
		// Still errors.Is ErrBadBits when nbits is the problem.
		return nil, fmt.Errorf("%w: %s: %w", ErrBadParams, MethodNotify, err)
	}
	return job, nil
}

// paramHexBytes decodes params[i], a hex string, into a new slice.
func (m *Message) paramHexBytes(i int) ([]byte, bool) {
	s, ok := m.paramString(i)
	if !ok || len(s)%2 != 0 || len(s) > 2*MaxCoinbaseSize {
		return nil, false
	}
	b := make([]byte, len(s)/2)
	_, ok = decodeHex(b, s)
	return b, ok
}

// Subscribe returns mining.subscribe's optional user agent and session id to resume.
func (m *Message) Subscribe() (agent, session []byte) {
	agent, _ = m.paramString(0)
	session, _ = m.paramString(1)
	return agent, session
}

// Authorize returns mining.authorize's user name and optional password.
func (m *Message) Authorize() (user, password []byte, err error) {
	user, ok := m.paramString(0)
	if !ok || len(user) == 0 {
		return nil, nil, badParams(MethodAuthorize, "user is not a non-empty string")
	}
	password, _ = m.paramString(1)
	return user, password, nil
}

// Difficulty returns the difficulty of mining.set_difficulty or
// mining.suggest_difficulty: a finite number above zero (a numeric string is taken).
func (m *Message) Difficulty() (float64, error) {
	d, ok := m.paramNumber(0)
	if !ok || !(d > 0) || math.IsInf(d, 0) {
		return 0, badParams(m.Method, "difficulty is not a number above zero")
	}
	return d, nil
}

// SuggestTarget returns mining.suggest_target's 64-hex target.
func (m *Message) SuggestTarget() (Target, error) {
	var t Target
	s, ok := m.paramString(0)
	if !ok || len(s) != 64 {
		return t, badParams(MethodSuggestTarget, "target is not 64 hex digits")
	}
	if _, ok := decodeHex(t[:], s); !ok {
		return t, badParams(MethodSuggestTarget, "target is not 64 hex digits")
	}
	return t, nil
}

// SetExtranonce returns mining.set_extranonce's new extranonce1 (decoded, a new
// slice) and extranonce2 size.
func (m *Message) SetExtranonce() (extranonce1 []byte, extranonce2Size int, err error) {
	s, ok := m.paramString(0)
	if !ok || len(s)%2 != 0 || len(s) > 2*MaxExtranonce1Size {
		return nil, 0, badParams(MethodSetExtranonce, "extranonce1 is not hex")
	}
	extranonce1 = make([]byte, len(s)/2)
	if _, ok := decodeHex(extranonce1, s); !ok {
		return nil, 0, badParams(MethodSetExtranonce, "extranonce1 is not hex")
	}
	n, ok := m.paramNumber(1)
	if !ok || n != math.Trunc(n) || n < 1 || n > MaxExtranonce2Size {
		return nil, 0, badParams(MethodSetExtranonce, "extranonce2 size out of range")
	}
	return extranonce1, int(n), nil
}

// VersionMask returns mining.set_version_mask's mask.
func (m *Message) VersionMask() (uint32, error) {
	mask, ok := m.paramHex32(0)
	if !ok {
		return 0, badParams(MethodSetVersionMask, "mask is not 8 hex digits")
	}
	return mask, nil
}

// Reconnect is a client.reconnect request. An empty Host or a zero Port means
// unchanged (reconnect to the same server).
type Reconnect struct {
	Host []byte
	Port int
	Wait int
}

// Reconnect decodes client.reconnect params [host, port, wait] or []. The port may be
// a number or a string; nulls mean unchanged.
func (m *Message) Reconnect() (Reconnect, error) {
	var r Reconnect
	r.Host, _ = m.paramString(0)
	if v := m.param(1); v != nil && v.Type() != fastjson.TypeNull {
		p, ok := m.paramNumber(1)
		if !ok || p < 0 || p > 65535 || p != math.Trunc(p) {
			return r, badParams(MethodReconnect, "port out of range")
		}
		r.Port = int(p)
	}
	if w, ok := m.paramNumber(2); ok && w > 0 && w < 1<<20 {
		r.Wait = int(w)
	}
	return r, nil
}

// ShowMessage returns client.show_message's text.
func (m *Message) ShowMessage() []byte {
	s, _ := m.paramString(0)
	return s
}

// SubscribeResult is a mining.subscribe result, parsed loosely: only extranonce1 and
// extranonce2 size are required, since pools list subscriptions differently.
type SubscribeResult struct {
	// Extranonce1 is decoded (a new slice); it may be empty.
	Extranonce1     []byte
	Extranonce2Size int
	// SessionID is the mining.notify subscription id when the pool sent one (a copy),
	// for resuming the session after a reconnect.
	SessionID string
}

// SubscribeResult decodes a response to mining.subscribe.
func (m *Message) SubscribeResult() (SubscribeResult, error) {
	var r SubscribeResult
	if m.result == nil || m.result.Type() != fastjson.TypeArray {
		return r, badParams(MethodSubscribe, "result is not an array")
	}
	en1v := m.result.Get("1")
	if en1v == nil || en1v.Type() != fastjson.TypeString {
		return r, badParams(MethodSubscribe, "extranonce1 is not hex")
	}
	en1, _ := en1v.StringBytes()
	if len(en1)%2 != 0 || len(en1) > 2*MaxExtranonce1Size {
		return r, badParams(MethodSubscribe, "extranonce1 is not hex")
	}
	r.Extranonce1 = make([]byte, len(en1)/2)
	if _, ok := decodeHex(r.Extranonce1, en1); !ok {
		return r, badParams(MethodSubscribe, "extranonce1 is not hex")
	}
	n := m.result.GetInt("2")
	if n < 1 || n > MaxExtranonce2Size {
		return r, badParams(MethodSubscribe, "extranonce2 size out of range")
	}
	r.Extranonce2Size = n
	// Subscriptions: [[name, id], ...] or a single [name, id]; keep notify's id.
	subs := m.result.Get("0")
	if subs != nil && subs.Type() == fastjson.TypeArray {
		list, _ := subs.Array()
		if len(list) == 2 && list[0].Type() == fastjson.TypeString {
			list = []*fastjson.Value{subs}
		}
		for _, s := range list {
			if string(s.GetStringBytes("0")) == "mining.notify" {
				r.SessionID = string(s.GetStringBytes("1"))
			}
		}
	}
	return r, nil
}

// Accepted reports whether a response's result is exactly true. Anything else
// (false, null, an error) is a rejection.
func (m *Message) Accepted() bool {
	return m.result != nil && m.result.Type() == fastjson.TypeTrue && m.errv == nil
}

// Reject is why a pool refused a request. Code is 0 when the pool gave none.
type Reject struct {
	Code   int
	Reason []byte
}

// Reject reads a rejection in each form pools use: an error array [code, "msg",
// data], an error string, an error object {"code","message"}, or ckpool's
// result:false with a "reject-reason" member. Reason is valid until the next Decode.
func (m *Message) Reject() Reject {
	var r Reject
	if e := m.errv; e != nil {
		switch e.Type() {
		case fastjson.TypeArray:
			r.Code = e.GetInt("0")
			r.Reason = e.GetStringBytes("1")
		case fastjson.TypeString:
			r.Reason, _ = e.StringBytes()
		case fastjson.TypeObject:
			r.Code = e.GetInt("code")
			r.Reason = e.GetStringBytes("message")
		}
	}
	if len(r.Reason) == 0 {
		r.Reason = m.root.GetStringBytes("reject-reason")
	}
	return r
}

// BoolResult returns a response's result when it is a boolean.
func (m *Message) BoolResult() (value, ok bool) {
	if m.result == nil {
		return false, false
	}
	switch m.result.Type() {
	case fastjson.TypeTrue:
		return true, true
	case fastjson.TypeFalse:
		return false, true
	}
	return false, false
}

// StringResult returns a response's result when it is a string (client.get_version).
func (m *Message) StringResult() ([]byte, bool) {
	if m.result == nil || m.result.Type() != fastjson.TypeString {
		return nil, false
	}
	b, _ := m.result.StringBytes()
	return b, true
}
