package stratum_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashrelay/hashrelay/stratum"
)

// Fuzz targets for the two places untrusted bytes enter: a line from a socket
// (FuzzDecode) and a share from a miner (FuzzShareCheck). Inputs that once failed are
// kept under testdata/fuzz/ and run as regression tests by a plain go test.

// fuzzLineLimit is a small LineReader limit, so over-long lines are common in the
// corpus; the default limit is checked too.
const fuzzLineLimit = 128

// fuzzDecodeSeeds returns real lines: what pools, miners and the protocol documents
// send, including the forms that trip up decoders.
func fuzzDecodeSeeds(f *testing.F) [][]byte {
	seeds := []string{
		// The slush Stratum doc example "bf", as printed there.
		`{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000", "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008", "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000", [], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}`,
		`{"params": ["slush.miner1", "bf", "00000001", "504e86ed", "b2957c02"], "id": 4, "method": "mining.submit"}`,
		`{"id": 1, "result": [ [ ["mining.set_difficulty", "b4b6693b72a50c7116db18d6497cac52"], ["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4], "error": null}`,
		`{"id": 2, "result": true, "error": null}`,
		`{"id":null,"method":"mining.set_difficulty","params":[0.01]}`,
		// ckpool and public-pool answers.
		`{"id":1,"result":[[["mining.notify","6798a1"]],"f1ad9a67",8],"error":null}`,
		`{"result":false,"error":null,"reject-reason":"Above target","id":4}`,
		`{"id":4,"result":null,"error":[23,"Difficulty too low",""]}`,
		`{"id":4,"result":false,"error":[21,"Job not found",null]}`,
		`{"id":4,"result":null,"error":"Stale share"}`,
		`{"id":4,"result":null,"error":{"code":22,"message":"Duplicate share"}}`,
		`{"id":1,"error":null,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000"}}`,
		`{"id":1,"result":{"version-rolling":false,"minimum-difficulty":true,"x-unknown":false},"error":null}`,
		// Miners: bfgminer's string ids and id 0, ESP-Miner's configure, pipelining.
		`{"id":0,"method":"mining.subscribe","params":["bfgminer/5.5.0"]}`,
		`{"id":"auth","method":"mining.authorize","params":["user.worker","x"]}`,
		`{"id":"xnsub","method":"mining.extranonce.subscribe","params":[]}`,
		`{"id":"txlist1","method":"mining.get_transactions","params":["1"]}`,
		`{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff"}]}`,
		`{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty","subscribe-extranonce","info","x-ext"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2,"minimum-difficulty.value":2048,"info.hw-id":"bm1366"}]}`,
		`{"id":2,"method":"mining.subscribe","params":["cpuminer/2.5.1","f1ad9a67"]}` + "\n" + `{"id":3,"method":"mining.authorize","params":["w","x"]}` + "\r\n",
		`{"jsonrpc":"2.0","id":2,"method":"mining.authorize","params":["w","x"]}`,
		`{"id":5,"method":"mining.suggest_difficulty","params":["512"]}`,
		`{"id":6,"method":"mining.suggest_target","params":["00000000ffff0000000000000000000000000000000000000000000000000000"]}`,
		// Pools: ping, reconnect (string port, no params), extranonce, mask, messages.
		`{"id":7,"method":"mining.ping","params":[]}`,
		`{"id":null,"method":"client.reconnect","params":["pool.example.com","3333",0]}`,
		`{"id":null,"method":"client.reconnect","params":[]}`,
		`{"id":null,"method":"mining.set_extranonce","params":["08000002",4]}`,
		`{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}`,
		`{"id":8,"method":"client.show_message","params":["maintenance at 12:00"]}`,
		`{"id":9,"method":"client.get_version","params":[]}`,
		`{"id":9,"result":"cpuminer/2.5.1","error":null}`,
		// Empty and null params, not a message, not an object, not JSON at all.
		`{"id":3,"method":"mining.extranonce.subscribe","params":[]}`,
		`{"id":1,"method":"mining.subscribe","params":null}`,
		`{"id":1,"method":"mining.submit"}`,
		`{"id":1}`,
		`[1,2,3]`,
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"",
		"\n\r\n  \n",
		// Lines at the small limit with "\n" and "\r\n", one byte over it, blank ones.
		strings.Repeat("a", fuzzLineLimit) + "\n" + strings.Repeat("b", fuzzLineLimit) + "\r\n" + strings.Repeat("c", fuzzLineLimit+1) + "\n",
		strings.Repeat(" ", fuzzLineLimit) + "\r\n{}\n" + strings.Repeat("d", fuzzLineLimit) + "\r",
		// Over-long for the small limit and for the default one.
		`{"id":1,"method":"mining.subscribe","params":["` + strings.Repeat("x", 2*fuzzLineLimit) + `"]}`,
		`{"id":1,"method":"mining.subscribe","params":["` + strings.Repeat("y", stratum.DefaultMaxLineSize) + `"]}` + "\n" + `{"id":2}`,
	}
	var out [][]byte
	for _, s := range seeds {
		out = append(out, []byte(s))
	}
	for _, v := range loadVectors(f) {
		out = append(out, line(f, nil, "mining.notify", v.NotifyParams), line(f, 4, "mining.submit", v.SubmitParams))
		if v.Configure != nil {
			out = append(out, v.Configure.Request)
		}
	}
	return out
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzDecodeSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		checkDecode(t, input)
		checkLineReader(t, input, fuzzLineLimit)
		checkLineReader(t, input, 0)
	})
}

