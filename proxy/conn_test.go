package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// engPair returns both ends of a loopback TCP connection, the server's first.
func engPair(t testing.TB) (srv, cli *net.TCPConn) {
	t.Helper()
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	d, err := net.Dial("tcp", nl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := nl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); d.Close() })
	return a.(*net.TCPConn), d.(*net.TCPConn)
}

// engFlusher starts a flusher stopped at the end of the test.
func engFlusher(t testing.TB, n int) *flusher {
	fl := newFlusher(n)
	t.Cleanup(fl.stop)
	return fl
}

// engRead runs c.readLoop(handle) and delivers its reason.
func engRead(c *conn, handle func([]byte) bool) <-chan CloseReason {
	done := make(chan CloseReason, 1)
	go func() { done <- c.readLoop(handle) }()
	return done
}

// engReason waits for a readLoop's reason.
func engReason(t *testing.T, done <-chan CloseReason, within time.Duration) CloseReason {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(within):
		t.Fatalf("readLoop still running after %v", within)
		return CloseNone
	}
}

// engEcho answers every line with "ok:<line>\n".
func engEcho(c *conn) func([]byte) bool {
	var out []byte
	return func(line []byte) bool {
		out = append(append(append(out[:0], "ok:"...), line...), '\n')
		return c.send(out)
	}
}

// writeCounter counts the Write calls reaching the socket.
type writeCounter struct {
	net.Conn
	writes atomic.Int64
}

func (w *writeCounter) Write(b []byte) (int, error) {
	w.writes.Add(1)
	return w.Conn.Write(b)
}

func TestConnCloseReasonNames(t *testing.T) {
	label := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	seen := map[string]bool{}
	for r := range NumCloseReasons {
		s := r.String()
		if !label.MatchString(s) || seen[s] {
			t.Errorf("CloseReason(%d).String() = %q: want a new snake_case label", r, s)
		}
		seen[s] = true
	}
	if got := NumCloseReasons.String(); got != "unknown" {
		t.Errorf("NumCloseReasons.String() = %q; want unknown", got)
	}
	if got, want := CloseTooManyFromAddress.String(), "too_many_from_address"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// chunkReader returns its chunks one Read at a time, then io.EOF.
type chunkReader struct{ chunks []string }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if r.chunks[0] = r.chunks[0][n:]; r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// readAllLines drains l from src and returns the lines and the error that ended it.
func readAllLines(l *lineReader, src io.Reader) ([]string, error) {
	var lines []string
	for {
		line, err := l.next()
		if err != nil {
			return lines, err
		}
		if line != nil {
			lines = append(lines, string(line))
			continue
		}
		if _, err := l.fill(src); err != nil {
			return lines, err
		}
	}
}

func TestConnLineReader(t *testing.T) {
	f := func(max int, chunks []string, want []string, wantErr error) {
		t.Helper()
		l := newLineReader(max)
		got, err := readAllLines(&l, &chunkReader{chunks: append([]string(nil), chunks...)})
		if !errors.Is(err, wantErr) || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%q: got %q, %v; want %q, %v", chunks, got, err, want, wantErr)
		}
	}
	f(100, []string{"{a}\n{b}\r\n"}, []string{"{a}", "{b}"}, io.EOF)
	f(100, []string{"{a", "}", "\r", "\n{b}\n"}, []string{"{a}", "{b}"}, io.EOF)
	f(100, []string{"\n\r\n  \n{a}\n\t\r\n{b}\n"}, []string{"{a}", "{b}"}, io.EOF)
	f(100, []string{"{a}\n{partial"}, []string{"{a}"}, io.EOF)
	f(5, []string{"{abc}\n{abcd}\n"}, []string{"{abc}"}, stratum.ErrLineTooLong)
	f(5, []string{"{abc}\r\n"}, []string{"{abc}"}, io.EOF)
	f(5, []string{"{ab", "cdef", "gh"}, nil, stratum.ErrLineTooLong)
	long := "{" + strings.Repeat("x", 3000) + "}"
	f(4096, []string{long[:700], long[700:1900], long[1900:] + "\r\n{b}\n"}, []string{long, "{b}"}, io.EOF)
	f(3001, []string{long + "\n"}, nil, stratum.ErrLineTooLong)
	f(3002, []string{long + "\r\n"}, []string{long}, io.EOF)
}

