package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// testWait bounds every wait in these tests.
const testWait = 3 * time.Second

// fakePool is a scripted pool on loopback: the test reads the proxy's requests and
// writes the replies it wants, byte for byte.
type fakePool struct {
	t     *testing.T
	ln    net.Listener
	conns chan net.Conn
}

func newFakePool(t *testing.T) *fakePool {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startFakePool(t, ln)
}

func startFakePool(t *testing.T, ln net.Listener) *fakePool {
	p := &fakePool{t: t, ln: ln, conns: make(chan net.Conn, 8)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-p.conns:
				c.Close()
			default:
				return
			}
		}
	})
	return p
}

// config returns an upstream config for the pool with short timeouts.
func (p *fakePool) config() upstreamConfig {
	return upstreamConfig{
		Pool:          PoolURL{Addr: p.ln.Addr().String(), User: "acct", Password: "x"},
		Agent:         "test/1",
		DialTimeout:   testWait,
		JobTimeout:    time.Minute,
		SubmitTimeout: time.Minute,
		WriteTimeout:  testWait,
	}
}

type dialResult struct {
	u   *upstream
	err error
}

// dial starts dialUpstream in the background: the test scripts the pool meanwhile.
func (p *fakePool) dial(cfg upstreamConfig, ev upstreamEvents) <-chan dialResult {
	ch := make(chan dialResult, 1)
	go func() {
		u, err := dialUpstream(context.Background(), cfg, ev)
		ch <- dialResult{u, err}
	}()
	return ch
}

// accept returns the next connection the proxy opened.
func (p *fakePool) accept() *fakeConn {
	p.t.Helper()
	select {
	case c := <-p.conns:
		p.t.Cleanup(func() { c.Close() })
		return &fakeConn{t: p.t, c: c, r: bufio.NewReader(c)}
	case <-time.After(testWait):
		p.t.Fatal("the proxy did not connect")
		return nil
	}
}

func waitDial(t *testing.T, ch <-chan dialResult) (*upstream, error) {
	t.Helper()
	select {
	case r := <-ch:
		if r.u != nil {
			t.Cleanup(func() { r.u.close(upstreamCloseShutdown) })
		}
		return r.u, r.err
	case <-time.After(2 * testWait):
		t.Fatal("dialUpstream did not return")
		return nil, nil
	}
}

// fakeConn is one scripted pool connection.
type fakeConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// fakeMsg is a line from the proxy, decoded with encoding/json (independent of the
// stratum package under test).
type fakeMsg struct {
	ID     json.RawMessage   `json:"id"`
	Method string            `json:"method"`
	Params []json.RawMessage `json:"params"`
	Result json.RawMessage   `json:"result"`
	Error  json.RawMessage   `json:"error"`
	raw    string
}

func (m *fakeMsg) param(i int) string {
	if i >= len(m.Params) {
		return "<missing>"
	}
	var s string
	if err := json.Unmarshal(m.Params[i], &s); err != nil {
		return string(m.Params[i])
	}
	return s
}

func (c *fakeConn) read() fakeMsg {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(testWait))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("pool read: %v", err)
	}
	var m fakeMsg
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		c.t.Fatalf("pool read %q: %v", line, err)
	}
	m.raw = strings.TrimSpace(line)
	return m
}

// send writes lines. A failed write is only logged: the proxy may rightly have
// hung up already, and what the test checks shows up elsewhere.
func (c *fakeConn) send(lines ...string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(testWait))
	if _, err := io.WriteString(c.c, strings.Join(lines, "\n")+"\n"); err != nil {
		c.t.Logf("pool write: %v", err)
	}
}

// expectEOF waits for the proxy to close the connection.
func (c *fakeConn) expectEOF() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(testWait))
	for {
		if _, err := c.r.ReadString('\n'); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return
			}
			c.t.Fatalf("pool: want EOF, got %v", err)
		}
	}
}

// fakeHandshake scripts the pool's side of the handshake.
type fakeHandshake struct {
	configure string   // the configure result JSON; "" sends no answer
	subscribe string   // the whole subscribe answer line (%s is the id); default a normal result
	xnsub     string   // the extranonce.subscribe result JSON; "" sends no answer
	early     []string // lines sent before the authorize answer
	authorize string   // the whole authorize answer line (%s is the id); default true
}

const (
	testEn1       = "f1ad9a67"
	testSubscribe = `{"id":%s,"result":[[["mining.set_difficulty","s1"],["mining.notify","s1"]],"` + testEn1 + `",8],"error":null}`
)

// handshake reads every opening request before answering any (so the proxy must
// pipeline them) and answers as h says. It returns the requests in order.
func (c *fakeConn) handshake(h fakeHandshake) []fakeMsg {
	c.t.Helper()
	var reqs []fakeMsg
	for len(reqs) == 0 || reqs[len(reqs)-1].Method != "mining.authorize" {
		reqs = append(reqs, c.read())
		if len(reqs) > 4 {
			c.t.Fatalf("too many opening requests: %v", reqs)
		}
	}
	for _, r := range reqs {
		id := string(r.ID)
		switch r.Method {
		case "mining.configure":
			if h.configure != "" {
				c.send(fmt.Sprintf(`{"id":%s,"result":%s,"error":null}`, id, h.configure))
			}
		case "mining.subscribe":
			c.send(withID(orDefault(h.subscribe, testSubscribe), id))
		case "mining.extranonce.subscribe":
			if h.xnsub != "" {
				c.send(fmt.Sprintf(`{"id":%s,"result":%s,"error":null}`, id, h.xnsub))
			}
		case "mining.authorize":
			if len(h.early) > 0 {
				c.send(h.early...)
			}
			c.send(withID(orDefault(h.authorize, `{"id":%s,"result":true,"error":null}`), id))
		default:
			c.t.Fatalf("unexpected opening request %s", r.raw)
		}
	}
	return reqs
}