// checkDecode decodes input as one line and calls every accessor on the result.
func checkDecode(t *testing.T, input []byte) {
	var d stratum.Decoder
	m, err := d.Decode(input)
	if err != nil {
		if m != nil {
			t.Errorf("Decode(%q) = %v, %v; want no message with an error", input, m, err)
		}
		if !errors.Is(err, stratum.ErrNotJSON) && !errors.Is(err, stratum.ErrNotMessage) {
			t.Errorf("Decode(%q): got error %v; want ErrNotJSON or ErrNotMessage", input, err)
		}
		return
	}
	switch m.Kind {
	case stratum.KindRequest, stratum.KindNotification:
		if want := stratum.ParseMethod(m.MethodName); m.Method != want {
			t.Errorf("Decode(%q): method %v; want %v", input, m.Method, want)
		}
	case stratum.KindResponse:
		if m.Method != stratum.MethodUnknown || m.MethodName != nil {
			t.Errorf("Decode(%q): response with method %v %q; want none", input, m.Method, m.MethodName)
		}
	default:
		t.Errorf("Decode(%q): kind %d; want request, notification or response", input, m.Kind)
	}
	checkID(t, input, m)

	// Every accessor, whatever the method: none may panic, every error is ErrBadParams.
	badParams := func(name string, err error) {
		t.Helper()
		var se *stratum.Error
		if err != nil && !errors.Is(err, stratum.ErrBadParams) && !errors.As(err, &se) {
			t.Errorf("%s of %q: got error %v; want ErrBadParams", name, input, err)
		}
	}
	var s stratum.Submit
	err = m.Submit(&s)
	badParams("Submit", err)
	if n := m.NumParams(); err == nil && (n != 5 && n != 6 || s.HasVersionBits != (n == 6)) {
		t.Errorf("Submit of %q with %d params: got %s; want ErrBadParams unless 5 or 6", input, n, fmtSubmit(&s))
	}
	if err == nil {
		checkSubmitRoundTrip(t, &s)
	}
	j, err := m.Notify()
	badParams("Notify", err)
	if err == nil {
		checkNotifyRoundTrip(t, j)
	}
	var cr stratum.ConfigureRequest
	err = m.Configure(&cr)
	badParams("Configure", err)
	if err == nil {
		checkConfigureRoundTrip(t, m.ID, &cr)
	}
	m.Subscribe()
	_, _, err = m.Authorize()
	badParams("Authorize", err)
	_, err = m.Difficulty()
	badParams("Difficulty", err)
	_, err = m.SuggestTarget()
	badParams("SuggestTarget", err)
	_, _, err = m.SetExtranonce()
	badParams("SetExtranonce", err)
	_, err = m.VersionMask()
	badParams("VersionMask", err)
	_, err = m.Reconnect()
	badParams("Reconnect", err)
	m.ShowMessage()
	sr, err := m.SubscribeResult()
	badParams("SubscribeResult", err)
	if err == nil {
		checkSubscribeResultRoundTrip(t, m.ID, &sr)
	}
	_, err = m.ConfigureResult()
	badParams("ConfigureResult", err)
	accepted := m.Accepted()
	m.Reject()
	if b, ok := m.BoolResult(); accepted && (!b || !ok) {
		t.Errorf("%q: Accepted but BoolResult = %v, %v; want true, true", input, b, ok)
	}
	m.StringResult()
	m.NumParams()
}

