package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// The tests in this file drive a running proxy (newTestProxy in front of a
// stratumtest pool) with rawMiner, a scripted miner on a raw loopback socket that
// writes lines as firmware does and asserts the exact replies, decoded with
// encoding/json (an implementation independent of the proxy's decoder). Shares are
// found by brute force with the stratum package's hashing helpers.

// rawWait bounds every wait for a line the proxy should send.
const rawWait = 3 * time.Second

// rawLine is one line from the proxy.
type rawLine struct {
	Line   string
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	Result json.RawMessage   `json:"result"`
	Error  json.RawMessage   `json:"error"`
}

func (m *rawLine) isResponse() bool { return m.Method == "" }

// rawMiner is a scripted miner. It remembers the notifications it read while
// waiting for a reply, and the difficulty each job was sent with.
type rawMiner struct {
	t     testing.TB
	nc    net.Conn
	br    *bufio.Reader
	notes []rawLine // notifications read and not yet consumed

	diff    float64            // the last set_difficulty
	jobDiff map[string]float64 // job id → difficulty in force when it arrived
	en1     []byte
	en2Size int
}

func dialRawMiner(t testing.TB, addr string) *rawMiner {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, rawWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawMiner{t: t, nc: nc, br: bufio.NewReaderSize(nc, 64<<10), diff: 1, jobDiff: map[string]float64{}}
}

// send writes the lines, each with its newline, in one write.
func (c *rawMiner) send(lines ...string) {
	c.t.Helper()
	var b []byte
	for _, l := range lines {
		b = append(append(b, l...), '\n')
	}
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next line, decoded, or an error (io.EOF once the proxy closed).
func (c *rawMiner) read(d time.Duration) (rawLine, error) {
	c.nc.SetReadDeadline(time.Now().Add(d))
	line, err := c.br.ReadString('\n')
	if err != nil {
		if errors.Is(err, net.ErrClosed) || isConnReset(err) {
			err = io.EOF
		}
		return rawLine{}, err
	}
	m := rawLine{Line: strings.TrimSuffix(line, "\n")}
	if err := json.Unmarshal([]byte(m.Line), &m); err != nil {
		c.t.Fatalf("proxy sent a line that is not JSON: %q: %v", m.Line, err)
	}
	c.track(&m)
	return m, nil
}

// isConnReset reports a connection reset: the proxy closed with unread input.
func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}

// track records difficulties and the jobs they apply to, as firmware does.
func (c *rawMiner) track(m *rawLine) {
	switch m.Method {
	case "mining.set_difficulty":
		if err := json.Unmarshal(m.Params[0], &c.diff); err != nil {
			c.t.Fatalf("set_difficulty: %v", err)
		}
	case "mining.notify":
		var id string
		json.Unmarshal(m.Params[0], &id)
		c.jobDiff[id] = c.diff
	}
}

// reply returns the next response, which must carry id (raw JSON, byte for byte);
// notifications before it are kept.
func (c *rawMiner) reply(id string) rawLine {
	c.t.Helper()
	for {
		m, err := c.read(rawWait)
		if err != nil {
			c.t.Fatalf("waiting for the reply to id %s: %v", id, err)
		}
		if !m.isResponse() {
			c.notes = append(c.notes, m)
			continue
		}
		if string(m.ID) != id {
			c.t.Fatalf("got reply %s; want the reply to id %s first", m.Line, id)
		}
		return m
	}
}

// call sends one request and returns its reply.
func (c *rawMiner) call(id, method, params string) rawLine {
	c.t.Helper()
	c.send(fmt.Sprintf(`{"id":%s,"method":%q,"params":%s}`, id, method, params))
	return c.reply(id)
}

// note returns the first notification of the method, read or kept; a response
// before it fails the test.
func (c *rawMiner) note(method string) rawLine {
	c.t.Helper()
	for i, m := range c.notes {
		if m.Method == method {
			c.notes = append(c.notes[:i:i], c.notes[i+1:]...)
			return m
		}
	}
	for {
		m, err := c.read(rawWait)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", method, err)
		}
		if m.isResponse() {
			c.t.Fatalf("got %s while waiting for %s", m.Line, method)
		}
		if m.Method == method {
			return m
		}
		c.notes = append(c.notes, m)
	}
}

// job waits for the next mining.notify and returns it decoded.
func (c *rawMiner) job() *stratum.Job {
	c.t.Helper()
	return parseRawNotify(c.t, c.note("mining.notify"))
}

// expectEOF reads until the proxy closes the connection, failing on a timeout.
func (c *rawMiner) expectEOF(within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, err := c.read(time.Until(deadline))
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			c.t.Fatalf("waiting for the proxy to close: %v", err)
		}
	}
}

// subscribe sends mining.subscribe and records the extranonce.
func (c *rawMiner) subscribe(id string) {
	c.t.Helper()
	r := c.call(id, "mining.subscribe", `["rawclient/1.0"]`)
	c.parseSubscribe(r)
}

func (c *rawMiner) parseSubscribe(r rawLine) {
	c.t.Helper()
	var res []json.RawMessage
	if err := json.Unmarshal(r.Result, &res); err != nil || len(res) != 3 || string(r.Error) != "null" {
		c.t.Fatalf("subscribe reply %s: want [subscriptions, extranonce1, size]", r.Line)
	}
	var en1 string
	json.Unmarshal(res[1], &en1)
	json.Unmarshal(res[2], &c.en2Size)
	var err error
	if c.en1, err = hex.DecodeString(en1); err != nil || c.en2Size < 2 {
		c.t.Fatalf("subscribe reply %s: bad extranonce", r.Line)
	}
}

