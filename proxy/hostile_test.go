package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// hostileLineSize is the proxies' MaxLineSize in these tests: room for JSON nested
// deeper than the decoder allows (fastjson: 300 levels).
const hostileLineSize = 2048

// clientHello is the start of a TLS 1.2 ClientHello, as bfgminer sends to a plain
// stratum port before falling back.
var clientHello = []byte{
	0x16, 0x03, 0x01, 0x00, 0xc4, 0x01, 0x00, 0x00, 0xc0, 0x03, 0x03,
	0x5b, 0x90, 0x9d, 0x9b, 0x72, 0x0b, 0xbc, 0x0c, 0xbc, 0x2b, 0x92, 0xa8, 0x48, 0x97, 0xcf, 0xbd,
	0x39, 0x04, 0xcc, 0x16, 0x0a, 0x85, 0x03, 0x90, 0x9f, 0x77, 0x04, 0x33, 0xd4, 0xde, 0x00, 0x00,
	0x00, 0x2c, 0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xcc, 0x14, 0xcc, 0x13, 0xc0, 0x0a, 0xc0, 0x14,
}

// hostileProxy is a proxy with a normal simulated miner on it, which must keep
// getting shares accepted whatever the other connections do.
type hostileProxy struct {
	pool  *stratumtest.Pool
	srv   *Server
	miner *stratumtest.Miner
}

func newHostileProxy(t *testing.T, cfg Config) *hostileProxy {
	t.Helper()
	pool := newTestPool(t, stratumtest.PoolConfig{Difficulty: 1e-3})
	cfg.MaxLineSize = hostileLineSize
	srv := newTestProxy(t, cfg, pool)
	// Paced, so the tests leave CPU for the proxy on a 2-core machine: about ten
	// shares a second at the proxy's start difficulty.
	miners, _ := runMiners(t, srv.Addr().String(), 1, stratumtest.MinerConfig{Worker: "farm.normal", HashRate: 50000})
	h := &hostileProxy{pool: pool, srv: srv, miner: miners[0]}
	h.stillMining(t)
	return h
}

// stillMining waits until the normal miner has a few more shares accepted, still on
// its first connection.
func (h *hostileProxy) stillMining(t *testing.T) {
	t.Helper()
	before := h.miner.Stats()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := h.miner.Stats()
		if st.Disconnects > 0 {
			t.Fatalf("the normal miner was disconnected: %s", st.LastError)
		}
		if st.Accepted >= before.Accepted+3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the normal miner got %d shares accepted in 5s (%d hashes, %d jobs); want 3",
				st.Accepted-before.Accepted, st.Hashes-before.Hashes, st.JobsReceived-before.JobsReceived)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHostileInput runs each hostile input against one proxy, checking the replies
