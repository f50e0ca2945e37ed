package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// engServer is a listener on 127.0.0.1:0 whose connections echo lines and are kept
// in conns until they close.
type engServer struct {
	ln *listener
	fl *flusher

	mu    sync.Mutex
	conns map[*conn]bool
	added chan *conn
}

func newEngServer(t *testing.T, cfg listenerConfig) *engServer {
	t.Helper()
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &engServer{fl: newFlusher(2), conns: map[*conn]bool{}, added: make(chan *conn, 2000)}
	s.ln = newListener(nl, cfg, s.fl, func(c *conn) {
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.added <- c
		c.readLoop(engEcho(c))
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	})
	if !s.ln.start() {
		t.Fatal("start refused")
	}
	t.Cleanup(s.stop)
	return s
}

// stop shuts down in the documented order: listener, connections, wait, flusher.
func (s *engServer) stop() {
	s.ln.close()
	s.mu.Lock()
	for c := range s.conns {
		c.close(CloseShutdown)
	}
	s.mu.Unlock()
	s.ln.wait()
	s.fl.stop()
}

// dial connects from the given local address ("" for any) and returns the client end.
func (s *engServer) dial(t *testing.T, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp", s.ln.addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// engExchange reports whether a line written to nc is echoed back (accepted) or nc is
// closed first (refused).
func engExchange(t *testing.T, nc net.Conn) bool {
	t.Helper()
	nc.Write([]byte("{\"id\":1}\n"))
	nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, len("ok:{\"id\":1}\n"))
	_, err := io.ReadFull(nc, got)
	if err == nil {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "reset") {
		return false
	}
	t.Fatalf("neither echoed nor closed: %v", err)
	return false
}

// engEventually polls cond for up to 5s.
func engEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestListenerPerIPLimit(t *testing.T) {
	s := newEngServer(t, listenerConfig{MaxConnectionsPerIP: 2, Conn: connLimits{ReadIdleTimeout: 5 * time.Second}})
	a, b := s.dial(t, "127.0.0.1"), s.dial(t, "127.0.0.1")
	if !engExchange(t, a) || !engExchange(t, b) {
		t.Fatal("first two connections from 127.0.0.1 refused")
	}
	if engExchange(t, s.dial(t, "127.0.0.1")) {
		t.Fatal("third connection from 127.0.0.1 accepted; limit is 2")
	}
	if !engExchange(t, s.dial(t, "127.0.0.2")) {
		t.Fatal("connection from 127.0.0.2 refused")
	}
	found := false
	s.mu.Lock()
	for c := range s.conns {
		found = found || strings.HasPrefix(c.remoteAddr(), "127.0.0.2:")
	}
	s.mu.Unlock()
	if !found {
		t.Error("no connection's remoteAddr is 127.0.0.2:port")
	}
	if n := s.ln.refused[CloseTooManyFromAddress].Load(); n != 1 {
		t.Errorf("refused too_many_from_address = %d; want 1", n)
	}
	// Closing one frees its slot.
	a.Close()
	engEventually(t, "the slot to be released", func() bool { return s.ln.activeConns() == 2 })
	if !engExchange(t, s.dial(t, "127.0.0.1")) {
		t.Fatal("connection refused after one from the same address closed")
	}
	if n := s.ln.closedBy[CloseClientClosed].Load(); n != 1 {
		t.Errorf("closed client_closed = %d; want 1", n)
	}
	if n := s.ln.accepted.Load(); n != 4 {
		t.Errorf("accepted = %d; want 4", n)
	}
}