// login subscribes and authorizes, and returns the first job.
func (c *rawMiner) login(worker string) *stratum.Job {
	c.t.Helper()
	c.subscribe("1")
	wantRawTrue(c.t, c.call("2", "mining.authorize", fmt.Sprintf(`[%q,"x"]`, worker)))
	return c.job()
}

// parseRawNotify decodes a mining.notify with encoding/json and hex.
func parseRawNotify(t testing.TB, m rawLine) *stratum.Job {
	t.Helper()
	if len(m.Params) != 9 {
		t.Fatalf("notify %s: want 9 params", m.Line)
	}
	var id, prev, cb1, cb2, ver, nbits, ntime string
	var branch []string
	var clean bool
	for i, dst := range []any{&id, &prev, &cb1, &cb2, &branch, &ver, &nbits, &ntime, &clean} {
		if err := json.Unmarshal(m.Params[i], dst); err != nil {
			t.Fatalf("notify %s: param %d: %v", m.Line, i, err)
		}
	}
	u32 := func(s string) uint32 {
		v, err := strconv.ParseUint(s, 16, 32)
		if err != nil || len(s) != 8 {
			t.Fatalf("notify: %q is not 8 hex digits", s)
		}
		return uint32(v)
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("notify: %v", err)
		}
		return b
	}
	j := stratum.Job{ID: id, Coinb1: unhex(cb1), Coinb2: unhex(cb2), Version: u32(ver), NBits: u32(nbits), NTime: u32(ntime), Clean: clean}
	var wire stratum.Hash
	copy(wire[:], unhex(prev))
	j.PrevHash = stratum.SwapWords(wire) // undo the Stratum word swap
	for _, b := range branch {
		var h stratum.Hash
		copy(h[:], unhex(b))
		j.Branch = append(j.Branch, h)
	}
	job, err := stratum.NewJob(j)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// rawShare is a mining.submit's fields.
type rawShare struct {
	job     string
	en2     []byte
	ntime   uint32
	nonce   uint32
	vbits   uint32
	rolling bool // send version bits (6th param)
}

// params returns the submit params for worker.
func (s rawShare) params(worker string) string {
	p := fmt.Sprintf(`[%q,%q,"%x","%08x","%08x"`, worker, s.job, s.en2, s.ntime, s.nonce)
	if s.rolling {
		p += fmt.Sprintf(`,"%08x"`, s.vbits)
	}
	return p + "]"
}

// findShare searches nonces for a header on j (with the client's extranonce1, en2,
// the job's ntime and version, version bits inside mask) whose hash satisfies ok.
func (c *rawMiner) findShare(j *stratum.Job, en2 []byte, mask, vbits uint32, ok func(h *stratum.Hash) bool) rawShare {
	c.t.Helper()
	cb := append(append(append(append([]byte(nil), j.Coinb1...), c.en1...), en2...), j.Coinb2...)
	root := stratum.MerkleRoot(stratum.DoubleSHA256(cb), j.Branch)
	version := j.Version&^mask | vbits&mask
	var h stratum.Header
	h.Set(version, &j.PrevHash, &root, j.NTime, j.NBits, 0)
	for n := uint32(0); n < 1<<24; n++ {
		h.SetNonce(n)
		if hash := h.Hash(); ok(&hash) {
			return rawShare{job: j.ID, en2: en2, ntime: j.NTime, nonce: n, vbits: vbits, rolling: mask != 0}
		}
	}
	c.t.Fatalf("no share found on job %s", j.ID)
	return rawShare{}
}

// meetsDiff returns a predicate: the hash meets difficulty d.
func meetsDiff(t testing.TB, d float64) func(*stratum.Hash) bool {
	target, err := stratum.TargetFromDifficulty(d)
	if err != nil {
		t.Fatal(err)
	}
	return target.MetBy
}

// betweenDiffs returns a predicate: the hash meets difficulty lo but not hi.
func betweenDiffs(t testing.TB, lo, hi float64) func(*stratum.Hash) bool {
	l, h := meetsDiff(t, lo), meetsDiff(t, hi)
	return func(x *stratum.Hash) bool { return l(x) && !h(x) }
}

// en2 returns an extranonce2 of the client's size holding n.
func (c *rawMiner) en2(n uint32) []byte {
	b := make([]byte, c.en2Size)
	binary.BigEndian.PutUint32(b[c.en2Size-4:], n)
	return b
}

// submit sends a share with the given id and returns the reply.
func (c *rawMiner) submit(id string, s rawShare) rawLine {
	c.t.Helper()
	return c.call(id, "mining.submit", s.params("farm.raw"))
}

