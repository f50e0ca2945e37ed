package stratum_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/hashrelay/hashrelay/stratum"
)

// decodeMsg decodes one line with a fresh Decoder and fails the test on an error.
func decodeMsg(t testing.TB, s string) *stratum.Message {
	t.Helper()
	var d stratum.Decoder
	m, err := d.Decode([]byte(s))
	if err != nil {
		t.Fatalf("Decode(%s): %v", s, err)
	}
	return m
}

// The slush document's job "bf" (STRATUM.md §6.1), as a notify line's params.
const (
	bfPrevWire   = "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000"
	bfPrevHeader = "f8b6164d19e2f65a2aae448f787fe66d61e57a48c0c6771b1e920b4400000000"
	bfCoinb1     = "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008"
	bfCoinb2     = "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000"
)

func bfParams() []any {
	return []any{"bf", bfPrevWire, bfCoinb1, bfCoinb2, []any{}, "00000002", "1c2ac4af", "504e86b9", false}
}

func TestDecodeKind(t *testing.T) {
	f := func(s string, kind stratum.Kind, method stratum.Method, name, id string) {
		t.Helper()
		m := decodeMsg(t, s)
		if m.Kind != kind || m.Method != method || string(m.MethodName) != name || string(m.ID) != id {
			t.Errorf("Decode(%s) = kind %d method %v name %q id %s; want kind %d method %v name %q id %s",
				s, m.Kind, m.Method, m.MethodName, m.ID, kind, method, name, id)
		}
	}
	req, note, resp := stratum.KindRequest, stratum.KindNotification, stratum.KindResponse
	f(`{"id":1,"method":"mining.subscribe","params":["bfgminer/5.5.0"]}`, req, stratum.MethodSubscribe, "mining.subscribe", "1")
	f(`{"id":0,"method":"mining.subscribe","params":[]}`, req, stratum.MethodSubscribe, "mining.subscribe", "0") // bfgminer: id 0 is not null
	f(`{"params":[],"id":42,"method":"mining.ping"}`, req, stratum.MethodPing, "mining.ping", "42")              // ckpool's ping, members in any order
	f(`{"id":"auth","method":"mining.auth","params":["u","p"]}`, req, stratum.MethodAuthorize, "mining.auth", `"auth"`)
	f(`{"id":7,"method":"mining.capabilities","params":[]}`, req, stratum.MethodUnknown, "mining.capabilities", "7")
	f(`{"id":null,"method":"mining.notify","params":[]}`, note, stratum.MethodNotify, "mining.notify", "null")
	f(`{"method":"mining.set_difficulty","params":[2]}`, note, stratum.MethodSetDifficulty, "mining.set_difficulty", "null")
	f(`{"id":null,"method":"x.y","params":[]}`, note, stratum.MethodUnknown, "x.y", "null")
	f(`{"id":5,"method":"mining.submit"}`, req, stratum.MethodSubmit, "mining.submit", "5") // params missing
	f(`{"id":4,"result":true,"error":null}`, resp, stratum.MethodUnknown, "", "4")
	f(`{"id":4,"result":null,"error":[21,"Job not found",null]}`, resp, stratum.MethodUnknown, "", "4")
	f(`{"id":4,"error":[21,"Job not found",null]}`, resp, stratum.MethodUnknown, "", "4")
	f(`{"id":4,"result":null,"error":null}`, resp, stratum.MethodUnknown, "", "4")
	f(`{"id":null,"result":null,"error":[20,"Other/Unknown",null]}`, resp, stratum.MethodUnknown, "", "null")
	f(`{"result":false,"error":null,"reject-reason":"Above target"}`, resp, stratum.MethodUnknown, "", "null")
	// A JSON-RPC 2.0 member is tolerated and ignored.
	f(`{"jsonrpc":"2.0","id":1,"method":"mining.subscribe","params":[]}`, req, stratum.MethodSubscribe, "mining.subscribe", "1")
	f(`{"jsonrpc":"2.0","id":1,"result":true}`, resp, stratum.MethodUnknown, "", "1")
	f(`{"id":2,"jsonrpc":"2.0","method":"mining.notify"}`, req, stratum.MethodNotify, "mining.notify", "2")
	// Whitespace anywhere JSON allows it.
	f(" { \"id\" : 3 , \"method\" : \"mining.authorize\" , \"params\" : [ \"w\" , \"x\" ] } ", req, stratum.MethodAuthorize, "mining.authorize", "3")
}

// TestDecodeRawID: the id is echoed byte for byte through every response encoder, so a
// miner matching replies by the text it sent finds its own id.
func TestDecodeRawID(t *testing.T) {
	f := func(idJSON, want string) {
		t.Helper()
		s := `{"id":` + idJSON + `,"method":"mining.submit","params":["w","j","00","00000000","00000000"]}`
		if idJSON == "" {
			s = `{"method":"mining.submit","params":["w","j","00","00000000","00000000"]}`
		}
		m := decodeMsg(t, s)
		if string(m.ID) != want {
			t.Errorf("id %s: Message.ID = %s; want %s", idJSON, m.ID, want)
		}
		for _, c := range []struct {
			got, want string
		}{
			{string(stratum.AppendBool(nil, m.ID, true)), `{"id":` + want + `,"result":true,"error":null}` + "\n"},
			{string(stratum.AppendBool(nil, m.ID, false)), `{"id":` + want + `,"result":false,"error":null}` + "\n"},
			{string(stratum.AppendError(nil, m.ID, stratum.ErrJobNotFound)), `{"id":` + want + `,"result":null,"error":[21,"Job not found",null]}` + "\n"},
			{string(stratum.AppendStringResult(nil, m.ID, []byte("hashrelay/1"))), `{"id":` + want + `,"result":"hashrelay/1","error":null}` + "\n"},
		} {
			if c.got != c.want {
				t.Errorf("id %s: reply %q; want %q", idJSON, c.got, c.want)
			}
			if !json.Valid([]byte(c.got)) {
				t.Errorf("id %s: reply %q is not valid JSON", idJSON, c.got)
			}
		}
	}
	f("4", "4")
	f("0", "0")
	f("-7", "-7")
	f("18446744073709551615", "18446744073709551615")
	f("184467440737095516150000", "184467440737095516150000") // beyond uint64: still echoed
	f("1.5", "1.5")
	f("1e3", "1e3")
	f("1E+03", "1E+03")
	f("-0", "-0")
	f(`"auth"`, `"auth"`)
	f(`"txlist4f"`, `"txlist4f"`)
	f(`"xnsub"`, `"xnsub"`)
	f(`""`, `""`)
	f(`"ça va"`, `"ça va"`)
	f(`"\u00e7a"`, `"\u00e7a"`) // escapes kept as the miner wrote them
	f(`"a\/b"`, `"a\/b"`)
	f(`"q\"q"`, `"q\"q"`)
	f(`"tab\there"`, `"tab\there"`)
	f(`"ctl\u0001"`, `"ctl\u0001"`) // unescaped, this would be re-encoded as invalid JSON
	f("null", "null")
	f("", "null") // missing
}

