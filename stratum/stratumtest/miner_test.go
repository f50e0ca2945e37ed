package stratumtest_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// TestMinerAgainstPool: a miner really hashes at the share target it was given:
// every share it submits is accepted, the pool's counts match the miner's exactly,
// the share rate matches its hash rate, it sends 5 params without version rolling,
// and it rolls ntime inside the job's window as time passes.
func TestMinerAgainstPool(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, stop := startMiner(t, stratumtest.MinerConfig{Addr: p.URL(), Worker: "w1", HashRate: 20_000})
	start := time.Now()
	eventually(t, "30 accepted shares and 1.5 s on one job", func() bool {
		return m.Stats().Accepted >= 30 && time.Since(start) > 1500*time.Millisecond
	})
	stop()

	ms, ps := m.Stats(), p.Stats()
	if ms.Rejected != 0 || ps.Rejected() != 0 || ms.Unanswered != 0 {
		t.Errorf("miner rejected %d (%v), pool rejected %d, unanswered %d; want none", ms.Rejected, ms.RejectReasons, ps.Rejected(), ms.Unanswered)
	}
	if ps.Accepted() != ms.Accepted || ps.Workers["w1"].Accepted() != ms.Accepted || ps.SubmitsTotal != ms.Submitted {
		t.Errorf("pool accepted %d (worker %d) of %d submits; miner accepted %d of %d submitted: want equal",
			ps.Accepted(), ps.Workers["w1"].Accepted(), ps.SubmitsTotal, ms.Accepted, ms.Submitted)
	}
	// A share takes 2^32·d·65536/65535 ≈ 430 hashes on average.
	perShare := float64(ms.Hashes) / float64(ms.SharesFound)
	if perShare < 430/3 || perShare > 430*3 {
		t.Errorf("%d hashes for %d shares (%.0f per share); want about 430", ms.Hashes, ms.SharesFound, perShare)
	}
	rolled := 0
	for _, r := range ps.Submits {
		if r.HasVersionBits {
			t.Fatalf("submit %+v has version bits; want 5 params without version rolling", r)
		}
		if r.Difficulty < tinyDifficulty {
			t.Errorf("submit %+v below difficulty %g", r, tinyDifficulty)
		}
		if r.NTime < r.JobNTime || r.NTime > r.JobNTime+stratum.MaxNTimeRoll {
			t.Errorf("submit ntime %08x outside the window of job ntime %08x", r.NTime, r.JobNTime)
		}
		if r.NTime > r.JobNTime {
			rolled++
		}
	}
	if rolled == 0 {
		t.Error("no submit rolled ntime after more than a second on one job")
	}
	if ms.Connects != 1 || ms.JobsReceived != 1 || len(ms.Latencies) == 0 {
		t.Errorf("connects %d, jobs %d, latency samples %d; want 1, 1, some", ms.Connects, ms.JobsReceived, len(ms.Latencies))
	}
}

