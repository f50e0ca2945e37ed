package stratum_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashrelay/hashrelay/stratum"
)

// encodeJob is a job with every field distinct, so a swapped or dropped field shows.
func encodeJob(t testing.TB, clean bool) *stratum.Job {
	t.Helper()
	var prev stratum.Hash
	for i := range prev {
		prev[i] = byte(i + 1) // 01 02 03 … 20: the word swap is visible
	}
	branch := make([]stratum.Hash, 3)
	for i := range branch {
		for k := range branch[i] {
			branch[i][k] = byte(0x40*i + k)
		}
	}
	j, err := stratum.NewJob(stratum.Job{
		ID:       "6798a1",
		PrevHash: prev,
		Coinb1:   mustHex(t, "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff35030f7303"),
		Coinb2:   mustHex(t, "0a636b706f6f6cffffffff0100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000"),
		Branch:   branch,
		Version:  0x20000000,
		NBits:    0x17029a8a,
		NTime:    0x679ac169,
		Clean:    clean,
	})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncodersProduceOneJSONLine: every encoder appends exactly one line, newline
// included, that encoding/json accepts and the Decoder reads back as the right kind
// of message; appending to a non-empty dst keeps the prefix and adds the same bytes.
func TestEncodersProduceOneJSONLine(t *testing.T) {
	job := encodeJob(t, true)
	id := []byte(`"auth"`)
	cfg := stratum.ConfigureResult{
		Asked:       stratum.ExtVersionRolling | stratum.ExtMinimumDifficulty | stratum.ExtSubscribeExtranonce | stratum.ExtInfo,
		Granted:     stratum.ExtVersionRolling | stratum.ExtInfo,
		VersionMask: 0x1fffe000,
		Unknown:     [][]byte{[]byte("x-one"), []byte(`we"ird`)},
	}
	sub := stratum.Submit{Worker: []byte("w.1"), JobID: []byte("6798a1"), Extranonce2: []byte("b660000000000000"), NTime: 0x679ac169, Nonce: 0xff05fb02, VersionBits: 0x0e596000, HasVersionBits: true}
	req, note, resp := stratum.KindRequest, stratum.KindNotification, stratum.KindResponse
	for _, c := range []struct {
		name   string
		enc    func(dst []byte) []byte
		kind   stratum.Kind
		method stratum.Method
	}{
		{"AppendResult", func(b []byte) []byte { return stratum.AppendResult(b, id, `{"a":[1,2]}`) }, resp, 0},
		{"AppendBool", func(b []byte) []byte { return stratum.AppendBool(b, id, true) }, resp, 0},
		{"AppendError", func(b []byte) []byte { return stratum.AppendError(b, id, stratum.ErrLowDifficulty) }, resp, 0},
		{"AppendStringResult", func(b []byte) []byte { return stratum.AppendStringResult(b, id, []byte("hashrelay/1.0")) }, resp, 0},
		{"AppendSubscribeResult", func(b []byte) []byte {
			return stratum.AppendSubscribeResult(b, id, []byte("ae6812eb"), []byte{8, 0, 0, 2}, 4)
		}, resp, 0},
		{"AppendConfigureResult", func(b []byte) []byte { return stratum.AppendConfigureResult(b, id, &cfg) }, resp, 0},
		{"AppendNotify", func(b []byte) []byte { return stratum.AppendNotify(b, job) }, note, stratum.MethodNotify},
		{"AppendSetDifficulty", func(b []byte) []byte { return stratum.AppendSetDifficulty(b, 0.001) }, note, stratum.MethodSetDifficulty},
		{"AppendSetExtranonce", func(b []byte) []byte { return stratum.AppendSetExtranonce(b, []byte{8, 0, 0, 2}, 4) }, note, stratum.MethodSetExtranonce},
		{"AppendSetVersionMask", func(b []byte) []byte { return stratum.AppendSetVersionMask(b, 0x1fffe000) }, note, stratum.MethodSetVersionMask},
		{"AppendReconnect", func(b []byte) []byte { return stratum.AppendReconnect(b, "pool.example", 3333, 5) }, note, stratum.MethodReconnect},
		{"AppendReconnect/empty", func(b []byte) []byte { return stratum.AppendReconnect(b, "", 0, 0) }, note, stratum.MethodReconnect},
		{"AppendShowMessage", func(b []byte) []byte { return stratum.AppendShowMessage(b, "hello\nminer") }, note, stratum.MethodShowMessage},
		{"AppendPing", func(b []byte) []byte { return stratum.AppendPing(b, 42) }, req, stratum.MethodPing},
		{"AppendGetVersion", func(b []byte) []byte { return stratum.AppendGetVersion(b, 43) }, req, stratum.MethodGetVersion},
		{"AppendConfigure", func(b []byte) []byte {
			return stratum.AppendConfigure(b, 1, stratum.ExtVersionRolling|stratum.ExtMinimumDifficulty, 0x1fffe000, 512)
		}, req, stratum.MethodConfigure},
		{"AppendConfigure/none", func(b []byte) []byte { return stratum.AppendConfigure(b, 1, 0, 0, 0) }, req, stratum.MethodConfigure},
		{"AppendSubscribe", func(b []byte) []byte { return stratum.AppendSubscribe(b, 2, "hashrelay/1.0", "f1ad9a67") }, req, stratum.MethodSubscribe},
		{"AppendAuthorize", func(b []byte) []byte { return stratum.AppendAuthorize(b, 3, "user.rig", "x") }, req, stratum.MethodAuthorize},
		{"AppendExtranonceSubscribe", func(b []byte) []byte { return stratum.AppendExtranonceSubscribe(b, 4) }, req, stratum.MethodExtranonceSubscribe},
		{"AppendSuggestDifficulty", func(b []byte) []byte { return stratum.AppendSuggestDifficulty(b, 5, 1024) }, req, stratum.MethodSuggestDifficulty},
		{"AppendSubmit", func(b []byte) []byte { return stratum.AppendSubmit(b, 6, &sub) }, req, stratum.MethodSubmit},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := c.enc(nil)
			if len(out) == 0 || out[len(out)-1] != '\n' || bytes.Count(out, []byte("\n")) != 1 {
				t.Fatalf("got %q; want one line ending in \\n", out)
			}
			var v map[string]any
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("got %q; not a JSON object: %v", out, err)
			}
			var d stratum.Decoder
			m, err := d.Decode(out[:len(out)-1])
			if err != nil {
				t.Fatalf("Decode(%q): %v", out, err)
			}
			if m.Kind != c.kind || m.Method != c.method {
				t.Errorf("Decode(%q) = kind %d method %v; want kind %d method %v", out, m.Kind, m.Method, c.kind, c.method)
			}
			if c.kind == resp && string(m.ID) != string(id) {
				t.Errorf("response id = %s; want %s", m.ID, id)
			}
			prefix := []byte("{\"id\":0}\n")
			withPrefix := c.enc(bytes.Clone(prefix))
			if !bytes.HasPrefix(withPrefix, prefix) || !bytes.Equal(withPrefix[len(prefix):], out) {
				t.Errorf("appended to %q: got %q; want the prefix then %q", prefix, withPrefix, out)
			}
		})
	}
}

