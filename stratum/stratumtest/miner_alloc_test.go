//go:build !race

package stratumtest

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// TestFoundAllocs: sending a share, honest or made bad, allocates nothing once
// the connection's scratch buffers have grown.
func TestFoundAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  Misbehaviour
	}{
		{"good", Misbehaviour{}},
		{"bad_nonce", Misbehaviour{BadNonce: 1}},
		{"stale", Misbehaviour{StaleJob: 1}},
		{"duplicate", Misbehaviour{Duplicate: 0.5}},
		{"bad_ntime", Misbehaviour{BadNTime: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPool(PoolConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			j := p.CurrentJob()

			// A real socket: net.Pipe allocates a timer per write deadline.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			server, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer server.Close()
			go io.Copy(io.Discard, server)

			m := NewMiner(MinerConfig{Addr: "pipe", ShareRate: 1000, Misbehave: tc.bad})
			c := newMinerConn(m, client, "pipe")
			h := &hasher{c: c, bad: tc.bad.perShare(), shareRate: 1000, shareGap: time.Millisecond}
			target, _ := stratum.TargetFromDifficulty(1e-6)
			w := &work{job: j, jobID: []byte(j.ID), en1: []byte{0, 0, 0, 1}, en2Size: 8,
				target: target, staleID: neverSentJobID}
			h.nextExtranonce2(w.en2Size)
			var hdr stratum.Header
			root := stratum.Hash{}
			hdr.Set(j.Version, &j.PrevHash, &root, j.NTime, j.NBits, 0)

			send := func() {
				if !h.found(w, &hdr, j.NTime, 1, 0) {
					t.Fatal("found asked to stop")
				}
				c.mu.Lock()
				clear(c.pending)
				c.mu.Unlock()
			}
			for range 10 {
				send() // grow the scratch buffers and the pending map
			}
			if n := testing.AllocsPerRun(100, send); n != 0 {
				t.Errorf("%v allocs per share; want 0", n)
			}
			if st := m.Stats(); st.Submitted < 110 || tc.name != "good" && st.BadSent == [NumShareKinds]uint64{} {
				t.Errorf("submitted %d, bad %v; want every share sent, bad ones among them", st.Submitted, st.BadSent)
			}
		})
	}
}
