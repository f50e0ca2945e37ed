package proxy

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFlushNowAfterFlusherDeadline: replies written at once by the reader
// (flushNow) still go out after a flusher's write has left an expired write
// deadline on the socket, and when the socket is full the rest waits for the
// flusher instead of closing the connection.
func TestFlushNowAfterFlusherDeadline(t *testing.T) {
	srv, cli := engPair(t)
	c := newConn(srv, 1, connLimits{MaxLineSize: 4096, WriteTimeout: 5 * time.Second, MaxPendingBytes: 8 << 20}, engFlusher(t, 1))
	if c.raw == nil {
		t.Skip("no raw connection on this platform: every write goes through the flusher")
	}
	r := bufio.NewReader(cli)
	// A notify through the flusher sets a write deadline writeSlice ahead.
	c.send([]byte("{\"method\":\"mining.notify\"}\n"))
	c.flush()
	if line, err := r.ReadString('\n'); err != nil || !strings.Contains(line, "notify") {
		t.Fatalf("notify: %q, %v", line, err)
	}
	time.Sleep(2 * writeSlice) // the deadline is now in the past
	c.send([]byte("{\"id\":1,\"result\":true,\"error\":null}\n"))
	c.flushNow()
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || !strings.Contains(line, `"id":1`) {
		t.Fatalf("reply after an expired flusher deadline: %q, %v", line, err)
	}
	if c.isClosed() {
		t.Fatalf("closed (%v) by a write after an expired deadline", c.reason())
	}

	// More than the socket takes at once: flushNow writes what fits, the flusher the
	// rest, and every byte arrives in order.
	const lines = 40_000
	var want strings.Builder
	for i := range lines {
		b := []byte("{\"id\":" + strconv.Itoa(i) + ",\"result\":true,\"error\":null}\n")
		want.Write(b)
		c.send(b)
	}
	got := make(chan string, 1)
	go func() {
		var sb strings.Builder
		for sb.Len() < want.Len() {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			sb.WriteString(line)
		}
		got <- sb.String()
	}()
	c.flushNow()
	select {
	case s := <-got:
		if s != want.String() {
			t.Fatalf("received %d bytes, not the %d sent in order", len(s), want.Len())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the rest of a partial write never arrived")
	}
	if c.isClosed() {
		t.Fatalf("closed (%v) after a partial write", c.reason())
	}
}