func wantRawResult(t testing.TB, m rawLine, want string) {
	t.Helper()
	var got, w any
	if err := json.Unmarshal(m.Result, &got); err != nil {
		t.Fatalf("reply %s: result: %v", m.Line, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(w) || string(m.Error) != "null" {
		t.Errorf("reply %s: got result %s; want %s with error null", m.Line, m.Result, want)
	}
}

func wantRawTrue(t testing.TB, m rawLine) {
	t.Helper()
	if string(m.Result) != "true" || string(m.Error) != "null" {
		t.Errorf("reply %s: want result true, error null", m.Line)
	}
}

// wantError checks an error reply [code, "message", null] with a null result.
func wantRawError(t testing.TB, m rawLine, code int, message string) {
	t.Helper()
	var e []any
	if err := json.Unmarshal(m.Error, &e); err != nil || len(e) != 3 {
		t.Errorf("reply %s: want error [code, message, null]", m.Line)
		return
	}
	if c, _ := e[0].(float64); int(c) != code || e[1] != message || e[2] != nil || string(m.Result) != "null" {
		t.Errorf("reply %s: got error %s; want [%d,%q,null] with result null", m.Line, m.Error, code, message)
	}
}

// metricCounter reads one labelled counter.
func metricCounter(t testing.TB, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// closedCount returns how many miner connections closed with reason.
func closedCount(t testing.TB, s *Server, reason CloseReason) float64 {
	t.Helper()
	return metricCounter(t, s.metrics.ConnectionsClosed.WithLabelValues(reason.String()))
}

// waitClosedCount waits until n connections have closed with reason.
func waitClosedCount(t testing.TB, s *Server, reason CloseReason, n float64) {
	t.Helper()
	waitFor(t, rawWait, fmt.Sprintf("%v connections closed as %v", n, reason), func() bool {
		return closedCount(t, s, reason) >= n
	})
	if got := closedCount(t, s, reason); got != n {
		t.Errorf("connections closed as %v: got %v; want %v", reason, got, n)
	}
}

// TestSessionMethods sends every method of STRATUM.md §3 as firmware sends it and
// checks each reply exactly.
func TestSessionMethods(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-3})
	srv := newTestProxy(t, Config{Version: "9.9"}, pool)
	addr := srv.Addr().String()

	t.Run("ConfigureBeforeSubscribe", func(t *testing.T) {
		f := func(params, want string) {
			t.Helper()
			c := dialRawMiner(t, addr)
			wantRawResult(t, c.call("1", "mining.configure", params), want)
			c.login("farm.cfg")
		}
		f(`[["version-rolling"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":2}]`,
			`{"version-rolling":true,"version-rolling.mask":"1fffe000"}`)
		f(`[["version-rolling"],{"version-rolling.mask":"00ffe000","version-rolling.min-bit-count":2}]`,
			`{"version-rolling":true,"version-rolling.mask":"00ffe000"}`)
		// ESP-Miner: no min-bit-count.
		f(`[["version-rolling"],{"version-rolling.mask":"ffffffff"}]`,
			`{"version-rolling":true,"version-rolling.mask":"1fffe000"}`)
		// No mask: the miner's defaults to ffffffff.
		f(`[["version-rolling"],{}]`, `{"version-rolling":true,"version-rolling.mask":"1fffe000"}`)
		// Nothing in common with the pool's mask.
		f(`[["version-rolling"],{"version-rolling.mask":"00001fff"}]`, `{"version-rolling":false}`)
		f(`[["minimum-difficulty"],{"minimum-difficulty.value":2048}]`, `{"minimum-difficulty":true}`)
		f(`[["subscribe-extranonce"],{}]`, `{"subscribe-extranonce":true}`)
		f(`[["info"],{"info.connection-url":"stratum+tcp://x:1","info.hw-version":"S19","info.sw-version":"1.0","info.hw-id":"abc"}]`, `{"info":true}`)
		f(`[["version-rolling","minimum-difficulty","subscribe-extranonce","info","x-future","y"],{"version-rolling.mask":"ffffffff","minimum-difficulty.value":1}]`,
			`{"version-rolling":true,"version-rolling.mask":"1fffe000","minimum-difficulty":true,"subscribe-extranonce":true,"info":true,"x-future":false,"y":false}`)
	})

	t.Run("ConfigureAfterSubscribe", func(t *testing.T) {
		c := dialRawMiner(t, addr)
		j := c.login("farm.cfg2")
		wantRawResult(t, c.call("3", "mining.configure", `[["version-rolling"],{"version-rolling.mask":"00ffe000"}]`),
			`{"version-rolling":true,"version-rolling.mask":"00ffe000"}`)
		// The mask holds at once for shares on the current job.
		s := c.findShare(j, c.en2(1), 0x00ffe000, 0x00402000, meetsDiff(t, c.jobDiff[j.ID]))
		wantRawTrue(t, c.submit("4", s))
		s = c.findShare(j, c.en2(2), 0x1fffe000, 0x10000000, meetsDiff(t, c.jobDiff[j.ID]))
		wantRawError(t, c.submit("5", s), 20, "Invalid version bits")
	})

	t.Run("AuthorizeBeforeSubscribe", func(t *testing.T) {
		c := dialRawMiner(t, addr)
		wantRawTrue(t, c.call(`"auth"`, "mining.authorize", `["farm.early","x"]`))
		c.subscribe("0")
		j := c.job()
		wantRawTrue(t, c.submit("4", c.findShare(j, c.en2(1), 0, 0, meetsDiff(t, c.jobDiff[j.ID]))))
	})

	t.Run("AuthAlias", func(t *testing.T) {
		c := dialRawMiner(t, addr)
		c.subscribe("1")
		wantRawTrue(t, c.call("2", "mining.auth", `["farm.alias","x"]`))
		j := c.job()
		wantRawTrue(t, c.submit("3", c.findShare(j, c.en2(1), 0, 0, meetsDiff(t, c.jobDiff[j.ID]))))
	})

	t.Run("AuthorizeBadParams", func(t *testing.T) {
		c := dialRawMiner(t, addr)
		wantRawError(t, c.call("1", "mining.authorize", `[]`), 24, "Unauthorized worker")
		wantRawError(t, c.call("2", "mining.authorize", `[""]`), 24, "Unauthorized worker")
		wantRawError(t, c.call("3", "mining.authorize", `[42,"x"]`), 24, "Unauthorized worker")
		wantRawTrue(t, c.call("4", "mining.authorize", `["farm.ok"]`)) // no password
	})

	t.Run("SubscribeTwice", func(t *testing.T) {
		c := dialRawMiner(t, addr)
		c.subscribe("1")
		wantRawError(t, c.call("2", "mining.subscribe", `[]`), 20, "Already subscribed")
	})

	t.Run("Other", func(t *testing.T) {
		c := dialRawMiner(t, addr)
		// Before subscribe: every one of these is answered.
		wantRawResult(t, c.call("1", "client.get_version", `[]`), `"hashrelay/9.9"`)
		wantRawTrue(t, c.call("2", "client.show_message", `["hello pool"]`))
		wantRawResult(t, c.call("3", "mining.ping", `[]`), `"pong"`)
		wantRawError(t, c.call("4", "mining.no_such_method", `[]`), -32601, "Method not found")
		wantRawResult(t, c.call("5", "mining.ping", `[]`), `"pong"`) // still usable
		wantRawTrue(t, c.call("6", "mining.extranonce.subscribe", `[]`))
		wantRawTrue(t, c.call("7", "mining.suggest_difficulty", `[0.001]`))
		wantRawTrue(t, c.call("8", "mining.suggest_difficulty", `["bogus"]`)) // advisory: ignored
		wantRawTrue(t, c.call("9", "mining.suggest_target", `["00000000ffff0000000000000000000000000000000000000000000000000000"]`))
		// Pool-to-miner methods sent by a miner are unknown here.
		wantRawError(t, c.call("10", "mining.notify", `[]`), -32601, "Method not found")
		c.login("farm.other")
		wantRawResult(t, c.call(`"txlist1"`, "mining.get_transactions", `["1"]`), `[]`)
		// Notifications (id null) and responses get no answer; the next request
		// still gets its own.
		c.send(`{"id":null,"method":"mining.ping","params":[]}`,
			`{"id":null,"method":"mining.no_such_method","params":[]}`,
			`{"id":77,"result":"stratumtest/1.0","error":null}`)
		wantRawResult(t, c.call("11", "mining.ping", `[]`), `"pong"`)
	})

	t.Run("SubmitOrder", func(t *testing.T) {
		c := dialRawMiner(t, addr)
		params := rawShare{job: "zzzz", en2: []byte{0, 0, 0, 0}, ntime: 1, nonce: 1}.params("farm.order")
		wantRawError(t, c.call("1", "mining.submit", params), 24, "Unauthorized worker")
		wantRawTrue(t, c.call("2", "mining.authorize", `["farm.order","x"]`))
		wantRawError(t, c.call("3", "mining.submit", params), 25, "Not subscribed")
		c.subscribe("4")
		wantRawError(t, c.call("5", "mining.submit", params), 21, "Job not found")
	})
}

// TestShareVerdicts submits real shares, found by brute force, and each kind of bad
// one, with the ids firmware uses.
func TestShareVerdicts(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-3})
	srv := newTestProxy(t, Config{}, pool)
	c := dialRawMiner(t, srv.Addr().String())
	wantRawResult(t, c.call("1", "mining.configure", `[["version-rolling"],{"version-rolling.mask":"1fffe000"}]`),
		`{"version-rolling":true,"version-rolling.mask":"1fffe000"}`)
	j := c.login("farm.shares")
	d := c.jobDiff[j.ID]
	if d != 1e-6 {
		t.Fatalf("first difficulty %v; want the start difficulty 1e-6", d)
	}
	good := c.findShare(j, c.en2(1), 0x1fffe000, 0x00006000, meetsDiff(t, d))

	// minerd sends every submit with "id":4.
	wantRawTrue(t, c.submit("4", good))
	wantRawError(t, c.submit("4", good), 22, "Duplicate share")

	other := good
	other.job = "ffff"
	wantRawError(t, c.submit("4", other), 21, "Job not found")

	short := good
	short.en2 = good.en2[1:]
	wantRawError(t, c.submit("4", short), 20, "Incorrect size of extranonce2")
	long := good
	long.en2 = append(append([]byte(nil), good.en2...), 0)
	wantRawError(t, c.submit("4", long), 20, "Incorrect size of extranonce2")

	early := good
	early.ntime = j.NTime - 1
	wantRawError(t, c.submit("4", early), 20, "Ntime out of range")
	late := good
	late.ntime = j.NTime + stratum.MaxNTimeRoll + 1
	wantRawError(t, c.submit("4", late), 20, "Ntime out of range")

	outside := good
	outside.vbits = 0x20000000 | good.vbits
	wantRawError(t, c.submit("4", outside), 20, "Invalid version bits")

	low := c.findShare(j, c.en2(2), 0x1fffe000, 0, func(h *stratum.Hash) bool { return !meetsDiff(t, d)(h) })
	wantRawError(t, c.submit("4", low), 23, "Low difficulty share")

	// The same extranonce2, ntime and nonce with other version bits hashes another
	// header: a new share, not a duplicate.
	found := false
	for vb := uint32(0x2000); vb <= 0x1fffe000 && !found; vb += 0x2000 {
		again := good
		again.vbits = vb
		if vb != good.vbits && meetsDiff(t, d)(rawShareHash(c, j, again, 0x1fffe000)) {
			wantRawTrue(t, c.submit("4", again))
			found = true
		}
	}
	if !found {
		t.Fatal("no version bits give the good share's nonce a valid hash")
	}

	// Malformed params: each gets 20 and the connection stays usable.
	for i, params := range []string{
		`[]`, `null`, `{}`, `["farm.shares"]`,
		fmt.Sprintf(`["farm.shares","%s","%x","%08x","xyz"]`, j.ID, good.en2, good.ntime),
		fmt.Sprintf(`["farm.shares","%s","%x","%08x","%08x","%08x","extra"]`, j.ID, good.en2, good.ntime, good.nonce, good.vbits),
		fmt.Sprintf(`["farm.shares",%s,"%x","%08x","%08x"]`, "12", good.en2, good.ntime, good.nonce),
		fmt.Sprintf(`["farm.shares","%s","zz","%08x","%08x"]`, j.ID, good.ntime, good.nonce),
	} {
		id := strconv.Itoa(100 + i)
		wantRawError(t, c.call(id, "mining.submit", params), 20, "Malformed share")
	}

	// Ids are echoed byte for byte: strings, 0, huge numbers, odd spacing.
	for i, id := range []string{`0`, `"auth"`, `"txlist1f"`, `18446744073709551616`, `1.5e3`, `-7`, `"\u00e9\n"`} {
		s := c.findShare(j, c.en2(uint32(i)+10), 0x1fffe000, 0x00002000, meetsDiff(t, d))
		r := c.submit(id, s)
		if string(r.ID) != id {
			t.Errorf("reply id %s; want %s byte for byte", r.ID, id)
		}
		wantRawTrue(t, r)
	}

	accepted := metricCounter(t, srv.metrics.Shares.WithLabelValues("accepted"))
	if accepted < 9 {
		t.Errorf("accepted shares counted %v; want at least 9", accepted)
	}
}