// or the close reason, and that a normal miner on the same proxy keeps mining.
func TestHostileInput(t *testing.T) {
	h := newHostileProxy(t, Config{})
	addr := h.srv.Addr().String()
	parseError := func(t *testing.T, c *rawMiner, n int) {
		t.Helper()
		for range n {
			wantRawError(t, c.reply("null"), -32700, "Parse error")
		}
	}
	ping := func(t *testing.T, c *rawMiner, id string) {
		t.Helper()
		wantRawResult(t, c.call(id, "mining.ping", `[]`), `"pong"`)
	}

	for _, tc := range []struct {
		name   string
		reason CloseReason // CloseNone: the connection must stay usable
		run    func(t *testing.T, c *rawMiner)
	}{
		{"TLSClientHello", CloseNotJSON, func(t *testing.T, c *rawMiner) {
			start := time.Now()
			c.nc.Write(clientHello)
			c.expectEOF(rawWait)
			if el := time.Since(start); el > 500*time.Millisecond {
				t.Errorf("closed after %v; want at once", el)
			}
		}},
		{"HTTPRequest", CloseNotJSON, func(t *testing.T, c *rawMiner) {
			c.nc.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
			c.expectEOF(rawWait)
		}},
		{"BinaryFirst", CloseNotJSON, func(t *testing.T, c *rawMiner) {
			c.nc.Write([]byte{0x00, 0xff, 0xfe, 0x7b, 0x0a})
			c.expectEOF(rawWait)
		}},
		{"ArrayFirst", CloseNotJSON, func(t *testing.T, c *rawMiner) {
			c.send(`[{"id":1,"method":"mining.subscribe","params":[]}]`)
			c.expectEOF(rawWait)
		}},
		{"LineTooLong", CloseLineTooLong, func(t *testing.T, c *rawMiner) {
			ping(t, c, "1")
			c.send(`{"id":2,"method":"mining.ping","params":["` + strings.Repeat("a", hostileLineSize) + `"]}`)
			c.expectEOF(rawWait)
		}},
		{"LineTooLongWithoutNewline", CloseLineTooLong, func(t *testing.T, c *rawMiner) {
			c.nc.Write([]byte(`{"id":2,"method":"mining.ping","params":["` + strings.Repeat("a", 4*hostileLineSize)))
			c.expectEOF(rawWait)
		}},
		{"JunkLines", CloseNone, func(t *testing.T, c *rawMiner) {
			ping(t, c, "1")
			c.send("\x00\x01\x02\xff\xfe", `[1,2,3]`, `42`, `"mining.ping"`, `null`, `{"id":5}`, `{"id":6,"method":42}`, `{bad json`)
			parseError(t, c, 8)
			ping(t, c, "2") // the bound counts consecutive junk; a good line resets it
			// Deeply nested: too deep for the decoder is a parse error, not a crash.
			c.send(`{"id":1,"method":"mining.ping","params":[`+strings.Repeat("[", 900)+strings.Repeat("]", 900)+`]}`,
				`{"id":1,"method":"mining.ping","params":[]`, `{"id":1,"method":"mining.ping"}}`, `{"id":1,"method":"mining.ping","params":[]}{}`)
			parseError(t, c, 4)
			ping(t, c, "3")
			// Nested within the limit: a valid request, answered.
			wantRawResult(t, c.call("4", "mining.ping", "["+strings.Repeat("[", 250)+strings.Repeat("]", 250)+"]"), `"pong"`)
		}},
		{"InvalidUTF8", CloseNone, func(t *testing.T, c *rawMiner) {
			// Raw bytes 0xff 0xfe: never valid UTF-8.
			c.send("{\"id\":1,\"method\":\"mining.\xff\xfe\",\"params\":[]}")
			wantRawError(t, c.reply("1"), -32601, "Method not found")
			c.send("{\"id\":\"\xff\xfe\",\"method\":\"mining.ping\",\"params\":[]}")
			r := c.reply("\"\xff\xfe\"")
			if !strings.HasPrefix(r.Line, "{\"id\":\"\xff\xfe\",") {
				t.Errorf("reply %q; want the id echoed byte for byte", r.Line)
			}
			c.send("{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"farm.\xff\",\"x\"]}")
			wantRawTrue(t, c.reply("2"))
			c.send("{\"id\":3,\"method\":\"mining.subscribe\",\"params\":[\"agent\xc3\"]}")
			c.parseSubscribe(c.reply("3"))
			ping(t, c, "4")
		}},
		{"HugeIDs", CloseNone, func(t *testing.T, c *rawMiner) {
			for _, id := range []string{`123456789012345678901234567890123456789012345678901234567890`, `1e999999`, `-0.0000000000000000000001`, `"` + strings.Repeat("x", 300) + `"`, `[1,2]`, `{"a":1}`, `true`} {
				r := c.call(id, "mining.ping", `[]`)
				wantRawResult(t, r, `"pong"`)
			}
		}},
		{"OddParams", CloseNone, func(t *testing.T, c *rawMiner) {
			wantRawError(t, c.call("1", "mining.authorize", `null`), 24, "Unauthorized worker")
			wantRawError(t, c.call("2", "mining.authorize", `{"user":"farm.x"}`), 24, "Unauthorized worker")
			wantRawError(t, c.call("3", "mining.configure", `null`), 20, "Other/Unknown")
			wantRawError(t, c.call("4", "mining.configure", `{"version-rolling":true}`), 20, "Other/Unknown")
			wantRawError(t, c.call("5", "mining.configure", `[["version-rolling"],{"version-rolling.mask":"xyz"}]`), 20, "Other/Unknown")
			wantRawError(t, c.call("5", "mining.configure", `[[1,2]]`), 20, "Other/Unknown")
			wantRawTrue(t, c.call("6", "mining.suggest_difficulty", `null`))
			wantRawTrue(t, c.call("7", "mining.suggest_difficulty", `[-1]`))
			wantRawTrue(t, c.call("8", "mining.suggest_difficulty", `[1e999]`))
			wantRawTrue(t, c.call("9", "mining.suggest_target", `{"x":1}`))
			wantRawResult(t, c.call("10", "mining.ping", `null`), `"pong"`)
			c.subscribe("11")
			wantRawTrue(t, c.call("12", "mining.authorize", `["farm.odd","x"]`))
			wantRawError(t, c.call("13", "mining.submit", `null`), 20, "Malformed share")
			wantRawError(t, c.call("14", "mining.submit", `{"worker":"farm.odd"}`), 20, "Malformed share")
			wantRawError(t, c.call("15", "mining.submit", `[null,null,null,null,null]`), 20, "Malformed share")
			c.send(`{"id":16,"method":"mining.submit"}`)
			wantRawError(t, c.reply("16"), 20, "Malformed share")
			// The suggestions above were refused: still at the start difficulty.
			j := c.job()
			if d := c.jobDiff[j.ID]; d != 1e-6 {
				t.Errorf("difficulty %v after refused suggestions; want 1e-6", d)
			}
			wantRawTrue(t, c.submit("17", c.findShare(j, c.en2(1), 0, 0, meetsDiff(t, 1e-6))))
		}},
		{"JunkFlood", CloseProtocol, func(t *testing.T, c *rawMiner) {
			ping(t, c, "1")
			junk := make([]string, 1000)
			for i := range junk {
				junk[i] = fmt.Sprintf("{junk %d", i)
			}
			c.send(junk...)
			// Exactly maxMalformed error replies, then the close.
			n := 0
			for {
				m, err := c.read(rawWait)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("after %d error replies: %v", n, err)
				}
				wantRawError(t, m, -32700, "Parse error")
				n++
			}
			if n != maxMalformed {
				t.Errorf("got %d error replies before the close; want %d", n, maxMalformed)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.reason
			if want == CloseNone {
				want = CloseClientClosed // by the test, after the case
			}
			before := closedCount(t, h.srv, want)
			c := dialRawMiner(t, addr)
			tc.run(t, c)
			c.nc.Close()
			waitClosedCount(t, h.srv, want, before+1)
			h.stillMining(t)
		})
	}
	if st := h.miner.Stats(); st.Rejected > 0 {
		t.Errorf("the normal miner had %d shares rejected (%v); want none", st.Rejected, st.RejectReasons)
	}
	if n := closedCount(t, h.srv, CloseReadError) + closedCount(t, h.srv, CloseWriteError); n != 0 {
		t.Errorf("%v connections closed by read or write errors; want every close to have its own reason", n)
	}
}