func TestConnLineReaderGrowsAndShrinks(t *testing.T) {
	l := newLineReader(8 << 10)
	long := "{" + strings.Repeat("x", 5000) + "}\n"
	src := &chunkReader{chunks: []string{long[:300], long[300:], "{short}\n", "{next}\n"}}
	var lines []string
	for len(lines) < 3 {
		line, err := l.next()
		if err != nil {
			t.Fatal(err)
		}
		if line != nil {
			lines = append(lines, string(line))
			continue
		}
		if _, err := l.fill(src); err != nil {
			t.Fatal(err)
		}
		if len(lines) == 0 && len(l.buf) > 8<<10+2 {
			t.Fatalf("buffer grew to %d; limit is %d", len(l.buf), 8<<10+2)
		}
	}
	if lines[0] != long[:len(long)-1] || lines[1] != "{short}" || lines[2] != "{next}" {
		t.Fatalf("got %.20q…; want the long line, {short}, {next}", lines)
	}
	if len(l.buf) != readBufSize {
		t.Errorf("buffer is %d bytes after the long line; want %d", len(l.buf), readBufSize)
	}
}

// FuzzConnLineReader feeds the input in two reads and compares with a plain split of
// the whole input: complete lines lose one "\r", blank ones are skipped, a complete line
// over the limit or a partial one over the limit and a "\r" stops the stream.
func FuzzConnLineReader(f *testing.F) {
	f.Add([]byte("{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\r\n{\"id\":2}\n"), 17, 64)
	f.Add([]byte("\n\n{a}\r\r\n{b"), 3, 4)
	f.Fuzz(func(t *testing.T, in []byte, cut, limit int) {
		cut = int(uint(cut) % uint(len(in)+1))
		limit = 1 + int(uint(limit)%2000)
		var want []string
		var wantErr error = io.EOF
		parts := bytes.Split(in, []byte("\n"))
		for i, p := range parts {
			if i == len(parts)-1 {
				if len(p) > limit+1 {
					wantErr = stratum.ErrLineTooLong
				}
				break
			}
			p = bytes.TrimSuffix(p, []byte("\r"))
			if len(p) > limit {
				wantErr = stratum.ErrLineTooLong
				break
			}
			if len(bytes.TrimSpace(p)) > 0 {
				want = append(want, string(p))
			}
		}
		l := newLineReader(limit)
		got, err := readAllLines(&l, &chunkReader{chunks: []string{string(in[:cut]), string(in[cut:])}})
		if err != wantErr || strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != len(want) {
			t.Fatalf("limit %d, cut %d: got %q, %v; want %q, %v", limit, cut, got, err, want, wantErr)
		}
	})
}