func TestListenerTotalLimit(t *testing.T) {
	s := newEngServer(t, listenerConfig{MaxConnections: 2})
	a, b := s.dial(t, ""), s.dial(t, "")
	if !engExchange(t, a) || !engExchange(t, b) {
		t.Fatal("first two connections refused")
	}
	for range 3 {
		if engExchange(t, s.dial(t, "")) {
			t.Fatal("connection over MaxConnections accepted")
		}
	}
	if n := s.ln.refused[CloseTooManyConnections].Load(); n != 3 {
		t.Errorf("refused too_many_connections = %d; want 3", n)
	}
	b.Close()
	engEventually(t, "the slot to be released", func() bool { return s.ln.activeConns() == 1 })
	if !engExchange(t, s.dial(t, "")) {
		t.Fatal("connection refused after one closed")
	}
}

func TestListenerBroadcast(t *testing.T) {
	const miners = 1000
	s := newEngServer(t, listenerConfig{Conn: connLimits{WriteTimeout: 5 * time.Second, MaxPendingBytes: 64 << 10}})
	clients := make([]net.Conn, miners)
	for i := range clients {
		clients[i] = s.dial(t, "")
	}
	conns := make([]*conn, 0, miners)
	for range miners {
		select {
		case c := <-s.added:
			conns = append(conns, c)
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d connections accepted", len(conns), miners)
		}
	}
	notify := []byte(`{"id":null,"method":"mining.notify","params":["` + strings.Repeat("ab", 480) + `"]}` + "\n")
	for _, c := range conns {
		if !c.send(notify) {
			t.Fatalf("send failed: %v", c.reason())
		}
		c.flush()
		s.fl.throttle()
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	for _, nc := range clients {
		wg.Go(func() {
			got := make([]byte, len(notify))
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(nc, got); err != nil || !bytes.Equal(got, notify) {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d of %d miners did not receive the notify", n, miners)
	}
}

func TestListenerShutdownNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		nl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fl := newFlusher(4)
		var mu sync.Mutex
		var conns []*conn
		ln := newListener(nl, listenerConfig{}, fl, func(c *conn) {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			c.readLoop(engEcho(c))
		})
		ln.start()
		var clients []net.Conn
		for range 20 {
			nc, err := net.Dial("tcp", nl.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, nc)
			if !engExchange(t, nc) {
				t.Fatal("refused")
			}
		}
		if err := ln.close(); err != nil {
			t.Fatal(err)
		}
		if ln.start() {
			t.Error("start after close returned true")
		}
		if _, err := net.Dial("tcp", nl.Addr().String()); err == nil {
			t.Error("dial succeeded after close")
		}
		mu.Lock()
		for _, c := range conns {
			c.close(CloseShutdown)
		}
		mu.Unlock()
		ln.wait()
		fl.stop()
		for _, nc := range clients {
			nc.Close()
		}
		if n := ln.closedBy[CloseShutdown].Load(); n != 20 {
			t.Errorf("closed shutdown = %d; want 20", n)
		}
		if n := ln.activeConns(); n != 0 {
			t.Errorf("active = %d after shutdown; want 0", n)
		}
	}()
	engEventually(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}

// flakyListener fails Accept a few times before passing through.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, errors.New("accept: too many open files")
	}
	return l.Listener.Accept()
}

func TestListenerAcceptErrorsBackOff(t *testing.T) {
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: nl}
	fl.fails.Store(4) // 10 + 20 + 40 + 80 ms
	f := engFlusher(t, 1)
	ln := newListener(fl, listenerConfig{}, f, func(c *conn) { c.readLoop(engEcho(c)) })
	var failed atomic.Int32
	ln.onAcceptError = func(error) { failed.Add(1) }
	start := time.Now()
	ln.start()
	defer func() { ln.close(); ln.wait() }()
	nc, err := net.Dial("tcp", nl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !engExchange(t, nc) {
		t.Fatal("refused")
	}
	if d := time.Since(start); d < 140*time.Millisecond {
		t.Errorf("accepted after %v; want the back-off (about 150ms) first", d)
	}
	if n := failed.Load(); n != 4 {
		t.Errorf("%d accept errors reported; want 4 (each counted in accept_errors_total)", n)
	}
}