// checkID checks that the id to echo is valid JSON when the line is, and that a string
// or number id is echoed byte for byte.
func checkID(t *testing.T, input []byte, m *stratum.Message) {
	t.Helper()
	if len(m.ID) == 0 {
		t.Fatalf("Decode(%q): empty ID; want the raw id or null", input)
	}
	if json.Valid(input) && !json.Valid(m.ID) {
		t.Errorf("Decode(%q): ID %q is not JSON; want the id as sent", input, m.ID)
	}
	if c := m.ID[0]; (c == '"' || c == '-' || '0' <= c && c <= '9') && !bytes.Contains(input, m.ID) {
		t.Errorf("Decode(%q): ID %q; want the id byte for byte", input, m.ID)
	}
}

// validUTF8 is what the encoders make of a string: each byte that is not UTF-8
// becomes U+FFFD, as encoding/json does, since JSON text must be UTF-8.
func validUTF8(b []byte) []byte {
	var r []byte
	for len(b) > 0 {
		c, n := utf8.DecodeRune(b)
		if c == utf8.RuneError && n == 1 {
			r = append(r, "\uFFFD"...)
		} else {
			r = append(r, b[:n]...)
		}
		b = b[n:]
	}
	return r
}

// reDecode decodes an encoder's output, which must be exactly one line.
func reDecode(t *testing.T, d *stratum.Decoder, out []byte) *stratum.Message {
	t.Helper()
	if bytes.IndexByte(out, '\n') != len(out)-1 {
		t.Fatalf("encoded %q; want one line ending in a newline", out)
	}
	m, err := d.Decode(out[:len(out)-1])
	if err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	return m
}

func checkSubmitRoundTrip(t *testing.T, s *stratum.Submit) {
	t.Helper()
	out := stratum.AppendSubmit(nil, 1, s)
	var d stratum.Decoder
	var got stratum.Submit
	if err := reDecode(t, &d, out).Submit(&got); err != nil {
		t.Fatalf("AppendSubmit(%s) = %q; decode: %v", fmtSubmit(s), out, err)
	}
	want := *s
	want.Worker, want.JobID, want.Extranonce2 = validUTF8(s.Worker), validUTF8(s.JobID), validUTF8(s.Extranonce2)
	if !bytes.Equal(got.Worker, want.Worker) || !bytes.Equal(got.JobID, want.JobID) || !bytes.Equal(got.Extranonce2, want.Extranonce2) ||
		got.NTime != want.NTime || got.Nonce != want.Nonce || got.VersionBits != want.VersionBits || got.HasVersionBits != want.HasVersionBits {
		t.Errorf("AppendSubmit = %q decodes to %s; want %s", out, fmtSubmit(&got), fmtSubmit(&want))
	}
}

func fmtSubmit(s *stratum.Submit) string {
	return fmt.Sprintf("{%q %q %q %08x %08x %08x/%v}", s.Worker, s.JobID, s.Extranonce2, s.NTime, s.Nonce, s.VersionBits, s.HasVersionBits)
}

func checkNotifyRoundTrip(t *testing.T, j *stratum.Job) {
	t.Helper()
	out := stratum.AppendNotify(nil, j)
	var d stratum.Decoder
	got, err := reDecode(t, &d, out).Notify()
	if err != nil {
		t.Fatalf("AppendNotify = %q; decode: %v", out, err)
	}
	if got.ID != string(validUTF8([]byte(j.ID))) || got.PrevHash != j.PrevHash || !bytes.Equal(got.Coinb1, j.Coinb1) || !bytes.Equal(got.Coinb2, j.Coinb2) ||
		fmt.Sprint(got.Branch) != fmt.Sprint(j.Branch) || got.Version != j.Version || got.NBits != j.NBits ||
		got.NTime != j.NTime || got.Clean != j.Clean || got.NetworkTarget != j.NetworkTarget {
		t.Errorf("AppendNotify = %q decodes to %+v; want %+v", out, *got, *j)
	}
}