// withID puts the request id into a scripted answer at %s (if it has one).
func withID(line, id string) string {
	return strings.Replace(line, "%s", id, 1)
}

// notifyLine is a mining.notify the stratum package accepts.
func notifyLine(id string, clean bool) string {
	return fmt.Sprintf(`{"id":null,"method":"mining.notify","params":["%s","%s","01000000010000","ffffffff00",[],"20000000","1d00ffff","679ac169",%t]}`,
		id, strings.Repeat("00", 32), clean)
}

// recorder records an upstream's events as strings, in order.
type recorder struct {
	events  chan string
	closes  chan closeEvent
	nclosed atomic.Int32
}

type closeEvent struct {
	reason upstreamCloseReason
	err    error
}

func newRecorder() *recorder {
	return &recorder{events: make(chan string, 1024), closes: make(chan closeEvent, 4)}
}

func (r *recorder) upstreamJob(u *upstream, j *stratum.Job) {
	r.events <- fmt.Sprintf("job %s clean=%t", j.ID, j.Clean)
}
func (r *recorder) upstreamDifficulty(u *upstream, d float64) { r.events <- fmt.Sprintf("diff %g", d) }
func (r *recorder) upstreamExtranonce(u *upstream, en1 []byte, n int) {
	r.events <- fmt.Sprintf("extranonce %x %d", en1, n)
}
func (r *recorder) upstreamVersionMask(u *upstream, mask uint32) {
	r.events <- fmt.Sprintf("mask %08x", mask)
}
func (r *recorder) upstreamClosed(u *upstream, reason upstreamCloseReason, err error) {
	r.nclosed.Add(1)
	r.closes <- closeEvent{reason, err}
}

// expect checks the next events.
func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-r.events:
			if got != w {
				t.Fatalf("event %q; want %q", got, w)
			}
		case <-time.After(testWait):
			t.Fatalf("no event; want %q", w)
		}
	}
}

// closed waits for the close and checks it came exactly once, last.
func (r *recorder) closed(t *testing.T, u *upstream) closeEvent {
	t.Helper()
	select {
	case e := <-r.closes:
		select {
		case <-u.done():
		case <-time.After(testWait):
			t.Fatal("upstream goroutines did not exit")
		}
		if n := r.nclosed.Load(); n != 1 {
			t.Fatalf("upstreamClosed called %d times; want 1", n)
		}
		select {
		case ev := <-r.events:
			t.Fatalf("event %q after the close", ev)
		default:
		}
		return e
	case <-time.After(testWait):
		t.Fatal("upstream did not close")
		return closeEvent{}
	}
}

func TestUpstreamHandshake(t *testing.T) {
	p := newFakePool(t)
	rec := newRecorder()
	cfg := p.config()
	cfg.VersionMask = 0x1fffe000
	ch := p.dial(cfg, rec)
	c := p.accept()
	reqs := c.handshake(fakeHandshake{
		configure: `{"version-rolling":true,"version-rolling.mask":"ffffffff"}`,
		xnsub:     `true`,
		early: []string{
			`{"id":null,"method":"mining.set_difficulty","params":[2048]}`,
			notifyLine("j1", true),
			notifyLine("j2", false),
		},
	})
	var methods []string
	ids := map[string]bool{}
	for _, r := range reqs {
		methods = append(methods, r.Method)
		if _, err := strconv.ParseUint(string(r.ID), 10, 64); err != nil || ids[string(r.ID)] {
			t.Errorf("request id %s: want a fresh number", r.ID)
		}
		ids[string(r.ID)] = true
	}
	if got, want := strings.Join(methods, ","), "mining.configure,mining.subscribe,mining.extranonce.subscribe,mining.authorize"; got != want {
		t.Fatalf("opening requests %s; want %s", got, want)
	}
	if !strings.Contains(reqs[0].raw, `"version-rolling.mask":"1fffe000"`) {
		t.Errorf("configure %s does not ask for mask 1fffe000", reqs[0].raw)
	}
	if got := reqs[1].param(0); got != "test/1" || len(reqs[1].Params) != 1 {
		t.Errorf("subscribe params %s; want just the agent", reqs[1].raw)
	}
	if got := reqs[3].param(0) + ":" + reqs[3].param(1); got != "acct:x" {
		t.Errorf("authorize %s; want acct:x", got)
	}

	u, err := waitDial(t, ch)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(u.Extranonce1); got != testEn1 || u.Extranonce2Size != 8 {
		t.Errorf("extranonce %s/%d; want %s/8", got, u.Extranonce2Size, testEn1)
	}
	if u.SessionID != "s1" || u.Resumed {
		t.Errorf("session %q resumed %t; want s1, false", u.SessionID, u.Resumed)
	}
	if got := u.versionMask(); got != 0x1fffe000 {
		t.Errorf("version mask %08x; want 1fffe000 (pool's ffffffff & ours)", got)
	}
	if got := u.difficulty(); got != 2048 {
		t.Errorf("difficulty %g; want 2048", got)
	}
	rec.expect(t, "diff 2048", "job j1 clean=true", "job j2 clean=false")

	c.send(`{"id":null,"method":"mining.set_version_mask","params":["1ff00000"]}`)
	rec.expect(t, "mask 1ff00000")
	if got := u.versionMask(); got != 0x1ff00000 {
		t.Errorf("version mask after set_version_mask %08x; want 1ff00000", got)
	}
	c.send(`{"id":null,"method":"mining.set_extranonce","params":["08000002",4]}`,
		`{"id":null,"method":"mining.set_difficulty","params":[0.5]}`,
		notifyLine("j3", true))
	rec.expect(t, "extranonce 08000002 4", "diff 0.5", "job j3 clean=true")
	if got := u.difficulty(); got != 0.5 {
		t.Errorf("difficulty %g; want 0.5", got)
	}

	u.close(upstreamCloseShutdown)
	u.close(upstreamCloseProtocol) // idempotent: the first reason stands
	if e := rec.closed(t, u); e.reason != upstreamCloseShutdown {
		t.Errorf("close reason %v; want shutdown", e.reason)
	}
	c.expectEOF()
	st := u.snapshot()
	if st.BytesIn == 0 || st.BytesOut == 0 {
		t.Errorf("bytes in %d out %d; want both counted", st.BytesIn, st.BytesOut)
	}
}