// TestHostileSlowConsumer: a miner that never reads while jobs flow is closed as a
// slow consumer; a normal miner on the same proxy keeps getting its jobs, and its
// replies promptly.
func TestHostileSlowConsumer(t *testing.T) {
	h := newHostileProxy(t, Config{MaxPendingBytes: 32 << 10})

	slow := dialRawMiner(t, h.srv.Addr().String())
	slow.send(`{"id":1,"method":"mining.subscribe","params":[]}`, `{"id":2,"method":"mining.authorize","params":["farm.slow","x"]}`)
	// It reads nothing from now on, through small socket buffers on both ends (as
	// the connection engine's tests do), so its bytes pile up after a few KiB.
	if err := slow.nc.(*net.TCPConn).SetReadBuffer(2048); err != nil {
		t.Fatal(err)
	}
	proxySide := func() net.Conn {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		for m := range h.srv.sessions {
			if m.c.nc.RemoteAddr().String() == slow.nc.LocalAddr().String() {
				return m.c.nc
			}
		}
		return nil
	}
	waitFor(t, rawWait, "the slow miner's session", func() bool { return proxySide() != nil })
	if err := proxySide().(*net.TCPConn).SetWriteBuffer(2048); err != nil {
		t.Fatal(err)
	}

	normal := dialRawMiner(t, h.srv.Addr().String())
	normal.login("farm.watch")

	stop := make(chan struct{})
	jobsSent := make(chan int)
	go func() {
		n := 0
		defer func() { jobsSent <- n }()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			h.pool.SendJob()
			n++
		}
	}()

	// The normal miner pings all along and measures each reply.
	var worst time.Duration
	pings := 0
	deadline := time.Now().Add(10 * time.Second)
	for closedCount(t, h.srv, CloseSlowConsumer) == 0 || pings < 50 {
		if time.Now().After(deadline) {
			close(stop)
			t.Fatalf("no slow consumer closed after %d jobs", <-jobsSent)
		}
		start := time.Now()
		wantRawResult(t, normal.call("4", "mining.ping", `[]`), `"pong"`)
		worst = max(worst, time.Since(start))
		pings++
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	sent := <-jobsSent
	// Blocking behind the slow consumer would cost the 10 s write timeout; 500 ms
	// leaves room for a loaded CI machine (typically under 1 ms).
	if worst > 500*time.Millisecond {
		t.Errorf("slowest reply to the normal miner while jobs flowed: %v; want under 500ms", worst)
	}
	// The normal miner got every job.
	got := 0
	for _, m := range normal.notes {
		if m.Method == "mining.notify" {
			got++
		}
	}
	for {
		m, err := normal.read(300 * time.Millisecond)
		if err != nil {
			break
		}
		if m.Method == "mining.notify" {
			got++
		}
	}
	if got != sent {
		t.Errorf("the normal miner got %d jobs of %d sent; want all", got, sent)
	}
	t.Logf("%d jobs sent; slow consumer closed; normal miner's slowest of %d replies %v", sent, pings, worst)
	if n := closedCount(t, h.srv, CloseSlowConsumer); n != 1 {
		t.Errorf("slow consumers closed: %v; want 1", n)
	}
	h.stillMining(t)
}