// checkConfigureRoundTrip grants everything asked and decodes the answer back.
func checkConfigureRoundTrip(t *testing.T, id []byte, c *stratum.ConfigureRequest) {
	t.Helper()
	want := stratum.ConfigureResult{Asked: c.Extensions, Granted: c.Extensions, Unknown: c.Unknown}
	if c.Extensions&stratum.ExtVersionRolling != 0 {
		want.VersionMask = c.VersionMask
	}
	out := stratum.AppendConfigureResult(nil, id, &want)
	var d stratum.Decoder
	got, err := reDecode(t, &d, out).ConfigureResult()
	if err != nil || got.Asked != want.Asked || got.Granted != want.Granted || got.VersionMask != want.VersionMask {
		t.Errorf("AppendConfigureResult = %q decodes to %+v, %v; want %+v", out, got, err, want)
	}
}

func checkSubscribeResultRoundTrip(t *testing.T, id []byte, r *stratum.SubscribeResult) {
	t.Helper()
	out := stratum.AppendSubscribeResult(nil, id, []byte(r.SessionID), r.Extranonce1, r.Extranonce2Size)
	var d stratum.Decoder
	got, err := reDecode(t, &d, out).SubscribeResult()
	if err != nil || !bytes.Equal(got.Extranonce1, r.Extranonce1) || got.Extranonce2Size != r.Extranonce2Size ||
		got.SessionID != string(validUTF8([]byte(r.SessionID))) {
		t.Errorf("AppendSubscribeResult = %q decodes to %+v, %v; want %+v", out, got, err, *r)
	}
}

// chunkReader returns its chunks one Read at a time, then io.EOF.
type chunkReader struct{ chunks [][]byte }

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.chunks) > 0 && len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	return n, nil
}

// checkLineReader feeds input to a LineReader in two reads, split in the middle, and
// compares its lines with bytes.Split: "\r" trimmed from the end and blank lines
// dropped. A line longer than the limit, its "\n" or "\r\n" not counted, must be an
// ErrLineTooLong, which ends the stream.
func checkLineReader(t *testing.T, input []byte, maxLine int) {
	limit := maxLine
	if limit <= 0 {
		limit = stratum.DefaultMaxLineSize
	}
	half := len(input) / 2
	lr := stratum.NewLineReader(&chunkReader{chunks: [][]byte{input[:half], input[half:]}}, maxLine)
	segs := bytes.Split(input, []byte("\n"))
	if len(segs[len(segs)-1]) == 0 {
		segs = segs[:len(segs)-1] // input ends with "\n" (or is empty)
	}
	for i, seg := range segs {
		n := len(seg)
		if bytes.HasSuffix(seg, []byte("\r")) {
			n--
		}
		want := bytes.TrimRight(seg, "\r")
		if n <= limit && len(bytes.TrimSpace(want)) == 0 {
			continue
		}
		got, err := lr.ReadLine()
		if n > limit {
			if !errors.Is(err, stratum.ErrLineTooLong) {
				t.Fatalf("limit %d, line %d of %q (%d bytes): got %q, %v; want ErrLineTooLong", limit, i, input, n, got, err)
			}
			return // the stream is out of step after this
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("limit %d, line %d of %q: got %q, %v; want %q", limit, i, input, got, err, want)
		}
	}
	if got, err := lr.ReadLine(); got != nil || err != io.EOF {
		t.Fatalf("limit %d, after the last line of %q: got %q, %v; want io.EOF", limit, input, got, err)
	}
}

// shareCase is a real vector's job, ready for fuzzed submits.
type shareCase struct {
	job     *stratum.Job
	en2Size int
}

