package proxy

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// These tests change the proxy's upstream under running miners (the pool dies,
// comes back, drops its connections, changes extranonce or version mask, redirects,
// rejects) and check the outcome with counts from the simulated pools and miners.
//
// The pools and the proxy use one difficulty (foDiff), so every share the proxy
// accepts from a miner is one it must forward: per worker, the identities
//
//	accepted  = forwarded + lost (by reason)
//	forwarded = upstream accepted + upstream rejected (by reason, "no answer: ..." included)
//
// are exact, and a share that vanished would break them.

// foDiff is the share difficulty of the pools and the miners.
const foDiff = 1e-6

// foConfig is the proxy configuration of these tests: every timeout short, so each
// upstream change plays out in about a second, and vardiff frozen at foDiff.
func foConfig() Config {
	return Config{
		MinersPerUpstream: 4,
		StartDifficulty:   foDiff,
		VardiffRetarget:   time.Hour,
		DialTimeout:       time.Second,
		JobTimeout:        5 * time.Second,
		SubmitTimeout:     time.Second,
		BackoffMin:        20 * time.Millisecond,
		BackoffMax:        200 * time.Millisecond,
		FailbackAfter:     time.Second,
		ResumeWindow:      2 * time.Second,
	}
}

// foPool starts a pool at foDiff keeping a long submit log.
func foPool(t *testing.T, cfg stratumtest.PoolConfig) *stratumtest.Pool {
	t.Helper()
	if cfg.Difficulty == 0 {
		cfg.Difficulty = foDiff
	}
	if cfg.SubmitLogSize == 0 {
		cfg.SubmitLogSize = 1 << 16
	}
	return newTestPool(t, cfg)
}