func TestConnLinesSplitAcrossWrites(t *testing.T) {
	srv, cli := engPair(t)
	c := newConn(srv, 1, connLimits{MaxLineSize: 4096, ReadIdleTimeout: 5 * time.Second}, engFlusher(t, 1))
	got := make(chan string, 10)
	done := engRead(c, func(line []byte) bool { got <- string(line); return true })
	long := `{"id":3,"method":"mining.submit","params":["` + strings.Repeat("a", 1500) + `"]}`
	for _, part := range []string{
		"  \r\n", `{"id":1,"me`, `thod":"mining.subscribe"`, ",\"params\":[]}\r", "\n{\"id\":2}\n\n",
		long[:400], long[400:1000], long[1000:] + "\n",
	} {
		if _, err := cli.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // separate reads on the server
	}
	for _, want := range []string{`{"id":1,"method":"mining.subscribe","params":[]}`, `{"id":2}`, long} {
		select {
		case line := <-got:
			if line != want {
				t.Fatalf("got %.60q; want %.60q", line, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("no line; want %.60q", want)
		}
	}
	cli.Close()
	if r := engReason(t, done, 2*time.Second); r != CloseClientClosed {
		t.Errorf("reason %v; want client_closed", r)
	}
	if c.linesIn != 3 || c.bytesIn == 0 {
		t.Errorf("linesIn %d, bytesIn %d; want 3 and > 0", c.linesIn, c.bytesIn)
	}
}

func TestConnPipelinedRepliesInOneWrite(t *testing.T) {
	srv, cli := engPair(t)
	wc := &writeCounter{Conn: srv}
	c := newConn(wc, 1, connLimits{ReadIdleTimeout: 5 * time.Second}, engFlusher(t, 2))
	echo := engEcho(c)
	var more []bool // whether more was buffered after each line: the session's cue to hold back a flush
	done := engRead(c, func(line []byte) bool {
		more = append(more, c.buffered() > 0)
		return echo(line)
	})
	req := "{\"id\":1,\"method\":\"mining.subscribe\"}\n{\"id\":2,\"method\":\"mining.authorize\"}\n{\"id\":3,\"method\":\"mining.extranonce.subscribe\"}\n"
	if _, err := cli.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	want := "ok:{\"id\":1,\"method\":\"mining.subscribe\"}\nok:{\"id\":2,\"method\":\"mining.authorize\"}\nok:{\"id\":3,\"method\":\"mining.extranonce.subscribe\"}\n"
	cli.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(cli, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got %q; want %q", got, want)
	}
	if n := wc.writes.Load(); n != 1 {
		t.Errorf("%d writes for 3 pipelined replies; want 1", n)
	}
	if fmt.Sprint(more) != "[true true false]" {
		t.Errorf("buffered() > 0 after each line: %v; want [true true false]", more)
	}
	// The flusher counts after its write returns, maybe after the client has read.
	engEventually(t, fmt.Sprintf("bytesOut to reach %d", len(want)), func() bool { return c.bytesOut.Load() == uint64(len(want)) })
	c.close(CloseKicked)
	if r := engReason(t, done, 2*time.Second); r != CloseKicked {
		t.Errorf("reason %v; want kicked", r)
	}
}

func TestConnLineTooLong(t *testing.T) {
	srv, cli := engPair(t)
	c := newConn(srv, 1, connLimits{MaxLineSize: 600, ReadIdleTimeout: 5 * time.Second}, engFlusher(t, 1))
	var lines atomic.Int64
	done := engRead(c, func([]byte) bool { lines.Add(1); return true })
	ok := "{" + strings.Repeat("a", 598) + "}\r\n" // exactly 600 bytes before "\r\n"
	bad := "{" + strings.Repeat("b", 700) + "}\n"
	cli.Write([]byte(ok + bad))
	if r := engReason(t, done, 2*time.Second); r != CloseLineTooLong {
		t.Errorf("reason %v; want line_too_long", r)
	}
	if n := lines.Load(); n != 1 {
		t.Errorf("%d lines handled; want 1 (the 600-byte one)", n)
	}
}

func TestConnNotJSONClosesAtOnce(t *testing.T) {
	// The start of a TLS 1.2 ClientHello: handshake record, version 3.1, length, type 1.
	hello := []byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03}
	for _, tc := range []struct {
		name  string
		first []byte
	}{{"tls", hello}, {"http", []byte("GET / HTTP/1.1\r\n")}, {"space-then-junk", []byte("  \r\n x")}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := engPair(t)
			c := newConn(srv, 1, connLimits{ReadIdleTimeout: 30 * time.Second}, engFlusher(t, 1))
			done := engRead(c, func([]byte) bool { t.Error("handled a line"); return true })
			start := time.Now()
			cli.Write(tc.first)
			cli.SetReadDeadline(time.Now().Add(time.Second))
			_, err := cli.Read(make([]byte, 1))
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("client read: %v; want EOF or reset within 1s", err)
			}
			if r := engReason(t, done, time.Second); r != CloseNotJSON {
				t.Errorf("reason %v; want not_json", r)
			}
			t.Logf("closed after %v (%v)", time.Since(start), err)
		})
	}
}

func TestConnReadIdle(t *testing.T) {
	srv, cli := engPair(t)
	c := newConn(srv, 1, connLimits{ReadIdleTimeout: 100 * time.Millisecond}, engFlusher(t, 1))
	done := engRead(c, engEcho(c))
	cli.Write([]byte("{}\n")) // activity resets the clock
	start := time.Now()
	if r := engReason(t, done, 2*time.Second); r != CloseReadIdle {
		t.Errorf("reason %v; want read_idle", r)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("closed after %v; want about 100ms", d)
	}
}

// engStall makes the client end of a pair tiny and never read it, so writes stall
// after a few KiB.
func engStall(t *testing.T, srv, cli *net.TCPConn) {
	t.Helper()
	if err := cli.SetReadBuffer(2048); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetWriteBuffer(2048); err != nil {
		t.Fatal(err)
	}
}

