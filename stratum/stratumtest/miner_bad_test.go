package stratumtest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// badDifficulty gives a share about every 4,300 hashes: almost every nonce
// misses the target, so BadNonce can always find one.
const badDifficulty = 1e-6

// replyLog collects the miner's OnReply calls.
type replyLog struct {
	mu      sync.Mutex
	replies []stratumtest.Reply
}

func (l *replyLog) add(r stratumtest.Reply) {
	l.mu.Lock()
	l.replies = append(l.replies, r)
	l.mu.Unlock()
}

func (l *replyLog) all() []stratumtest.Reply {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]stratumtest.Reply(nil), l.replies...)
}

// TestMinerBadShares: each kind of bad share is rejected with its code, the
// honest shares beside them are accepted, and the miner's, the callback's and the
// pool's counts agree.
func TestMinerBadShares(t *testing.T) {
	for _, tc := range []struct {
		kind    stratumtest.ShareKind
		bad     stratumtest.Misbehaviour
		code    int
		verdict stratum.Verdict
	}{
		{stratumtest.ShareBadNonce, stratumtest.Misbehaviour{BadNonce: 0.5}, 23, stratum.VerdictLowDifficulty},
		{stratumtest.ShareStale, stratumtest.Misbehaviour{StaleJob: 0.5}, 21, stratum.VerdictUnknownJob},
		{stratumtest.ShareDuplicate, stratumtest.Misbehaviour{Duplicate: 0.5}, 22, stratum.VerdictDuplicate},
		{stratumtest.ShareBadNTime, stratumtest.Misbehaviour{BadNTime: 0.5}, 20, stratum.VerdictNTimeOutOfRange},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			t.Parallel()
			p := newPool(t, stratumtest.PoolConfig{Difficulty: badDifficulty})
			var log replyLog
			m, stop := startMiner(t, stratumtest.MinerConfig{
				Addr: p.Addr(), Worker: "w", ShareRate: 40, Misbehave: tc.bad, OnReply: log.add,
			})
			eventually(t, "bad and good shares answered", func() bool {
				ms := m.Stats()
				return ms.BadRejected[tc.kind] >= 3 && ms.Accepted >= 3
			})
			if tc.kind == stratumtest.ShareStale {
				// Void the current job: stale shares now name it rather than an id
				// never sent.
				old := p.CurrentJob().ID
				p.NewBlock()
				mark := m.Stats().BadRejected[tc.kind]
				eventually(t, "stale shares after a new block", func() bool {
					return m.Stats().BadRejected[tc.kind] >= mark+3
				})
				found := false
				for _, r := range p.Stats().Submits {
					found = found || r.JobID == old
				}
				if !found {
					t.Errorf("no submit on the voided job %s", old)
				}
			}
			stop()

			ms, st := m.Stats(), p.Stats()
			for k := range stratumtest.NumShareKinds {
				if k != tc.kind && ms.BadSent[k] != 0 {
					t.Errorf("sent %d %v shares; want none", ms.BadSent[k], k)
				}
				if ms.BadAccepted[k] != 0 {
					t.Errorf("%d %v shares accepted; want 0", ms.BadAccepted[k], k)
				}
			}
			// A duplicate needs an earlier honest share on the job: the first
			// share on a connection may go honestly instead.
			skipOK := tc.kind == stratumtest.ShareDuplicate && ms.BadSkipped <= 1
			if ms.BadSent[tc.kind] != ms.BadRejected[tc.kind] || (ms.BadSkipped != 0 && !skipOK) {
				t.Errorf("sent %d bad, rejected %d, skipped %d; want equal, 0", ms.BadSent[tc.kind], ms.BadRejected[tc.kind], ms.BadSkipped)
			}
			// Replies: good shares accepted, bad ones rejected with their code, and
			// (only in the stale case) honest shares in flight when NewBlock voided
			// their job rejected as stale too.
			var good, bad, goodStale uint64
			for _, r := range log.all() {
				switch {
				case r.Kind == stratumtest.ShareGood && r.Accepted:
					good++
				case r.Kind == tc.kind && !r.Accepted && r.Code == tc.code && r.Reason == tc.verdict.Err().Message:
					bad++
				case tc.kind == stratumtest.ShareStale && r.Kind == stratumtest.ShareGood && !r.Accepted && r.Code == 21:
					goodStale++
				default:
					t.Errorf("reply %+v; want good and accepted, or %v rejected with %d %q", r, tc.kind, tc.code, tc.verdict.Err().Message)
				}
			}
			if good != ms.Accepted || bad != ms.BadRejected[tc.kind] || bad+goodStale != ms.Rejected {
				t.Errorf("OnReply saw %d good, %d bad, %d good but stale; stats %d accepted, %d bad rejected, %d rejected",
					good, bad, goodStale, ms.Accepted, ms.BadRejected[tc.kind], ms.Rejected)
			}
			if ms.RejectCodes[tc.code] != ms.Rejected {
				t.Errorf("reject codes %v; want all %d with code %d", ms.RejectCodes, ms.Rejected, tc.code)
			}
			if got := st.Verdicts[tc.verdict]; got != ms.Rejected || st.Accepted() != ms.Accepted {
				t.Errorf("pool: %v %d, accepted %d; miner: rejected %d, accepted %d", tc.verdict, got, st.Accepted(), ms.Rejected, ms.Accepted)
			}
		})
	}
}

