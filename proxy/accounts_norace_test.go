//go:build !race

package proxy

import (
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// TestShareBatchAllocs: counting a share in its session's batch, and folding the
// batch into the worker, allocate nothing.
func TestShareBatchAllocs(t *testing.T) {
	clk := newFakeClock()
	a := newAccounts(clk.now)
	m := &session{}
	a.connect("farm.rig1", "", "", m)
	now := clk.now()
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(20 * time.Millisecond) // a fold every 50 shares
		m.mu.Lock()
		if m.batch.count(now, stratum.VerdictAccepted, 1, false, true) {
			m.batch.flush(now)
		}
		m.batch.count(now, stratum.VerdictDuplicate, 1, false, false)
		m.mu.Unlock()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per share; want 0", allocs)
	}
}