func TestUpstreamConfigure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ask       uint32
		configure string // configure result; "" = no answer
		late      bool   // answer configure after authorize
		want      uint32
	}{
		{name: "granted", ask: 0x1fffe000, configure: `{"version-rolling":true,"version-rolling.mask":"1fffe000"}`, want: 0x1fffe000},
		{name: "narrower", ask: 0x1fffe000, configure: `{"version-rolling":true,"version-rolling.mask":"00ffe000"}`, want: 0x00ffe000},
		{name: "refused", ask: 0x1fffe000, configure: `{"version-rolling":false}`, want: 0},
		{name: "error", ask: 0x1fffe000, configure: "error", want: 0},
		{name: "ignored", ask: 0x1fffe000, want: 0},
		{name: "late", ask: 0x1fffe000, configure: `{"version-rolling":true,"version-rolling.mask":"1fffe000"}`, late: true, want: 0x1fffe000},
		{name: "not asked", ask: 0, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakePool(t)
			rec := newRecorder()
			cfg := p.config()
			cfg.VersionMask = tc.ask
			ch := p.dial(cfg, rec)
			c := p.accept()
			h := fakeHandshake{configure: tc.configure}
			if tc.configure == "error" || tc.late {
				h.configure = ""
			}
			reqs := c.handshake(h)
			if got := reqs[0].Method == "mining.configure"; got != (tc.ask != 0) {
				t.Fatalf("configure sent %t; want %t", got, tc.ask != 0)
			}
			if tc.configure == "error" {
				c.send(fmt.Sprintf(`{"id":%s,"result":null,"error":[20,"Not supported.",null]}`, reqs[0].ID))
			}
			u, err := waitDial(t, ch)
			if err != nil {
				t.Fatal(err)
			}
			if tc.late {
				if got := u.versionMask(); got != 0 {
					t.Fatalf("version mask before the answer %08x; want 0", got)
				}
				c.send(fmt.Sprintf(`{"id":%s,"result":%s,"error":null}`, reqs[0].ID, tc.configure))
				rec.expect(t, fmt.Sprintf("mask %08x", tc.want))
			}
			// A job after the configure answer: once it is seen, the answer was read.
			c.send(notifyLine("j", true))
			rec.expect(t, "job j clean=true")
			if got := u.versionMask(); got != tc.want {
				t.Errorf("version mask %08x; want %08x", got, tc.want)
			}
		})
	}
}

func TestUpstreamResume(t *testing.T) {
	for _, tc := range []struct {
		name      string
		session   string
		prevEn1   []byte
		subscribe string
		want      bool
		wantSID   string
	}{
		{name: "same extranonce1", session: "ab12cd34",
			subscribe: `{"id":%s,"result":[[["mining.notify","ab12cd34"]],"ab12cd34",8],"error":null}`, want: true, wantSID: "ab12cd34"},
		{name: "no subscription id", session: "ab12cd34",
			subscribe: `{"id":%s,"result":[[],"ab12cd34",8],"error":null}`, want: true, wantSID: "ab12cd34"},
		{name: "new extranonce1", session: "ab12cd34",
			subscribe: `{"id":%s,"result":[[["mining.notify","77770000"]],"77770000",8],"error":null}`, want: false, wantSID: "77770000"},
		{name: "opaque session id", session: "sess-9", prevEn1: []byte{0xab, 0x12},
			subscribe: `{"id":%s,"result":[[["mining.notify","sess-9"]],"ab12",8],"error":null}`, want: true, wantSID: "sess-9"},
		{name: "opaque session id, constant", session: "sess-9",
			subscribe: `{"id":%s,"result":[[["mining.notify","sess-9"]],"ab12",8],"error":null}`, want: false, wantSID: "sess-9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakePool(t)
			cfg := p.config()
			cfg.SessionID, cfg.ResumeExtranonce1 = tc.session, tc.prevEn1
			ch := p.dial(cfg, newRecorder())
			c := p.accept()
			reqs := c.handshake(fakeHandshake{subscribe: tc.subscribe})
			if got := reqs[0].param(1); got != tc.session {
				t.Errorf("subscribe session param %q; want %q", got, tc.session)
			}
			u, err := waitDial(t, ch)
			if err != nil {
				t.Fatal(err)
			}
			if u.Resumed != tc.want || u.SessionID != tc.wantSID {
				t.Errorf("resumed %t session %q; want %t %q", u.Resumed, u.SessionID, tc.want, tc.wantSID)
			}
		})
	}
}