// rawShareHash hashes a share as the proxy should.
func rawShareHash(c *rawMiner, j *stratum.Job, s rawShare, mask uint32) *stratum.Hash {
	cb := append(append(append(append([]byte(nil), j.Coinb1...), c.en1...), s.en2...), j.Coinb2...)
	root := stratum.MerkleRoot(stratum.DoubleSHA256(cb), j.Branch)
	var h stratum.Header
	h.Set(j.Version&^mask|s.vbits&mask, &j.PrevHash, &root, s.ntime, j.NBits, s.nonce)
	hash := h.Hash()
	return &hash
}

// TestPipelinedHandshake sends subscribe, authorize and extranonce.subscribe in one
// write, as bfgminer does: the replies come back in order, with the first difficulty
// and job after the subscribe result, all in one write.
func TestPipelinedHandshake(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-3})
	srv := newTestProxy(t, Config{}, pool)
	// Let the slot get its first job, so the subscribe does not wait.
	waitFor(t, rawWait, "the proxy's first job", func() bool { return pool.Stats().Sessions > 0 })
	for round := range 3 {
		c := dialRawMiner(t, srv.Addr().String())
		c.send(`{"id":0,"method":"mining.subscribe","params":["bfgminer/5.5.0"]}`,
			`{"id":"auth","method":"mining.authorize","params":["farm.pipe","x"]}`,
			`{"id":"xnsub","method":"mining.extranonce.subscribe","params":[]}`)
		c.nc.SetReadDeadline(time.Now().Add(rawWait))
		buf := make([]byte, 64<<10)
		n, err := c.nc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(buf[:n]), "\n"), "\n")
		var got []string
		for _, l := range lines {
			var m rawLine
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			if m.Method != "" {
				got = append(got, m.Method)
			} else {
				got = append(got, string(m.ID))
			}
		}
		want := []string{`0`, "mining.set_difficulty", "mining.notify", `"auth"`, `"xnsub"`}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("round %d: first read held %q; want %q in one read", round, got, want)
		}
	}
}

