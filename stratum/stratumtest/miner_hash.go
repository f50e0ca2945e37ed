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
}

// hashLoop mines the published work until the connection ends or ctx is done.
func (c *minerConn) hashLoop(ctx context.Context) {
	defer close(c.hashDone)
	cfg := &c.m.cfg
	h := &hasher{c: c, rate: cfg.hashRate(), maxShares: cfg.MaxSharesPerSecond}
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
// arrived.
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
				h.submit(w, ntime, uint32(nonce), bits)
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

// submit sends a share found on w, unless over the share cap or too many submits
// await an answer.
func (h *hasher) submit(w *work, ntime, nonce, bits uint32) {
	c := h.c
	send := h.allowShare()
	var id uint64
	if send {
		c.mu.Lock()
		if len(c.pending) < maxPendingSubmits {
			id = c.nextID
			c.nextID++
			c.pending[id] = time.Now()
		} else {
			send = false
		}
		c.mu.Unlock()
	}
	c.m.update(func(s *MinerStats) {
		s.SharesFound++
		if send {
			s.Submitted++ // counted before the write, so never behind Accepted
		} else {
			s.SharesSkipped++
		}
	})
	if !send {
		return
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
	h.buf = stratum.AppendSubmit(h.buf[:0], id, &sub)
	c.write(h.buf) // a failed write closes the connection; the reader then ends it
}