func TestConnSlowConsumerDoesNotDelayOthers(t *testing.T) {
	fl := engFlusher(t, 1) // one flusher: the healthy miner shares it with the stalled one
	lim := connLimits{WriteTimeout: 10 * time.Second, MaxPendingBytes: 64 << 10}
	slowSrv, slowCli := engPair(t)
	engStall(t, slowSrv, slowCli)
	slow := newConn(slowSrv, 1, lim, fl)
	fastSrv, fastCli := engPair(t)
	fast := newConn(fastSrv, 2, lim, fl)

	chunk := bytes.Repeat([]byte("x"), 1024)
	// Fill the slow miner's socket until its writes stall and bytes pile up.
	deadline := time.Now().Add(5 * time.Second)
	for slow.pending() < 16<<10 {
		if !slow.send(chunk) {
			t.Fatalf("send failed early: %v", slow.reason())
		}
		slow.flush()
		time.Sleep(time.Millisecond)
		if time.Now().After(deadline) {
			t.Fatalf("writes to the slow miner never stalled (pending %d)", slow.pending())
		}
	}
	// The flusher keeps retrying the stalled write; the healthy miner gets through.
	msg := []byte("{\"method\":\"mining.notify\"}\n")
	got := make([]byte, len(msg))
	for i := range 5 {
		start := time.Now()
		if !fast.send(msg) {
			t.Fatal("send to the healthy miner failed")
		}
		fast.flush()
		slow.send(chunk[:100])
		slow.flush()
		fastCli.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(fastCli, got); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		// writeSlice (50ms) in theory; WriteTimeout (10s) if a stalled write held the
		// flusher. The margin is for loaded test machines.
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("round %d: the healthy miner waited %v behind a stalled one", i, d)
		}
	}
	for i := 0; slow.send(chunk); i++ {
		slow.flush()
		if i > 1000 {
			t.Fatalf("still accepting after %d KiB; pending %d", i, slow.pending())
		}
	}
	if r := slow.reason(); r != CloseSlowConsumer {
		t.Errorf("reason %v; want slow_consumer", r)
	}
	if fast.reason() != CloseNone {
		t.Errorf("the healthy miner closed: %v", fast.reason())
	}
}

func TestConnWriteTimeout(t *testing.T) {
	srv, cli := engPair(t)
	engStall(t, srv, cli)
	c := newConn(srv, 1, connLimits{WriteTimeout: 300 * time.Millisecond}, engFlusher(t, 2))
	done := engRead(c, engEcho(c))
	start := time.Now()
	if !c.send(make([]byte, 1<<20)) {
		t.Fatal("send failed")
	}
	c.flush()
	if r := engReason(t, done, 3*time.Second); r != CloseWriteTimeout {
		t.Errorf("reason %v; want write_timeout", r)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("closed after %v; want about 300ms", d)
	}
	if n := c.bytesOut.Load(); n == 0 || n >= 1<<20 {
		t.Errorf("bytesOut %d; want a partial write", n)
	}
}

func TestConnCloseOnce(t *testing.T) {
	srv, _ := engPair(t)
	c := newConn(srv, 1, connLimits{}, engFlusher(t, 1))
	done := engRead(c, engEcho(c))
	var wg sync.WaitGroup
	for _, r := range []CloseReason{CloseKicked, CloseShutdown, CloseProtocol, CloseUnauthorized} {
		if r == CloseKicked {
			c.close(r) // first
			continue
		}
		wg.Go(func() { c.close(r) })
	}
	wg.Wait()
	if r := engReason(t, done, 2*time.Second); r != CloseKicked {
		t.Errorf("readLoop reason %v; want kicked", r)
	}
	if r := c.reason(); r != CloseKicked {
		t.Errorf("reason %v; want kicked", r)
	}
	if !c.isClosed() || c.send([]byte("{}\n")) {
		t.Error("open after close, or send after close returned true")
	}
	c.flush()
	if n := c.pending(); n != 0 {
		t.Errorf("pending %d after close; want 0", n)
	}
}

func TestConnCloseWhileQueued(t *testing.T) {
	// A connection closed while queued or stalled must not leak its turn or its buffer.
	fl := engFlusher(t, 1)
	for range 50 {
		srv, cli := engPair(t)
		engStall(t, srv, cli)
		c := newConn(srv, 1, connLimits{}, fl)
		c.send(make([]byte, 64<<10))
		c.flush()
		time.Sleep(time.Millisecond)
		c.close(CloseKicked)
		if c.send([]byte("x")) || c.reason() != CloseKicked {
			t.Fatalf("send after close or reason %v", c.reason())
		}
	}
}

// memConn is a net.Conn whose writes take a little time and go nowhere.
type memConn struct {
	written atomic.Int64
	closed  atomic.Bool
}