// TestSessionRepliesWhilePoolStalled: a miner's shares are answered at once from the
// local check, whatever the pool does.
func TestSessionRepliesWhilePoolStalled(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-6})
	srv := newTestProxy(t, Config{}, pool)
	c := dialRawMiner(t, srv.Addr().String())
	j := c.login("farm.stall")
	d := c.jobDiff[j.ID]
	wantRawTrue(t, c.submit("1", c.findShare(j, c.en2(1), 0, 0, meetsDiff(t, d))))
	waitFor(t, rawWait, "the first share at the pool", func() bool { return pool.Stats().Accepted() >= 1 })

	pool.Stall()
	defer pool.Resume()
	var worst time.Duration
	for i := range 20 {
		s := c.findShare(j, c.en2(uint32(i+2)), 0, 0, meetsDiff(t, d)) // meets the pool's target too
		start := time.Now()
		wantRawTrue(t, c.submit("4", s))
		worst = max(worst, time.Since(start))
	}
	// Waiting on the stalled pool would never end; 500 ms leaves room for a loaded
	// CI machine (typically under 1 ms).
	if worst > 500*time.Millisecond {
		t.Errorf("slowest reply while the pool was stalled: %v; want under 500ms", worst)
	}
	if got := pool.Stats().Accepted(); got != 1 {
		t.Errorf("pool accepted %d shares while stalled; want 1 (it reads nothing)", got)
	}
	pool.Resume()
	waitFor(t, rawWait, "the stalled shares at the pool", func() bool { return pool.Stats().Accepted() >= 21 })
}

