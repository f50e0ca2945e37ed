package proxy

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"
)

// The server's side of flexible load (curtail.go): a loop that ticks the curtailer
// with the workers' measured hashrates and closes the workers it curtails, the
// authorize check that keeps them out, and /api/v1/curtailment.

// curtailTick is how often the curtailer is told the workers' state. Steps are
// spaced by CurtailConfig.StepInterval (at least MinCurtailStep), so this only
// bounds how late a step can be.
const curtailTick = time.Second

// errAdminToken answers a mutating API call without the configured bearer token.
var errAdminToken = errors.New("this call needs Authorization: Bearer <admin token>")

// curtailLoop ticks the curtailer until ctx ends, and runs the price feed beside it.
func (s *Server) curtailLoop(ctx context.Context) {
	if s.curtail.price != nil {
		s.goRun(func() {
			t := time.NewTicker(s.cfg.Curtail.Price.interval())
			defer t.Stop()
			s.curtail.runPrice(ctx, t.C, s.accounts.now)
		})
	}
	t := time.NewTicker(curtailTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.curtailStep()
	}
}

// curtailStep is one tick: the curtailer decides, and the workers it curtails lose
// their connections (their shares already accepted are still forwarded). Restored
// workers need nothing: their next authorize is accepted.
func (s *Server) curtailStep() {
	toCurtail, _ := s.curtail.tick(s.accounts.now(), s.accounts.curtailLoads())
	for _, name := range toCurtail {
		for _, m := range s.accounts.sessionsOf(name) {
			m.c.close(CloseCurtailed)
		}
	}
}

// curtailLoads is the curtailer's view of every worker: its 5-minute hashrate and
// whether it is connected.
func (a *accounts) curtailLoads() []curtailWorkerLoad {
	ws := a.snapshot()
	now := a.now()
	out := make([]curtailWorkerLoad, 0, len(ws))
	for _, w := range ws {
		w.mu.Lock()
		out = append(out, curtailWorkerLoad{Name: w.name, Agent: w.agent,
			Hashrate: w.rates.get(now, rate5m), Online: w.connections > 0})
		w.mu.Unlock()
	}
	return out
}

// sessionsOf returns the open sessions authorized as worker name.
func (a *accounts) sessionsOf(name string) []*session {
	a.mu.Lock()
	w := a.workers[name]
	a.mu.Unlock()
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*session, 0, len(w.sessions))
	for m := range w.sessions {
		out = append(out, m)
	}
	return out
}

// curtailRoutes serves GET, POST and DELETE /api/v1/curtailment. POST and DELETE
// need the admin token when one is configured.
func (s *Server) curtailRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/curtailment", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.curtail.state(s.accounts.now()))
	})
	mux.HandleFunc("POST /api/v1/curtailment", s.admin(func(w http.ResponseWriter, r *http.Request) {
		t, err := decodeCurtailTarget(r.Body)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		t.Cause = "api"
		s.curtail.setAPITarget(t)
		s.log.Info().Float64("fraction", t.Fraction).Float64("kw", t.KW).Dur("ramp", t.Ramp).
			Str("from", r.RemoteAddr).Msg("curtailment requested")
		s.curtailStep()
		writeJSON(w, s.curtail.state(s.accounts.now()))
	}))
	mux.HandleFunc("DELETE /api/v1/curtailment", s.admin(func(w http.ResponseWriter, r *http.Request) {
		s.curtail.clearAPITarget()
		s.log.Info().Str("from", r.RemoteAddr).Msg("curtailment restore requested")
		s.curtailStep()
		writeJSON(w, s.curtail.state(s.accounts.now()))
	}))
}

// admin wraps a mutating handler: with an AdminToken configured, a request without
// it as a bearer token is answered 401.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AdminToken != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminToken)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="hashrelay"`)
				writeError(w, http.StatusUnauthorized, errAdminToken)
				return
			}
		}
		h(w, r)
	}
}