func TestUpstreamRefused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		h         fakeHandshake
		wantInErr string
	}{
		{name: "subscribe error", h: fakeHandshake{subscribe: `{"id":%s,"result":null,"error":[20,"Banned",null]}`}, wantInErr: "pool refused mining.subscribe: [20] Banned"},
		{name: "subscribe garbage", h: fakeHandshake{subscribe: `{"id":%s,"result":"nope","error":null}`}, wantInErr: "mining.subscribe"},
		{name: "authorize false", h: fakeHandshake{authorize: `{"id":%s,"result":false,"error":null}`}, wantInErr: "mining.authorize: no reason given"},
		{name: "authorize error", h: fakeHandshake{authorize: `{"id":%s,"result":null,"error":[24,"Unauthorized worker",null]}`}, wantInErr: "pool refused mining.authorize: [24] Unauthorized worker"},
		{name: "authorize ckpool", h: fakeHandshake{authorize: `{"id":%s,"result":false,"error":null,"reject-reason":"Invalid username"}`}, wantInErr: "Invalid username"},
		{name: "reconnect before authorize", h: fakeHandshake{authorize: `{"id":null,"method":"client.reconnect","params":["elsewhere",1,0]}`}, wantInErr: "reconnect to elsewhere:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakePool(t)
			rec := newRecorder()
			ch := p.dial(p.config(), rec)
			c := p.accept()
			c.handshake(tc.h)
			_, err := waitDial(t, ch)
			if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Fatalf("dial error %v; want one containing %q", err, tc.wantInErr)
			}
			if !strings.Contains(err.Error(), p.ln.Addr().String()) {
				t.Errorf("dial error %v does not name the pool", err)
			}
			c.expectEOF()
			if n := rec.nclosed.Load(); n != 0 {
				t.Errorf("upstreamClosed called %d times for a failed dial; want 0", n)
			}
		})
	}
}

func TestUpstreamDialTimeout(t *testing.T) {
	p := newFakePool(t)
	cfg := p.config()
	cfg.DialTimeout = 200 * time.Millisecond
	ch := p.dial(cfg, newRecorder())
	c := p.accept()
	c.read() // reads, never answers
	start := time.Now()
	_, err := waitDial(t, ch)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial error %v; want a deadline", err)
	}
	if d := time.Since(start); d > testWait {
		t.Errorf("dial took %v; want about 200ms", d)
	}
}

// dialed returns an upstream that has done a plain handshake, and the pool's side.
func dialed(t *testing.T, cfg func(*upstreamConfig)) (*upstream, *fakeConn, *recorder) {
	t.Helper()
	p := newFakePool(t)
	rec := newRecorder()
	c := p.config()
	if cfg != nil {
		cfg(&c)
	}
	ch := p.dial(c, rec)
	fc := p.accept()
	fc.handshake(fakeHandshake{})
	u, err := waitDial(t, ch)
	if err != nil {
		t.Fatal(err)
	}
	return u, fc, rec
}

// results collects submit answers by share index, checking each comes once.
type results struct {
	t    *testing.T
	mu   sync.Mutex
	got  map[int]submitResult
	seen map[int]int
	ch   chan int
}

func newResults(t *testing.T) *results {
	return &results{t: t, got: map[int]submitResult{}, seen: map[int]int{}, ch: make(chan int, 4096)}
}

func (r *results) done(i int) func(submitResult) {
	return func(res submitResult) {
		r.mu.Lock()
		r.got[i] = res
		r.seen[i]++
		r.mu.Unlock()
		r.ch <- i
	}
}