// TestMinerVersionRolling: a rolling miner gets pool mask & its mask, submits 6
// params with bits inside it (and they vary), all accepted; set_version_mask
// applies at once; a miner without rolling, or refused by the pool, sends 5.
func TestMinerVersionRolling(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty}) // mask 1fffe000
	full, _ := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "full", VersionRolling: true, HashRate: 20_000})
	part, _ := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "part", VersionRolling: true, VersionMask: 0x00ffe000, HashRate: 20_000})
	plain, _ := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "plain", HashRate: 20_000})
	refusing := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty, NoVersionRolling: true})
	refused, _ := startMiner(t, stratumtest.MinerConfig{Addr: refusing.Addr(), Worker: "refused", VersionRolling: true, HashRate: 20_000})

	for _, m := range []*stratumtest.Miner{full, part, plain, refused} {
		eventually(t, "10 accepted shares from each miner", func() bool { return m.Stats().Accepted >= 10 })
	}
	for _, tc := range []struct {
		m       *stratumtest.Miner
		pool    *stratumtest.Pool
		worker  string
		rolling bool
		mask    uint32
	}{
		{full, p, "full", true, 0x1fffe000},
		{part, p, "part", true, 0x00ffe000},
		{plain, p, "plain", false, 0},
		{refused, refusing, "refused", false, 0},
	} {
		ms := tc.m.Stats()
		if ms.VersionRolling != tc.rolling || ms.VersionMask != tc.mask {
			t.Errorf("%s: rolling %v mask %08x; want %v %08x", tc.worker, ms.VersionRolling, ms.VersionMask, tc.rolling, tc.mask)
		}
		if s := sessionOf(t, tc.pool, tc.worker); s.VersionMask != tc.mask {
			t.Errorf("%s: pool's negotiated mask %08x; want %08x", tc.worker, s.VersionMask, tc.mask)
		}
		st := tc.pool.Stats()
		bits := map[uint32]bool{}
		for _, r := range workerSubmits(&st, tc.worker) {
			if r.HasVersionBits != tc.rolling || r.VersionBits&^tc.mask != 0 || r.Verdict != stratum.VerdictAccepted {
				t.Errorf("%s: submit with version bits %v %08x, verdict %v; want %v, inside %08x, accepted",
					tc.worker, r.HasVersionBits, r.VersionBits, r.Verdict, tc.rolling, tc.mask)
			}
			bits[r.VersionBits] = true
		}
		if tc.rolling && len(bits) < 2 {
			t.Errorf("%s: version bits %v; want them rolled", tc.worker, bits)
		}
	}

	// A narrower mask applies at once: later shares roll only inside it.
	const narrow = 0x0001e000
	if n := p.SetVersionMask(narrow); n != 2 {
		t.Errorf("SetVersionMask reached %d sessions; want the 2 rolling ones", n)
	}
	eventually(t, "the miner to apply set_version_mask", func() bool { return full.Stats().VersionMask == narrow })
	after := full.Stats().Submitted
	eventually(t, "20 more shares", func() bool { return full.Stats().Submitted >= after+20 })
	st := p.Stats()
	log := workerSubmits(&st, "full")
	for _, r := range log[len(log)-10:] {
		if r.VersionBits&^narrow != 0 || r.Verdict != stratum.VerdictAccepted {
			t.Errorf("after set_version_mask: bits %08x verdict %v; want inside %08x, accepted", r.VersionBits, r.Verdict, narrow)
		}
	}
	if s := sessionOf(t, p, "part"); s.VersionMask != narrow&0x00ffe000 {
		t.Errorf("part's mask after SetVersionMask %08x; want %08x", s.VersionMask, narrow&0x00ffe000)
	}
}