func TestDecodeErrors(t *testing.T) {
	f := func(s string, want error) {
		t.Helper()
		var d stratum.Decoder
		m, err := d.Decode([]byte(s))
		if err != want || m != nil {
			t.Errorf("Decode(%q) = %v, %v; want nil, %v", s, m, err, want)
		}
	}
	// A TLS ClientHello's first bytes (bfgminer probing a plain port).
	f("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", stratum.ErrNotJSON)
	f("GET / HTTP/1.1", stratum.ErrNotJSON)
	f("PROXY TCP4 192.0.2.1 192.0.2.2 56324 3333", stratum.ErrNotJSON)
	f("hello", stratum.ErrNotJSON)
	f("", stratum.ErrNotJSON)
	f("   ", stratum.ErrNotJSON)
	f(`[{"id":1,"method":"mining.subscribe","params":[]}]`, stratum.ErrNotJSON) // a batch is not V1
	f(`[]`, stratum.ErrNotJSON)
	f("42", stratum.ErrNotJSON)
	f(`"mining.subscribe"`, stratum.ErrNotJSON)
	f("null", stratum.ErrNotJSON)
	f("true", stratum.ErrNotJSON)
	f(`{"id":1,"method":"mining.subscribe"`, stratum.ErrNotJSON)           // truncated
	f(`{"id":1,"method":"mining.subscribe"}}`, stratum.ErrNotJSON)         // trailing garbage
	f(`{"id":1,"method":"mining.subscribe"} {"id":2}`, stratum.ErrNotJSON) // two objects on one line
	f(`{"id":1,"method":'mining.subscribe'}`, stratum.ErrNotJSON)

	f(`{}`, stratum.ErrNotMessage)
	f(`{"id":1}`, stratum.ErrNotMessage)
	f(`{"id":1,"params":[]}`, stratum.ErrNotMessage)
	f(`{"id":1,"error":null}`, stratum.ErrNotMessage)
	f(`{"jsonrpc":"2.0"}`, stratum.ErrNotMessage)
	f(`{"id":1,"method":5,"params":[]}`, stratum.ErrNotMessage)
	f(`{"id":1,"method":["mining.submit"],"params":[]}`, stratum.ErrNotMessage)
}

// TestDecodeErrorThenDecode: a failed line leaves the Decoder usable.
func TestDecodeErrorThenDecode(t *testing.T) {
	var d stratum.Decoder
	for _, s := range []string{"\x16\x03\x01", `{"id":1}`, `[1]`} {
		if _, err := d.Decode([]byte(s)); err == nil {
			t.Fatalf("Decode(%q) succeeded; want an error", s)
		}
	}
	m, err := d.Decode([]byte(`{"id":9,"method":"mining.submit","params":["w","j","0000","504e86ed","b2957c02"]}`))
	if err != nil || m.Method != stratum.MethodSubmit || string(m.ID) != "9" {
		t.Fatalf("Decode after errors = %+v, %v; want submit id 9", m, err)
	}
}

// TestDecodeCopiesOutliveNextDecode: what the accessors return as copies (a Job, a
// SubscribeResult, extranonce1 from set_extranonce) is untouched by the next Decode,
// which reuses the Decoder's memory.
func TestDecodeCopiesOutliveNextDecode(t *testing.T) {
	var d stratum.Decoder
	m, err := d.Decode(line(t, nil, "mining.notify", bfParams()))
	if err != nil {
		t.Fatal(err)
	}
	job, err := m.Notify()
	if err != nil {
		t.Fatal(err)
	}
	jobCopy := *job
	jobCopy.Coinb1 = bytes.Clone(job.Coinb1)
	jobCopy.Coinb2 = bytes.Clone(job.Coinb2)
	id := string(m.ID)

	m, err = d.Decode([]byte(`{"id":1,"result":[[["mining.notify","ae6812eb"]],"08000002",4],"error":null}`))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := m.SubscribeResult()
	if err != nil {
		t.Fatal(err)
	}
	m, err = d.Decode([]byte(`{"id":null,"method":"mining.set_extranonce","params":["a1b2c3d4",6]}`))
	if err != nil {
		t.Fatal(err)
	}
	en1, _, err := m.SetExtranonce()
	if err != nil {
		t.Fatal(err)
	}

	// Overwrite the Decoder's memory with lines of the same shape, other values.
	other := []any{"zz", strings.Repeat("ff", 32), strings.Repeat("ee", len(bfCoinb1)/2), strings.Repeat("dd", len(bfCoinb2)/2), []any{}, "ffffffff", "1d00ffff", "ffffffff", true}
	for _, s := range [][]byte{
		line(t, 77, "mining.notify", other),
		[]byte(`{"id":2,"result":[[["mining.notify","ffffffff"]],"ffffffff",8],"error":null}`),
		[]byte(`{"id":null,"method":"mining.set_extranonce","params":["ffffffff",8]}`),
	} {
		if _, err := d.Decode(s); err != nil {
			t.Fatal(err)
		}
	}

	if job.ID != "bf" || job.PrevHash != jobCopy.PrevHash || !bytes.Equal(job.Coinb1, jobCopy.Coinb1) ||
		!bytes.Equal(job.Coinb2, jobCopy.Coinb2) || job.Version != 2 || job.NTime != 0x504e86b9 || job.Clean {
		t.Errorf("job after later Decodes = %+v; want %+v", job, jobCopy)
	}
	if id != "null" {
		t.Errorf("copied id = %s; want null", id)
	}
	if hex.EncodeToString(sub.Extranonce1) != "08000002" || sub.Extranonce2Size != 4 || sub.SessionID != "ae6812eb" {
		t.Errorf("subscribe result after later Decodes = %+v; want 08000002, 4, ae6812eb", sub)
	}
	if hex.EncodeToString(en1) != "a1b2c3d4" {
		t.Errorf("set_extranonce extranonce1 after later Decodes = %x; want a1b2c3d4", en1)
	}
}

