//go:build !race

package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// Allocation guard: once a connection's outbound buffer has been used, send and flush
// (and the flusher's write) allocate nothing.
func TestConnSendFlushAllocs(t *testing.T) {
	srv, cli := engPair(t)
	go io.Copy(io.Discard, cli)
	c := newConn(srv, 1, connLimits{WriteTimeout: 5 * time.Second, MaxPendingBytes: 1 << 20}, engFlusher(t, 1))
	msg := bytes.Repeat([]byte("x"), 1000)
	var sent uint64
	allocs := testing.AllocsPerRun(200, func() {
		c.send(msg)
		c.flush()
		sent += uint64(len(msg))
		for c.bytesOut.Load() < sent {
			runtime.Gosched()
		}
	})
	if allocs != 0 {
		t.Errorf("send+flush: %v allocs per run; want 0", allocs)
	}
}

// TestConnIdleMemory measures what an idle miner costs the engine: 2,000 loopback
// connections, dialled from a child process so that only the server side is counted,
// each having exchanged a line and received a ~1 KiB notify, then left idle. The session
// above the engine (decoder, jobs, vardiff) comes on top of this number.
func TestConnIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	const miners = 2000
	nl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := newFlusher(0)
	var mu sync.Mutex
	conns := make([]*conn, 0, miners)
	ln := newListener(nl, listenerConfigOf(&Config{}), fl, func(c *conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		var out []byte
		c.readLoop(func(line []byte) bool {
			// A subscribe reply's worth, encoded in a per-connection scratch as a
			// session does.
			out = append(append(append(out[:0], `{"id":1,"result":[[["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"]],"08000002",4],"error":null}`...), line[:0]...), '\n')
			return c.send(out)
		})
	})
	ln.start()
	defer func() {
		ln.close()
		mu.Lock()
		for _, c := range conns {
			c.close(CloseShutdown)
		}
		mu.Unlock()
		ln.wait()
		fl.stop()
	}()

	runtime.GC()
	runtime.GC()
	m0, rss0 := engMem()

	stopDialer := startDialer(t, "TestConnIdleMemoryDialer", "ENG_DIAL="+nl.Addr().String()+","+strconv.Itoa(miners), 20*time.Second)
	defer stopDialer()
	mu.Lock()
	all := append([]*conn(nil), conns...)
	mu.Unlock()
	if len(all) != miners {
		t.Fatalf("%d connections; want %d", len(all), miners)
	}
	runtime.GC()
	runtime.GC()
	m1, rss1 := engMem()
	notify := []byte(`{"id":null,"method":"mining.notify","params":["` + strings.Repeat("ab", 480) + `"]}` + "\n")
	broadcast := func(throttle bool) {
		for _, c := range all {
			c.send(notify)
			c.flush()
			if throttle {
				fl.throttle()
			}
		}
		for _, c := range all {
			for c.pending() > 0 {
				time.Sleep(time.Millisecond)
			}
		}
		runtime.GC()
		runtime.GC()
	}
	broadcast(true)
	m2, rss2 := engMem()
	broadcast(false)
	_, rss3 := engMem()
	debug.FreeOSMemory()
	_, rss4 := engMem()
	per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / miners }
	heap, stack := per(m0.HeapInuse, m2.HeapInuse), per(m0.StackInuse, m2.StackInuse)
	t.Logf("per idle connection: heap %.0f B + goroutine stack %.0f B = %.0f B (conn struct %d B, read buffer %d B); %.0f B before the first notify",
		heap, stack, heap+stack, unsafe.Sizeof(conn{}), readBufSize, per(m0.HeapInuse+m0.StackInuse, m1.HeapInuse+m1.StackInuse))
	t.Logf("per idle connection: RSS %.0f B before the first notify, %.0f B after a throttled broadcast, %.0f B after an unthrottled one, %.0f B after FreeOSMemory",
		per(rss0, rss1), per(rss0, rss2), per(rss0, rss3), per(rss0, rss4))
	if heap+stack > 6<<10 {
		t.Errorf("an idle connection costs %.0f B of heap and stack; the budget leaves the session 2 KiB of 8", heap+stack)
	}
}

// startDialer runs this test binary's test named test as a child process with env
// added, and waits (up to within) for it to print a line starting "ready": the
// memory tests dial from a child so that only the server's side is counted. stop
// closes the child's stdin, its signal to hang up, and waits for it.
func startDialer(t *testing.T, test, env string, within time.Duration) (stop func()) {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	child.Env = append(os.Environ(), env)
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() {
		stdin.Close()
		child.Wait()
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready") {
				ready <- sc.Text()
			}
		}
		close(ready)
	}()
	select {
	case s, ok := <-ready:
		if !ok {
			stop()
			t.Fatal("dialer exited before it was ready")
		}
		t.Log("dialer:", s)
	case <-time.After(within):
		stop()
		t.Fatalf("dialer not ready after %v", within)
	}
	return stop
}

func engMem() (runtime.MemStats, uint64) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b, _ := os.ReadFile("/proc/self/statm")
	var size, res uint64
	fmt.Sscan(string(b), &size, &res)
	return m, res * uint64(os.Getpagesize())
}

// TestConnIdleMemoryDialer is TestConnIdleMemory's child process: it dials, exchanges
// a line on each connection, says ready, and holds them until its stdin closes.
func TestConnIdleMemoryDialer(t *testing.T) {
	spec := os.Getenv("ENG_DIAL")
	if spec == "" {
		t.Skip("child process of TestConnIdleMemory")
	}
	addr, ns, _ := strings.Cut(spec, ",")
	n, _ := strconv.Atoi(ns)
	conns := make([]net.Conn, 0, n)
	buf := make([]byte, 4096)
	for range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		if _, err := nc.Write([]byte(`{"id":1,"method":"mining.subscribe","params":["cgminer/4.11.1"]}` + "\n")); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("ready %d\n", len(conns))
	io.Copy(io.Discard, os.Stdin)
	for _, nc := range conns {
		nc.Close()
	}
}