// foRestartPool starts a fresh pool on addr, the address a closed one listened on,
// retrying while the port is still held (a dial's ephemeral port may hold it).
func foRestartPool(t *testing.T, addr string, cfg stratumtest.PoolConfig) *stratumtest.Pool {
	t.Helper()
	cfg.Addr = addr
	if cfg.Difficulty == 0 {
		cfg.Difficulty = foDiff
	}
	if cfg.SubmitLogSize == 0 {
		cfg.SubmitLogSize = 1 << 16
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		p, err := stratumtest.NewPool(cfg)
		if err == nil {
			t.Cleanup(func() { _ = p.Close() })
			return p
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			t.Fatalf("restarting the pool on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// foMiners runs n miners rolling version bits at hashRate each.
func foMiners(t *testing.T, srv *Server, n int, cfg stratumtest.MinerConfig) ([]*stratumtest.Miner, func() []stratumtest.MinerStats) {
	t.Helper()
	if cfg.HashRate == 0 {
		cfg.HashRate = 20000
	}
	return runMiners(t, srv.Addr().String(), n, cfg)
}

// foSlots returns the proxy's slots.
func foSlots(srv *Server) []*slot {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return append([]*slot(nil), srv.slots...)
}

// foSettle waits until no share is queued, buffered in the resume window, or
// waiting for a pool's answer, so the counts are final.
func foSettle(t *testing.T, srv *Server) {
	t.Helper()
	waitFor(t, 5*time.Second, "every forwarded share answered", func() bool {
		for _, sl := range foSlots(srv) {
			if len(sl.shares) > 0 || len(sl.blocks) > 0 || sl.pendingSubmits() > 0 {
				return false
			}
		}
		return true
	})
}

// foMetric returns the value of counter or gauge name (without the namespace) with
// the given label pairs ("k", "v", ...), summed over the series that match.
func foMetric(t *testing.T, srv *Server, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := srv.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if !strings.HasSuffix(mf.GetName(), "_"+name) {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// foTotals is the workers API summed over every worker.
type foTotals struct {
	accepted, forwarded, upAccepted, upRejected, noAnswer, lost uint64
	upRejectedBy, lostBy                                        map[string]uint64
	rejectedLocal                                               map[string]uint64
}

// foSum sums the workers API and checks, per worker, that every forwarded share was
// answered and (when every accepted share meets the pool's target, as at foDiff)
// that every accepted share was forwarded or counted lost.
func foSum(t *testing.T, srv *Server) foTotals { return foSumCheck(t, srv, true) }

func foSumCheck(t *testing.T, srv *Server, allForwarded bool) foTotals {
	t.Helper()
	tot := foTotals{upRejectedBy: map[string]uint64{}, lostBy: map[string]uint64{}, rejectedLocal: map[string]uint64{}}
	for _, w := range workersAPI(t, srv) {
		tot.accepted += w.Accepted
		tot.forwarded += w.Forwarded
		tot.upAccepted += w.UpstreamAccepted
		for r, n := range w.UpstreamRejected {
			tot.upRejected += n
			tot.upRejectedBy[r] += n
			if strings.HasPrefix(r, "no answer") {
				tot.noAnswer += n
			}
		}
		for r, n := range w.SharesLost {
			tot.lost += n
			tot.lostBy[r] += n
		}
		for r, n := range w.Rejected {
			tot.rejectedLocal[r] += n
		}
		// The identities hold per worker, not only in total.
		var rej, lost uint64
		for _, n := range w.UpstreamRejected {
			rej += n
		}
		for _, n := range w.SharesLost {
			lost += n
		}
		if allForwarded && w.Accepted != w.Forwarded+lost {
			t.Errorf("worker %s: accepted %d != forwarded %d + lost %d (%v)", w.Name, w.Accepted, w.Forwarded, lost, w.SharesLost)
		}
		if w.Forwarded != w.UpstreamAccepted+rej {
			t.Errorf("worker %s: forwarded %d != upstream accepted %d + rejected %d (%v)", w.Name, w.Forwarded, w.UpstreamAccepted, rej, w.UpstreamRejected)
		}
	}
	return tot
}

// foCheckPoolsAgree checks that the pools accepted what the proxy counts as
// accepted upstream, give or take the shares whose answer never came back (a pool
// may have counted those).
func foCheckPoolsAgree(t *testing.T, tot foTotals, pools ...*stratumtest.Pool) {
	t.Helper()
	foCheckPoolsAgreeResent(t, tot, 0, pools...)
}

// foCheckPoolsAgreeResent is foCheckPoolsAgree when up to resent shares were
// submitted twice (block candidates unanswered at a drop, sent again on the resumed
// session: the simulated pool counts both if it had read the first).
func foCheckPoolsAgreeResent(t *testing.T, tot foTotals, resent uint64, pools ...*stratumtest.Pool) {
	t.Helper()
	var acc uint64
	for _, p := range pools {
		acc += p.Stats().Accepted()
	}
	if acc < tot.upAccepted || acc > tot.upAccepted+tot.noAnswer+resent {
		t.Errorf("pools accepted %d; want between upstream accepted %d and that + %d unanswered + %d resent", acc, tot.upAccepted, tot.noAnswer, resent)
	}
}

// foNoMinerReconnects checks that no miner lost or changed its connection.
func foNoMinerReconnects(t *testing.T, miners []*stratumtest.Miner) {
	t.Helper()
	for i, m := range miners {
		st := m.Stats()
		if st.Connects != 1 || st.Reconnects != 0 || st.Disconnects != 0 {
			t.Errorf("miner %d: connects %d, reconnects %d, disconnects %d; want 1, 0, 0 (last error %q)",
				i, st.Connects, st.Reconnects, st.Disconnects, st.LastError)
		}
	}
}

func foAccepted(p *stratumtest.Pool) uint64 { return p.Stats().Accepted() }

// TestFailoverToBackup kills the primary pool (its port then refuses) under eight
// miners: shares must be accepted at the backup within 2 s, no miner reconnects,
// and every share is accounted for.
func TestFailoverToBackup(t *testing.T) {
	primary := foPool(t, stratumtest.PoolConfig{JobInterval: time.Second})
	backup := foPool(t, stratumtest.PoolConfig{JobInterval: time.Second})
	srv := newTestProxy(t, foConfig(), primary, backup)
	miners, stop := foMiners(t, srv, 8, stratumtest.MinerConfig{VersionRolling: true})

	waitFor(t, 10*time.Second, "40 shares accepted at the primary", func() bool { return foAccepted(primary) >= 40 })
	slots := len(foSlots(srv))
	if backup.Stats().Connections != 0 {
		t.Fatalf("backup saw %d connections before the failover; want 0", backup.Stats().Connections)
	}

	killed := time.Now()
	_ = primary.Close()
	waitFor(t, 5*time.Second, "a share accepted at the backup", func() bool { return foAccepted(backup) >= 1 })
	took := time.Since(killed)
	if took > 2*time.Second {
		t.Errorf("first share accepted at the backup %v after the kill; want under 2s", took)
	}
	base := foAccepted(backup)
	waitFor(t, 10*time.Second, "60 more shares at the backup", func() bool { return foAccepted(backup) >= base+60 })
	foNoMinerReconnects(t, miners)
	stats := stop()
	foSettle(t, srv)

	for i, s := range stats {
		if s.Rejected != 0 {
			t.Errorf("miner %d: %d shares rejected (%v); want 0", i, s.Rejected, s.RejectReasons)
		}
	}
	tot := foSum(t, srv)
	foCheckPoolsAgree(t, tot, primary, backup)
	if n := backup.Stats().Rejected(); n != 0 {
		t.Errorf("backup rejected %d shares; want 0", n)
	}
	for r := range tot.lostBy {
		if r != lostUpstreamChanged.String() {
			t.Errorf("shares lost as %q (%v); want only %s (found on the dead pool's jobs)", r, tot.lostBy, lostUpstreamChanged)
		}
	}
	if got := foMetric(t, srv, "upstream_switches_total"); got != float64(slots) {
		t.Errorf("upstream_switches_total = %v; want %d (one per slot)", got, slots)
	}
	if got := foMetric(t, srv, "upstream_up", "pool", srv.cfg.Upstreams[1].String()); got != float64(slots) {
		t.Errorf("upstream_up{backup} = %v; want %d", got, slots)
	}
	t.Logf("failover: first backup share %v after the kill; %d slots; accepted %d, forwarded %d, upstream accepted %d, no answer %d, lost %v",
		took.Round(time.Millisecond), slots, tot.accepted, tot.forwarded, tot.upAccepted, tot.noAnswer, tot.lostBy)
}

// TestFailbackToRestartedPrimary fails over, then starts a new primary on the old
// address: after FailbackAfter the slots move back, the backup gets no new share,
// no miner reconnects and no share is lost in the move. The restarted primary sends
// no job after the one every subscriber gets, clean: clean for its own connection,
// it must not void the backup's jobs, whose shares in flight still go there.
func TestFailbackToRestartedPrimary(t *testing.T) {
	primary := foPool(t, stratumtest.PoolConfig{JobInterval: time.Second})
	backup := foPool(t, stratumtest.PoolConfig{JobInterval: time.Second})
	cfg := foConfig()
	cfg.JobTimeout = 30 * time.Second
	srv := newTestProxy(t, cfg, primary, backup)
	miners, stop := foMiners(t, srv, 8, stratumtest.MinerConfig{VersionRolling: true})

	waitFor(t, 10*time.Second, "20 shares at the primary", func() bool { return foAccepted(primary) >= 20 })
	addr := primary.Addr()
	_ = primary.Close()
	waitFor(t, 5*time.Second, "20 shares at the backup", func() bool { return foAccepted(backup) >= 20 })
	time.Sleep(300 * time.Millisecond) // shares in flight on the dead pool's jobs settle
	lostBefore := foMetric(t, srv, "shares_lost_total")
	slots := len(foSlots(srv))

	restarted := time.Now()
	primary2 := foRestartPool(t, addr, stratumtest.PoolConfig{})
	waitFor(t, 5*time.Second, "a share at the restarted primary", func() bool { return foAccepted(primary2) >= 1 })
	took := time.Since(restarted)
	if took < cfg.FailbackAfter {
		t.Errorf("failed back %v after the primary returned; want at least FailbackAfter %v", took, cfg.FailbackAfter)
	}
	if took > cfg.FailbackAfter+2*time.Second {
		t.Errorf("failed back %v after the primary returned; want within FailbackAfter %v + 2s", took, cfg.FailbackAfter)
	}
	waitFor(t, 5*time.Second, "every slot back on the primary", func() bool {
		return primary2.Stats().Sessions == slots
	})
	// The backup connections answer shares on their jobs for SubmitTimeout, then
	// close; from then on the backup gets nothing.
	waitFor(t, 5*time.Second, "the backup connections closed", func() bool { return backup.Stats().Sessions == 0 })
	atClose := foAccepted(backup)
	base := foAccepted(primary2)
	waitFor(t, 10*time.Second, "40 more shares at the primary", func() bool { return foAccepted(primary2) >= base+40 })
	if got := foAccepted(backup); got != atClose {
		t.Errorf("backup accepted %d shares after the fail-back; want 0", got-atClose)
	}
	foNoMinerReconnects(t, miners)
	stats := stop()
	foSettle(t, srv)

	for i, s := range stats {
		if s.Rejected != 0 {
			t.Errorf("miner %d: %d shares rejected (%v); want 0", i, s.Rejected, s.RejectReasons)
		}
	}
	if got := foMetric(t, srv, "shares_lost_total"); got != lostBefore {
		t.Errorf("%v shares lost during the fail-back; want 0", got-lostBefore)
	}
	tot := foSum(t, srv)
	foCheckPoolsAgree(t, tot, primary, backup, primary2)
	if got := foMetric(t, srv, "upstream_switches_total"); got != float64(2*slots) {
		t.Errorf("upstream_switches_total = %v; want %d (failover and fail-back per slot)", got, 2*slots)
	}
	if n := primary2.Stats().Rejected() + backup.Stats().Rejected(); n != 0 {
		t.Errorf("pools rejected %d shares; want 0", n)
	}
	t.Logf("fail-back %v after the primary returned (FailbackAfter %v); backup accepted %d, restarted primary %d",
		took.Round(time.Millisecond), cfg.FailbackAfter, atClose, foAccepted(primary2))
}

// foDropAndStall drops every connection of pool and holds the reconnects' handshakes
// for gap, so the miners' shares of that time must wait for the resumed sessions.
func foDropAndStall(pool *stratumtest.Pool, gap time.Duration) {
	pool.StallFor(gap)
	pool.DropConnections()
}

// TestResumeAfterDrop drops the pool's connections (it stays up): each slot resumes
// its session (same extranonce1) and the shares found meanwhile are buffered, then
// submitted on the resumed session and accepted. Nothing is lost.
func TestResumeAfterDrop(t *testing.T) {
	// No new jobs: the gap's shares are on the pool's current job, which a resumed
	// session of the simulated pool knows (it keeps jobs per connection).
	pool := foPool(t, stratumtest.PoolConfig{})
	cfg := foConfig()
	cfg.JobTimeout = 30 * time.Second
	srv := newTestProxy(t, cfg, pool)
	miners, stop := foMiners(t, srv, 8, stratumtest.MinerConfig{VersionRolling: true})

	waitFor(t, 10*time.Second, "20 shares at the pool", func() bool { return foAccepted(pool) >= 20 })
	slots := len(foSlots(srv))
	en1 := map[string]bool{}
	for _, si := range pool.Sessions() {
		en1[string(si.Extranonce1)] = true
	}
	foDropAndStall(pool, 400*time.Millisecond)
	waitFor(t, 5*time.Second, "every slot resumed", func() bool { return pool.Stats().Resumes >= uint64(slots) })
	base := foAccepted(pool)
	waitFor(t, 10*time.Second, "40 more shares", func() bool { return foAccepted(pool) >= base+40 })
	foNoMinerReconnects(t, miners)
	stop()
	foSettle(t, srv)

	ps := pool.Stats()
	if ps.Resumes != uint64(slots) || ps.Subscribes != uint64(2*slots) {
		t.Errorf("pool saw %d subscribes, %d resumed; want %d, %d", ps.Subscribes, ps.Resumes, 2*slots, slots)
	}
	for _, si := range pool.Sessions() {
		if !en1[string(si.Extranonce1)] {
			t.Errorf("session %s has extranonce1 %x, not one of before the drop", si.ID, si.Extranonce1)
		}
	}
	buffered := foMetric(t, srv, "shares_buffered_total")
	if buffered == 0 {
		t.Errorf("no share buffered during the %v gap; want some", 400*time.Millisecond)
	}
	tot := foSum(t, srv)
	if tot.lost != 0 {
		t.Errorf("shares lost %v; want none", tot.lostBy)
	}
	if tot.upRejected != tot.noAnswer || ps.Rejected() != 0 {
		t.Errorf("upstream rejected %v, pool rejected %d; want only shares unanswered at the drop", tot.upRejectedBy, ps.Rejected())
	}
	foCheckPoolsAgree(t, tot, pool)
	if got := foMetric(t, srv, "upstream_switches_total"); got != 0 {
		t.Errorf("upstream_switches_total = %v; want 0 (same pool)", got)
	}
	t.Logf("resume: %d slots resumed; %v shares buffered and submitted; accepted %d, upstream accepted %d, unanswered at the drop %d",
		slots, buffered, tot.accepted, tot.upAccepted, tot.noAnswer)
}

// TestResumeImpossibleCountsLost restarts the pool (a fresh process on the same
// address knows no session): the shares found on the old session's jobs cannot be
// submitted anywhere, and are counted lost as upstream_changed, never dropped.
func TestResumeImpossibleCountsLost(t *testing.T) {
	pool := foPool(t, stratumtest.PoolConfig{})
	cfg := foConfig()
	cfg.JobTimeout = 30 * time.Second
	srv := newTestProxy(t, cfg, pool)
	miners, stop := foMiners(t, srv, 8, stratumtest.MinerConfig{VersionRolling: true})

	waitFor(t, 10*time.Second, "20 shares at the pool", func() bool { return foAccepted(pool) >= 20 })
	addr := pool.Addr()
	_ = pool.Close()
	time.Sleep(300 * time.Millisecond) // miners keep finding shares on the old jobs
	pool2 := foRestartPool(t, addr, stratumtest.PoolConfig{})
	waitFor(t, 5*time.Second, "20 shares at the restarted pool", func() bool { return foAccepted(pool2) >= 20 })
	foNoMinerReconnects(t, miners)
	stop()
	foSettle(t, srv)

	tot := foSum(t, srv)
	buffered := foMetric(t, srv, "shares_buffered_total")
	if buffered == 0 {
		t.Errorf("no share buffered during the restart; want some")
	}
	if got := tot.lostBy[lostUpstreamChanged.String()]; got == 0 || float64(got) < buffered || got != tot.lost {
		t.Errorf("lost %v after %v buffered; want every buffered share (at least) lost as %s", tot.lostBy, buffered, lostUpstreamChanged)
	}
	if got := foMetric(t, srv, "shares_lost_total", "reason", lostUpstreamChanged.String()); got != float64(tot.lost) {
		t.Errorf("shares_lost_total{upstream_changed} = %v; want %d as in the workers API", got, tot.lost)
	}
	if ps := pool2.Stats(); ps.Resumes != 0 || ps.Rejected() != 0 {
		t.Errorf("restarted pool: %d resumes, %d rejects; want 0, 0", ps.Resumes, ps.Rejected())
	}
	foCheckPoolsAgree(t, tot, pool, pool2)
	t.Logf("restart: %v buffered, lost %v; accepted %d = forwarded %d + lost %d",
		buffered, tot.lostBy, tot.accepted, tot.forwarded, tot.lost)
}

// TestUpstreamSetExtranonce changes the pool's extranonce1 under running miners,
// then sends a job (not clean: old jobs stay valid at the pool, with the extranonce1
// they were sent with). The miners get a clean job and no reconnect, and every share
// is accepted, those on the new job with the new extranonce1.
func TestUpstreamSetExtranonce(t *testing.T) {
	pool := foPool(t, stratumtest.PoolConfig{})
	cfg := foConfig()
	cfg.JobTimeout = 30 * time.Second
	srv := newTestProxy(t, cfg, pool)
	miners, stop := foMiners(t, srv, 8, stratumtest.MinerConfig{VersionRolling: true})

	waitFor(t, 10*time.Second, "20 shares at the pool", func() bool { return foAccepted(pool) >= 20 })
	slots := len(foSlots(srv))
	before := map[string]string{}
	for _, si := range pool.Sessions() {
		before[si.ID] = string(si.Extranonce1)
	}
	clean := make([]uint64, len(miners))
	for i, m := range miners {
		clean[i] = m.Stats().CleanJobs
	}
	if n := pool.SetExtranonce(); n != slots {
		t.Fatalf("set_extranonce reached %d sessions; want %d (the proxy subscribes to it)", n, slots)
	}
	job := pool.SendJob()
	waitFor(t, 10*time.Second, "30 shares accepted on the new job", func() bool {
		n := 0
		for _, r := range pool.Stats().Submits {
			if r.JobID == job.ID && r.Verdict == stratum.VerdictAccepted && !r.Injected {
				n++
			}
		}
		return n >= 30
	})
	foNoMinerReconnects(t, miners)
	for i, m := range miners {
		st := m.Stats()
		if st.CleanJobs <= clean[i] {
			t.Errorf("miner %d: no clean job after the change", i)
		}
		if st.ExtranonceChanges != 0 || st.ExtranonceIgnored != 0 {
			t.Errorf("miner %d: got mining.set_extranonce; want none (the folded extranonce1 is unchanged)", i)
		}
	}
	stop()
	foSettle(t, srv)

	for _, si := range pool.Sessions() {
		if old, ok := before[si.ID]; !ok || old == string(si.Extranonce1) {
			t.Errorf("session %s: extranonce1 %x unchanged (or a new session)", si.ID, si.Extranonce1)
		}
	}
	if ps := pool.Stats(); ps.Rejected() != 0 {
		t.Errorf("pool rejected %d shares %v; want 0: old-job shares carry the old extranonce1, new-job ones the new", ps.Rejected(), ps.Verdicts)
	}
	if got := foMetric(t, srv, "extranonce_changes_total"); got != float64(slots) {
		t.Errorf("extranonce_changes_total = %v; want %d", got, slots)
	}
	tot := foSum(t, srv)
	if tot.lost != 0 || tot.upRejected != 0 {
		t.Errorf("lost %v, upstream rejected %v; want none", tot.lostBy, tot.upRejectedBy)
	}
	foCheckPoolsAgree(t, tot, pool)
}

// TestUpstreamVersionMaskNarrowing narrows the pool's version mask while miners roll
// bits outside the new one. The miners get mining.set_version_mask at once, and no
// share with bits outside it reaches the pool.
//
// The pool applies the mask at once (BIP 310), so a share already on its way to it
// would be rejected for version bits, and rightly: to check that the proxy sends
// none after the change, the change is made while no share is in flight (the pool's
// difficulty raised so that none is forwarded), and that is checked too.
func TestUpstreamVersionMaskNarrowing(t *testing.T) {
	const (
		minerMask = 0x1f00e000 // bits 13-15 and 24-28: most rolled values use the high ones
		narrow    = 0x00ffe000
		rolled    = minerMask & narrow
	)
	pool := foPool(t, stratumtest.PoolConfig{})
	cfg := foConfig()
	cfg.JobTimeout = 30 * time.Second
	srv := newTestProxy(t, cfg, pool)
	miners, stop := foMiners(t, srv, 4, stratumtest.MinerConfig{VersionRolling: true, VersionMask: minerMask})

	waitFor(t, 10*time.Second, "20 shares with bits outside the new mask", func() bool {
		n := 0
		for _, r := range pool.Stats().Submits {
			if r.Verdict == stratum.VerdictAccepted && r.VersionBits&^narrow != 0 {
				n++
			}
		}
		return n >= 20
	})

	// Quiet the upstream: jobs at difficulty 1, which no share at 1e-6 meets.
	if err := pool.SetDifficulty(1); err != nil {
		t.Fatal(err)
	}
	jobs := make([]uint64, len(miners))
	for i, m := range miners {
		jobs[i] = m.Stats().JobsReceived
	}
	pool.SendJob()
	waitFor(t, 5*time.Second, "every miner on the quiet job", func() bool {
		for i, m := range miners {
			if m.Stats().JobsReceived <= jobs[i] {
				return false
			}
		}
		return true
	})
	time.Sleep(100 * time.Millisecond) // shares found on the old job arrive
	foSettle(t, srv)
	quiet := pool.Stats().SubmitsTotal

	if n := pool.SetVersionMask(narrow); n != len(foSlots(srv)) {
		t.Fatalf("set_version_mask reached %d sessions; want %d", n, len(foSlots(srv)))
	}
	waitFor(t, 2*time.Second, "every miner rolling in the narrowed mask", func() bool {
		for _, m := range miners {
			if st := m.Stats(); st.VersionMask != rolled || st.VersionMaskChanges != 1 {
				return false
			}
		}
		return true
	})
	if got := pool.Stats().SubmitsTotal; got != quiet {
		t.Fatalf("%d shares reached the pool while it was quiet; the test needs none in flight", got-quiet)
	}

	if err := pool.SetDifficulty(foDiff); err != nil {
		t.Fatal(err)
	}
	pool.SendJob()
	waitFor(t, 10*time.Second, "30 shares after the change", func() bool { return pool.Stats().SubmitsTotal >= quiet+30 })
	foNoMinerReconnects(t, miners)
	stats := stop()
	foSettle(t, srv)

	ps := pool.Stats()
	if n := ps.Verdicts[stratum.VerdictVersionBits]; n != 0 {
		t.Errorf("pool rejected %d shares for version bits; want 0", n)
	}
	if ps.Rejected() != 0 {
		t.Errorf("pool rejected %d shares %v; want 0", ps.Rejected(), ps.Verdicts)
	}
	for i, r := range ps.Submits[quiet:] {
		if r.VersionBits&^narrow != 0 {
			t.Errorf("share %d after the change has version bits %08x outside %08x", i, r.VersionBits, narrow)
		}
	}
	// Shares the miners had in flight with the old bits are refused by the proxy
	// itself, with the version-bits verdict, and never forwarded.
	vb := stratum.VerdictVersionBits.Err().Message
	for i, s := range stats {
		for reason := range s.RejectReasons {
			if reason != vb {
				t.Errorf("miner %d: rejects %v; want only %q", i, s.RejectReasons, vb)
			}
		}
	}
	// Shares on the quiet job met the miners' difficulty, not the pool's: they
	// were not forwarded.
	tot := foSumCheck(t, srv, false)
	if tot.lost != 0 || tot.upRejected != 0 {
		t.Errorf("lost %v, upstream rejected %v; want none", tot.lostBy, tot.upRejectedBy)
	}
	foCheckPoolsAgree(t, tot, pool)
	t.Logf("version mask: %d shares after the change, all inside %08x; %v refused by the proxy for old bits",
		ps.SubmitsTotal-quiet, narrow, tot.rejectedLocal)
}

// TestUpstreamReconnectRedirect has the primary send client.reconnect to a third
// pool: the upstream moves there, the miners are not told and stay connected, and
// the configured backup is never used.
func TestUpstreamReconnectRedirect(t *testing.T) {
	primary := foPool(t, stratumtest.PoolConfig{JobInterval: time.Second})
	backup := foPool(t, stratumtest.PoolConfig{JobInterval: time.Second})
	target := foPool(t, stratumtest.PoolConfig{JobInterval: time.Second})
	srv := newTestProxy(t, foConfig(), primary, backup)
	miners, stop := foMiners(t, srv, 8, stratumtest.MinerConfig{VersionRolling: true})

	waitFor(t, 10*time.Second, "20 shares at the primary", func() bool { return foAccepted(primary) >= 20 })
	slots := len(foSlots(srv))
	host, _, _ := net.SplitHostPort(target.Addr())
	if n := primary.Reconnect(host, target.Port(), 0); n != slots {
		t.Fatalf("client.reconnect reached %d sessions; want %d", n, slots)
	}
	waitFor(t, 5*time.Second, "30 shares at the redirect target", func() bool { return foAccepted(target) >= 30 })
	foNoMinerReconnects(t, miners)
	stop()
	foSettle(t, srv)

	if n := backup.Stats().Connections; n != 0 {
		t.Errorf("backup saw %d connections; want 0 (a redirect is not a failure)", n)
	}
	if n := target.Stats().Sessions; n != slots {
		t.Errorf("redirect target holds %d sessions; want %d", n, slots)
	}
	if n := primary.Stats().Sessions; n != 0 {
		t.Errorf("primary still holds %d sessions; want 0", n)
	}
	if got := foMetric(t, srv, "upstream_disconnects_total", "reason", upstreamCloseReconnect.String()); got != float64(slots) {
		t.Errorf("upstream_disconnects_total{reconnect_requested} = %v; want %d", got, slots)
	}
	tot := foSum(t, srv)
	for r := range tot.lostBy {
		if r != lostUpstreamChanged.String() {
			t.Errorf("shares lost as %v; want only %s", tot.lostBy, lostUpstreamChanged)
		}
	}
	if n := primary.Stats().Rejected() + target.Stats().Rejected(); n != 0 {
		t.Errorf("pools rejected %d shares; want 0", n)
	}
	foCheckPoolsAgree(t, tot, primary, target)
}

// TestUpstreamRejectCounted has the pool reject shares in each of the three forms
// pools use: the workers API counts them by the pool's reason, the miners were
// answered true (the proxy's own verdict), and forwarded = accepted + rejected.
func TestUpstreamRejectCounted(t *testing.T) {
	for _, tc := range []struct {
		name string
		form stratumtest.RejectForm
		next int     // RejectNext
		frac float64 // RejectFraction
	}{
		{"Array", stratumtest.RejectArray, 15, 0},
		{"String", stratumtest.RejectString, 0, 0.3},
		{"CKPool", stratumtest.RejectCKPool, 10, 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := foPool(t, stratumtest.PoolConfig{RejectForm: tc.form, JobInterval: time.Second})
			srv := newTestProxy(t, foConfig(), pool)
			miners, stop := foMiners(t, srv, 4, stratumtest.MinerConfig{VersionRolling: true})
			waitFor(t, 10*time.Second, "10 shares at the pool", func() bool { return foAccepted(pool) >= 10 })
			pool.RejectNext(tc.next)
			pool.RejectFraction(tc.frac)
			waitFor(t, 10*time.Second, "15 injected rejects and 40 accepted", func() bool {
				ps := pool.Stats()
				return ps.InjectedRejects >= 15 && ps.Accepted() >= 40
			})
			foNoMinerReconnects(t, miners)
			stats := stop()
			foSettle(t, srv)

			ps := pool.Stats()
			tot := foSum(t, srv)
			reason := stratumtest.RejectReason(tc.form, stratum.VerdictLowDifficulty)
			if len(tot.upRejectedBy) != 1 || tot.upRejectedBy[reason] != ps.InjectedRejects {
				t.Errorf("upstream rejected %v; want {%q: %d}", tot.upRejectedBy, reason, ps.InjectedRejects)
			}
			if tot.upAccepted != ps.Accepted() || tot.lost != 0 {
				t.Errorf("upstream accepted %d, lost %v; want %d, none", tot.upAccepted, tot.lostBy, ps.Accepted())
			}
			if got := foMetric(t, srv, "upstream_rejects_total", "reason", "low_difficulty"); got != float64(ps.InjectedRejects) {
				t.Errorf("upstream_rejects_total{low_difficulty} = %v; want %d", got, ps.InjectedRejects)
			}
			var minerAcc uint64
			for i, s := range stats {
				minerAcc += s.Accepted
				if s.Rejected != 0 {
					t.Errorf("miner %d: %d rejected; want 0 (the proxy answers from its own check)", i, s.Rejected)
				}
			}
			if minerAcc != tot.accepted {
				t.Errorf("miners saw %d accepted; the proxy counts %d", minerAcc, tot.accepted)
			}
		})
	}
}

// TestBlockCandidateDuringOutage mines on regtest difficulty, where every share is
// a block candidate, and drops the pool's connections: the candidates found in the
// gap are buffered and submitted on the resumed sessions, those the pool had not
// answered when it dropped are submitted again there, none is lost, and the pool
// sees every candidate the proxy counted.
func TestBlockCandidateDuringOutage(t *testing.T) {
	pool := foPool(t, stratumtest.PoolConfig{NBits: stratumtest.RegtestNBits})
	cfg := foConfig()
	cfg.JobTimeout = 30 * time.Second
	srv := newTestProxy(t, cfg, pool)
	miners, stop := foMiners(t, srv, 8, stratumtest.MinerConfig{VersionRolling: true})

	waitFor(t, 10*time.Second, "20 blocks at the pool", func() bool { return pool.Stats().BlockCandidates >= 20 })
	slots := len(foSlots(srv))
	foDropAndStall(pool, 400*time.Millisecond)
	waitFor(t, 5*time.Second, "every slot resumed", func() bool { return pool.Stats().Resumes >= uint64(slots) })
	base := pool.Stats().BlockCandidates
	waitFor(t, 10*time.Second, "20 more blocks", func() bool { return pool.Stats().BlockCandidates >= base+20 })
	foNoMinerReconnects(t, miners)
	stop()
	foSettle(t, srv)

	ps := pool.Stats()
	tot := foSum(t, srv)
	blocks := foMetric(t, srv, "block_candidates_total")
	buffered := foMetric(t, srv, "shares_buffered_total")
	if buffered == 0 {
		t.Errorf("no block candidate buffered during the outage; want some")
	}
	if tot.lost != 0 {
		t.Errorf("lost %v; want no block candidate lost", tot.lostBy)
	}
	if blocks != float64(tot.accepted) || tot.accepted != tot.forwarded {
		t.Errorf("block_candidates_total %v, accepted %d, forwarded %d; want all equal (every share is a block)", blocks, tot.accepted, tot.forwarded)
	}
	if ps.BlockCandidates != ps.Accepted() {
		t.Errorf("pool: %d block candidates of %d accepted; want all", ps.BlockCandidates, ps.Accepted())
	}
	if tot.upRejected != 0 || tot.upAccepted != tot.forwarded {
		t.Errorf("upstream accepted %d of %d forwarded, rejected %v; want all accepted (none unanswered)", tot.upAccepted, tot.forwarded, tot.upRejectedBy)
	}
	// The pool saw every candidate (some twice, if it had read one it could not
	// answer before the drop).
	if b := uint64(blocks); ps.BlockCandidates < b || ps.BlockCandidates > b+uint64(buffered) {
		t.Errorf("pool saw %d block candidates; the proxy counted %d (%v buffered or resent)", ps.BlockCandidates, b, buffered)
	}
	foCheckPoolsAgreeResent(t, tot, uint64(buffered), pool)
	t.Logf("blocks: proxy counted %v, pool %d, %v buffered in the outage or resent", blocks, ps.BlockCandidates, buffered)
}

// TestBlockCandidateKeptPastResumeWindow holds the pool's handshakes for longer
// than ResumeWindow after dropping its connections, on a network target that about
// half of the shares meet. Once the window has passed, the ordinary shares buffered
// are counted lost (not kept forever), and the block candidates stay buffered; when
// the session resumes late, the candidates are submitted and the pool sees them.
func TestBlockCandidateKeptPastResumeWindow(t *testing.T) {
	const halfBlocks = 0x1f080000 // network difficulty 1.9e-6: 52% of shares at 1e-6
	pool := foPool(t, stratumtest.PoolConfig{NBits: halfBlocks})
	cfg := foConfig()
	cfg.JobTimeout = 30 * time.Second
	cfg.ResumeWindow = 500 * time.Millisecond
	cfg.DialTimeout = 300 * time.Millisecond
	srv := newTestProxy(t, cfg, pool)
	miners, stop := foMiners(t, srv, 8, stratumtest.MinerConfig{VersionRolling: true})

	waitFor(t, 10*time.Second, "20 shares at the pool", func() bool { return foAccepted(pool) >= 20 })
	slots := foSlots(srv)
	const outage = 2 * time.Second
	foDropAndStall(pool, outage)
	time.Sleep(cfg.ResumeWindow + 700*time.Millisecond) // past the window, still stalled

	var heldBlocks int
	for _, sl := range slots {
		sl.mu.Lock()
		for _, p := range sl.buffered {
			if !p.block {
				t.Errorf("slot %d: an ordinary share still buffered past the resume window", sl.index)
			}
			heldBlocks++
		}
		sl.mu.Unlock()
	}
	// Mid-outage the identities need not hold yet: a share resent on a redial to the
	// stalled pool is forwarded and unanswered. They are checked once settled.
	var lostAtWindow uint64
	for _, w := range workersAPI(t, srv) {
		lostAtWindow += w.SharesLost[lostUpstreamChanged.String()]
	}
	if heldBlocks == 0 || lostAtWindow == 0 {
		t.Fatalf("past the window: %d block candidates held, %d ordinary shares lost; want some of each", heldBlocks, lostAtWindow)
	}

	waitFor(t, 5*time.Second, "every slot resumed", func() bool {
		for _, si := range pool.Sessions() {
			if !si.Subscribed {
				return false
			}
		}
		return pool.Stats().Sessions == len(slots) && pool.Stats().Resumes >= uint64(len(slots))
	})
	base := foAccepted(pool)
	waitFor(t, 10*time.Second, "20 more shares", func() bool { return foAccepted(pool) >= base+20 })
	foNoMinerReconnects(t, miners)
	stop()
	foSettle(t, srv)

	for _, sl := range slots {
		sl.mu.Lock()
		if n := len(sl.buffered); n != 0 {
			t.Errorf("slot %d: %d shares still buffered after the resume", sl.index, n)
		}
		sl.mu.Unlock()
	}
	tot := foSum(t, srv)
	for r := range tot.lostBy {
		if r != lostUpstreamChanged.String() {
			t.Errorf("lost %v; want only %s", tot.lostBy, lostUpstreamChanged)
		}
	}
	// Every block candidate the proxy counted reached the pool (some twice, if it
	// had read one it could not answer before the drop).
	ps := pool.Stats()
	blocks := uint64(foMetric(t, srv, "block_candidates_total"))
	buffered := uint64(foMetric(t, srv, "shares_buffered_total"))
	if ps.BlockCandidates < blocks || ps.BlockCandidates > blocks+buffered {
		t.Errorf("pool saw %d block candidates; the proxy counted %d (%d buffered or resent)", ps.BlockCandidates, blocks, buffered)
	}
	if ps.Rejected() != 0 {
		t.Errorf("pool rejected %d shares %v; want 0", ps.Rejected(), ps.Verdicts)
	}
	foCheckPoolsAgreeResent(t, tot, buffered, pool)
	t.Logf("outage %v, window %v: %d block candidates held past the window, %d ordinary shares lost by then; pool saw %d of %d candidates",
		outage, cfg.ResumeWindow, heldBlocks, lostAtWindow, ps.BlockCandidates, blocks)
}

// TestFailoverSmallerExtranonce2 fails over to a pool whose extranonce2 (4 bytes)
// cannot hold the miners' prefix + extranonce2 (2 + 6): the slots take the backup's
// layout and close their miners with a counted reason; they subscribe again and
// mine there.
func TestFailoverSmallerExtranonce2(t *testing.T) {
	primary := foPool(t, stratumtest.PoolConfig{JobInterval: time.Second})
	backup := foPool(t, stratumtest.PoolConfig{JobInterval: time.Second, Extranonce2Size: 4})
	srv := newTestProxy(t, foConfig(), primary, backup)
	miners, stop := foMiners(t, srv, 4, stratumtest.MinerConfig{VersionRolling: true})

	waitFor(t, 10*time.Second, "20 shares at the primary", func() bool { return foAccepted(primary) >= 20 })
	for i, m := range miners {
		if n := m.Stats().Extranonce2Size; n != 6 {
			t.Fatalf("miner %d: extranonce2 size %d; want 6 (8 - 2-byte prefix)", i, n)
		}
	}
	_ = primary.Close()
	// Every miner, even one slow to redial on a loaded machine, is back on the new
	// layout, and shares flow at the backup.
	waitFor(t, 20*time.Second, "every miner back with extranonce2 size 3, 30 shares at the backup", func() bool {
		for _, m := range miners {
			if st := m.Stats(); st.Connects < 2 || st.Extranonce2Size != 3 {
				return false
			}
		}
		return foAccepted(backup) >= 30
	})
	if got := foMetric(t, srv, "connections_closed_total", "reason", CloseUpstreamIncompatible.String()); got != float64(len(miners)) {
		t.Errorf("connections_closed_total{upstream_incompatible} = %v; want %d", got, len(miners))
	}
	for i, m := range miners {
		st := m.Stats()
		if st.Connects != 2 || st.Extranonce2Size != 3 {
			t.Errorf("miner %d: %d connects, extranonce2 size %d; want 2, 3 (4 - 1-byte prefix)", i, st.Connects, st.Extranonce2Size)
		}
	}
	stop()
	foSettle(t, srv)
	ps := backup.Stats()
	if ps.Rejected() != 0 {
		t.Errorf("backup rejected %d shares %v; want 0", ps.Rejected(), ps.Verdicts)
	}
	for _, r := range ps.Submits {
		if len(r.Extranonce2) != 8 {
			t.Fatalf("backup got extranonce2 %q; want 4 bytes", r.Extranonce2)
		}
	}
	foSum(t, srv)
}

// TestFailoverFlappingPoolBacksOff has the only pool drop every connection soon
// after it is made: the proxy must back off (exponentially, with jitter), not redial
// as fast as it is dropped.
func TestFailoverFlappingPoolBacksOff(t *testing.T) {
	pool := foPool(t, stratumtest.PoolConfig{})
	cfg := foConfig()
	cfg.JobTimeout = 30 * time.Second
	srv := newTestProxy(t, cfg, pool)
	miners, stop := foMiners(t, srv, 2, stratumtest.MinerConfig{})
	waitFor(t, 10*time.Second, "a share at the pool", func() bool { return foAccepted(pool) >= 1 })

	start := pool.Stats().Connections
	const flap = 1500 * time.Millisecond
	for end := time.Now().Add(flap); time.Now().Before(end); {
		pool.DropConnections()
		time.Sleep(10 * time.Millisecond)
	}
	dials := pool.Stats().Connections - start
	// Back-off 20 ms doubling to 200 ms (±25%): about ten dials in 1.5 s. Redialing
	// at each drop would be one per 10 ms.
	if dials > 20 {
		t.Errorf("%d connections in %v of flapping; want a back-off (about 10)", dials, flap)
	}
	waitFor(t, 5*time.Second, "shares again once the pool is stable", func() bool {
		return pool.Stats().Sessions == 1
	})
	base := foAccepted(pool)
	waitFor(t, 5*time.Second, "10 more shares", func() bool { return foAccepted(pool) >= base+10 })
	foNoMinerReconnects(t, miners)
	stop()
	foSettle(t, srv)
	foSum(t, srv)
	t.Logf("flapping: %d dials in %v", dials, flap)
}

// TestFailoverHealthBackoff checks the pool health rules: one failure per round
// however many slots report it, exponential growth with ±25% jitter capped at the
// maximum, no reset by a pool that flaps, and a reset after a stable period.
func TestFailoverHealthBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	h := newPoolHealth(2, 100*time.Millisecond, time.Second)
	h.now = func() time.Time { return now }

	for i := 0; i < 5; i++ {
		h.failed(0, "down") // five slots lose the pool at once
	}
	if h.pools[0].failures != 1 || !h.firstFailure(0) {
		t.Fatalf("failures after one round reported by 5 slots = %d; want 1", h.pools[0].failures)
	}
	if i, wait := h.pick(0); i != 1 || wait != 0 {
		t.Errorf("pick during the back-off = %d, %v; want the backup", i, wait)
	}
	wait := h.pools[0].retryAt.Sub(now)
	if wait < 75*time.Millisecond || wait > 125*time.Millisecond {
		t.Errorf("first back-off %v; want 100ms ±25%%", wait)
	}
	// Flapping: it comes back, delivers a job, fails again within the maximum
	// back-off: the count grows.
	for n := 2; n <= 8; n++ {
		now = h.pools[0].retryAt
		h.healthy(0)
		now = now.Add(50 * time.Millisecond)
		h.failed(0, "dropped")
		if h.pools[0].failures != n {
			t.Fatalf("failures after %d flaps = %d", n, h.pools[0].failures)
		}
	}
	if h.firstFailure(0) {
		t.Errorf("a flapping pool counts as a first failure; want not (no immediate resume)")
	}
	if wait := h.pools[0].retryAt.Sub(now); wait < 750*time.Millisecond || wait > 1250*time.Millisecond {
		t.Errorf("back-off after 8 failures %v; want the 1s cap ±25%%", wait)
	}
	// Stable for the longest back-off: the next failure is a first one again.
	now = h.pools[0].retryAt
	h.healthy(0)
	now = now.Add(time.Second)
	h.failed(0, "dropped")
	if h.pools[0].failures != 1 {
		t.Errorf("failures after a stable period = %d; want 1", h.pools[0].failures)
	}
	// Jitter: back-offs differ.
	seen := map[time.Duration]bool{}
	for i := 0; i < 20; i++ {
		seen[h.backoff(3)] = true
	}
	if len(seen) < 10 {
		t.Errorf("20 back-offs took %d distinct values; want jitter", len(seen))
	}
}
