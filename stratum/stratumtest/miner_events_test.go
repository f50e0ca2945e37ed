package stratumtest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// jobLog collects the miner's OnJob calls.
type jobLog struct {
	mu     sync.Mutex
	events []stratumtest.JobEvent
}

func (l *jobLog) add(e stratumtest.JobEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *jobLog) all() []stratumtest.JobEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]stratumtest.JobEvent(nil), l.events...)
}

// TestMinerCallbacks: OnJob sees every notify, First only on each connection's
// first, with the pool's stamp just before receipt; OnReply sees every answer.
func TestMinerCallbacks(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	var jobs jobLog
	var replies replyLog
	m, stop := startMiner(t, stratumtest.MinerConfig{
		Addr: p.Addr(), ShareRate: 30, OnJob: jobs.add, OnReply: replies.add,
	})
	eventually(t, "the first job", func() bool { return m.Stats().JobsReceived >= 1 })
	p.SendJob()
	p.NewBlock()
	eventually(t, "three jobs", func() bool { return m.Stats().JobsReceived >= 3 })
	p.DropConnections()
	eventually(t, "a job on the second connection", func() bool { return m.Stats().JobsReceived >= 4 })
	p.SendJob()
	eventually(t, "five jobs and shares", func() bool {
		ms := m.Stats()
		return ms.JobsReceived >= 5 && ms.Accepted >= 3
	})
	stop()

	ms, evs := m.Stats(), jobs.all()
	if uint64(len(evs)) != ms.JobsReceived {
		t.Fatalf("OnJob called %d times; %d jobs received", len(evs), ms.JobsReceived)
	}
	// Connection 1: first (clean), SendJob, NewBlock (clean); connection 2: first
	// (clean), SendJob.
	want := []struct{ first, clean bool }{{true, true}, {false, false}, {false, true}, {true, true}, {false, false}}
	firsts := uint64(0)
	for i, e := range evs {
		if e.First {
			firsts++
		}
		if i < len(want) && (e.First != want[i].first || e.Clean != want[i].clean) {
			t.Errorf("job %d: first %v clean %v; want %v %v", i, e.First, e.Clean, want[i].first, want[i].clean)
		}
		if lag := e.Received.Sub(e.Stamp); e.Stamp.IsZero() || lag < -50*time.Millisecond || lag > 2*time.Second {
			t.Errorf("job %d: stamp %v, received %v (%v later); want a stamp just before receipt", i, e.Stamp, e.Received, lag)
		}
	}
	if firsts != ms.Connects || ms.Connects != 2 {
		t.Errorf("%d first jobs, %d connects; want 2 each", firsts, ms.Connects)
	}
	rs := replies.all()
	if uint64(len(rs)) != ms.Accepted+ms.Rejected {
		t.Errorf("OnReply called %d times; %d answered", len(rs), ms.Accepted+ms.Rejected)
	}
	for _, r := range rs {
		// A share in flight when NewBlock voids its job is rejected as stale.
		ok := r.Accepted && r.Code == 0 && r.Reason == "" || !r.Accepted && r.Code == 21
		if r.Kind != stratumtest.ShareGood || !ok || r.Latency <= 0 || r.Latency > waitTimeout {
			t.Errorf("reply %+v; want a good share, accepted (or stale after NewBlock)", r)
		}
	}
}

// TestMinerJobStampAbsent: a job without a stamp (the caller's) gives a zero Stamp.
func TestMinerJobStampAbsent(t *testing.T) {
	src := newPool(t, stratumtest.PoolConfig{})
	j := *src.CurrentJob()
	j.Coinb2 = j.Coinb2[len(j.Coinb2)-4:] // locktime alone: no tag, no stamp
	j.ID = "c0ffee"
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	var jobs jobLog
	m, _ := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Idle: true, OnJob: jobs.add})
	eventually(t, "the first job", func() bool { return m.Stats().JobsReceived >= 1 })
	if err := p.PushJob(&j); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pushed job", func() bool { return m.Stats().JobID == "c0ffee" })
	evs := jobs.all()
	if len(evs) != 2 || evs[0].Stamp.IsZero() || !evs[1].Stamp.IsZero() {
		t.Errorf("events %+v; want a stamped job, then one without", evs)
	}
}

// TestShareKindString: the names are the metric labels minersim uses.
func TestShareKindString(t *testing.T) {
	want := []string{"good", "bad_nonce", "stale", "duplicate", "bad_ntime", "invalid"}
	for k := range stratumtest.NumShareKinds + 1 {
		if got := k.String(); got != want[k] {
			t.Errorf("ShareKind(%d) = %q; want %q", k, got, want[k])
		}
	}
}
