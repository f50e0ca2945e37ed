package proxy

import (
	"context"
	"sync"
	"time"
)

// prober holds a connection to a better pool while a slot runs on a worse one, and
// says when that pool has been healthy long enough to fail back to. The slot's
// serve loop owns it: it starts it, asks ready or isFailed on each fail-back tick,
// and stops it (closing its connection) unless ready handed the connection over.
type prober struct {
	slot   *slot
	idx    int
	cancel context.CancelFunc

	mu     sync.Mutex
	u      *upstream
	since  time.Time
	failed bool
	err    error // why the dial failed
}

// startProbe dials pool idx in the background.
func (s *slot) startProbe(ctx context.Context, idx int) *prober {
	ctx, cancel := context.WithCancel(ctx)
	p := &prober{slot: s, idx: idx, cancel: cancel}
	go p.run(ctx)
	return p
}

func (p *prober) run(ctx context.Context) {
	u, err := p.slot.connect(ctx, p.idx, nil, false, "")
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failed, p.err = true, err
		return
	}
	if ctx.Err() != nil {
		u.close(upstreamCloseSwitched)
		return
	}
	p.u, p.since = u, p.slot.srv.now()
}

// ready returns the probe's connection once it has been up, with a job, for `after`.
// The caller then owns the connection.
func (p *prober) ready(after time.Duration) (*upstream, int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.u == nil || p.u.closed.Load() || p.slot.srv.now().Sub(p.since) < after {
		return nil, 0, false
	}
	s := p.slot
	s.mu.Lock()
	st := s.states[p.u]
	ok := st != nil && st.lastJob != nil
	s.mu.Unlock()
	if !ok {
		return nil, 0, false
	}
	u := p.u
	p.u = nil
	p.cancel()
	return u, p.idx, true
}

// isFailed reports that the probe could not connect or its connection closed.
func (p *prober) isFailed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed || p.u != nil && p.u.closed.Load()
}

// failure says why the probe failed, for the pool's health record.
func (p *prober) failure() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err.Error()
	}
	return "connection closed"
}

// stop abandons the probe and closes its connection.
func (p *prober) stop() {
	p.cancel()
	p.mu.Lock()
	u := p.u
	p.u = nil
	p.mu.Unlock()
	if u != nil {
		u.close(upstreamCloseSwitched)
	}
}