func TestSubmitParams(t *testing.T) {
	f := func(params string, want *stratum.Submit) {
		t.Helper()
		m := decodeMsg(t, `{"id":4,"method":"mining.submit","params":`+params+`}`)
		var s stratum.Submit
		err := m.Submit(&s)
		if want == nil {
			if !errors.Is(err, stratum.ErrBadParams) {
				t.Errorf("Submit(%s) = %+v, %v; want ErrBadParams", params, s, err)
			}
			return
		}
		if err != nil || string(s.Worker) != string(want.Worker) || string(s.JobID) != string(want.JobID) ||
			string(s.Extranonce2) != string(want.Extranonce2) || s.NTime != want.NTime || s.Nonce != want.Nonce ||
			s.VersionBits != want.VersionBits || s.HasVersionBits != want.HasVersionBits {
			t.Errorf("Submit(%s) = %+v, %v; want %+v", params, s, err, want)
		}
	}
	sub := func(worker, job, en2 string, ntime, nonce uint32) *stratum.Submit {
		return &stratum.Submit{Worker: []byte(worker), JobID: []byte(job), Extranonce2: []byte(en2), NTime: ntime, Nonce: nonce}
	}
	vr := func(s *stratum.Submit, bits uint32) *stratum.Submit {
		s.VersionBits, s.HasVersionBits = bits, true
		return s
	}
	f(`["slush.miner1","bf","00000001","504e86ed","b2957c02"]`, sub("slush.miner1", "bf", "00000001", 0x504e86ed, 0xb2957c02))
	f(`["w","6798a1","b660000000000000","679ac169","ff05fb02","0e596000"]`, vr(sub("w", "6798a1", "b660000000000000", 0x679ac169, 0xff05fb02), 0x0e596000))
	f(`["w","j","00","504E86ED","B2957C02","1FFFE000"]`, vr(sub("w", "j", "00", 0x504e86ed, 0xb2957c02), 0x1fffe000)) // upper case
	f(`["w","j","00","00000000","ffffffff","00000000"]`, vr(sub("w", "j", "00", 0, 0xffffffff), 0))                   // 6th param present, zero
	f(`["","","","00000000","00000000"]`, sub("", "", "", 0, 0))                                                      // emptiness is the session's business
	f(`["w","j","zz","00000000","00000000"]`, sub("w", "j", "zz", 0, 0))                                              // extranonce2 is checked by Check
	f(`["w\u00e9","j","00","00000000","00000000"]`, sub("wé", "j", "00", 0, 0))

	f(`[]`, nil)
	f(`["w","j","00","504e86ed"]`, nil)
	f(`["w","j","00","504e86ed","b2957c02","00000000","x"]`, nil)
	f(`{"worker":"w"}`, nil)
	f(`["w","j","00","504e86e","b2957c02"]`, nil)   // 7 digits
	f(`["w","j","00","504e86edd","b2957c02"]`, nil) // 9 digits
	f(`["w","j","00","504e86eg","b2957c02"]`, nil)
	f(`["w","j","00","0x4e86ed","b2957c02"]`, nil)
	f(`["w","j","00"," 04e86ed","b2957c02"]`, nil)
	f(`["w","j","00","504e86ed","b2957c0"]`, nil)
	f(`["w","j","00","504e86ed","b2957c0z"]`, nil)
	f(`["w","j","00","504e86ed","b2957c02","e596000"]`, nil)
	f(`["w","j","00","504e86ed","b2957c02","0e59600g"]`, nil)
	f(`["w","j","00","504e86ed","b2957c02",""]`, nil)
	f(`["w","j","00","504e86ed","b2957c02",null]`, nil)
	f(`["w","j","00","504e86ed","b2957c02",240738304]`, nil)
	f(`["w","j","00",1347323629,"b2957c02"]`, nil) // numbers where strings are required
	f(`["w","j","00","504e86ed",2996140034]`, nil)
	f(`["w","j",1,"504e86ed","b2957c02"]`, nil)
	f(`["w",191,"00","504e86ed","b2957c02"]`, nil)
	f(`[5,"j","00","504e86ed","b2957c02"]`, nil)
	f(`[null,"j","00","504e86ed","b2957c02"]`, nil)

	// A Submit reused after a 6-param share forgets the version bits.
	var s stratum.Submit
	decodeMsg(t, `{"id":4,"method":"mining.submit","params":["w","j","00","00000000","00000000","1fffe000"]}`).Submit(&s)
	if err := decodeMsg(t, `{"id":4,"method":"mining.submit","params":["w","j","00","00000000","00000000"]}`).Submit(&s); err != nil || s.HasVersionBits || s.VersionBits != 0 {
		t.Errorf("reused Submit = %+v, %v; want no version bits", s, err)
	}
}