// TestMinerDifficultyFromNextJob: set_difficulty applies from the next notify, as
// firmware does, and the pool judges each job at the difficulty it was sent with:
// shares on the older job keep counting at the old difficulty, none is low.
func TestMinerDifficultyFromNextJob(t *testing.T) {
	const d1, d2 = tinyDifficulty, 8 * tinyDifficulty
	p := newPool(t, stratumtest.PoolConfig{Difficulty: d1, SubmitLogSize: 1 << 16})
	m, stop := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "w", HashRate: 40_000})
	eventually(t, "5 accepted shares", func() bool { return m.Stats().Accepted >= 5 })
	j1 := p.CurrentJob()

	if err := p.SetDifficulty(d2); err != nil {
		t.Fatal(err)
	}
	mark := p.Stats().SubmitsTotal
	eventually(t, "10 more shares on the old job", func() bool { return p.Stats().SubmitsTotal >= mark+10 })
	if d := m.Stats().Difficulty; d != d1 {
		t.Errorf("miner difficulty before the next job %g; want still %g", d, d1)
	}
	st := p.Stats()
	below := 0
	for _, r := range st.Submits[mark:] {
		if r.JobID != j1.ID || r.Verdict != stratum.VerdictAccepted {
			t.Errorf("share after set_difficulty: job %q verdict %v; want %q accepted", r.JobID, r.Verdict, j1.ID)
		}
		if r.Difficulty < d2 {
			below++
		}
	}
	if below == 0 {
		t.Error("no share below the new difficulty was accepted on the old job; want them judged at the old one")
	}

	j2 := p.SendJob()
	eventually(t, "the miner to take the new job", func() bool { s := m.Stats(); return s.JobID == j2.ID })
	if d := m.Stats().Difficulty; d != d2 {
		t.Errorf("miner difficulty on the new job %g; want %g", d, d2)
	}
	eventually(t, "5 accepted shares on the new job", func() bool {
		st := p.Stats()
		n := 0
		for _, r := range st.Submits {
			if r.JobID == j2.ID && r.Verdict == stratum.VerdictAccepted {
				n++
			}
		}
		return n >= 5
	})
	stop()
	st = p.Stats()
	for _, r := range st.Submits {
		if r.JobID == j2.ID && r.Difficulty < d2 {
			t.Errorf("share on the new job at difficulty %g; want at least %g", r.Difficulty, d2)
		}
	}
	if st.Verdicts[stratum.VerdictLowDifficulty] != 0 || st.Rejected() != 0 {
		t.Errorf("verdicts %v; want no rejection", st.Verdicts)
	}
	if ms := m.Stats(); ms.Accepted != st.Accepted() {
		t.Errorf("miner accepted %d; pool %d", ms.Accepted, st.Accepted())
	}
}

// TestMinerFollowsNewBlock: after NewBlock the miner drops the old job at once and
// its shares go to the new one.
func TestMinerFollowsNewBlock(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, _ := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "w", HashRate: 20_000})
	eventually(t, "3 accepted shares", func() bool { return m.Stats().Accepted >= 3 })
	j2 := p.NewBlock()
	eventually(t, "the miner to switch", func() bool { s := m.Stats(); return s.JobID == j2.ID && s.CleanJobs == 2 })
	eventually(t, "5 accepted shares on the new block", func() bool {
		st := p.Stats()
		n := 0
		for _, r := range st.Submits {
			if r.JobID == j2.ID && r.Verdict == stratum.VerdictAccepted {
				n++
			}
		}
		return n >= 5
	})
	// A share already on the wire when the block changed is stale (21); nothing else
	// may be rejected.
	ms := m.Stats()
	for reason := range ms.RejectReasons {
		if reason != stratum.ErrJobNotFound.Message {
			t.Errorf("rejection %q; want only %q for shares in flight", reason, stratum.ErrJobNotFound.Message)
		}
	}
}