// TestSessionSubscribeWithoutUpstream: with no pool reachable, a subscribe is
// answered with an error after SubscribeWait, and the miner may try again; a
// configure sent meanwhile guesses the proxy's own mask, and the subscribe corrects
// it with set_version_mask before any job.
func TestSessionSubscribeWithoutUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	poolAddr := ln.Addr().String()
	ln.Close() // nothing listens there yet
	u, err := ParsePoolURL("stratum+tcp://acct:x@" + poolAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestProxy(t, Config{Upstreams: []PoolURL{u}, SubscribeWait: 300 * time.Millisecond})
	c := dialRawMiner(t, srv.Addr().String())
	wantRawResult(t, c.call("1", "mining.configure", `[["version-rolling"],{"version-rolling.mask":"ffffffff"}]`),
		`{"version-rolling":true,"version-rolling.mask":"1fffe000"}`)
	start := time.Now()
	wantRawError(t, c.call("2", "mining.subscribe", `[]`), 20, errNoUpstream.Error())
	if el := time.Since(start); el < 250*time.Millisecond || el > 2*time.Second {
		t.Errorf("subscribe failed after %v; want after SubscribeWait (300ms)", el)
	}
	wantRawResult(t, c.call("3", "mining.ping", `[]`), `"pong"`) // still usable

	newTestPool(t, stratumtest.PoolConfig{Addr: poolAddr, Difficulty: 1e-3, VersionMask: 0x00fff000})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.send(`{"id":4,"method":"mining.subscribe","params":[]}`)
		r := c.reply("4")
		if string(r.Error) == "null" {
			c.parseSubscribe(r)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribe still failing: %s", r.Line)
		}
	}
	// Right after the result, before the difficulty and job: the pool's narrower mask.
	m, err := c.read(rawWait)
	if err != nil || m.Method != "mining.set_version_mask" || string(m.Params[0]) != `"00ffe000"` {
		t.Fatalf("after the subscribe result got %q, %v; want set_version_mask 00ffe000", m.Line, err)
	}
	if m, _ := c.read(rawWait); m.Method != "mining.set_difficulty" {
		t.Fatalf("then %q; want set_difficulty", m.Line)
	}
	j := c.job()
	wantRawTrue(t, c.call("5", "mining.authorize", `["farm.late","x"]`))
	s := c.findShare(j, c.en2(1), 0x00ffe000, 0x00800000, meetsDiff(t, c.jobDiff[j.ID]))
	wantRawTrue(t, c.submit("6", s))
	s = c.findShare(j, c.en2(2), 0x1fffe000, 0x10000000, meetsDiff(t, c.jobDiff[j.ID]))
	wantRawError(t, c.submit("7", s), 20, "Invalid version bits")

	// A miner configuring now gets the pool's mask at once.
	c2 := dialRawMiner(t, srv.Addr().String())
	wantRawResult(t, c2.call("1", "mining.configure", `[["version-rolling"],{"version-rolling.mask":"ffffffff"}]`),
		`{"version-rolling":true,"version-rolling.mask":"00ffe000"}`)
	c2.subscribe("2")
	if m, _ := c2.read(rawWait); m.Method != "mining.set_difficulty" {
		t.Errorf("after the subscribe result got %q; want set_difficulty (no mask change)", m.Line)
	}
}

// TestSessionVersionMaskRace changes the pool's version mask while miners configure
// and submit: under -race it proves the mask's ownership, and every miner ends with
// the mask the pool last set.
func TestSessionVersionMaskRace(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-3, JobInterval: 20 * time.Millisecond})
	srv := newTestProxy(t, Config{}, pool)
	miners, stop := runMiners(t, srv.Addr().String(), 4, stratumtest.MinerConfig{HashRate: 20000, VersionRolling: true})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 30 {
			pool.SetVersionMask([]uint32{0x1fffe000, 0x00ffe000, 0x1ff00000}[i%3])
			time.Sleep(5 * time.Millisecond)
		}
		pool.SetVersionMask(0x0fffe000)
	}()
	for range 10 {
		c := dialRawMiner(t, srv.Addr().String())
		c.send(`{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff"}]}`,
			`{"id":2,"method":"mining.subscribe","params":[]}`,
			`{"id":3,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff"}]}`)
		c.reply("1")
		c.reply("2")
		c.reply("3")
	}
	<-done
	waitFor(t, rawWait, "every miner at the pool's last mask and with shares accepted", func() bool {
		for _, m := range miners {
			if st := m.Stats(); st.VersionMask != 0x0fffe000 || st.Accepted < 3 {
				return false
			}
		}
		return true
	})
	stop()
	c := dialRawMiner(t, srv.Addr().String())
	wantRawResult(t, c.call("1", "mining.configure", `[["version-rolling"],{"version-rolling.mask":"ffffffff"}]`),
		`{"version-rolling":true,"version-rolling.mask":"0fffe000"}`)
}

