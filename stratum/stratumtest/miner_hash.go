package stratumtest

import (
	"context"
	"encoding/hex"
	"math"
	"runtime"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// hasher is the hashing goroutine's state: owned by hashLoop alone.
type hasher struct {
	c         *minerConn
	rate      float64 // hashes per second; negative: unpaced
	batch     int     // hashes between pauses
	maxShares float64 // shares per second; 0: no cap
	shareRate float64 // ShareRate; 0: pace by rate
	shareGap  time.Duration
	shareDue  time.Time // ShareRate: no hashing before this
	bad       bool      // Misbehave has per-share faults

	en2Seq    uint64 // extranonce2 counter, per connection: every work gets a new one
	roll      uint64 // version-rolling counter, deposited into the mask
	paceStart time.Time
	paceDone  uint64 // hashes since paceStart
	timer     *time.Timer
	tokens    float64 // share budget (token bucket)
	tokensAt  time.Time

	cb     []byte // coinbase scratch
	en2    []byte
	en2hex []byte
	buf    []byte // submit line scratch

	// The previous honest share sent, for ShareDuplicate.
	last struct {
		job         *stratum.Job // nil until one was sent
		jobID, en2  []byte
		ntime       uint32
		nonce, bits uint32
		hasBits     bool
	}
}

// hashLoop mines the published work until the connection ends or ctx is done.
func (c *minerConn) hashLoop(ctx context.Context) {
	defer close(c.hashDone)
	cfg := &c.m.cfg
	h := &hasher{c: c, rate: cfg.hashRate(), maxShares: cfg.MaxSharesPerSecond, bad: cfg.Misbehave.perShare()}
	if cfg.ShareRate > 0 {
		h.rate, h.shareRate = -1, cfg.ShareRate
		h.shareGap = time.Duration(float64(time.Second) / cfg.ShareRate)
	}
	h.batch = maxHashBatch
	if h.rate > 0 {
		h.batch = int(min(max(h.rate*hashBatchDuration.Seconds(), 1), maxHashBatch))
	}
	h.tokens = max(1, h.maxShares)
	h.paceStart, h.tokensAt = time.Now(), time.Now()
	h.timer = time.NewTimer(time.Hour)
	h.timer.Stop()
	defer h.timer.Stop()
	for {
		w := c.cur.Load()
		if w == nil {
			select {
			case <-c.signal:
				continue
			case <-ctx.Done():
				return
			case <-c.quit:
				return
			}
		}
		if !h.mine(ctx, w) {
			return
		}
	}
}

// mine searches nonces on w with a fresh extranonce2 until the work changes (true)
// or the miner stops (false). Every workCheckEvery nonces it rolls the version bits
// inside the mask; each batch sets ntime from the time elapsed since the job
// arrived. Under ShareRate each share found ends its batch, and the next batch
// waits for the share gap to pass.
func (h *hasher) mine(ctx context.Context, w *work) bool {
	c, j := h.c, w.job
	h.nextExtranonce2(w.en2Size)
	cb := append(h.cb[:0], j.Coinb1...)
	cb = append(cb, w.en1...)
	cb = append(cb, h.en2...)
	cb = append(cb, j.Coinb2...)
	h.cb = cb
	root := stratum.MerkleRoot(stratum.DoubleSHA256(cb), j.Branch)
	var hdr stratum.Header
	hdr.Set(j.Version, &j.PrevHash, &root, j.NTime, j.NBits, 0)

	var bits uint32
	for nonce := uint64(0); nonce <= math.MaxUint32; {
		if h.shareRate > 0 {
			if stop, newWork := h.waitGap(ctx, w); stop || newWork {
				return !stop
			}
		}
		ntime := rolledNTime(j.NTime, time.Since(w.received))
		hdr.SetNTime(ntime)
		n := uint64(h.batch)
		if left := math.MaxUint32 + 1 - nonce; n > left {
			n = left
		}
		for i := uint64(0); i < n; i++ {
			if i%workCheckEvery == 0 {
				if c.cur.Load() != w {
					h.count(i)
					return true // new work: clean jobs are abandoned at once
				}
				if w.rolling { // next version bits, as an ASIC rolls them per nonce range
					bits = deposit(h.roll, w.mask)
					h.roll++
					hdr.SetVersion(j.Version&^w.mask | bits)
				}
			}
			hdr.SetNonce(uint32(nonce))
			hash := hdr.Hash()
			if w.target.MetBy(&hash) {
				if !h.found(w, &hdr, ntime, uint32(nonce), bits) {
					h.count(i + 1)
					return false
				}
				if h.shareRate > 0 {
					n = i + 1
					nonce++
					break
				}
			}
			nonce++
		}
		h.count(n)
		if !h.pace(ctx) {
			return false
		}
	}
	return true // nonce space exhausted: the next call takes a new extranonce2
}

// rolledNTime returns the job's ntime advanced by the time elapsed since it
// arrived, never beyond the window the pool accepts (stratum.MaxNTimeRoll).
func rolledNTime(jobNTime uint32, elapsed time.Duration) uint32 {
	roll := uint64(min(max(elapsed/time.Second, 0), stratum.MaxNTimeRoll))
	if uint64(jobNTime)+roll > math.MaxUint32 {
		return jobNTime
	}
	return jobNTime + uint32(roll)
}

// deposit spreads the low bits of v over the set bits of mask, lowest first, so
// counting v walks every value inside the mask and touches no bit outside it.
func deposit(v uint64, mask uint32) uint32 {
	var r uint32
	for m := mask; m != 0; m &= m - 1 {
		if v&1 != 0 {
			r |= m & -m
		}
		v >>= 1
	}
	return r
}

// nextExtranonce2 sets h.en2 (and its hex) to the next counter value, big-endian
// over exactly size bytes.
func (h *hasher) nextExtranonce2(size int) {
	h.en2Seq++
	if cap(h.en2) < size {
		h.en2 = make([]byte, size)
	}
	h.en2 = h.en2[:size]
	v := h.en2Seq
	for i := size - 1; i >= 0; i-- {
		h.en2[i] = byte(v)
		v >>= 8
	}
	h.en2hex = hex.AppendEncode(h.en2hex[:0], h.en2)
}

// count adds n hashes to the miner's total and the pacing budget.
func (h *hasher) count(n uint64) {
	h.c.m.hashes.Add(n)
	h.paceDone += n
}

// pace sleeps so the hash rate holds, waking early for new work; false when the
// miner stops. A miner that fell behind (a busy machine) drops the debt instead of
// racing to catch up, and yields between batches, so the connection goroutines of
// many miners in one process keep their turn.
func (h *hasher) pace(ctx context.Context) bool {
	c := h.c
	if h.rate > 0 {
		due := h.paceStart.Add(time.Duration(float64(h.paceDone) / h.rate * float64(time.Second)))
		wait := time.Until(due)
		if wait > hashBatchDuration {
			// Work that arrived early cut earlier waits short: drop the debt rather
			// than sleep it off in one long pause.
			h.paceStart, h.paceDone = time.Now(), 0
			wait = hashBatchDuration
		}
		if wait > 0 {
			h.timer.Reset(wait)
			select {
			case <-h.timer.C:
			case <-c.signal: // new work: take it now
				h.timer.Stop()
			case <-ctx.Done():
				return false
			case <-c.quit:
				return false
			}
			return true
		}
		if wait < -hashBatchDuration {
			h.paceStart, h.paceDone = time.Now(), 0
		}
	}
	runtime.Gosched()
	select {
	case <-ctx.Done():
		return false
	case <-c.quit:
		return false
	default:
		return true
	}
}

// waitGap waits until the ShareRate gap after the last share passed; it wakes
// early only for new work (newWork), and reports stop when the miner stops.
func (h *hasher) waitGap(ctx context.Context, w *work) (stop, newWork bool) {
	c := h.c
	for {
		wait := time.Until(h.shareDue)
		if wait <= 0 {
			return false, false
		}
		h.timer.Reset(wait)
		select {
		case <-h.timer.C:
			return false, false
		case <-c.signal:
			h.timer.Stop()
			if c.cur.Load() != w {
				return false, true
			}
		case <-ctx.Done():
			h.timer.Stop()
			return true, false
		case <-c.quit:
			h.timer.Stop()
			return true, false
		}
	}
}

// allowShare applies MaxSharesPerSecond as a token bucket.
func (h *hasher) allowShare() bool {
	if h.maxShares <= 0 {
		return true
	}
	now := time.Now()
	h.tokens = min(max(1, h.maxShares), h.tokens+now.Sub(h.tokensAt).Seconds()*h.maxShares)
	h.tokensAt = now
	if h.tokens < 1 {
		return false
	}
	h.tokens--
	return true
}

// found handles a share found on w (hdr holds it): it draws a Misbehaviour fault
// and sends the share, honestly or as the fault makes it, unless over the share
// cap or too many submits await an answer. It returns false when the hasher must
// stop (the connection was reset on purpose).
func (h *hasher) found(w *work, hdr *stratum.Header, ntime, nonce, bits uint32) bool {
	c := h.c
	if h.shareRate > 0 {
		h.shareDue = time.Now().Add(expDuration(h.shareGap))
	}
	f := faultNone
	if h.bad {
		f = c.m.cfg.Misbehave.draw()
	}
	switch f {
	case faultDisconnect:
		c.m.update(func(s *MinerStats) {
			s.SharesFound++
			s.AbruptCloses++
		})
		c.abort()
		return false
	case faultMalformed:
		c.m.update(func(s *MinerStats) {
			s.SharesFound++
			s.MalformedSent++
		})
		c.write(malformedLine)
		return true
	case faultLongLine:
		c.m.update(func(s *MinerStats) {
			s.SharesFound++
			s.LongLinesSent++
		})
		c.write(longLine())
		return true
	}

	sub := stratum.Submit{
		Worker:         c.worker,
		JobID:          w.jobID,
		Extranonce2:    h.en2hex,
		NTime:          ntime,
		Nonce:          nonce,
		VersionBits:    bits & w.mask,
		HasVersionBits: w.rolling,
	}
	kind, skipped := ShareGood, false
	switch f {
	case faultBadNonce:
		if n, ok := missNonce(hdr, &w.target, nonce); ok {
			sub.Nonce, kind = n, ShareBadNonce
		} else {
			skipped = true
		}
	case faultStale:
		sub.JobID, kind = w.staleID, ShareStale
	case faultDuplicate:
		if h.last.job == w.job {
			sub.JobID, sub.Extranonce2 = h.last.jobID, h.last.en2
			sub.NTime, sub.Nonce = h.last.ntime, h.last.nonce
			sub.VersionBits, sub.HasVersionBits = h.last.bits, h.last.hasBits
			kind = ShareDuplicate
		} else {
			skipped = true
		}
	case faultBadNTime:
		sub.NTime, kind = badNTime(w.job.NTime), ShareBadNTime
	}

	send := h.allowShare()
	var id uint64
	if send {
		c.mu.Lock()
		if len(c.pending) < maxPendingSubmits {
			id = c.nextID
			c.nextID++
			c.pending[id] = pendingSubmit{sent: time.Now(), kind: kind}
		} else {
			send = false
		}
		c.mu.Unlock()
	}
	c.m.update(func(s *MinerStats) {
		s.SharesFound++
		if !send {
			s.SharesSkipped++
			return
		}
		s.Submitted++ // counted before the write, so never behind Accepted
		if kind != ShareGood {
			s.BadSent[kind]++
		}
		if skipped {
			s.BadSkipped++
		}
	})
	if !send {
		return true
	}
	if kind == ShareGood {
		h.remember(w, &sub)
	}
	h.buf = stratum.AppendSubmit(h.buf[:0], id, &sub)
	c.write(h.buf) // a failed write closes the connection; the reader then ends it
	return true
}

// remember keeps sub, an honest share on w, for ShareDuplicate.
func (h *hasher) remember(w *work, sub *stratum.Submit) {
	l := &h.last
	l.job = w.job
	l.jobID = append(l.jobID[:0], sub.JobID...)
	l.en2 = append(l.en2[:0], sub.Extranonce2...)
	l.ntime, l.nonce = sub.NTime, sub.Nonce
	l.bits, l.hasBits = sub.VersionBits, sub.HasVersionBits
}