// wait waits for n answers and checks none came twice.
func (r *results) wait(n int) map[int]submitResult {
	r.t.Helper()
	for range n {
		select {
		case <-r.ch:
		case <-time.After(testWait):
			r.t.Fatalf("a submit was never answered")
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, k := range r.seen {
		if k != 1 {
			r.t.Errorf("submit %d answered %d times; want 1", i, k)
		}
	}
	return r.got
}

func testSubmit(nonce uint32) *stratum.Submit {
	return &stratum.Submit{
		Worker: []byte("miner.1"), JobID: []byte("6798a1"), Extranonce2: []byte("b660000000000000"),
		NTime: 0x679ac169, Nonce: nonce, VersionBits: 0x0e596000, HasVersionBits: true,
	}
}

func TestUpstreamSubmit(t *testing.T) {
	u, c, _ := dialed(t, nil)
	res := newResults(t)
	for i := range 4 {
		u.submit([]byte("acct.proxy"), testSubmit(uint32(i)), res.done(i))
	}
	var reqs []fakeMsg
	seen := map[string]bool{}
	for range 4 {
		r := c.read()
		if r.Method != "mining.submit" || r.param(0) != "acct.proxy" {
			t.Fatalf("got %s; want a submit under acct.proxy", r.raw)
		}
		if _, err := strconv.ParseUint(string(r.ID), 10, 64); err != nil || seen[string(r.ID)] {
			t.Fatalf("submit id %s: want a fresh number of the proxy's", r.ID)
		}
		seen[string(r.ID)] = true
		reqs = append(reqs, r)
	}
	want := fmt.Sprintf(`{"id":%s,"method":"mining.submit","params":["acct.proxy","6798a1","b660000000000000","679ac169","00000000","0e596000"]}`, reqs[0].ID)
	if reqs[0].raw != want {
		t.Errorf("submit line\n%s\nwant\n%s", reqs[0].raw, want)
	}
	// Answered in reverse order, each in a different form.
	c.send(
		fmt.Sprintf(`{"id":%s,"result":true,"error":null}`, reqs[3].ID),
		fmt.Sprintf(`{"id":%s,"result":false,"error":null,"reject-reason":"Above target"}`, reqs[2].ID),
		fmt.Sprintf(`{"id":%s,"result":null,"error":"Stale share"}`, reqs[1].ID),
		fmt.Sprintf(`{"id":%s,"result":null,"error":[23,"Low difficulty share",null]}`, reqs[0].ID),
	)
	got := res.wait(4)
	for i, w := range []struct {
		accepted bool
		code     int
		reason   string
	}{{false, 23, "Low difficulty share"}, {false, 0, "Stale share"}, {false, 0, "Above target"}, {true, 0, ""}} {
		r := got[i]
		if r.Accepted != w.accepted || r.Reject.Code != w.code || r.Reject.Reason != w.reason || r.Err != nil {
			t.Errorf("submit %d: accepted %t reject [%d %q] err %v; want %t [%d %q]",
				i, r.Accepted, r.Reject.Code, r.Reject.Reason, r.Err, w.accepted, w.code, w.reason)
		}
	}
	st := u.snapshot()
	if st.SubmitsSent != 4 || st.Accepted != 1 || st.Rejected != 3 || st.Timeouts != 0 ||
		st.RejectReasons["Low difficulty share"] != 1 || st.RejectReasons["Above target"] != 1 || st.RejectReasons["Stale share"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestUpstreamSubmitTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	u, c, rec := dialed(t, func(c *upstreamConfig) { c.SubmitTimeout = timeout })
	res := newResults(t)
	start := time.Now()
	u.submit([]byte("acct"), testSubmit(0), res.done(0))
	u.submit([]byte("acct"), testSubmit(1), res.done(1))
	r0, r1 := c.read(), c.read()
	_ = r0
	c.send(fmt.Sprintf(`{"id":%s,"result":true,"error":null}`, r1.ID))
	res.wait(1)
	time.Sleep(timeout / 3)
	u.submit([]byte("acct"), testSubmit(2), res.done(2))
	var authReason string
	authDone := make(chan struct{})
	u.authorizeWorker("acct.w1", "", func(ok bool, reason string) { authReason = reason; close(authDone) })

	e := rec.closed(t, u)
	if e.reason != upstreamCloseSubmitTimeout {
		t.Fatalf("close reason %v (%v); want submit timeout", e.reason, e.err)
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("closed after %v; want after %v", d, timeout)
	}
	got := res.wait(2)
	if !got[1].Accepted {
		t.Errorf("submit 1 %+v; want accepted", got[1])
	}
	if !errors.Is(got[0].Err, errUpstreamSubmitTimeout) {
		t.Errorf("submit 0 err %v; want a timeout", got[0].Err)
	}
	if !errors.Is(got[2].Err, errUpstreamClosed) {
		t.Errorf("submit 2 err %v; want closed", got[2].Err)
	}
	<-authDone
	if !strings.Contains(authReason, "closed") {
		t.Errorf("authorizeWorker reason %q; want closed", authReason)
	}
	// After the close, a submit fails at once.
	u.submit([]byte("acct"), testSubmit(3), res.done(3))
	if got := res.wait(1)[3]; !errors.Is(got.Err, errUpstreamClosed) {
		t.Errorf("submit after close err %v; want closed", got.Err)
	}
	st := u.snapshot()
	if st.SubmitsSent != 3 || st.Accepted != 1 || st.Timeouts != 1 || st.Lost != 1 {
		t.Errorf("stats %+v; want 3 sent, 1 accepted, 1 timeout, 1 lost", st)
	}
	c.expectEOF()
}

// logLines returns the lines of a log holding substr.
func logLines(log *stratumtest.SyncBuffer, substr string) []string {
	var out []string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func TestUpstreamJobTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	var logs stratumtest.SyncBuffer
	u, c, rec := dialed(t, func(c *upstreamConfig) {
		c.JobTimeout = timeout
		c.Log = zerolog.New(&logs).With().Str("pool", "stratum+tcp://acct@fake").Logger()
	})
	start := time.Now()
	for i := range 3 {
		time.Sleep(timeout / 2)
		c.send(notifyLine(strconv.Itoa(i), false))
	}
	rec.expect(t, "job 0 clean=false", "job 1 clean=false", "job 2 clean=false")
	e := rec.closed(t, u)
	if e.reason != upstreamCloseJobTimeout {
		t.Fatalf("close reason %v (%v); want job timeout", e.reason, e.err)
	}
	if d := time.Since(start); d < 3*timeout/2+timeout {
		t.Errorf("closed after %v; jobs came every %v, want no close before %v", d, timeout/2, 3*timeout/2+timeout)
	}
	if l := logLines(&logs, "upstream closed"); len(l) != 1 || !strings.Contains(l[0], `"reason":"job_timeout"`) ||
		!strings.Contains(l[0], `"pool":"stratum+tcp://acct@fake"`) || !strings.Contains(l[0], `"level":"warn"`) {
		t.Errorf("close log lines %q; want one warning with the pool and reason job_timeout", l)
	}
	c.expectEOF()
}

func TestUpstreamReconnect(t *testing.T) {
	for _, tc := range []struct {
		params string
		want   upstreamReconnect
		addr   string
	}{
		{`["pool2.example",3334,5]`, upstreamReconnect{Host: "pool2.example", Port: 3334, Wait: 5 * time.Second}, "pool2.example:3334"},
		{`["pool2.example","3335"]`, upstreamReconnect{Host: "pool2.example", Port: 3335}, "pool2.example:3335"},
		{`[]`, upstreamReconnect{}, "cur.example:3333"},
	} {
		t.Run(tc.params, func(t *testing.T) {
			u, c, rec := dialed(t, nil)
			c.send(`{"id":null,"method":"client.reconnect","params":` + tc.params + `}`)
			e := rec.closed(t, u)
			var r *upstreamReconnect
			if e.reason != upstreamCloseReconnect || !errors.As(e.err, &r) {
				t.Fatalf("close %v %v; want reconnect", e.reason, e.err)
			}
			if *r != tc.want || r.addr("cur.example:3333") != tc.addr {
				t.Errorf("reconnect %+v to %s; want %+v to %s", *r, r.addr("cur.example:3333"), tc.want, tc.addr)
			}
			if e.reason.unhealthy() {
				t.Error("a requested reconnect counts as unhealthy")
			}
			c.expectEOF()
		})
	}
}

func TestUpstreamPoolRequests(t *testing.T) {
	u, c, rec := dialed(t, nil)
	c.send(
		`{"id":"gv","method":"client.get_version","params":[]}`,
		`{"id":null,"method":"mining.ping","params":[]}`, // a notification: no answer
		`{"id":7,"method":"mining.ping","params":[]}`,
		`{"id":8,"method":"client.show_message","params":["maintenance at noon"]}`,
		`{"id":null,"method":"mining.frobnicate","params":[]}`, // unknown notification: ignored
		`{"id":9,"method":"mining.frobnicate","params":[1]}`,
		`{"id":10,"method":"mining.submit","params":[]}`, // a miner's method, from the pool
	)
	for _, want := range []string{
		`{"id":"gv","result":"test/1","error":null}`,
		`{"id":7,"result":"pong","error":null}`,
		`{"id":8,"result":true,"error":null}`,
		`{"id":9,"result":null,"error":[-32601,"Method not found",null]}`,
		`{"id":10,"result":null,"error":[-32601,"Method not found",null]}`,
	} {
		if got := c.read().raw; got != want {
			t.Errorf("answer %s; want %s", got, want)
		}
	}
	c.send(notifyLine("still-up", true))
	rec.expect(t, "job still-up clean=true")
	if u.closed.Load() {
		t.Error("upstream closed")
	}
}

func TestUpstreamClose(t *testing.T) {
	for _, tc := range []struct {
		name   string
		line   string
		eof    bool
		reason upstreamCloseReason
	}{
		{name: "eof", eof: true, reason: upstreamClosePool},
		{name: "long line", line: `{"id":null,"method":"mining.notify","params":["` + strings.Repeat("a", upstreamMaxLineSize) + `"]}`, reason: upstreamCloseProtocol},
		{name: "not json", line: "\x16\x03\x01\x02\x00", reason: upstreamCloseProtocol},
		{name: "bad set_extranonce", line: `{"id":null,"method":"mining.set_extranonce","params":["xyz",4]}`, reason: upstreamCloseProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, c, rec := dialed(t, nil)
			res := newResults(t)
			u.submit([]byte("acct"), testSubmit(0), res.done(0))
			c.read()
			if tc.eof {
				c.c.Close()
			} else {
				c.send(tc.line)
			}
			if e := rec.closed(t, u); e.reason != tc.reason {
				t.Errorf("close reason %v (%v); want %v", e.reason, e.err, tc.reason)
			}
			if got := res.wait(1)[0]; !errors.Is(got.Err, errUpstreamClosed) {
				t.Errorf("pending submit err %v; want closed", got.Err)
			}
		})
	}
}

// TestUpstreamIgnoresBadMessages checks that messages the proxy cannot use, short
// of a broken stream, do not cost the connection.
func TestUpstreamIgnoresBadMessages(t *testing.T) {
	u, c, rec := dialed(t, nil)
	c.send(
		`{"id":null,"method":"mining.notify","params":["short"]}`,
		`{"id":null,"method":"mining.set_difficulty","params":[-1]}`,
		`{"id":null,"method":"mining.set_version_mask","params":["zz"]}`,
		`{"id":12345,"result":true,"error":null}`, // an id never sent
		`{"id":"x","result":true,"error":null}`,
		`{"jsonrpc":"2.0"}`,
		notifyLine("good", false),
	)
	rec.expect(t, "job good clean=false")
	if u.closed.Load() {
		t.Error("upstream closed")
	}
}

func TestUpstreamAuthorizeWorker(t *testing.T) {
	u, c, _ := dialed(t, nil)
	type answer struct {
		ok     bool
		reason string
	}
	answers := make(chan answer, 2)
	done := func(ok bool, reason string) { answers <- answer{ok, reason} }
	u.authorizeWorker("acct.w1", "p1", done)
	u.authorizeWorker("acct.w2", "", done)
	a, b := c.read(), c.read()
	if a.Method != "mining.authorize" || a.param(0) != "acct.w1" || a.param(1) != "p1" || b.param(0) != "acct.w2" {
		t.Fatalf("got %s and %s; want authorizes of acct.w1 and acct.w2", a.raw, b.raw)
	}
	c.send(fmt.Sprintf(`{"id":%s,"result":null,"error":[24,"Unknown worker",null]}`, b.ID),
		fmt.Sprintf(`{"id":%s,"result":true,"error":null}`, a.ID))
	for _, want := range []answer{{false, "[24] Unknown worker"}, {true, ""}} {
		select {
		case got := <-answers:
			if got != want {
				t.Errorf("authorize answer %+v; want %+v", got, want)
			}
		case <-time.After(testWait):
			t.Fatal("authorizeWorker not answered")
		}
	}
}

func TestUpstreamConcurrentSubmits(t *testing.T) {
	const goroutines, each = 8, 50
	u, c, rec := dialed(t, nil)
	res := newResults(t)
	go func() { // the pool accepts even nonces, rejects odd ones
		for range goroutines * each {
			c.c.SetReadDeadline(time.Now().Add(testWait))
			line, err := c.r.ReadString('\n')
			if err != nil {
				return
			}
			var m fakeMsg
			json.Unmarshal([]byte(line), &m)
			if strings.HasSuffix(m.param(4), "0") || strings.HasSuffix(m.param(4), "2") {
				fmt.Fprintf(c.c, "{\"id\":%s,\"result\":true,\"error\":null}\n", m.ID)
			} else {
				fmt.Fprintf(c.c, "{\"id\":%s,\"result\":null,\"error\":[21,\"Job not found\",null]}\n", m.ID)
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				n := g*each + i
				u.submit([]byte("acct"), testSubmit(uint32(n%4)), res.done(n))
			}
		})
	}
	wg.Wait()
	got := res.wait(goroutines * each)
	var acc int
	for n, r := range got {
		if r.Err != nil || r.Accepted != (n%4 == 0 || n%4 == 2) {
			t.Fatalf("submit %d: %+v", n, r)
		}
		if r.Accepted {
			acc++
		}
	}
	st := u.snapshot()
	if st.SubmitsSent != goroutines*each || st.Accepted != uint64(acc) || st.RejectReasons["Job not found"] != uint64(goroutines*each-acc) {
		t.Errorf("stats %+v", st)
	}
	u.close(upstreamCloseShutdown)
	rec.closed(t, u)
}

func TestUpstreamWriteStall(t *testing.T) {
	u, c, rec := dialed(t, func(c *upstreamConfig) { c.WriteTimeout = 200 * time.Millisecond })
	_ = c // the pool stops reading
	big := []byte(strings.Repeat("w", 60<<10))
	res := newResults(t)
	deadline := time.Now().Add(2 * testWait)
	n := 0
	for !u.closed.Load() && time.Now().Before(deadline) {
		u.submit(big, testSubmit(0), res.done(n))
		n++
	}
	e := rec.closed(t, u)
	if e.reason != upstreamCloseWriteStall {
		t.Fatalf("close reason %v (%v) after %d submits; want write stall", e.reason, e.err, n)
	}
	for _, r := range res.wait(n) {
		if r.Err == nil {
			t.Fatalf("a submit to a stalled pool got %+v; want an error", r)
		}
	}
}

// selfSigned returns a self-signed certificate for 127.0.0.1 and the SHA-256 of
// its SubjectPublicKeyInfo.
func selfSigned(t *testing.T) (tls.Certificate, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fake pool"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pin := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, cert, pin[:]
}

func TestUpstreamTLS(t *testing.T) {
	cert, x, pin := selfSigned(t)
	roots := x509.NewCertPool()
	roots.AddCert(x)
	wrongPin := sha256.Sum256([]byte("another key"))
	for _, tc := range []struct {
		name    string
		roots   bool
		pin     []byte
		wantErr string // "" = the handshake succeeds
	}{
		{name: "system roots", wantErr: "certificate"},
		{name: "trusted root", roots: true},
		{name: "right pin", roots: true, pin: pin},
		{name: "wrong pin", roots: true, pin: wrongPin[:], wantErr: errUpstreamPin.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
			if err != nil {
				t.Fatal(err)
			}
			p := startFakePool(t, ln)
			cfg := p.config()
			cfg.Pool.TLS, cfg.Pool.Pin = true, tc.pin
			if tc.roots {
				cfg.tls = &tls.Config{RootCAs: roots}
			}
			rec := newRecorder()
			ch := p.dial(cfg, rec)
			c := p.accept()
			if tc.wantErr != "" {
				go c.c.(*tls.Conn).Handshake() // the pool's side; the proxy refuses it
				_, err := waitDial(t, ch)
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("dial error %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			c.handshake(fakeHandshake{early: []string{notifyLine("tls", true)}})
			u, err := waitDial(t, ch)
			if err != nil {
				t.Fatal(err)
			}
			rec.expect(t, "job tls clean=true")
			u.close(upstreamCloseShutdown)
			rec.closed(t, u)
		})
	}
}

func TestUpstreamEarlyFlood(t *testing.T) {
	p := newFakePool(t)
	ch := p.dial(p.config(), newRecorder())
	c := p.accept()
	reqs := []fakeMsg{c.read(), c.read(), c.read()} // subscribe, extranonce.subscribe, authorize
	lines := []string{fmt.Sprintf(testSubscribe, reqs[0].ID)}
	for i := range upstreamMaxEarlyEvents + 1 {
		lines = append(lines, notifyLine(strconv.Itoa(i), false))
	}
	c.send(lines...)
	if _, err := waitDial(t, ch); err == nil || !strings.Contains(err.Error(), "before authorize") {
		t.Fatalf("dial error %v; want too many messages before authorize", err)
	}
}

func TestParseUpstreamID(t *testing.T) {
	f := func(in string, want uint64, wantOK bool) {
		t.Helper()
		got, ok := parseUpstreamID([]byte(in))
		if got != want || ok != wantOK {
			t.Errorf("parseUpstreamID(%s) = %d, %t; want %d, %t", in, got, ok, want, wantOK)
		}
	}
	f("1", 1, true)
	f("18446744073709551615", 1<<64-1, true)
	f("18446744073709551616", 0, false)
	f(`"42"`, 42, true)
	f("null", 0, false)
	f(`""`, 0, false)
	f("-1", 0, false)
	f("1.0", 0, false)
}

// TestUpstreamSimulatedPool runs the upstream against stratumtest's pool, an
// independent implementation that sends difficulty and a job before answering
// authorize, as ckpool does.
func TestUpstreamSimulatedPool(t *testing.T) {
	pool, err := stratumtest.NewPool(stratumtest.PoolConfig{Difficulty: 2, VersionMask: 0x1fffe000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	cfg := upstreamConfig{
		Pool:        PoolURL{Addr: pool.Addr(), User: "acct", Password: "x"},
		Agent:       "test/1",
		VersionMask: 0xffffffff,
		DialTimeout: testWait,
	}
	rec := newRecorder()
	u, err := dialUpstream(context.Background(), cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.close(upstreamCloseShutdown) })
	rec.expect(t, "diff 2")
	if ev := <-rec.events; !strings.HasPrefix(ev, "job ") {
		t.Fatalf("event %q; want the first job", ev)
	}
	if got := u.versionMask(); got != 0x1fffe000 {
		t.Errorf("version mask %08x; want 1fffe000", got)
	}

	// A share that almost surely misses difficulty 2 is answered with a reject.
	res := newResults(t)
	j := pool.CurrentJob()
	en2 := strings.Repeat("00", u.Extranonce2Size)
	u.submit([]byte("acct"), &stratum.Submit{JobID: []byte(j.ID), Extranonce2: []byte(en2), NTime: j.NTime, Nonce: 1}, res.done(0))
	if r := res.wait(1)[0]; r.Err != nil || r.Accepted || r.Reject.Reason == "" {
		t.Errorf("submit answered %+v; want a reject with a reason", r)
	}

	pool.Ping()
	pool.GetVersion()
	pool.SetVersionMask(0x00ffe000)
	rec.expect(t, "mask 00ffe000")
	deadline := time.Now().Add(testWait)
	for {
		s := pool.Sessions()
		if len(s) == 1 && s[0].Pongs == 1 && s[0].ClientVersion == "test/1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool sessions %+v; want one that got a pong and our version", s)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The pool drops us; a new connection resumes the session. Its session ids are
	// opaque, so only the extranonce1 given in the config proves the resume.
	pool.DropConnections()
	if e := rec.closed(t, u); e.reason != upstreamClosePool {
		t.Fatalf("close reason %v; want pool closed", e.reason)
	}
	for _, prev := range [][]byte{nil, u.Extranonce1} {
		cfg.SessionID, cfg.ResumeExtranonce1 = u.SessionID, prev
		u2, err := dialUpstream(context.Background(), cfg, newRecorder())
		if err != nil {
			t.Fatal(err)
		}
		if want := prev != nil; u2.Resumed != want || !bytes.Equal(u2.Extranonce1, u.Extranonce1) {
			t.Errorf("resume with extranonce1 %x given: resumed %t extranonce1 %x; want %t, %x",
				prev, u2.Resumed, u2.Extranonce1, want, u.Extranonce1)
		}
		u2.close(upstreamCloseShutdown)
		<-u2.done()
		pool.DropConnections()
	}
}