// TestMinerSetExtranonce: set_extranonce reaches only a miner that subscribed to
// it; that miner uses it from the next job, and both miners' shares stay valid.
func TestMinerSetExtranonce(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	sub, stopSub := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "sub", ExtranonceSubscribe: true, HashRate: 20_000})
	plain, stopPlain := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "plain", HashRate: 20_000})
	eventually(t, "shares from both", func() bool { return sub.Stats().Accepted >= 3 && plain.Stats().Accepted >= 3 })
	oldSub, oldPlain := sub.Stats().Extranonce1, plain.Stats().Extranonce1
	if !sub.Stats().ExtranonceSubscribed {
		t.Error("pool did not answer true to mining.extranonce.subscribe")
	}

	if n := p.SetExtranonce(); n != 1 {
		t.Fatalf("SetExtranonce reached %d sessions; want 1", n)
	}
	time.Sleep(50 * time.Millisecond)
	if got := sub.Stats().Extranonce1; !bytes.Equal(got, oldSub) {
		t.Errorf("extranonce1 changed to %x before the next job; want %x until then", got, oldSub)
	}
	j2 := p.SendJob()
	eventually(t, "the subscribed miner to switch", func() bool {
		s := sub.Stats()
		return s.JobID == j2.ID && s.ExtranonceChanges == 1
	})
	newSub := sub.Stats().Extranonce1
	if bytes.Equal(newSub, oldSub) || len(newSub) != len(oldSub) {
		t.Errorf("extranonce1 %x after set_extranonce; want a new one of %d bytes", newSub, len(oldSub))
	}
	if s := sessionOf(t, p, "sub"); !bytes.Equal(s.Extranonce1, newSub) {
		t.Errorf("pool's extranonce1 %x; miner's %x", s.Extranonce1, newSub)
	}
	eventually(t, "the other miner to take the job", func() bool { return plain.Stats().JobID == j2.ID })
	if s := plain.Stats(); !bytes.Equal(s.Extranonce1, oldPlain) || s.ExtranonceIgnored != 0 || s.ExtranonceChanges != 0 {
		t.Errorf("unsubscribed miner: extranonce1 %x (was %x), ignored %d, changes %d; want unchanged and never sent", s.Extranonce1, oldPlain, s.ExtranonceIgnored, s.ExtranonceChanges)
	}
	count := func(worker string) int {
		st := p.Stats()
		n := 0
		for _, r := range workerSubmits(&st, worker) {
			if r.JobID == j2.ID && r.Verdict == stratum.VerdictAccepted {
				n++
			}
		}
		return n
	}
	eventually(t, "accepted shares on the new job from both", func() bool { return count("sub") >= 5 && count("plain") >= 5 })
	stopSub()
	stopPlain()
	st := p.Stats()
	if st.Rejected() != 0 {
		t.Errorf("verdicts %v; want every share accepted", st.Verdicts)
	}
	if a, b := sub.Stats().Accepted+plain.Stats().Accepted, st.Accepted(); a != b {
		t.Errorf("miners accepted %d; pool %d", a, b)
	}
}

// TestMinerReconnect: client.reconnect with a host and port moves the miner to
// another pool; with no params it reconnects to the same pool, resuming its
// session (same extranonce1).
func TestMinerReconnect(t *testing.T) {
	p1 := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	p2 := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, _ := startMiner(t, stratumtest.MinerConfig{Addr: p1.URL(), Worker: "w", HashRate: 20_000})
	eventually(t, "shares at the first pool", func() bool { return p1.Stats().Accepted() >= 2 })

	if n := p1.Reconnect("127.0.0.1", p2.Port(), 0); n != 1 {
		t.Fatalf("Reconnect reached %d sessions; want 1", n)
	}
	eventually(t, "shares at the second pool", func() bool { return p2.Stats().Accepted() >= 2 })
	ms := m.Stats()
	if ms.Reconnects != 1 || ms.Addr != p2.Addr() || ms.Connects != 2 {
		t.Errorf("reconnects %d, addr %s, connects %d; want 1, %s, 2", ms.Reconnects, ms.Addr, ms.Connects, p2.Addr())
	}
	en1 := ms.Extranonce1
	if s := p2.Stats(); s.Resumes != 0 {
		t.Errorf("second pool resumed %d sessions it never had; want 0", s.Resumes)
	}

	p2.Reconnect("", 0, 0)
	eventually(t, "the miner to come back", func() bool { return p2.Stats().Subscribes == 2 && m.Stats().JobsReceived >= 3 })
	mark := p2.Stats().Accepted()
	eventually(t, "shares after the reconnect", func() bool { return p2.Stats().Accepted() >= mark+2 })
	ms = m.Stats()
	if st := p2.Stats(); st.Resumes != 1 || st.Connections != 2 {
		t.Errorf("second pool: resumes %d, connections %d; want 1, 2", st.Resumes, st.Connections)
	}
	if ms.Reconnects != 2 || !bytes.Equal(ms.Extranonce1, en1) {
		t.Errorf("reconnects %d, extranonce1 %x; want 2, the resumed %x", ms.Reconnects, ms.Extranonce1, en1)
	}
}