// TestHostileHalfLine: half a line, then silence, is closed when the read idle
// timeout passes, not before.
func TestHostileHalfLine(t *testing.T) {
	// The idle timeout applies to the normal miner too: long enough that a miner
	// submitting about ten shares a second is never silent that long, even starved.
	const idle = 1500 * time.Millisecond
	h := newHostileProxy(t, Config{ReadIdleTimeout: idle})
	c := dialRawMiner(t, h.srv.Addr().String())
	c.send(`{"id":1,"method":"mining.ping","params":[]}`)
	c.reply("1")
	start := time.Now()
	c.nc.Write([]byte(`{"id":2,"method":"mining.pi`))
	c.expectEOF(5 * time.Second)
	if el := time.Since(start); el < idle-50*time.Millisecond || el > idle+time.Second {
		t.Errorf("closed %v after the half line; want after the idle timeout, %v", el, idle)
	}
	waitClosedCount(t, h.srv, CloseReadIdle, 1)
	h.stillMining(t)
}

// TestHostileUnauthorizedWorker: a worker outside AllowWorkers gets its error, then
// the close.
func TestHostileUnauthorizedWorker(t *testing.T) {
	h := newHostileProxy(t, Config{AllowWorkers: []string{"farm"}})
	c := dialRawMiner(t, h.srv.Addr().String())
	c.send(`{"id":1,"method":"mining.authorize","params":["intruder.rig1","x"]}`)
	wantRawError(t, c.reply("1"), 24, "Unauthorized worker")
	c.expectEOF(rawWait)
	waitClosedCount(t, h.srv, CloseUnauthorized, 1)
	h.stillMining(t)
}