func FuzzShareCheck(f *testing.F) {
	var cases []shareCase
	for i, v := range loadVectors(f) {
		c := shareCase{job: decodeJob(f, v.NotifyParams), en2Size: v.Subscribe.Extranonce2Size}
		cases = append(cases, c)
		en1, _ := hex.DecodeString(v.Subscribe.Extranonce1)
		mask := uint32(0)
		if v.Configure != nil {
			mask = hex32(f, v.Configure.NegotiatedMask)
		}
		seed := func(en1 []byte, mask uint32, params []string, shift uint8) {
			var bits uint32
			if len(params) == 6 {
				bits = hex32(f, params[5])
			}
			f.Add(uint8(i), en1, mask, params[2], hex32(f, params[3]), hex32(f, params[4]), bits, len(params) == 6, shift)
		}
		// The real share: accepted at any target down to the block's own.
		for _, shift := range []uint8{0, 32, 64} {
			seed(en1, mask, v.SubmitParams, shift)
		}
		for _, iv := range v.Invalid {
			en1 := en1
			if iv.Extranonce1 != "" {
				en1, _ = hex.DecodeString(iv.Extranonce1)
			}
			seed(en1, mask, iv.SubmitParams, 1)
		}
		for _, form := range v.VersionBitsForms {
			p := append([]string(nil), v.SubmitParams...)
			p[5] = form["version_bits"].(string)
			seed(en1, mask, p, 0)
		}
		// Edges: ntime at both ends of the window and beyond, extranonce2 malformed,
		// short, long, upper case, version bits without a mask, no extranonce1.
		j := c.job
		en2 := v.SubmitParams[2]
		f.Add(uint8(i), en1, mask, en2, j.NTime-1, uint32(0), uint32(0), false, uint8(0))
		f.Add(uint8(i), en1, mask, en2, j.NTime+stratum.MaxNTimeRoll, uint32(0), uint32(0), false, uint8(0))
		f.Add(uint8(i), en1, mask, en2, j.NTime+stratum.MaxNTimeRoll+1, uint32(0), uint32(0), false, uint8(0))
		f.Add(uint8(i), en1, mask, "zz"+en2[2:], j.NTime, uint32(1), uint32(0), false, uint8(0))
		f.Add(uint8(i), en1, mask, en2[1:], j.NTime, uint32(1), uint32(0), false, uint8(0))
		f.Add(uint8(i), en1, mask, en2+"00", j.NTime, uint32(1), uint32(0), false, uint8(0))
		f.Add(uint8(i), en1, mask, strings.Repeat("0", 40), j.NTime, uint32(1), uint32(0), false, uint8(0))
		f.Add(uint8(i), en1, mask, strings.ToUpper(en2), j.NTime, uint32(1), uint32(0), false, uint8(1))
		f.Add(uint8(i), en1, uint32(0), en2, j.NTime, uint32(1), uint32(0x2000), true, uint8(1))
		f.Add(uint8(i), []byte(nil), uint32(0xffffffff), en2, j.NTime, uint32(1), uint32(0xffffffff), true, uint8(1))
	}
	maxTarget := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

	f.Fuzz(func(t *testing.T, vec uint8, en1 []byte, mask uint32, en2 string, ntime, nonce, bits uint32, hasBits bool, shift uint8) {
		sc := cases[int(vec)%len(cases)]
		j := sc.job
		params := []string{"fuzz.worker", j.ID, en2, fmt.Sprintf("%08x", ntime), fmt.Sprintf("%08x", nonce)}
		if hasBits {
			params = append(params, fmt.Sprintf("%08x", bits))
		}
		var d stratum.Decoder
		m, err := d.Decode(line(t, 4, "mining.submit", params))
		if err != nil {
			t.Fatal(err)
		}
		var s stratum.Submit
		if err := m.Submit(&s); err != nil {
			t.Fatalf("submit %q: %v", params, err)
		}
		target, err := stratum.TargetFromInt(new(big.Int).Rsh(maxTarget, uint(shift)))
		if err != nil {
			t.Fatal(err)
		}
		p := stratum.CheckParams{Extranonce1: en1, Extranonce2Size: sc.en2Size, VersionMask: mask, ShareTarget: &target}
		var c stratum.Checker
		r := c.Check(j, &s, &p)

		// The verdict the checks reach, in their order.
		en2Raw, hexErr := hex.DecodeString(string(s.Extranonce2))
		outside := hasBits && bits&^mask != 0
		var want []stratum.Verdict
		switch {
		case hexErr != nil:
			want = []stratum.Verdict{stratum.VerdictMalformed, stratum.VerdictExtranonce2Size}
		case len(en2Raw) != sc.en2Size:
			want = []stratum.Verdict{stratum.VerdictExtranonce2Size}
		case ntime < j.NTime || uint64(ntime) > uint64(j.NTime)+stratum.MaxNTimeRoll:
			want = []stratum.Verdict{stratum.VerdictNTimeOutOfRange}
		case outside:
			want = []stratum.Verdict{stratum.VerdictVersionBits}
		default:
			want = []stratum.Verdict{stratum.VerdictAccepted, stratum.VerdictLowDifficulty}
		}
		if !verdictIn(r.Verdict, want) {
			t.Fatalf("en2 %q ntime %08x (job %08x) bits %08x/%v mask %08x: verdict %v; want one of %v",
				s.Extranonce2, ntime, j.NTime, bits, hasBits, mask, r.Verdict, want)
		}
		if r.Verdict == stratum.VerdictAccepted || r.Verdict == stratum.VerdictLowDifficulty {
			checkHashedShare(t, j, &c, r, en1, en2Raw, &s, mask, &target)
		}

		// Through a JobWindow: the same verdict, and the same share again a duplicate.
		w := stratum.NewJobWindow(2)
		w.Add(j, target)
		for round := range 2 {
			wantV := r.Verdict
			if round == 1 && wantV == stratum.VerdictAccepted {
				wantV = stratum.VerdictDuplicate
			}
			if got, _ := w.Check(&c, &s, &p); got.Verdict != wantV {
				t.Fatalf("window check %d: verdict %v; want %v", round+1, got.Verdict, wantV)
			}
		}
	})
}