// TestMinerSurvivesDrop: after DropConnections the miner redials, resumes its
// session and mines on.
func TestMinerSurvivesDrop(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, _ := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "w", HashRate: 20_000})
	eventually(t, "shares", func() bool { return m.Stats().Accepted >= 2 })
	en1 := m.Stats().Extranonce1
	if n := p.DropConnections(); n != 1 {
		t.Fatalf("dropped %d; want 1", n)
	}
	eventually(t, "a resumed session", func() bool { return p.Stats().Resumes == 1 })
	mark := m.Stats().Accepted
	eventually(t, "shares after the drop", func() bool { return m.Stats().Accepted >= mark+2 })
	ms, st := m.Stats(), p.Stats()
	if ms.Connects != 2 || ms.Disconnects != 1 || !bytes.Equal(ms.Extranonce1, en1) || st.Closes[stratumtest.CloseDropped] != 1 {
		t.Errorf("connects %d, disconnects %d, extranonce1 %x (was %x), dropped %d; want 2, 1, same, 1",
			ms.Connects, ms.Disconnects, ms.Extranonce1, en1, st.Closes[stratumtest.CloseDropped])
	}
}

// TestMinerStall: a stalled pool answers nothing while the miner goes on
// submitting; after Resume every share is answered.
func TestMinerStall(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, _ := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "w", HashRate: 20_000})
	eventually(t, "shares", func() bool { return m.Stats().Accepted >= 2 })
	p.Stall()
	time.Sleep(100 * time.Millisecond) // an answer already on its way may still land
	before := m.Stats()
	eventually(t, "submits while stalled", func() bool { return m.Stats().Submitted >= before.Submitted+5 })
	if got := m.Stats().Accepted; got != before.Accepted {
		t.Errorf("accepted went from %d to %d while stalled; want no answers", before.Accepted, got)
	}
	p.Resume()
	target := m.Stats().Submitted
	eventually(t, "every share answered after Resume", func() bool { return m.Stats().Accepted >= target })
	// StallFor resumes by itself.
	p.StallFor(100 * time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	target = m.Stats().Submitted + 3
	eventually(t, "answers after StallFor ends", func() bool { return m.Stats().Accepted >= target })
	if ms := m.Stats(); ms.Rejected != 0 {
		t.Errorf("rejected %d (%v); want 0", ms.Rejected, ms.RejectReasons)
	}
}

// TestCloseLeavesNoGoroutines: Pool.Close and a returned Run leave nothing behind.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	p, err := stratumtest.NewPool(stratumtest.PoolConfig{Difficulty: tinyDifficulty, JobInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m := stratumtest.NewMiner(stratumtest.MinerConfig{Addr: p.Addr()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	eventually(t, "shares", func() bool { return m.Stats().Accepted >= 2 })
	p.Stall() // Close must not wait for a stalled session
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

// TestMinerCountsRejects: RejectNext answers valid shares with a reject in the
// pool's form; the miner counts each as a rejection with the reason and code it
// read, and the pool counts them apart from accepted shares.
func TestMinerCountsRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		form stratumtest.RejectForm
		code int
	}{
		{"array", stratumtest.RejectArray, 23},
		{"string", stratumtest.RejectString, 0},
		{"ckpool", stratumtest.RejectCKPool, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty, RejectForm: tc.form})
			m, stop := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "w", HashRate: 20_000})
			eventually(t, "shares", func() bool { return m.Stats().Accepted >= 2 })
			p.RejectNext(3)
			eventually(t, "3 rejections", func() bool { return m.Stats().Rejected >= 3 })
			p.RejectFraction(1)
			eventually(t, "rejections by fraction", func() bool { return m.Stats().Rejected >= 6 })
			p.RejectFraction(0)
			mark := m.Stats().Accepted
			eventually(t, "acceptance again", func() bool { return m.Stats().Accepted >= mark+2 })
			stop()

			ms, st := m.Stats(), p.Stats()
			reason := stratumtest.RejectReason(tc.form, stratum.VerdictLowDifficulty)
			if ms.RejectReasons[reason] != ms.Rejected || ms.RejectCodes[tc.code] != ms.Rejected {
				t.Errorf("reasons %v codes %v; want all %d as %q code %d", ms.RejectReasons, ms.RejectCodes, ms.Rejected, reason, tc.code)
			}
			if st.InjectedRejects != ms.Rejected || st.Accepted() != ms.Accepted {
				t.Errorf("pool injected %d accepted %d; miner rejected %d accepted %d: want equal",
					st.InjectedRejects, st.Accepted(), ms.Rejected, ms.Accepted)
			}
			injected := 0
			for _, r := range st.Submits {
				if r.Injected {
					injected++
					if r.Verdict != stratum.VerdictAccepted {
						t.Errorf("injected reject on a share judged %v; want only valid shares", r.Verdict)
					}
				}
			}
			if uint64(injected) != st.InjectedRejects {
				t.Errorf("log shows %d injected; counted %d", injected, st.InjectedRejects)
			}
		})
	}
}