// TestDifficultyFirst: the first set_difficulty honours the start difficulty, a
// suggestion or a minimum-difficulty sent before subscribe, within the configured
// bounds and never above the pool's difficulty; with PowerOfTwoDifficulty it is a
// power of two (an integer whenever the pool allows one).
func TestDifficultyFirst(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pool   float64
		cfg    Config
		before string // a line sent before subscribe
		want   float64
	}{
		{"start", 1e-3, Config{}, "", 1e-6},
		{"start above pool", 1e-5, Config{StartDifficulty: 1e-3}, "", 1e-5},
		{"suggest", 1e-3, Config{}, `{"id":9,"method":"mining.suggest_difficulty","params":[4e-6]}`, 4e-6},
		{"suggest string", 1e-3, Config{}, `{"id":9,"method":"mining.suggest_difficulty","params":["0.00002"]}`, 2e-5},
		{"suggest below min", 1e-3, Config{MinDifficulty: 1e-5}, `{"id":9,"method":"mining.suggest_difficulty","params":[1e-9]}`, 1e-5},
		{"suggest above max", 1e-3, Config{MaxDifficulty: 1e-4}, `{"id":9,"method":"mining.suggest_difficulty","params":[0.5]}`, 1e-4},
		{"suggest above pool", 1e-3, Config{}, `{"id":9,"method":"mining.suggest_difficulty","params":[10]}`, 1e-3},
		{"suggest target", 1e-3, Config{}, `{"id":9,"method":"mining.suggest_target","params":["0000fffe00000000000000000000000000000000000000000000000000000000"]}`, float64(0xffff) / (0xfffe << 16)},
		{"minimum-difficulty", 1e-3, Config{}, `{"id":9,"method":"mining.configure","params":[["minimum-difficulty"],{"minimum-difficulty.value":5e-6}]}`, 5e-6},
		{"minimum-difficulty above max", 1e-3, Config{MaxDifficulty: 1e-4}, `{"id":9,"method":"mining.configure","params":[["minimum-difficulty"],{"minimum-difficulty.value":1}]}`, 1e-4},
		{"minimum-difficulty above pool", 1e-4, Config{}, `{"id":9,"method":"mining.configure","params":[["minimum-difficulty"],{"minimum-difficulty.value":1}]}`, 1e-4},

		// PowerOfTwoDifficulty: 2^k rounded down; below 1 raised to 1 when the
		// pool's difficulty allows, a fraction 2^-k only under a fractional pool.
		{"pow2 fractional pool", 1e-3, Config{PowerOfTwoDifficulty: true}, "", 0x1p-20},
		{"pow2 pool under start", 1e-5, Config{PowerOfTwoDifficulty: true, StartDifficulty: 1}, "", 0x1p-17},
		{"pow2 pool 0.75", 0.75, Config{PowerOfTwoDifficulty: true, StartDifficulty: 1}, "", 0.5},
		{"pow2 integer", 64, Config{PowerOfTwoDifficulty: true, StartDifficulty: 3}, "", 2},
		{"pow2 raised to 1", 64, Config{PowerOfTwoDifficulty: true, StartDifficulty: 0.3}, "", 1},
		{"pow2 suggest above pool", 48, Config{PowerOfTwoDifficulty: true}, `{"id":9,"method":"mining.suggest_difficulty","params":[100]}`, 32},
		{"pow2 suggest", 1024, Config{PowerOfTwoDifficulty: true}, `{"id":9,"method":"mining.suggest_difficulty","params":[100]}`, 128},
		{"pow2 max under 1", 64, Config{PowerOfTwoDifficulty: true, MaxDifficulty: 0.1, StartDifficulty: 0.3}, "", 0.0625},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: tc.pool})
			srv := newTestProxy(t, tc.cfg, pool)
			c := dialRawMiner(t, srv.Addr().String())
			if tc.before != "" {
				c.send(tc.before)
				c.reply("9")
			}
			c.subscribe("1")
			m := c.note("mining.set_difficulty")
			c.job()
			if math.Abs(c.diff-tc.want) > tc.want*1e-9 {
				t.Errorf("first set_difficulty %s; want %v", m.Params[0], tc.want)
			}
			if tc.cfg.PowerOfTwoDifficulty {
				if frac, _ := math.Frexp(c.diff); frac != 0.5 {
					t.Errorf("set_difficulty %s is not a power of two", m.Params[0])
				}
				if bytes.ContainsAny(m.Params[0], "eE") {
					t.Errorf("set_difficulty %s has an exponent", m.Params[0])
				}
			}
		})
	}
}

// TestDifficultyAppliesFromNextJob: a new difficulty reaches the miner right before
// the next job, and shares on older jobs are judged at the difficulty their job
// was sent with.
func TestDifficultyAppliesFromNextJob(t *testing.T) {
	const d1, d2 = 1e-6, 3e-5
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-3})
	srv := newTestProxy(t, Config{StartDifficulty: d1}, pool)
	c := dialRawMiner(t, srv.Addr().String())
	j1 := c.login("farm.next")
	if c.jobDiff[j1.ID] != d1 {
		t.Fatalf("first job at %v; want %v", c.jobDiff[j1.ID], d1)
	}
	// Decimal, not 3e-05: the decoder's fastjson parses exponent forms inexactly.
	wantRawTrue(t, c.call("3", "mining.suggest_difficulty", "["+strconv.FormatFloat(d2, 'f', -1, 64)+"]"))
	// Nothing is sent until the next job.
	if m, err := c.read(200 * time.Millisecond); err == nil {
		t.Fatalf("got %q before the next job; want nothing", m.Line)
	}
	pool.SendJob()
	m, err := c.read(rawWait)
	if err != nil || m.Method != "mining.set_difficulty" {
		t.Fatalf("got %q, %v; want set_difficulty right before the job", m.Line, err)
	}
	j2 := c.job()
	if c.jobDiff[j2.ID] != d2 {
		t.Fatalf("second job at %v; want %v", c.jobDiff[j2.ID], d2)
	}
	// Old job, old difficulty: accepted though under the new one.
	wantRawTrue(t, c.submit("4", c.findShare(j1, c.en2(1), 0, 0, betweenDiffs(t, d1, d2))))
	// New job: the same difficulty is now too low.
	wantRawError(t, c.submit("4", c.findShare(j2, c.en2(1), 0, 0, betweenDiffs(t, d1, d2))), 23, "Low difficulty share")
	wantRawTrue(t, c.submit("4", c.findShare(j2, c.en2(2), 0, 0, meetsDiff(t, d2))))
}

// TestDifficultyMinimumAfterSubscribe: a minimum-difficulty configured after
// subscribe holds from the next job on, and a later, lower suggestion does not undo
// it.
func TestDifficultyMinimumAfterSubscribe(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-3})
	srv := newTestProxy(t, Config{}, pool)
	c := dialRawMiner(t, srv.Addr().String())
	j := c.login("farm.min")
	if c.jobDiff[j.ID] != 1e-6 {
		t.Fatalf("first job at %v; want 1e-6", c.jobDiff[j.ID])
	}
	wantRawResult(t, c.call("3", "mining.configure", `[["minimum-difficulty"],{"minimum-difficulty.value":0.000005}]`), `{"minimum-difficulty":true}`)
	pool.SendJob()
	if m, _ := c.read(rawWait); m.Method != "mining.set_difficulty" || string(m.Params[0]) != "0.000005" {
		t.Fatalf("got %q; want set_difficulty 0.000005 before the next job", m.Line)
	}
	c.job()
	wantRawTrue(t, c.call("4", "mining.suggest_difficulty", `[0.000001]`))
	pool.SendJob()
	if m, _ := c.read(rawWait); m.Method != "mining.notify" {
		t.Fatalf("got %q; want the next job at the same difficulty, without set_difficulty", m.Line)
	}
}