func TestAppendErrorExact(t *testing.T) {
	f := func(id string, e *stratum.Error, want string) {
		t.Helper()
		if got := string(stratum.AppendError(nil, []byte(id), e)); got != want {
			t.Errorf("AppendError(%s, %v) = %q; want %q", id, e, got, want)
		}
	}
	f("4", stratum.ErrLowDifficulty, `{"id":4,"result":null,"error":[23,"Low difficulty share",null]}`+"\n")
	f("4", stratum.ErrJobNotFound, `{"id":4,"result":null,"error":[21,"Job not found",null]}`+"\n")
	f("4", stratum.ErrDuplicateShare, `{"id":4,"result":null,"error":[22,"Duplicate share",null]}`+"\n")
	f("2", stratum.ErrUnauthorized, `{"id":2,"result":null,"error":[24,"Unauthorized worker",null]}`+"\n")
	f("4", stratum.ErrNotSubscribed, `{"id":4,"result":null,"error":[25,"Not subscribed",null]}`+"\n")
	f(`"txlist4f"`, stratum.ErrMethodNotFound, `{"id":"txlist4f","result":null,"error":[-32601,"Method not found",null]}`+"\n")
	f("null", stratum.ErrParse, `{"id":null,"result":null,"error":[-32700,"Parse error",null]}`+"\n")
	f("", stratum.ErrParse, `{"id":null,"result":null,"error":[-32700,"Parse error",null]}`+"\n") // no id at all
	f("7", &stratum.Error{Code: 20, Message: `bad "x"\`}, `{"id":7,"result":null,"error":[20,"bad \"x\"\\",null]}`+"\n")

	// The error text of each wire error names its code.
	if got := stratum.ErrLowDifficulty.Error(); got != "stratum: error 23: Low difficulty share" {
		t.Errorf("ErrLowDifficulty.Error() = %q", got)
	}
}

func TestAppendResultExact(t *testing.T) {
	f := func(got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Errorf("got %q; want %q", got, want)
		}
	}
	f(stratum.AppendBool(nil, []byte("0"), true), `{"id":0,"result":true,"error":null}`+"\n")
	f(stratum.AppendBool(nil, nil, false), `{"id":null,"result":false,"error":null}`+"\n")
	f(stratum.AppendResult(nil, []byte("3"), "[1,2]"), `{"id":3,"result":[1,2],"error":null}`+"\n")
	f(stratum.AppendStringResult(nil, []byte("9"), []byte("cgminer/4.10.0")), `{"id":9,"result":"cgminer/4.10.0","error":null}`+"\n")
	f(stratum.AppendSubscribeResult(nil, []byte("1"), []byte("ae6812eb"), []byte{0x08, 0, 0, 0x02}, 4),
		`{"id":1,"result":[[["mining.set_difficulty","ae6812eb"],["mining.notify","ae6812eb"]],"08000002",4],"error":null}`+"\n")
	f(stratum.AppendSetDifficulty(nil, 1024), `{"id":null,"method":"mining.set_difficulty","params":[1024]}`+"\n")
	f(stratum.AppendSetVersionMask(nil, 0x1fffe000), `{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}`+"\n")
	f(stratum.AppendSetExtranonce(nil, []byte{0x08, 0, 0, 0x02}, 4), `{"id":null,"method":"mining.set_extranonce","params":["08000002",4]}`+"\n")
	f(stratum.AppendReconnect(nil, "", 3333, 5), `{"id":null,"method":"client.reconnect","params":[]}`+"\n")
	f(stratum.AppendReconnect(nil, "pool.example", 3333, 0), `{"id":null,"method":"client.reconnect","params":["pool.example",3333,0]}`+"\n")
	f(stratum.AppendPing(nil, 42), `{"id":42,"method":"mining.ping","params":[]}`+"\n")
	f(stratum.AppendExtranonceSubscribe(nil, 3), `{"id":3,"method":"mining.extranonce.subscribe","params":[]}`+"\n")
	f(stratum.AppendConfigure(nil, 1, stratum.ExtVersionRolling, 0x1fffe000, 0),
		`{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":0}]}`+"\n")
	f(stratum.AppendSubmit(nil, 4, &stratum.Submit{Worker: []byte("slush.miner1"), JobID: []byte("bf"), Extranonce2: []byte("00000001"), NTime: 0x504e86ed, Nonce: 0xb2957c02}),
		`{"id":4,"method":"mining.submit","params":["slush.miner1","bf","00000001","504e86ed","b2957c02"]}`+"\n")
}

func TestNotifyRoundTrip(t *testing.T) {
	for _, clean := range []bool{false, true} {
		want := encodeJob(t, clean)
		out := stratum.AppendNotify(nil, want)
		got := decodeMsgNotify(t, out)
		if got.ID != want.ID || got.PrevHash != want.PrevHash || !bytes.Equal(got.Coinb1, want.Coinb1) ||
			!bytes.Equal(got.Coinb2, want.Coinb2) || got.Version != want.Version || got.NBits != want.NBits ||
			got.NTime != want.NTime || got.Clean != want.Clean || got.NetworkTarget != want.NetworkTarget ||
			fmt.Sprint(got.Branch) != fmt.Sprint(want.Branch) {
			t.Errorf("clean %v: AppendNotify then Notify = %+v; want %+v", clean, got, want)
		}
	}

	// The prevhash goes out word-swapped: the slush job "bf" re-encodes to the exact
	// text the pool sent, and version, nbits, ntime as big-endian hex.
	var d stratum.Decoder
	m, err := d.Decode(line(t, nil, "mining.notify", bfParams()))
	if err != nil {
		t.Fatal(err)
	}
	j, err := m.Notify()
	if err != nil {
		t.Fatal(err)
	}
	out := stratum.AppendNotify(nil, j)
	want := `{"id":null,"method":"mining.notify","params":["bf","` + bfPrevWire + `","` + bfCoinb1 + `","` + bfCoinb2 + `",[],"00000002","1c2ac4af","504e86b9",false]}` + "\n"
	if string(out) != want {
		t.Errorf("AppendNotify(bf) =\n%s; want\n%s", out, want)
	}

	// An empty branch and the largest branch both survive.
	for _, n := range []int{0, stratum.MaxBranchLen} {
		j := *encodeJob(t, false)
		j.Branch = make([]stratum.Hash, n)
		for i := range j.Branch {
			j.Branch[i][0], j.Branch[i][31] = byte(i), byte(255-i)
		}
		got := decodeMsgNotify(t, stratum.AppendNotify(nil, &j))
		if fmt.Sprint(got.Branch) != fmt.Sprint(j.Branch) {
			t.Errorf("branch of %d: got %x; want %x", n, got.Branch, j.Branch)
		}
	}
}

func decodeMsgNotify(t *testing.T, out []byte) *stratum.Job {
	t.Helper()
	m := decodeMsg(t, string(out))
	if m.Method != stratum.MethodNotify || m.Kind != stratum.KindNotification {
		t.Fatalf("%s: method %v kind %d; want a mining.notify notification", out, m.Method, m.Kind)
	}
	j, err := m.Notify()
	if err != nil {
		t.Fatalf("%s: Notify: %v", out, err)
	}
	return j
}

func TestSubmitRoundTrip(t *testing.T) {
	for _, want := range []stratum.Submit{
		{Worker: []byte("slush.miner1"), JobID: []byte("bf"), Extranonce2: []byte("00000001"), NTime: 0x504e86ed, Nonce: 0xb2957c02},
		{Worker: []byte("bc1q.rig"), JobID: []byte("6798a1"), Extranonce2: []byte("b660000000000000"), NTime: 0x679ac169, Nonce: 0xff05fb02, VersionBits: 0x0e596000, HasVersionBits: true},
		{Worker: []byte(`odd "name"\ñ`), JobID: []byte("j\t1"), Extranonce2: []byte(""), NTime: 0, Nonce: 0xffffffff, VersionBits: 0, HasVersionBits: true},
	} {
		out := stratum.AppendSubmit(nil, 99, &want)
		m := decodeMsg(t, string(out))
		var got stratum.Submit
		if err := m.Submit(&got); err != nil || string(m.ID) != "99" ||
			string(got.Worker) != string(want.Worker) || string(got.JobID) != string(want.JobID) ||
			string(got.Extranonce2) != string(want.Extranonce2) || got.NTime != want.NTime || got.Nonce != want.Nonce ||
			got.VersionBits != want.VersionBits || got.HasVersionBits != want.HasVersionBits {
			t.Errorf("%s: Submit = %+v, %v (id %s); want %+v, id 99", out, got, err, m.ID, want)
		}
		if n := m.NumParams(); (n == 6) != want.HasVersionBits {
			t.Errorf("%s: %d params; want 6 exactly when version bits are sent", out, n)
		}
	}
}

func TestSetDifficultyRoundTrip(t *testing.T) {
	for _, d := range []float64{0.001, 1, 0.5, 1024, 65536.5, 1e-8, 1.0 / 3, 1e21, 123456789012.25, math.Ldexp(1, -30), 5e-324, math.MaxFloat64} {
		out := stratum.AppendSetDifficulty(nil, d)
		param := strings.TrimSuffix(strings.TrimPrefix(string(out), `{"id":null,"method":"mining.set_difficulty","params":[`), "]}\n")
		if strings.ContainsAny(param, "eE") || strings.HasSuffix(param, ".0") {
			t.Errorf("AppendSetDifficulty(%v) = %q; want plain decimal, no exponent, no trailing .0", d, param)
		}
		got, err := decodeMsg(t, string(out)).Difficulty()
		if err != nil || got != d {
			t.Errorf("AppendSetDifficulty(%v) = %q; decodes to %v, %v", d, out, got, err)
		}
		got, err = decodeMsg(t, string(stratum.AppendSuggestDifficulty(nil, 7, d))).Difficulty()
		if err != nil || got != d {
			t.Errorf("AppendSuggestDifficulty(%v) decodes to %v, %v", d, got, err)
		}
	}
	if got := string(stratum.AppendSetDifficulty(nil, 0.001)); got != `{"id":null,"method":"mining.set_difficulty","params":[0.001]}`+"\n" {
		t.Errorf("AppendSetDifficulty(0.001) = %q", got)
	}
}

func TestSetExtranonceRoundTrip(t *testing.T) {
	for _, c := range []struct {
		en1  []byte
		size int
	}{{[]byte{0x08, 0, 0, 0x02}, 4}, {nil, 8}, {bytes.Repeat([]byte{0xab}, stratum.MaxExtranonce1Size), 16}, {[]byte{0xff}, 1}} {
		en1, size, err := decodeMsg(t, string(stratum.AppendSetExtranonce(nil, c.en1, c.size))).SetExtranonce()
		if err != nil || !bytes.Equal(en1, c.en1) || size != c.size {
			t.Errorf("AppendSetExtranonce(%x, %d) decodes to %x, %d, %v", c.en1, c.size, en1, size, err)
		}
	}
}

func TestSetVersionMaskRoundTrip(t *testing.T) {
	for _, mask := range []uint32{0, 0x1fffe000, 0xffffffff, 0x00000001, 0x80000000} {
		got, err := decodeMsg(t, string(stratum.AppendSetVersionMask(nil, mask))).VersionMask()
		if err != nil || got != mask {
			t.Errorf("AppendSetVersionMask(%08x) decodes to %08x, %v", mask, got, err)
		}
	}
}

func TestReconnectRoundTrip(t *testing.T) {
	f := func(host string, port, wait int, want stratum.Reconnect) {
		t.Helper()
		out := stratum.AppendReconnect(nil, host, port, wait)
		got, err := decodeMsg(t, string(out)).Reconnect()
		if err != nil || string(got.Host) != string(want.Host) || got.Port != want.Port || got.Wait != want.Wait {
			t.Errorf("AppendReconnect(%q, %d, %d) = %q decodes to {%q %d %d}, %v; want {%q %d %d}",
				host, port, wait, out, got.Host, got.Port, got.Wait, err, want.Host, want.Port, want.Wait)
		}
	}
	f("pool.example.com", 3333, 5, stratum.Reconnect{Host: []byte("pool.example.com"), Port: 3333, Wait: 5})
	f("10.0.0.1", 65535, 0, stratum.Reconnect{Host: []byte("10.0.0.1"), Port: 65535})
	f("", 3333, 5, stratum.Reconnect{}) // no host: [], reconnect to the same server
}

func TestConfigureRoundTrip(t *testing.T) {
	all := stratum.ExtVersionRolling | stratum.ExtMinimumDifficulty | stratum.ExtSubscribeExtranonce | stratum.ExtInfo
	for _, c := range []struct {
		exts    stratum.Extensions
		mask    uint32
		minDiff float64
	}{
		{stratum.ExtVersionRolling | stratum.ExtMinimumDifficulty, 0x1fffe000, 0.5},
		{stratum.ExtVersionRolling, 0x1fffe000, 0},
		{stratum.ExtMinimumDifficulty, 0, 2048},
		{stratum.ExtSubscribeExtranonce | stratum.ExtInfo, 0, 0},
		{all, 0xffffffff, 65536},
		{0, 0, 0},
	} {
		out := stratum.AppendConfigure(nil, 1, c.exts, c.mask, c.minDiff)
		if !json.Valid(out) {
			t.Errorf("AppendConfigure(%04b) = %q; not JSON", c.exts, out)
			continue
		}
		var req stratum.ConfigureRequest
		if err := decodeMsg(t, string(out)).Configure(&req); err != nil {
			t.Errorf("%s: Configure: %v", out, err)
			continue
		}
		wantMask := uint32(0xffffffff) // default when not sent
		if c.exts&stratum.ExtVersionRolling != 0 {
			wantMask = c.mask
		}
		if req.Extensions != c.exts || req.VersionMask != wantMask || req.MinimumDifficulty != c.minDiff || len(req.Unknown) != 0 {
			t.Errorf("%s: Configure = exts %04b mask %08x min-diff %v unknown %q; want %04b %08x %v",
				out, req.Extensions, req.VersionMask, req.MinimumDifficulty, req.Unknown, c.exts, wantMask, c.minDiff)
		}
	}
}

func TestConfigureResultRoundTrip(t *testing.T) {
	in := stratum.ConfigureResult{
		Asked:       stratum.ExtVersionRolling | stratum.ExtMinimumDifficulty | stratum.ExtSubscribeExtranonce,
		Granted:     stratum.ExtVersionRolling | stratum.ExtSubscribeExtranonce,
		VersionMask: 0x1fffe000,
		Unknown:     [][]byte{[]byte("x-future"), []byte("x-other")},
	}
	out := stratum.AppendConfigureResult(nil, []byte("1"), &in)
	var raw struct {
		ID     int             `json:"id"`
		Result map[string]any  `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	want := map[string]any{
		"version-rolling": true, "version-rolling.mask": "1fffe000",
		"minimum-difficulty": false, "subscribe-extranonce": true,
		"x-future": false, "x-other": false, // unknown extensions MUST be answered false
	}
	if fmt.Sprint(raw.Result) != fmt.Sprint(want) || raw.ID != 1 || string(raw.Error) != "null" {
		t.Errorf("AppendConfigureResult = %s; want result %v", out, want)
	}
	got, err := decodeMsg(t, string(out)).ConfigureResult()
	if err != nil || got.Asked != in.Asked || got.Granted != in.Granted || got.VersionMask != in.VersionMask {
		t.Errorf("%s decodes to %+v, %v; want %+v", out, got, err, in)
	}

	// Version rolling refused: no mask entry; nothing asked: an empty object.
	for _, c := range []struct {
		r    stratum.ConfigureResult
		want string
	}{
		{stratum.ConfigureResult{Asked: stratum.ExtVersionRolling, VersionMask: 0x1fffe000}, `{"version-rolling":false}`},
		{stratum.ConfigureResult{}, `{}`},
		{stratum.ConfigureResult{Unknown: [][]byte{[]byte("a")}}, `{"a":false}`},
	} {
		out := stratum.AppendConfigureResult(nil, []byte("1"), &c.r)
		if wantLine := `{"id":1,"result":` + c.want + `,"error":null}` + "\n"; string(out) != wantLine {
			t.Errorf("AppendConfigureResult(%+v) = %q; want %q", c.r, out, wantLine)
		}
	}
}

func TestSubscribeRoundTrip(t *testing.T) {
	for _, c := range []struct {
		session string
		en1     []byte
		size    int
	}{{"ae6812eb4cd7735a302a8a9dd95cf71f", []byte{8, 0, 0, 2}, 4}, {"1", nil, 8}, {"", []byte{0xf1, 0xad, 0x9a, 0x67, 0xb6, 0x60}, 6}} {
		out := stratum.AppendSubscribeResult(nil, []byte("0"), []byte(c.session), c.en1, c.size)
		r, err := decodeMsg(t, string(out)).SubscribeResult()
		if err != nil || !bytes.Equal(r.Extranonce1, c.en1) || r.Extranonce2Size != c.size || r.SessionID != c.session {
			t.Errorf("%s decodes to %+v, %v; want {%x %d %q}", out, r, err, c.en1, c.size, c.session)
		}
	}

	// The miner side: the request, with and without a session to resume.
	for _, c := range []struct{ agent, session string }{{"hashrelay/1.0", ""}, {"hashrelay/1.0", "f1ad9a67"}} {
		out := stratum.AppendSubscribe(nil, 1, c.agent, c.session)
		m := decodeMsg(t, string(out))
		agent, session := m.Subscribe()
		wantN := 1
		if c.session != "" {
			wantN = 2
		}
		if string(agent) != c.agent || string(session) != c.session || m.NumParams() != wantN {
			t.Errorf("%s: Subscribe = %q, %q (%d params); want %q, %q (%d)", out, agent, session, m.NumParams(), c.agent, c.session, wantN)
		}
	}
}

func TestRequestRoundTrip(t *testing.T) {
	m := decodeMsg(t, string(stratum.AppendAuthorize(nil, 18446744073709551615, "user.rig", "d=1024")))
	u, p, err := m.Authorize()
	if err != nil || string(u) != "user.rig" || string(p) != "d=1024" || string(m.ID) != "18446744073709551615" {
		t.Errorf("AppendAuthorize decodes to %q, %q, %v, id %s", u, p, err, m.ID)
	}
	if m := decodeMsg(t, string(stratum.AppendShowMessage(nil, "maintenance: 10 min"))); string(m.ShowMessage()) != "maintenance: 10 min" {
		t.Errorf("AppendShowMessage decodes to %q", m.ShowMessage())
	}
	for _, c := range []struct {
		out    []byte
		method stratum.Method
		id     string
	}{
		{stratum.AppendPing(nil, 0), stratum.MethodPing, "0"},
		{stratum.AppendGetVersion(nil, 12), stratum.MethodGetVersion, "12"},
		{stratum.AppendExtranonceSubscribe(nil, 3), stratum.MethodExtranonceSubscribe, "3"},
	} {
		m := decodeMsg(t, string(c.out))
		if m.Kind != stratum.KindRequest || m.Method != c.method || string(m.ID) != c.id || m.NumParams() != 0 {
			t.Errorf("%s: kind %d method %v id %s, %d params; want request %v id %s, no params", c.out, m.Kind, m.Method, m.ID, m.NumParams(), c.method, c.id)
		}
	}
	s, ok := decodeMsg(t, string(stratum.AppendStringResult(nil, []byte("5"), []byte("bfgminer/5.5.0")))).StringResult()
	if !ok || string(s) != "bfgminer/5.5.0" {
		t.Errorf("AppendStringResult decodes to %q, %v", s, ok)
	}
}

// TestJSONStringEscaping: worker names and other text pass through the encoders as
// valid JSON whatever they hold, and decode back to the same bytes.
func TestJSONStringEscaping(t *testing.T) {
	var ctl strings.Builder
	for c := 0; c < 0x20; c++ {
		ctl.WriteByte(byte(c))
	}
	ctl.WriteByte(0x7f)
	for _, s := range []string{
		`plain.worker`,
		`quo"te`,
		`back\slash`,
		`\"`,
		`"\\"`,
		"new\nline\rreturn\ttab",
		ctl.String(),
		"ñandú.矿工.⛏️",
		"emoji 😀",
		"line\u2028sep\u2029",
		"",
		"</script>",
	} {
		for _, enc := range []struct {
			name string
			out  []byte
			get  func(m *stratum.Message) []byte
		}{
			{"AppendAuthorize user", stratum.AppendAuthorize(nil, 1, s, "x"), func(m *stratum.Message) []byte { u, _, _ := m.Authorize(); return u }},
			{"AppendAuthorize password", stratum.AppendAuthorize(nil, 1, "u", s), func(m *stratum.Message) []byte { _, p, _ := m.Authorize(); return p }},
			{"AppendShowMessage", stratum.AppendShowMessage(nil, s), func(m *stratum.Message) []byte { return m.ShowMessage() }},
			{"AppendSubscribe", stratum.AppendSubscribe(nil, 1, s, "sess"), func(m *stratum.Message) []byte { a, _ := m.Subscribe(); return a }},
			{"AppendStringResult", stratum.AppendStringResult(nil, []byte("1"), []byte(s)), func(m *stratum.Message) []byte { r, _ := m.StringResult(); return r }},
			{"AppendSubmit worker", stratum.AppendSubmit(nil, 1, &stratum.Submit{Worker: []byte(s), JobID: []byte("j"), Extranonce2: []byte("00")}), func(m *stratum.Message) []byte {
				var sub stratum.Submit
				m.Submit(&sub)
				return sub.Worker
			}},
		} {
			body := enc.out[:len(enc.out)-1]
			if bytes.IndexFunc(body, func(r rune) bool { return r < 0x20 }) >= 0 || bytes.Count(enc.out, []byte("\n")) != 1 {
				t.Errorf("%s(%q) = %q; want control characters escaped, one newline", enc.name, s, enc.out)
			}
			var v any
			if err := json.Unmarshal(enc.out, &v); err != nil {
				t.Errorf("%s(%q) = %q; not JSON: %v", enc.name, s, enc.out, err)
				continue
			}
			if s == "" && enc.name == "AppendAuthorize user" {
				continue // an empty user is refused by Authorize, by design
			}
			if got := enc.get(decodeMsg(t, string(body))); string(got) != s {
				t.Errorf("%s(%q) decodes to %q", enc.name, s, got)
			}
		}
	}
	// encoding/json reads the escapes the same way.
	out := stratum.AppendShowMessage(nil, ctl.String()+`"\`)
	var msg struct{ Params []string }
	if err := json.Unmarshal(out, &msg); err != nil || len(msg.Params) != 1 || msg.Params[0] != ctl.String()+`"\` {
		t.Errorf("encoding/json reads %q as %q, %v", out, msg.Params, err)
	}
}

// TestJSONStringInvalidUTF8: a miner's worker name is arbitrary bytes, and in the
// identity-worker mode it goes upstream. JSON text is UTF-8 (RFC 8259 §8.1) and strict
// parsers (jansson, in ckpool) refuse a line that is not, which would cost the whole
// shared upstream session; so invalid bytes become U+FFFD, as encoding/json does.
func TestJSONStringInvalidUTF8(t *testing.T) {
	for _, s := range []string{
		"rig\xff",
		"\xc3",             // a truncated two-byte sequence
		"\xc3(",            // a bad continuation
		"\xe2\x82",         // truncated three-byte
		"\xed\xa0\x80",     // an encoded surrogate
		"\xc0\xaf",         // overlong '/'
		"\xf4\x90\x80\x80", // above U+10FFFF
		"ok ñ \xfe\xff end 矿",
	} {
		want, _ := json.Marshal(s) // encoding/json's own replacement
		var wantStr string
		json.Unmarshal(want, &wantStr)
		for _, out := range [][]byte{
			stratum.AppendAuthorize(nil, 1, s, "x"),
			stratum.AppendSubmit(nil, 1, &stratum.Submit{Worker: []byte(s), JobID: []byte("j"), Extranonce2: []byte("00")}),
			stratum.AppendShowMessage(nil, s),
		} {
			if !utf8.Valid(out) || !json.Valid(out) {
				t.Errorf("%q: encoded %q; want valid UTF-8 JSON", s, out)
				continue
			}
			var v struct{ Params []any }
			if err := json.Unmarshal(out, &v); err != nil || len(v.Params) == 0 || v.Params[0] != wantStr {
				t.Errorf("%q: encoded %q reads as %q, %v; want %q", s, out, v.Params, err, wantStr)
			}
		}
	}
}