// TestMinerAnswersPool: the miner answers client.get_version with its user agent
// and mining.ping, and its suggest_difficulty reaches the pool.
func TestMinerAnswersPool(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: "w", UserAgent: "bitaxe/2.4", SuggestDifficulty: 512})
	eventually(t, "the miner to subscribe", func() bool { return p.Stats().Authorizes == 1 })
	if n := p.GetVersion() + p.Ping(); n != 2 {
		t.Fatalf("probes reached %d; want 2", n)
	}
	eventually(t, "answers", func() bool {
		s := sessionOf(t, p, "w")
		return s.ClientVersion != "" && s.Pongs == 1
	})
	if s := sessionOf(t, p, "w"); s.ClientVersion != "bitaxe/2.4" || s.UserAgent != "bitaxe/2.4" || s.SuggestedDifficulty != 512 {
		t.Errorf("session %+v; want version and agent bitaxe/2.4, suggested 512", s)
	}
}

// TestManyMiners: a hundred miners on one pool with periodic jobs get unique
// extranonces, and the pool's per-worker counts match each miner's exactly.
func TestManyMiners(t *testing.T) {
	const n = 100
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty, JobInterval: 100 * time.Millisecond, SubmitLogSize: -1})
	miners := make([]*stratumtest.Miner, n)
	stops := make([]func(), n)
	for i := range miners {
		miners[i], stops[i] = startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), Worker: fmt.Sprintf("w%03d", i), HashRate: 500})
	}
	eventually(t, "100 accepted shares", func() bool { return p.Stats().Accepted() >= 100 })
	seen := map[string]bool{}
	for _, s := range p.Sessions() {
		if seen[string(s.Extranonce1)] {
			t.Errorf("extranonce1 %x handed out twice", s.Extranonce1)
		}
		seen[string(s.Extranonce1)] = true
	}
	var wg sync.WaitGroup
	for _, stop := range stops {
		wg.Go(stop)
	}
	wg.Wait()

	st := p.Stats()
	var total uint64
	for i, m := range miners {
		ms := m.Stats()
		total += ms.Accepted
		if w := st.Workers[fmt.Sprintf("w%03d", i)]; w.Accepted() != ms.Accepted || ms.Rejected != 0 {
			t.Errorf("miner %d: accepted %d rejected %d (%v); pool accepted %d", i, ms.Accepted, ms.Rejected, ms.RejectReasons, w.Accepted())
		}
	}
	if total != st.Accepted() || st.Rejected() != 0 || len(seen) != n {
		t.Errorf("miners accepted %d; pool accepted %d, rejected %d, %d extranonces; want equal, 0, %d", total, st.Accepted(), st.Rejected(), len(seen), n)
	}
	if st.Jobs < 3 || len(st.Submits) != 0 {
		t.Errorf("jobs %d, log %d; want periodic jobs and no log", st.Jobs, len(st.Submits))
	}
}