func TestNotifyParams(t *testing.T) {
	ok := func(name string, edit func(p []any) []any, check func(j *stratum.Job) string) {
		t.Helper()
		m := decodeMsg(t, string(line(t, nil, "mining.notify", edit(bfParams()))))
		j, err := m.Notify()
		if err != nil {
			t.Errorf("%s: Notify: %v; want a job", name, err)
			return
		}
		if msg := check(j); msg != "" {
			t.Errorf("%s: %s", name, msg)
		}
	}
	bad := func(name string, edit func(p []any) []any) {
		t.Helper()
		m := decodeMsg(t, string(line(t, nil, "mining.notify", edit(bfParams()))))
		if j, err := m.Notify(); err == nil {
			t.Errorf("%s: Notify = %+v; want an error", name, j)
		}
	}
	set := func(i int, v any) func(p []any) []any {
		return func(p []any) []any { p[i] = v; return p }
	}
	same := func(p []any) []any { return p }
	branch := func(n int, entry string) []any {
		b := make([]any, n)
		for i := range b {
			b[i] = entry
		}
		return b
	}
	h64 := strings.Repeat("ab", 32)

	ok("slush bf", same, func(j *stratum.Job) string {
		want := stratum.Job{ID: "bf", Version: 2, NBits: 0x1c2ac4af, NTime: 0x504e86b9, Clean: false}
		if j.ID != want.ID || j.Version != want.Version || j.NBits != want.NBits || j.NTime != want.NTime || j.Clean || len(j.Branch) != 0 {
			return fmt.Sprintf("got %+v; want %+v", j, want)
		}
		if got := hex.EncodeToString(j.PrevHash[:]); got != bfPrevHeader {
			return fmt.Sprintf("prevhash (header order) = %s; want %s", got, bfPrevHeader)
		}
		if got := j.PrevHash.String(); got != "00000000440b921e1b77c6c0487ae5616de67f788f44ae2a5af6e2194d16b6f8" {
			return fmt.Sprintf("prevhash (display order) = %s", got)
		}
		if hex.EncodeToString(j.Coinb1) != bfCoinb1 || hex.EncodeToString(j.Coinb2) != bfCoinb2 {
			return fmt.Sprintf("coinb1 %x coinb2 %x; want %s %s", j.Coinb1, j.Coinb2, bfCoinb1, bfCoinb2)
		}
		if got := j.NetworkTarget.String(); got != "000000002ac4af00000000000000000000000000000000000000000000000000" {
			return fmt.Sprintf("network target = %s", got)
		}
		return ""
	})
	ok("clean true", set(8, true), func(j *stratum.Job) string {
		if !j.Clean {
			return "clean = false; want true"
		}
		return ""
	})
	ok("clean_jobs null", set(8, nil), func(j *stratum.Job) string {
		if j.Clean {
			return "clean = true; want false (only true voids older jobs)"
		}
		return ""
	})
	ok("8 params, clean_jobs missing", func(p []any) []any { return p[:8] }, func(j *stratum.Job) string {
		if j.Clean || j.ID != "bf" {
			return fmt.Sprintf("got id %q clean %v; want bf, false", j.ID, j.Clean)
		}
		return ""
	})
	ok("branch of 2, order kept", set(4, []any{strings.Repeat("01", 32), strings.Repeat("02", 32)}), func(j *stratum.Job) string {
		if len(j.Branch) != 2 || j.Branch[0][0] != 1 || j.Branch[1][31] != 2 {
			return fmt.Sprintf("branch = %x; want 0101…, 0202… in internal order", j.Branch)
		}
		return ""
	})
	ok("branch of MaxBranchLen", set(4, branch(stratum.MaxBranchLen, h64)), func(j *stratum.Job) string {
		if len(j.Branch) != stratum.MaxBranchLen {
			return fmt.Sprintf("branch length %d; want %d", len(j.Branch), stratum.MaxBranchLen)
		}
		return ""
	})
	ok("empty coinb2", set(3, ""), func(j *stratum.Job) string {
		if len(j.Coinb2) != 0 {
			return fmt.Sprintf("coinb2 = %x; want empty", j.Coinb2)
		}
		return ""
	})
	ok("upper-case hex", set(1, strings.ToUpper(bfPrevWire)), func(j *stratum.Job) string {
		if hex.EncodeToString(j.PrevHash[:]) != bfPrevHeader {
			return fmt.Sprintf("prevhash = %x; want %s", j.PrevHash, bfPrevHeader)
		}
		return ""
	})

	bad("7 params", func(p []any) []any { return p[:7] })
	bad("10 params", func(p []any) []any { return append(p, "x") })
	bad("job id a number", set(0, 191))
	bad("job id too long", set(0, strings.Repeat("j", stratum.MaxJobIDLen+1)))
	bad("prevhash of 63 digits", set(1, bfPrevWire[:63]))
	bad("prevhash of 65 digits", set(1, bfPrevWire+"0"))
	bad("prevhash not hex", set(1, "g"+bfPrevWire[1:]))
	bad("prevhash a number", set(1, 0))
	bad("odd hex coinb1", set(2, bfCoinb1+"0"))
	bad("odd hex coinb2", set(3, bfCoinb2[1:]))
	bad("coinb1 not hex", set(2, "zz"+bfCoinb1))
	bad("coinb1 null", set(2, nil))
	bad("branch entry of 63 digits", set(4, []any{h64[:63]}))
	bad("branch entry of 65 digits", set(4, []any{h64 + "a"}))
	bad("branch entry not hex", set(4, []any{"x" + h64[1:]}))
	bad("branch entry a number", set(4, []any{5}))
	bad("branch not an array", set(4, h64))
	bad("branch longer than MaxBranchLen", set(4, branch(stratum.MaxBranchLen+1, h64)))
	bad("version of 7 digits", set(5, "0000002"))
	bad("version a number", set(5, 2))
	bad("nbits not hex", set(6, "1c2ac4ag"))
	bad("nbits with the sign bit", set(6, "1d800001"))
	bad("nbits zero", set(6, "00000000"))
	bad("nbits overflowing", set(6, "23000001"))
	bad("ntime of 9 digits", set(7, "504e86b90"))
	bad("coinbase too big", set(2, strings.Repeat("00", stratum.MaxCoinbaseSize)))
}

