//go:build !race

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestSessionIdleMemory measures what an idle miner costs the whole proxy, session
// and worker account included: 2,000 miners, dialled from a child process so that
// only the proxy's side is counted, each having configured, subscribed, authorized
// (under its own worker name) and received its first job, then left idle. Heap
// (live, after a collection) and goroutine stacks are counted; the 8 KiB a miner may
// cost in resident memory also pays for the garbage between collections, so the
// budget here is 6 KiB.
func TestSessionIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	const miners = 2000
	pool := newTestPool(t, stratumtest.PoolConfig{Addr: "127.0.0.1:0"})
	srv := newTestProxy(t, Config{MaxConnections: miners + 10}, pool)

	runtime.GC()
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)

	stopDialer := startDialer(t, "TestSessionIdleMemoryDialer", "SESSION_DIAL="+srv.Addr().String()+","+strconv.Itoa(miners), 60*time.Second)
	defer stopDialer()
	if n := len(workersAPI(t, srv)); n < miners {
		t.Fatalf("%d workers known; want %d", n, miners)
	}
	runtime.GC()
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	heap := (float64(m1.HeapAlloc) - float64(m0.HeapAlloc)) / miners
	stack := (float64(m1.StackInuse) - float64(m0.StackInuse)) / miners
	t.Logf("per idle miner: live heap %.0f B + goroutine stacks %.0f B = %.0f B", heap, stack, heap+stack)
	if heap+stack > 6<<10 {
		t.Errorf("an idle miner costs %.0f B of live heap and stack; budget 6 KiB", heap+stack)
	}
	if stack > 3<<10 {
		t.Errorf("an idle miner holds %.0f B of goroutine stack; its reader should park on a 2 KiB stack (handlers.go)", stack)
	}
}

// TestSessionIdleMemoryDialer is TestSessionIdleMemory's child process: each miner
// sends a pipelined configure, subscribe and authorize and waits for its first
// mining.notify; then it says ready and holds the connections until stdin closes.
func TestSessionIdleMemoryDialer(t *testing.T) {
	spec := os.Getenv("SESSION_DIAL")
	if spec == "" {
		t.Skip("child process of TestSessionIdleMemory")
	}
	addr, ns, _ := strings.Cut(spec, ",")
	n, _ := strconv.Atoi(ns)
	conns := make([]net.Conn, 0, n)
	for i := range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		hello := `{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]}` + "\n" +
			`{"id":2,"method":"mining.subscribe","params":["cgminer/4.11.1"]}` + "\n" +
			fmt.Sprintf(`{"id":3,"method":"mining.authorize","params":["rig%d","x"]}`, i) + "\n"
		if _, err := nc.Write([]byte(hello)); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReaderSize(nc, 8<<10)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("miner %d: %v", i, err)
			}
			if strings.Contains(line, "mining.notify") {
				break
			}
		}
	}
	fmt.Printf("ready %d\n", len(conns))
	io.Copy(io.Discard, os.Stdin)
	for _, nc := range conns {
		nc.Close()
	}
}