func (m *memConn) Read([]byte) (int, error) { return 0, io.EOF }
func (m *memConn) Write(b []byte) (int, error) {
	if m.closed.Load() {
		return 0, net.ErrClosed
	}
	for start := time.Now(); time.Since(start) < 5*time.Microsecond; {
	}
	m.written.Add(int64(len(b)))
	return len(b), nil
}
func (m *memConn) Close() error                     { m.closed.Store(true); return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

func TestFlusherThrottleBoundsBacklog(t *testing.T) {
	fl := engFlusher(t, 1)
	const miners = 600
	ms := make([]*memConn, miners)
	conns := make([]*conn, miners)
	for i := range conns {
		ms[i] = &memConn{}
		conns[i] = newConn(ms[i], uint64(i), connLimits{}, fl)
	}
	msg := []byte("{\"method\":\"mining.notify\"}\n")
	peak := int64(0)
	for _, c := range conns {
		c.send(msg)
		c.flush()
		fl.throttle()
		peak = max(peak, fl.backlog.Load())
	}
	if peak > broadcastBacklog {
		t.Errorf("backlog reached %d after throttle; want at most %d", peak, broadcastBacklog)
	}
	if peak < broadcastBacklog/2 {
		t.Logf("backlog peaked at %d: the flusher kept up, throttle never waited", peak)
	}
	engEventually(t, "every write", func() bool {
		for _, m := range ms {
			if m.written.Load() != int64(len(msg)) {
				return false
			}
		}
		return true
	})
}

func TestFlusherStopWritesWhatIsQueued(t *testing.T) {
	fl := newFlusher(2)
	ms := make([]*memConn, 100)
	for i := range ms {
		ms[i] = &memConn{}
		c := newConn(ms[i], uint64(i), connLimits{}, fl)
		c.send([]byte("{}\n"))
		c.flush()
	}
	fl.stop()
	for i, m := range ms {
		if m.written.Load() != 3 {
			t.Fatalf("conn %d: %d bytes written before stop returned; want 3", i, m.written.Load())
		}
	}
	fl.stop() // idempotent
}

// BenchmarkBroadcast appends one ~1 KiB mining.notify to 1,000 connections and flushes
// them, each read by a loopback peer, and waits until every byte has left. The
// baseline beside it writes to each socket directly, one blocking write per miner.
func BenchmarkBroadcast(b *testing.B) {
	const miners = 1000
	notify := []byte(`{"id":null,"method":"mining.notify","params":["1a2b","` + strings.Repeat("0", 64) + `","` +
		strings.Repeat("01", 60) + `","` + strings.Repeat("ff", 40) + `",[` +
		strings.TrimSuffix(strings.Repeat(`"`+strings.Repeat("ab", 32)+`",`, 12), ",") +
		`],"20000000","1703a30c","6560a1b2",true]}` + "\n")
	pairs := make([][2]*net.TCPConn, miners)
	for i := range pairs {
		srv, cli := engPair(b)
		pairs[i] = [2]*net.TCPConn{srv, cli}
		go io.Copy(io.Discard, cli)
	}
	b.Run("engine", func(b *testing.B) {
		fl := engFlusher(b, 0)
		conns := make([]*conn, miners)
		for i := range conns {
			conns[i] = newConn(pairs[i][0], uint64(i), connLimits{WriteTimeout: 10 * time.Second, MaxPendingBytes: 1 << 20}, fl)
		}
		b.ReportAllocs()
		b.ResetTimer()
		var fanout time.Duration // the producer's part: appending and queueing
		for i := 0; i < b.N; i++ {
			start := time.Now()
			for _, c := range conns {
				c.send(notify)
				c.flush()
			}
			fanout += time.Since(start)
			want := uint64(i+1) * uint64(len(notify))
			for _, c := range conns {
				for c.bytesOut.Load() < want {
					if c.reason() != CloseNone {
						b.Fatal(c.reason())
					}
					time.Sleep(10 * time.Microsecond)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*miners), "ns/miner")
		b.ReportMetric(float64(fanout.Nanoseconds())/float64(b.N*miners), "fanout-ns/miner")
	})
	b.Run("blocking-write", func(b *testing.B) {
		for _, p := range pairs {
			p[0].SetWriteDeadline(time.Time{}) // left by the engine's runs
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			for _, p := range pairs {
				if _, err := p[0].Write(notify); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*miners), "ns/miner")
	})
}