func TestConfigureParams(t *testing.T) {
	type want struct {
		exts     stratum.Extensions
		mask     uint32
		minBits  int
		minDiff  float64
		info     [4]string // connection-url, hw-version, sw-version, hw-id
		unknowns []string
	}
	f := func(params string, w *want) {
		t.Helper()
		m := decodeMsg(t, `{"id":1,"method":"mining.configure","params":`+params+`}`)
		var c stratum.ConfigureRequest
		err := m.Configure(&c)
		if w == nil {
			if !errors.Is(err, stratum.ErrBadParams) {
				t.Errorf("Configure(%s) = %+v, %v; want ErrBadParams", params, c, err)
			}
			return
		}
		var unknown []string
		for _, u := range c.Unknown {
			unknown = append(unknown, string(u))
		}
		info := [4]string{string(c.ConnectionURL), string(c.HWVersion), string(c.SWVersion), string(c.HWID)}
		if err != nil || c.Extensions != w.exts || c.VersionMask != w.mask || c.MinBitCount != w.minBits ||
			c.MinimumDifficulty != w.minDiff || info != w.info || fmt.Sprint(unknown) != fmt.Sprint(w.unknowns) {
			t.Errorf("Configure(%s) = exts %04b mask %08x min-bits %d min-diff %v info %q unknown %q, %v; want %+v",
				params, c.Extensions, c.VersionMask, c.MinBitCount, c.MinimumDifficulty, info, unknown, err, *w)
		}
	}
	vr := stratum.ExtVersionRolling
	all := stratum.ExtVersionRolling | stratum.ExtMinimumDifficulty | stratum.ExtSubscribeExtranonce | stratum.ExtInfo
	f(`[["version-rolling"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]`, &want{exts: vr, mask: 0x1fffe000, minBits: 2})
	f(`[["version-rolling"],{"version-rolling.mask":"ffffffff"}]`, &want{exts: vr, mask: 0xffffffff}) // ESP-Miner
	f(`[["version-rolling"],{"version-rolling.mask":"1FFFE000"}]`, &want{exts: vr, mask: 0x1fffe000})
	f(`[["version-rolling"],{"version-rolling.min-bit-count":16}]`, &want{exts: vr, mask: 0xffffffff, minBits: 16}) // mask defaults to all bits
	f(`[["version-rolling"],{}]`, &want{exts: vr, mask: 0xffffffff})
	f(`[["version-rolling"]]`, &want{exts: vr, mask: 0xffffffff}) // params object absent
	f(`[["version-rolling"],null]`, &want{exts: vr, mask: 0xffffffff})
	f(`[[],{}]`, &want{mask: 0xffffffff})
	f(`[["minimum-difficulty"],{"minimum-difficulty.value":2048}]`, &want{exts: stratum.ExtMinimumDifficulty, mask: 0xffffffff, minDiff: 2048})
	f(`[["minimum-difficulty"],{"minimum-difficulty.value":0.001}]`, &want{exts: stratum.ExtMinimumDifficulty, mask: 0xffffffff, minDiff: 0.001})
	f(`[["subscribe-extranonce"],{}]`, &want{exts: stratum.ExtSubscribeExtranonce, mask: 0xffffffff})
	f(`[["info"],{"info.connection-url":"stratum+tcp://pool.example:3333","info.hw-version":"BM1366","info.sw-version":"v2.4.0","info.hw-id":"bitaxe-7"}]`,
		&want{exts: stratum.ExtInfo, mask: 0xffffffff, info: [4]string{"stratum+tcp://pool.example:3333", "BM1366", "v2.4.0", "bitaxe-7"}})
	f(`[["version-rolling","minimum-difficulty","subscribe-extranonce","info","x-one","x-two"],{"version-rolling.mask":"1fffe000","minimum-difficulty.value":512}]`,
		&want{exts: all, mask: 0x1fffe000, minDiff: 512, unknowns: []string{"x-one", "x-two"}})
	f(`[["version-rolling","version-rolling"],{}]`, &want{exts: vr, mask: 0xffffffff})
	f(`[["u1","u2","u3","u4","u5","u6","u7","u8"]]`, &want{mask: 0xffffffff, unknowns: []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"}})

	f(`[["u1","u2","u3","u4","u5","u6","u7","u8","u9"]]`, nil) // more than MaxUnknownExtensions
	f(`[]`, nil)
	f(`["version-rolling"]`, nil)
	f(`[[5]]`, nil)
	f(`[["version-rolling"],{"version-rolling.mask":"1fffe00"}]`, nil)
	f(`[["version-rolling"],{"version-rolling.mask":536862720}]`, nil)
	f(`[["version-rolling"],{"version-rolling.mask":"1fffe00g"}]`, nil)
	f(`[["version-rolling"],{"version-rolling.min-bit-count":33}]`, nil)
	f(`[["version-rolling"],{"version-rolling.min-bit-count":-1}]`, nil)
	f(`[["version-rolling"],{"version-rolling.min-bit-count":"2"}]`, nil)
	f(`[["minimum-difficulty"],{"minimum-difficulty.value":-1}]`, nil)
	f(`[["minimum-difficulty"],{"minimum-difficulty.value":"2048"}]`, nil)

	// A reused request forgets the previous one's unknown extensions and mask.
	var c stratum.ConfigureRequest
	decodeMsg(t, `{"id":1,"method":"mining.configure","params":[["zz"],{"version-rolling.mask":"00000001"}]}`).Configure(&c)
	if err := decodeMsg(t, `{"id":1,"method":"mining.configure","params":[["info"]]}`).Configure(&c); err != nil || len(c.Unknown) != 0 || c.VersionMask != 0xffffffff {
		t.Errorf("reused ConfigureRequest = %+v, %v; want no unknown extensions, mask ffffffff", c, err)
	}
	// Params missing altogether.
	if err := decodeMsg(t, `{"id":1,"method":"mining.configure"}`).Configure(&c); !errors.Is(err, stratum.ErrBadParams) {
		t.Errorf("configure without params: %v; want ErrBadParams", err)
	}
}

func TestSubscribeAuthorizeParams(t *testing.T) {
	sub := func(params, agent, session string) {
		t.Helper()
		a, s := decodeMsg(t, `{"id":1,"method":"mining.subscribe","params":`+params+`}`).Subscribe()
		if string(a) != agent || string(s) != session {
			t.Errorf("Subscribe(%s) = %q, %q; want %q, %q", params, a, s, agent, session)
		}
	}
	sub(`["cpuminer/2.5.1"]`, "cpuminer/2.5.1", "")
	sub(`["cpuminer/2.5.1","f1ad9a67"]`, "cpuminer/2.5.1", "f1ad9a67")
	sub(`[]`, "", "")
	sub(`[null,"f1ad9a67"]`, "", "f1ad9a67")
	sub(`["bfgminer/5.5.0",null]`, "bfgminer/5.5.0", "")

	auth := func(params, user, password string, wantErr bool) {
		t.Helper()
		u, p, err := decodeMsg(t, `{"id":"auth","method":"mining.authorize","params":`+params+`}`).Authorize()
		if wantErr {
			if !errors.Is(err, stratum.ErrBadParams) {
				t.Errorf("Authorize(%s) = %q, %q, %v; want ErrBadParams", params, u, p, err)
			}
			return
		}
		if err != nil || string(u) != user || string(p) != password {
			t.Errorf("Authorize(%s) = %q, %q, %v; want %q, %q", params, u, p, err, user, password)
		}
	}
	auth(`["bc1qexample.rig1","x"]`, "bc1qexample.rig1", "x", false)
	auth(`["user.worker"]`, "user.worker", "", false)
	auth(`["user.worker",null]`, "user.worker", "", false)
	auth(`["user\"q\\b","d=1024"]`, `user"q\b`, "d=1024", false)
	auth(`["",""]`, "", "", true)
	auth(`[]`, "", "", true)
	auth(`[5,"x"]`, "", "", true)
	auth(`[null,"x"]`, "", "", true)
}

func TestDifficultyParams(t *testing.T) {
	f := func(params string, want float64) {
		t.Helper()
		for _, method := range []string{"mining.set_difficulty", "mining.suggest_difficulty"} {
			m := decodeMsg(t, `{"id":null,"method":"`+method+`","params":`+params+`}`)
			d, err := m.Difficulty()
			if want == 0 {
				if !errors.Is(err, stratum.ErrBadParams) {
					t.Errorf("%s %s: Difficulty() = %v, %v; want ErrBadParams", method, params, d, err)
				}
				continue
			}
			if err != nil || d != want {
				t.Errorf("%s %s: Difficulty() = %v, %v; want %v", method, params, d, err, want)
			}
		}
	}
	f(`[1]`, 1)
	f(`[1024]`, 1024)
	f(`[0.001]`, 0.001)
	f(`[1e3]`, 1000)
	f(`[65536.5]`, 65536.5)
	f(`[4.9e-324]`, 5e-324)
	f(`["2048"]`, 2048) // a numeric string
	f(`["0.5"]`, 0.5)
	f(`[1024,"extra"]`, 1024)

	// Zero, negative, NaN- and Inf-like, non-numbers: errors (0 means "want an error").
	f(`[0]`, 0)
	f(`[-0]`, 0)
	f(`[-1]`, 0)
	f(`["0"]`, 0)
	f(`["-5"]`, 0)
	f(`["NaN"]`, 0)
	f(`["nan"]`, 0)
	f(`["-NaN"]`, 0)
	f(`["Inf"]`, 0)
	f(`["+Inf"]`, 0)
	f(`["-Inf"]`, 0)
	f(`["1e400"]`, 0)
	f(`[1e400]`, 0)
	f(`["abc"]`, 0)
	f(`[""]`, 0)
	f(`[]`, 0)
	f(`[null]`, 0)
	f(`[true]`, 0)
	f(`[[1]]`, 0)
	f(`{"d":1}`, 0)
}

func TestSuggestTargetParams(t *testing.T) {
	f := func(params string, want string) {
		t.Helper()
		got, err := decodeMsg(t, `{"id":3,"method":"mining.suggest_target","params":`+params+`}`).SuggestTarget()
		if want == "" {
			if !errors.Is(err, stratum.ErrBadParams) {
				t.Errorf("SuggestTarget(%s) = %v, %v; want ErrBadParams", params, got, err)
			}
			return
		}
		if err != nil || got.String() != want {
			t.Errorf("SuggestTarget(%s) = %v, %v; want %s", params, got, err, want)
		}
	}
	diff1 := "00000000ffff0000000000000000000000000000000000000000000000000000"
	f(`["`+diff1+`"]`, diff1)
	f(`["`+strings.ToUpper("00000000003fffc0"+strings.Repeat("0", 48))+`"]`, "00000000003fffc0"+strings.Repeat("0", 48))
	f(`["`+diff1[:63]+`"]`, "")
	f(`["`+diff1+`0"]`, "")
	f(`["`+"x"+diff1[1:]+`"]`, "")
	f(`[1024]`, "")
	f(`[]`, "")
}

func TestSetExtranonceParams(t *testing.T) {
	f := func(params, en1 string, size int) {
		t.Helper()
		got, n, err := decodeMsg(t, `{"id":null,"method":"mining.set_extranonce","params":`+params+`}`).SetExtranonce()
		if size == 0 {
			if !errors.Is(err, stratum.ErrBadParams) {
				t.Errorf("SetExtranonce(%s) = %x, %d, %v; want ErrBadParams", params, got, n, err)
			}
			return
		}
		if err != nil || hex.EncodeToString(got) != en1 || n != size {
			t.Errorf("SetExtranonce(%s) = %x, %d, %v; want %s, %d", params, got, n, err, en1, size)
		}
	}
	f(`["08000002",4]`, "08000002", 4)
	f(`["F1AD9A67",8]`, "f1ad9a67", 8)
	f(`["",4]`, "", 4)
	f(`["08000002",1]`, "08000002", 1)
	f(`["08000002",16]`, "08000002", 16)
	f(`["08000002","4"]`, "08000002", 4)
	f(`["`+strings.Repeat("ab", stratum.MaxExtranonce1Size)+`",4]`, strings.Repeat("ab", stratum.MaxExtranonce1Size), 4)

	f(`["08000002",0]`, "", 0)
	f(`["08000002",17]`, "", 0)
	f(`["08000002",-4]`, "", 0)
	f(`["08000002",4.5]`, "", 0)
	f(`["08000002"]`, "", 0)
	f(`["0800000",4]`, "", 0)
	f(`["zz",4]`, "", 0)
	f(`[8000002,4]`, "", 0)
	f(`["`+strings.Repeat("ab", stratum.MaxExtranonce1Size+1)+`",4]`, "", 0)
	f(`[]`, "", 0)
}

func TestVersionMaskParams(t *testing.T) {
	f := func(params string, want uint32, wantErr bool) {
		t.Helper()
		got, err := decodeMsg(t, `{"id":null,"method":"mining.set_version_mask","params":`+params+`}`).VersionMask()
		if wantErr != (err != nil) || got != want {
			t.Errorf("VersionMask(%s) = %08x, %v; want %08x, error %v", params, got, err, want, wantErr)
		}
	}
	f(`["1fffe000"]`, 0x1fffe000, false)
	f(`["1FFFE000"]`, 0x1fffe000, false)
	f(`["00000000"]`, 0, false)
	f(`["ffffffff"]`, 0xffffffff, false)
	f(`["1fffe00"]`, 0, true)
	f(`["1fffe0000"]`, 0, true)
	f(`[536862720]`, 0, true)
	f(`[]`, 0, true)
}

func TestReconnectParams(t *testing.T) {
	f := func(params, host string, port, wait int, wantErr bool) {
		t.Helper()
		r, err := decodeMsg(t, `{"id":null,"method":"client.reconnect","params":`+params+`}`).Reconnect()
		if wantErr {
			if !errors.Is(err, stratum.ErrBadParams) {
				t.Errorf("Reconnect(%s) = %+v, %v; want ErrBadParams", params, r, err)
			}
			return
		}
		if err != nil || string(r.Host) != host || r.Port != port || r.Wait != wait {
			t.Errorf("Reconnect(%s) = {%q %d %d}, %v; want {%q %d %d}", params, r.Host, r.Port, r.Wait, err, host, port, wait)
		}
	}
	f(`[]`, "", 0, 0, false)
	f(`["pool.example.com",3333,5]`, "pool.example.com", 3333, 5, false)
	f(`["pool.example.com","3333",0]`, "pool.example.com", 3333, 0, false)
	f(`["pool.example.com",3333]`, "pool.example.com", 3333, 0, false)
	f(`["pool.example.com",65535,0]`, "pool.example.com", 65535, 0, false)
	f(`["pool.example.com"]`, "pool.example.com", 0, 0, false)
	f(`[null,null,0]`, "", 0, 0, false)
	f(`[null,4444,0]`, "", 4444, 0, false)
	f(`["pool.example.com",3333,"10"]`, "pool.example.com", 3333, 10, false)
	f(`["pool.example.com",3333,-5]`, "pool.example.com", 3333, 0, false) // a nonsense wait is ignored

	f(`["pool.example.com",70000,0]`, "", 0, 0, true)
	f(`["pool.example.com",-1,0]`, "", 0, 0, true)
	f(`["pool.example.com","http",0]`, "", 0, 0, true)
	f(`["pool.example.com",3333.5,0]`, "", 0, 0, true)
	f(`["pool.example.com",true,0]`, "", 0, 0, true)
}

func TestShowMessageParams(t *testing.T) {
	f := func(params, want string) {
		t.Helper()
		if got := decodeMsg(t, `{"id":null,"method":"client.show_message","params":`+params+`}`).ShowMessage(); string(got) != want {
			t.Errorf("ShowMessage(%s) = %q; want %q", params, got, want)
		}
	}
	f(`["Pool maintenance at 12:00 UTC"]`, "Pool maintenance at 12:00 UTC")
	f(`["say \"hi\"\n\u00e9"]`, "say \"hi\"\né")
	f(`[]`, "")
	f(`[42]`, "")
}

func TestSubscribeResult(t *testing.T) {
	f := func(result, en1 string, size int, session string) {
		t.Helper()
		r, err := decodeMsg(t, `{"id":1,"result":`+result+`,"error":null}`).SubscribeResult()
		if size == 0 {
			if !errors.Is(err, stratum.ErrBadParams) {
				t.Errorf("SubscribeResult(%s) = %+v, %v; want ErrBadParams", result, r, err)
			}
			return
		}
		if err != nil || hex.EncodeToString(r.Extranonce1) != en1 || r.Extranonce2Size != size || r.SessionID != session {
			t.Errorf("SubscribeResult(%s) = {%x %d %q}, %v; want {%s %d %q}", result, r.Extranonce1, r.Extranonce2Size, r.SessionID, err, en1, size, session)
		}
	}
	// slush (the original document).
	f(`[[["mining.set_difficulty","b4b6693b72a50c7116db18d6497cac52"],["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"]],"08000002",4]`,
		"08000002", 4, "ae6812eb4cd7735a302a8a9dd95cf71f")
	// ckpool and public-pool: notify only.
	f(`[[["mining.notify","5a8b1f26"]],"5a8b1f26",8]`, "5a8b1f26", 8, "5a8b1f26")
	// A single flat subscription.
	f(`[["mining.notify","deadbeef"],"f1ad9a67",8]`, "f1ad9a67", 8, "deadbeef")
	f(`[["mining.set_difficulty","deadbeef"],"f1ad9a67",8]`, "f1ad9a67", 8, "")
	// p2pool: empty extranonce1.
	f(`[[["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"]],"",4]`, "", 4, "ae6812eb4cd7735a302a8a9dd95cf71f")
	f(`[[],"08000002",4]`, "08000002", 4, "")
	f(`[null,"08000002",4]`, "08000002", 4, "")
	f(`["junk","08000002",4]`, "08000002", 4, "")
	f(`[[["mining.notify","a"]],"08000002",16]`, "08000002", 16, "a")
	f(`[[["mining.notify","a"]],"08000002",2]`, "08000002", 2, "a")

	f(`[[["mining.notify","a"]],"08000002",0]`, "", 0, "")
	f(`[[["mining.notify","a"]],"08000002",17]`, "", 0, "")
	f(`[[["mining.notify","a"]],"08000002","4"]`, "", 0, "")
	f(`[[["mining.notify","a"]],"08000002"]`, "", 0, "")
	f(`[[["mining.notify","a"]],"0800000",4]`, "", 0, "")
	f(`[[["mining.notify","a"]],"zz",4]`, "", 0, "")
	f(`[[["mining.notify","a"]],8000002,4]`, "", 0, "")
	f(`true`, "", 0, "")
	f(`null`, "", 0, "")
	f(`{"extranonce1":"08000002"}`, "", 0, "")
}

func TestAccepted(t *testing.T) {
	f := func(s string, want bool) {
		t.Helper()
		m := decodeMsg(t, s)
		if got := m.Accepted(); got != want {
			t.Errorf("Accepted(%s) = %v; want %v", s, got, want)
		}
	}
	f(`{"id":4,"result":true,"error":null}`, true)
	f(`{"id":4,"result":true}`, true)
	f(`{"id":4,"jsonrpc":"2.0","result":true}`, true)
	f(`{"id":4,"result":false,"error":null}`, false)
	f(`{"id":4,"result":null,"error":null}`, false)
	f(`{"id":4,"result":null,"error":[23,"Difficulty too low",""]}`, false)
	f(`{"id":4,"result":true,"error":[21,"Job not found",null]}`, false) // contradictory: not accepted
	f(`{"id":4,"result":false,"error":"Invalid params"}`, false)
	f(`{"id":4,"result":false,"error":null,"reject-reason":"Above target"}`, false)
	f(`{"id":4,"result":"true","error":null}`, false)
	f(`{"id":4,"result":1,"error":null}`, false)
	f(`{"id":4,"error":[22,"Duplicate share",null]}`, false)
	// A request is never an acceptance.
	f(`{"id":4,"method":"mining.submit","params":[],"result":true}`, false)
}

func TestReject(t *testing.T) {
	f := func(s string, code int, reason string) {
		t.Helper()
		r := decodeMsg(t, s).Reject()
		if r.Code != code || string(r.Reason) != reason {
			t.Errorf("Reject(%s) = {%d %q}; want {%d %q}", s, r.Code, r.Reason, code, reason)
		}
	}
	f(`{"id":4,"result":null,"error":[23,"Difficulty too low",""]}`, 23, "Difficulty too low") // public-pool
	f(`{"id":4,"result":null,"error":[21,"Job not found",null]}`, 21, "Job not found")         // NOMP, slush
	f(`{"id":4,"result":false,"error":[22,"Duplicate share",null]}`, 22, "Duplicate share")
	f(`{"id":4,"result":false,"error":"Invalid params"}`, 0, "Invalid params")                  // ckpool, malformed
	f(`{"id":4,"result":false,"error":null,"reject-reason":"Above target"}`, 0, "Above target") // ckpool, rejected
	f(`{"id":4,"result":null,"error":{"code":-1,"message":"x"}}`, -1, "x")                      // JSON-RPC 2
	f(`{"id":4,"result":null,"error":{"code":-32601,"message":"Method not found"}}`, -32601, "Method not found")
	f(`{"id":4,"result":null,"error":[24]}`, 24, "")
	f(`{"id":4,"result":null,"error":[20,null,null],"reject-reason":"Stale"}`, 20, "Stale")
	f(`{"id":4,"result":null,"error":[23,"",null],"reject-reason":"Above target"}`, 23, "Above target")
	f(`{"id":4,"result":false,"error":null}`, 0, "")
	f(`{"id":4,"result":true,"error":null}`, 0, "")
}

func TestBoolAndStringResult(t *testing.T) {
	b := func(s string, value, ok bool) {
		t.Helper()
		v, k := decodeMsg(t, s).BoolResult()
		if v != value || k != ok {
			t.Errorf("BoolResult(%s) = %v, %v; want %v, %v", s, v, k, value, ok)
		}
	}
	b(`{"id":3,"result":true,"error":null}`, true, true)
	b(`{"id":3,"result":false,"error":null}`, false, true)
	b(`{"id":3,"result":null,"error":[20,"Not supported.",null]}`, false, false)
	b(`{"id":3,"error":[20,"Not supported.",null]}`, false, false)
	b(`{"id":3,"result":"true","error":null}`, false, false)

	s := func(line, want string, ok bool) {
		t.Helper()
		v, k := decodeMsg(t, line).StringResult()
		if string(v) != want || k != ok {
			t.Errorf("StringResult(%s) = %q, %v; want %q, %v", line, v, k, want, ok)
		}
	}
	s(`{"id":9,"result":"cgminer/4.10.0","error":null}`, "cgminer/4.10.0", true)
	s(`{"id":9,"result":"","error":null}`, "", true)
	s(`{"id":9,"result":true,"error":null}`, "", false)
	s(`{"id":9,"result":null,"error":[20,"x",null]}`, "", false)
}

func TestConfigureResult(t *testing.T) {
	f := func(result string, asked, granted stratum.Extensions, mask uint32, wantErr bool) {
		t.Helper()
		r, err := decodeMsg(t, `{"id":1,"result":`+result+`,"error":null}`).ConfigureResult()
		if wantErr {
			if !errors.Is(err, stratum.ErrBadParams) {
				t.Errorf("ConfigureResult(%s) = %+v, %v; want ErrBadParams", result, r, err)
			}
			return
		}
		if err != nil || r.Asked != asked || r.Granted != granted || r.VersionMask != mask {
			t.Errorf("ConfigureResult(%s) = asked %04b granted %04b mask %08x, %v; want %04b %04b %08x",
				result, r.Asked, r.Granted, r.VersionMask, err, asked, granted, mask)
		}
	}
	vr, md, se, in := stratum.ExtVersionRolling, stratum.ExtMinimumDifficulty, stratum.ExtSubscribeExtranonce, stratum.ExtInfo
	f(`{"version-rolling":true,"version-rolling.mask":"1fffe000"}`, vr, vr, 0x1fffe000, false)
	f(`{"version-rolling":false}`, vr, 0, 0, false)
	f(`{"version-rolling":"true","version-rolling.mask":"1fffe000"}`, vr, 0, 0, false) // only true grants
	f(`{"minimum-difficulty":true,"subscribe-extranonce":false,"info":true,"x-other":false}`, md|se|in, md|in, 0, false)
	f(`{}`, 0, 0, 0, false)
	f(`{"version-rolling":true}`, 0, 0, 0, true)
	f(`{"version-rolling":true,"version-rolling.mask":"1fffe00"}`, 0, 0, 0, true)
	f(`[true]`, 0, 0, 0, true)
	f(`null`, 0, 0, 0, true)
}

// TestDifficultyRoundsCorrectly: an exponent form reads as the same float64 as its
// decimal form (fastjson's own Float64 is a unit off for 3e-05).
func TestDifficultyRoundsCorrectly(t *testing.T) {
	var d stratum.Decoder
	for _, text := range []string{"3e-05", "0.00003", "1e-7", "0.001", "65536", "1.5E+3"} {
		m, err := d.Decode([]byte(`{"id":null,"method":"mining.set_difficulty","params":[` + text + `]}`))
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Difficulty()
		want, _ := strconv.ParseFloat(text, 64)
		if err != nil || got != want {
			t.Errorf("difficulty %s = %v, %v; want %v", text, got, err, want)
		}
	}
}
