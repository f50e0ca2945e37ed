package stratumtest_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestMinerFirmwareRetry: with ReconnectDelay == MaxReconnectDelay a miner whose
// authorize is refused behaves as firmware without a pool does: it retries at that
// fixed interval, hashes and submits nothing meanwhile (though the pool sends a
// job before the refusal), and resumes mining once a retry is accepted.
func TestMinerFirmwareRetry(t *testing.T) {
	const (
		interval = 200 * time.Millisecond
		watch    = 2 * time.Second
		// At most one attempt per interval, plus the first; at least half of them
		// on a loaded machine.
		maxAttempts = int(watch/interval) + 1
		minAttempts = int(watch/interval) / 2
	)
	var refuse atomic.Bool
	refuse.Store(true)
	p := newPool(t, stratumtest.PoolConfig{
		Difficulty: tinyDifficulty,
		Authorize:  func(string, string) bool { return !refuse.Load() },
	})
	m, _ := startMiner(t, stratumtest.MinerConfig{
		Addr:              p.URL(),
		Worker:            "fw",
		ShareRate:         20,
		ReconnectDelay:    interval,
		MaxReconnectDelay: interval,
	})
	eventually(t, "a refused authorize", func() bool { return p.Stats().AuthorizeFailures >= 1 })
	start := p.Stats().AuthorizeFailures
	time.Sleep(watch)
	ps, ms := p.Stats(), m.Stats()
	if n := int(ps.AuthorizeFailures - start); n < minAttempts || n > maxAttempts {
		t.Errorf("%d refused authorizes in %v; want %d..%d (one per %v)", n, watch, minAttempts, maxAttempts, interval)
	}
	if ms.Hashes != 0 || ms.SharesFound != 0 || ms.Submitted != 0 || ps.Accepted() != 0 {
		t.Errorf("while refused: hashes %d, found %d, submitted %d, pool accepted %d; want 0",
			ms.Hashes, ms.SharesFound, ms.Submitted, ps.Accepted())
	}
	if ms.Connects < uint64(minAttempts) {
		t.Errorf("connects %d; want at least %d", ms.Connects, minAttempts)
	}

	refuse.Store(false)
	eventually(t, "shares once accepted", func() bool { return m.Stats().Accepted >= 3 })
	ps = p.Stats()
	if ps.Authorizes != 1 {
		t.Errorf("pool authorizes %d; want 1 (the miner stays on the accepted connection)", ps.Authorizes)
	}
	if ms := m.Stats(); ms.Rejected != 0 {
		t.Errorf("rejected %d; want 0", ms.Rejected)
	}
}