func hex32(t testing.TB, s string) uint32 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v)
}

func verdictIn(v stratum.Verdict, vs []stratum.Verdict) bool {
	for _, w := range vs {
		if v == w {
			return true
		}
	}
	return false
}

// checkHashedShare recomputes a hashed share's header and hash from the job and the
// submit, and its verdict from the hash read as an integer.
func checkHashedShare(t *testing.T, j *stratum.Job, c *stratum.Checker, r stratum.Result, en1, en2 []byte, s *stratum.Submit, mask uint32, target *stratum.Target) {
	t.Helper()
	version := j.Version
	if s.HasVersionBits {
		version = j.Version&^mask | s.VersionBits&mask
	}
	coinbase := bytes.Join([][]byte{j.Coinb1, en1, en2, j.Coinb2}, nil)
	root := stratum.MerkleRoot(stratum.DoubleSHA256(coinbase), j.Branch)
	var want [80]byte
	binary.LittleEndian.PutUint32(want[0:], version)
	copy(want[4:], j.PrevHash[:])
	copy(want[36:], root[:])
	binary.LittleEndian.PutUint32(want[68:], s.NTime)
	binary.LittleEndian.PutUint32(want[72:], j.NBits)
	binary.LittleEndian.PutUint32(want[76:], s.Nonce)
	h := c.Header()
	if *h != want {
		t.Fatalf("header %x; want %x", h[:], want[:])
	}
	first := sha256.Sum256(h[:])
	hash := stratum.Hash(sha256.Sum256(first[:]))
	if r.Hash != hash || stratum.DoubleSHA256(h[:]) != hash {
		t.Fatalf("hash %v; want %v", r.Hash, hash)
	}
	if r.Version != version {
		t.Errorf("version %08x; want %08x", r.Version, version)
	}
	n := hashToBig(hash)
	if meets := n.Cmp(target.Int()) <= 0; (r.Verdict == stratum.VerdictAccepted) != meets {
		t.Errorf("hash %v, target %v: verdict %v; want accepted %v", hash, target, r.Verdict, meets)
	}
	if block := n.Cmp(j.NetworkTarget.Int()) <= 0; r.Block != block {
		t.Errorf("hash %v, network target %v: block %v; want %v", hash, j.NetworkTarget, r.Block, block)
	}
	if !(r.Difficulty > 0) {
		t.Errorf("difficulty %v; want above zero", r.Difficulty)
	}
}