// TestMinerBadNonceSkipped: at a difficulty every hash meets, no nonce misses the
// target, so bad-nonce shares go honestly and count as skipped.
func TestMinerBadNonceSkipped(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: 1e-12})
	m, stop := startMiner(t, stratumtest.MinerConfig{
		Addr: p.Addr(), ShareRate: 50, Misbehave: stratumtest.Misbehaviour{BadNonce: 1},
	})
	eventually(t, "accepted shares", func() bool { return m.Stats().Accepted >= 5 })
	stop()
	ms := m.Stats()
	if ms.BadSkipped != ms.Submitted || ms.BadSent[stratumtest.ShareBadNonce] != 0 || ms.Rejected != 0 {
		t.Errorf("skipped %d of %d submitted, bad sent %d, rejected %d; want all, 0, 0",
			ms.BadSkipped, ms.Submitted, ms.BadSent[stratumtest.ShareBadNonce], ms.Rejected)
	}
}

// TestMinerDisconnect: Disconnect resets the connection instead of submitting
// (the pool reads a reset, not an orderly close) and the miner redials.
func TestMinerDisconnect(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, stop := startMiner(t, stratumtest.MinerConfig{
		Addr: p.Addr(), ShareRate: 30, ReconnectDelay: 10 * time.Millisecond,
		Misbehave: stratumtest.Misbehaviour{Disconnect: 0.3},
	})
	eventually(t, "abrupt closes and reconnects", func() bool {
		ms := m.Stats()
		return ms.AbruptCloses >= 3 && ms.Connects >= 4 && ms.Accepted >= 3
	})
	// The pool reads a reset, or (when the redial resumes the session first) has
	// the session taken over.
	eventually(t, "the pool to see resets", func() bool {
		c := p.Stats().Closes
		return c[stratumtest.CloseReadError]+c[stratumtest.CloseTakenOver] >= 3
	})
	stop()
	ms, st := m.Stats(), p.Stats()
	if st.Closes[stratumtest.CloseClient] > 1 { // at most the final, orderly close
		t.Errorf("pool saw %d orderly closes; want resets", st.Closes[stratumtest.CloseClient])
	}
	if len(ms.Errors) != 0 || ms.LastError != "" {
		t.Errorf("errors %v, last %q; want none for closes on purpose", ms.Errors, ms.LastError)
	}
	if ms.Submitted+ms.AbruptCloses != ms.SharesFound {
		t.Errorf("submitted %d + abrupt %d != found %d", ms.Submitted, ms.AbruptCloses, ms.SharesFound)
	}
}

// TestMinerChurn: Churn closes each connection cleanly after a while, with every
// share answered, and redials at once.
func TestMinerChurn(t *testing.T) {
	p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
	m, stop := startMiner(t, stratumtest.MinerConfig{
		Addr: p.Addr(), ShareRate: 30, ReconnectDelay: time.Second,
		Misbehave: stratumtest.Misbehaviour{Churn: 100 * time.Millisecond},
	})
	// A reconnect delay of a second would make three churns take three seconds
	// more than the churn itself: redialing at once skips it.
	start := time.Now()
	eventually(t, "churned connections", func() bool {
		ms := m.Stats()
		return ms.ChurnCloses >= 4 && ms.Connects >= 5
	})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("4 churns took %v; want a redial at once after each", d)
	}
	stop()
	ms := m.Stats()
	if ms.Unanswered != 0 || ms.Accepted != ms.Submitted || len(ms.Errors) != 0 {
		t.Errorf("unanswered %d, accepted %d of %d, errors %v; want 0, all, none", ms.Unanswered, ms.Accepted, ms.Submitted, ms.Errors)
	}
	// The pool sees every connection end in an orderly close, or taken over by
	// the next one resuming the session before it read the close.
	eventually(t, "the pool to see every close", func() bool {
		var n uint64
		for _, k := range p.Stats().Closes {
			n += k
		}
		return n == ms.Connects
	})
	if c := p.Stats().Closes; c[stratumtest.CloseClient]+c[stratumtest.CloseTakenOver] != ms.Connects {
		t.Errorf("pool closes %v for %d connections; want each an orderly close or a takeover", c, ms.Connects)
	}
}

// TestMinerBadLines: Malformed and LongLine lines are sent and counted, the pool
// closes on them, and the miner reconnects and mines on.
func TestMinerBadLines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bad    stratumtest.Misbehaviour
		sent   func(stratumtest.MinerStats) uint64
		reason stratumtest.CloseReason
	}{
		{"malformed", stratumtest.Misbehaviour{Malformed: 0.2},
			func(s stratumtest.MinerStats) uint64 { return s.MalformedSent }, stratumtest.CloseProtocol},
		{"long_line", stratumtest.Misbehaviour{LongLine: 0.2},
			func(s stratumtest.MinerStats) uint64 { return s.LongLinesSent }, stratumtest.CloseLineTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPool(t, stratumtest.PoolConfig{Difficulty: tinyDifficulty})
			m, stop := startMiner(t, stratumtest.MinerConfig{
				Addr: p.Addr(), ShareRate: 30, ReconnectDelay: 10 * time.Millisecond, Misbehave: tc.bad,
			})
			eventually(t, "bad lines and reconnects", func() bool {
				ms := m.Stats()
				return tc.sent(ms) >= 2 && ms.Connects >= 3
			})
			mark := m.Stats().Accepted
			eventually(t, "shares after reconnecting", func() bool { return m.Stats().Accepted >= mark+2 })
			stop()
			ms, st := m.Stats(), p.Stats()
			if st.Closes[tc.reason] < 2 {
				t.Errorf("pool closes %v; want at least 2 %v", st.Closes, tc.reason)
			}
			var errs uint64
			for _, n := range ms.Errors {
				errs += n
			}
			if errs < 2 || ms.LastError == "" {
				t.Errorf("errors %v, last %q; want the pool's closes counted", ms.Errors, ms.LastError)
			}
			if ms.Rejected != 0 {
				t.Errorf("rejected %d; want 0", ms.Rejected)
			}
		})
	}
}