// TestDifficultyUpstreamCeiling: when the pool lowers its difficulty under the
// miner's, the miner's next job comes at the pool's; when the pool raises it again,
// the miner goes back to its own.
func TestDifficultyUpstreamCeiling(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-3})
	srv := newTestProxy(t, Config{StartDifficulty: 1e-5}, pool)
	c := dialRawMiner(t, srv.Addr().String())
	j := c.login("farm.ceil")
	if c.jobDiff[j.ID] != 1e-5 {
		t.Fatalf("first job at %v; want 1e-5", c.jobDiff[j.ID])
	}
	if err := pool.SetDifficulty(2e-6); err != nil {
		t.Fatal(err)
	}
	pool.SendJob()
	j2 := c.job()
	if c.jobDiff[j2.ID] != 2e-6 {
		t.Errorf("job after the pool lowered its difficulty at %v; want the pool's 2e-6", c.jobDiff[j2.ID])
	}
	// A share the pool pays for is never refused.
	wantRawTrue(t, c.submit("4", c.findShare(j2, c.en2(1), 0, 0, betweenDiffs(t, 2e-6, 1e-5))))
	waitFor(t, rawWait, "the share at the pool", func() bool { return pool.Stats().Accepted() == 1 })
	if err := pool.SetDifficulty(1e-3); err != nil {
		t.Fatal(err)
	}
	pool.SendJob()
	j3 := c.job()
	if c.jobDiff[j3.ID] != 1e-5 {
		t.Errorf("job after the pool raised its difficulty at %v; want the miner's 1e-5 again", c.jobDiff[j3.ID])
	}
}

// TestDifficultyVardiff: vardiff raises a fast miner and lowers a slow one, and
// never goes above the pool's difficulty.
func TestDifficultyVardiff(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-3, JobInterval: 50 * time.Millisecond})
	srv := newTestProxy(t, Config{
		StartDifficulty:      1e-6,
		MinDifficulty:        1e-8,
		VardiffShareInterval: time.Second,
		VardiffRetarget:      250 * time.Millisecond,
	}, pool)
	// At 1e-6 a share is 4295 hashes: 4.3 kH/s makes one a second, as wanted.
	// 100 kH/s is 23 times too fast (vardiff aims at 2.3e-5), 1 kH/s four times too
	// slow (2.3e-7).
	miners, stop := runMiners(t, srv.Addr().String(), 1, stratumtest.MinerConfig{Worker: "fast", HashRate: 100_000})
	slow, stopSlow := runMiners(t, srv.Addr().String(), 1, stratumtest.MinerConfig{Worker: "slow", HashRate: 1_000})
	waitFor(t, 10*time.Second, "vardiff to raise the fast miner and lower the slow one", func() bool {
		return miners[0].Stats().Difficulty >= 4e-6 && slow[0].Stats().Difficulty > 0 && slow[0].Stats().Difficulty <= 2.5e-7
	})
	fast := stop()[0]
	st := stopSlow()[0]
	t.Logf("fast miner at %g (%d accepted), slow miner at %g (%d accepted)", fast.Difficulty, fast.Accepted, st.Difficulty, st.Accepted)
	if fast.Rejected > 0 || st.Rejected > 0 {
		t.Errorf("rejects while vardiff moved: fast %d, slow %d; want 0", fast.Rejected, st.Rejected)
	}

	// The ceiling: a pool at 2e-6 holds the fast miner there.
	pool2 := newTestPool(t, stratumtest.PoolConfig{Difficulty: 2e-6, JobInterval: 50 * time.Millisecond})
	srv2 := newTestProxy(t, Config{VardiffShareInterval: time.Second, VardiffRetarget: 200 * time.Millisecond}, pool2)
	m2, stop2 := runMiners(t, srv2.Addr().String(), 1, stratumtest.MinerConfig{HashRate: 200_000})
	waitFor(t, 10*time.Second, "vardiff to reach the pool's difficulty", func() bool { return m2[0].Stats().Difficulty == 2e-6 })
	time.Sleep(500 * time.Millisecond)
	if d := stop2()[0].Difficulty; d != 2e-6 {
		t.Errorf("fast miner at %g; want held at the pool's 2e-6", d)
	}
}

// TestMinerReplyLatencyObserved: every answered request is timed from its read to
// the write of its reply, once per burst, in hashrelay_miner_reply_seconds.
func TestMinerReplyLatencyObserved(t *testing.T) {
	pool := newTestPool(t, stratumtest.PoolConfig{Addr: "127.0.0.1:0"})
	srv := newTestProxy(t, Config{}, pool)
	m := stratumtest.NewMiner(stratumtest.MinerConfig{Addr: srv.Addr().String(), ShareRate: 50})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	waitFor(t, 10*time.Second, "20 shares answered", func() bool { return m.Stats().Accepted >= 20 })
	cancel()
	<-done
	var h dto.Metric
	if err := srv.metrics.MinerReply.Write(&h); err != nil {
		t.Fatal(err)
	}
	n, sum := h.GetHistogram().GetSampleCount(), h.GetHistogram().GetSampleSum()
	st := m.Stats()
	// The handshake's burst and one per share: at least the shares, at most every
	// answered request.
	if n < st.Accepted || n > st.Accepted+st.Rejected+8 {
		t.Errorf("%d reply latencies observed for %d accepted shares", n, st.Accepted)
	}
	if sum <= 0 || sum/float64(n) > 1 {
		t.Errorf("mean reply latency %.6fs over %d; want above 0 and under 1s", sum/float64(n), n)
	}
}
