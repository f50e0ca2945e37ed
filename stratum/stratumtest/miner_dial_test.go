package stratumtest_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestMinerBackups: dials that fail move on through Addr and Backups in turn;
// a lost connection redials the same address.
func TestMinerBackups(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, _ := startMiner(t, stratumtest.MinerConfig{
		Addr:           closedAddr(t),
		Backups:        []string{"stratum+tcp://" + closedAddr(t), p.URL()},
		Worker:         "w",
		ShareRate:      30,
		ReconnectDelay: 10 * time.Millisecond,
	})
	eventually(t, "shares at the third address", func() bool { return p.Stats().Accepted() >= 2 })
	ms := m.Stats()
	if ms.DialFailures != 2 || ms.Connects != 1 || ms.Addr != p.Addr() {
		t.Errorf("dial failures %d, connects %d, addr %s; want 2, 1, %s", ms.DialFailures, ms.Connects, ms.Addr, p.Addr())
	}
	if n := ms.Errors["dial: connection refused"]; n != 2 {
		t.Errorf("errors %v; want 2 refused dials", ms.Errors)
	}

	p.DropConnections()
	eventually(t, "a second connection", func() bool { return m.Stats().Connects == 2 })
	mark := p.Stats().Accepted()
	eventually(t, "shares after the drop", func() bool { return p.Stats().Accepted() >= mark+2 })
	if ms := m.Stats(); ms.DialFailures != 2 || ms.Addr != p.Addr() {
		t.Errorf("after a drop: dial failures %d, addr %s; want 2, the same %s", ms.DialFailures, ms.Addr, p.Addr())
	}
}

// TestMinerBackupsWrap: after the last backup fails, the next dial is Addr again.
func TestMinerBackupsWrap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // reopened below, once the miner has failed on it and the backup
	m, _ := startMiner(t, stratumtest.MinerConfig{
		Addr: addr, Backups: []string{closedAddr(t)}, ReconnectDelay: 10 * time.Millisecond, MaxReconnectDelay: 20 * time.Millisecond,
	})
	eventually(t, "two failed dials", func() bool { return m.Stats().DialFailures >= 2 })
	p := newPool(t, stratumtest.PoolConfig{Addr: addr, Difficulty: tinyDifficulty})
	eventually(t, "a connection to Addr again", func() bool { return m.Stats().Connects == 1 })
	if ms := m.Stats(); ms.Addr != p.Addr() {
		t.Errorf("addr %s; want %s", ms.Addr, p.Addr())
	}
}

// TestMinerLocalAddr: the pool sees the connection come from LocalAddr.
func TestMinerLocalAddr(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, _ := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "w", LocalAddr: "127.0.0.2", Idle: true})
	eventually(t, "a job", func() bool { return m.Stats().JobsReceived >= 1 })
	eventually(t, "the authorized session", func() bool { return len(p.Sessions()) == 1 && len(p.Sessions()[0].Workers) == 1 })
	host, _, err := net.SplitHostPort(sessionOf(t, p, "w").Remote)
	if err != nil || host != "127.0.0.2" {
		t.Errorf("pool sees %q (%v); want 127.0.0.2", host, err)
	}

	bad := stratumtest.NewMiner(stratumtest.MinerConfig{Addr: p.Addr(), LocalAddr: "not-an-ip"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := bad.Run(ctx); !errors.Is(err, stratumtest.ErrLocalAddr) {
		t.Errorf("Run with a bad LocalAddr: %v; want ErrLocalAddr", err)
	}
}