// TestMinerShareCap: MaxSharesPerSecond holds however fast shares are found.
func TestMinerShareCap(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	start := time.Now() // before the miner, so the bound below covers its whole life
	m, stop := startMiner(t, stratumtest.MinerConfig{Addr: p.Addr(), HashRate: 50_000, MaxSharesPerSecond: 10})
	time.Sleep(600 * time.Millisecond)
	stop()
	ms := m.Stats()
	// A bucket of 10 tokens, refilled at 10 a second.
	if limit := uint64(10 + 10*time.Since(start).Seconds() + 1); ms.Submitted > limit || ms.SharesSkipped == 0 {
		t.Errorf("submitted %d (limit %d), skipped %d of %d found; want the cap to hold", ms.Submitted, limit, ms.SharesSkipped, ms.SharesFound)
	}
	if ms.Accepted != ms.Submitted || p.Stats().Accepted() != ms.Accepted {
		t.Errorf("accepted %d of %d submitted, pool %d; want all, equal", ms.Accepted, ms.Submitted, p.Stats().Accepted())
	}
}

// TestMinerAgainstScriptedPool: against a pool that sends set_extranonce to a
// miner that never subscribed to it (minerd's case), the miner ignores it; it
// answers client.show_message and unknown requests, and applies a difficulty sent
// before the first job to that job.
func TestMinerAgainstScriptedPool(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m, _ := startMiner(t, stratumtest.MinerConfig{Addr: ln.Addr().String(), Worker: "w"})
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &rawClient{t: t, conn: conn, lr: stratum.NewLineReader(conn, 0)}
	for c.next().Method != stratum.MethodAuthorize { // subscribe (id 2), then authorize (id 3)
	}
	job, err := stratum.NewJob(stratum.Job{ID: "j1", Coinb1: []byte{1}, Coinb2: []byte{2}, Version: 0x20000000, NBits: stratumtest.DefaultNBits, NTime: 0x66000000, Clean: true})
	if err != nil {
		t.Fatal(err)
	}
	job2 := *job
	job2.ID, job2.Clean = "j2", false
	var b []byte
	b = append(b, `{"id":2,"result":[[["mining.notify","ab"]],"01020304",4],"error":null}`+"\n"...)
	b = append(b, `{"id":3,"result":true,"error":null}`+"\n"...)
	b = stratum.AppendSetDifficulty(b, 2)
	b = stratum.AppendNotify(b, job)
	b = stratum.AppendSetExtranonce(b, []byte{9, 9, 9, 9}, 4)
	b = stratum.AppendNotify(b, &job2)
	b = append(b, `{"id":70,"method":"client.show_message","params":["hello"]}`+"\n"...)
	b = append(b, `{"id":71,"method":"mining.frobnicate","params":[]}`+"\n"...)
	c.send(b)

	if r := c.reply(70); !r.Accepted() {
		t.Error("show_message: want true")
	}
	if rej := c.reply(71).Reject(); rej.Code != -32601 {
		t.Errorf("unknown request: code %d; want -32601", rej.Code)
	}
	eventually(t, "the second job", func() bool { return m.Stats().JobID == "j2" })
	ms := m.Stats()
	if ms.ExtranonceIgnored != 1 || ms.ExtranonceChanges != 0 || !bytes.Equal(ms.Extranonce1, []byte{1, 2, 3, 4}) || ms.Extranonce2Size != 4 {
		t.Errorf("ignored %d changes %d extranonce1 %x size %d; want 1, 0, 01020304, 4", ms.ExtranonceIgnored, ms.ExtranonceChanges, ms.Extranonce1, ms.Extranonce2Size)
	}
	if ms.Difficulty != 2 || ms.LastMessage != "hello" || ms.SessionID != "ab" {
		t.Errorf("difficulty %g message %q session %q; want 2, hello, ab", ms.Difficulty, ms.LastMessage, ms.SessionID)
	}
}
