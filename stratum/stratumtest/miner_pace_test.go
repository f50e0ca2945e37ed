package stratumtest_test

import (
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestMinerIdle: an idle miner follows jobs and pings but never hashes or submits.
func TestMinerIdle(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, stop := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "w", Idle: true})
	eventually(t, "the first job", func() bool { return m.Stats().JobsReceived >= 1 })
	p.SendJob()
	p.NewBlock()
	p.Ping()
	eventually(t, "jobs and a pong", func() bool {
		return m.Stats().JobsReceived >= 3 && len(p.Sessions()) == 1 && p.Sessions()[0].Pongs == 1
	})
	time.Sleep(100 * time.Millisecond) // room for shares, were it hashing
	stop()
	ms, st := m.Stats(), p.Stats()
	if ms.Hashes != 0 || ms.SharesFound != 0 || ms.Submitted != 0 || st.SubmitsTotal != 0 {
		t.Errorf("hashes %d, found %d, submitted %d, pool saw %d; want none", ms.Hashes, ms.SharesFound, ms.Submitted, st.SubmitsTotal)
	}
	if ms.BytesIn == 0 || ms.BytesOut == 0 {
		t.Errorf("bytes in %d, out %d; want the handshake counted", ms.BytesIn, ms.BytesOut)
	}
}

// TestMinerShareRate: ShareRate paces by shares, whatever the difficulty.
func TestMinerShareRate(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, _ := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), ShareRate: 20, HashRate: 1})
	eventually(t, "a first share", func() bool { return m.Stats().Submitted >= 1 })
	mark, start := m.Stats().Submitted, time.Now()
	time.Sleep(1500 * time.Millisecond)
	n, d := m.Stats().Submitted-mark, time.Since(start)
	// 30 expected; loose bounds: a Poisson count, and a loaded machine.
	if n < 10 || n > 60 {
		t.Errorf("%d shares in %v at ShareRate 20; want 10..60", n, d)
	}
}

// TestMinerShareRateNewWork: new work arriving during the share gap is taken at
// once but does not bring the next share forward.
func TestMinerShareRateNewWork(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, _ := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), ShareRate: 0.01}) // mean gap 100 s
	eventually(t, "a first share", func() bool { return m.Stats().Submitted >= 1 })
	var jobs uint64
	for range 10 {
		p.SendJob()
		jobs++
		eventually(t, "the new job taken", func() bool { return m.Stats().JobID == p.CurrentJob().ID })
		time.Sleep(20 * time.Millisecond) // a share on it takes well under a millisecond
	}
	// A second share has a chance of 1 in 500 in this time; a third, 1 in 250,000.
	// Without the gap kept, every job would bring one.
	if ms := m.Stats(); ms.Submitted > 2 {
		t.Errorf("%d shares after %d new jobs; want the gap kept", ms.Submitted, jobs)
	}
}

// TestMinerBytes: bytes out grow with every submit.
func TestMinerBytes(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, _ := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), ShareRate: 50})
	eventually(t, "a first answer", func() bool { return m.Stats().Accepted >= 1 })
	before := m.Stats()
	eventually(t, "ten more answers", func() bool { return m.Stats().Accepted >= before.Accepted+10 })
	after := m.Stats()
	const minSubmit = 60 // {"id":N,"method":"mining.submit","params":[...]} and more
	if got, n := after.BytesOut-before.BytesOut, after.Submitted-before.Submitted; got < n*minSubmit {
		t.Errorf("%d bytes out for %d submits; want at least %d each", got, n, minSubmit)
	}
	if after.BytesIn <= before.BytesIn {
		t.Errorf("bytes in %d then %d; want the answers counted", before.BytesIn, after.BytesIn)
	}
}
