package proxy

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The JSON API, read-only but for curtailment (curtail_server.go):
//
//	/api/v1/summary          fleet totals, worker states, hashrate and power history,
//	                         fleet energy and curtailment
//	/api/v1/workers          paginated, sortable, filtered worker list, with energy
//	/api/v1/workers/{name}   one worker, or 404
//	/api/v1/upstreams        the configured pools
//	/api/v1/curtailment      GET the curtailment state; POST and DELETE (admin token)
//
// Errors are {"error": "..."} with 400 (bad query), 401 (no admin token) or 404.

// Workers list limits.
const (
	defaultPerPage = 100
	maxPerPage     = 1000
)

// Summary is /api/v1/summary.
type Summary struct {
	Version         string         `json:"version"`
	UptimeSeconds   float64        `json:"uptime_seconds"`
	MinersConnected int            `json:"miners_connected"`
	Workers         map[string]int `json:"workers"` // "total" and one count per state
	Hashrate1m      float64        `json:"hashrate_1m"`
	Hashrate5m      float64        `json:"hashrate_5m"`
	Hashrate1h      float64        `json:"hashrate_1h"`
	Hashrate24h     float64        `json:"hashrate_24h"`
	fleetCounts
	Upstreams struct {
		Total int `json:"total"`
		Up    int `json:"up"`
	} `json:"upstreams"`
	// HashrateHistory is the fleet's 1-minute hashrate, one point a minute over the
	// last 24 hours, oldest first: [unix seconds, hashes per second].
	HashrateHistory [][2]float64 `json:"hashrate_history"`
	// PowerHistory is the fleet's estimated power at the same points (those
	// recorded since the proxy started; it is not kept across restarts): [unix
	// seconds, kW, 1 if curtailment was active else 0].
	PowerHistory [][3]float64     `json:"power_history"`
	StateStore   StateStoreStatus `json:"state_store"`
	// Energy is the fleet's estimated power and energy (no name or model).
	Energy EnergyStatus `json:"energy"`
	// Curtailment is the gist of GET /api/v1/curtailment.
	Curtailment CurtailSummary `json:"curtailment"`
}

// CurtailSummary is the curtailment state as the summary shows it; the full state
// (causes, ramp, baseline, price) is GET /api/v1/curtailment.
type CurtailSummary struct {
	Active           bool      `json:"active"`
	Cause            string    `json:"cause,omitempty"`
	TargetKW         float64   `json:"target_kw"`
	ShedKW           float64   `json:"shed_kw"`
	CurtailedWorkers int       `json:"curtailed_workers"`
	Since            time.Time `json:"since,omitzero"`
}

// summary computes /api/v1/summary (and refreshes the history's current point).
func (s *Server) summary() Summary {
	f := s.accounts.sample()
	sum := Summary{
		Version: s.cfg.Version, UptimeSeconds: s.accounts.now().Sub(s.startedAt).Seconds(),
		Workers:    map[string]int{"total": f.total},
		Hashrate1m: f.rates[rate1m], Hashrate5m: f.rates[rate5m], Hashrate1h: f.rates[rate1h], Hashrate24h: f.rates[rate24h],
		fleetCounts:     f.fleetCounts,
		HashrateHistory: s.accounts.historyPoints(),
		PowerHistory:    s.accounts.powerHistory(),
		StateStore:      s.stateStoreStatus(),
	}
	if s.curtail != nil {
		st := s.curtail.state(s.accounts.now())
		sum.Energy = st.Energy
		sum.Curtailment = CurtailSummary{Active: st.Active, Cause: st.Cause, TargetKW: st.TargetKW,
			ShedKW: st.ShedKW, CurtailedWorkers: st.CurtailedWorkers, Since: st.Since}
	}
	for st, n := range f.states {
		sum.Workers[st] = n
	}
	s.mu.Lock()
	sum.MinersConnected = len(s.sessions)
	s.mu.Unlock()
	for _, u := range s.upstreamStatus() {
		sum.Upstreams.Total++
		if u.State == UpstreamUp {
			sum.Upstreams.Up++
		}
	}
	return sum
}

// WorkerPage is /api/v1/workers.
type WorkerPage struct {
	Workers []WorkerStatus `json:"workers"`
	Total   int            `json:"total"` // workers matching the filters
	Page    int            `json:"page"`
	PerPage int            `json:"per_page"`
}

// workerQuery is /api/v1/workers' query.
type workerQuery struct {
	page, perPage int
	sort          string // a key of workerSorts
	desc          bool
	name          string // lower case
	states        map[string]bool
}

// workerSorts compare two workers by a sort key, ascending. state sorts in
// order of precedence: curtailed, offline, idle, rejected, not_rolling, degraded,
// ok. power sorts by estimated draw, efficiency by J/TH; workers without an energy
// account, or with no hashrate to measure J/TH by, sort as 0.
var workerSorts = map[string]func(a, b *WorkerStatus) int{
	"name":        func(a, b *WorkerStatus) int { return strings.Compare(a.Name, b.Name) },
	"hashrate":    func(a, b *WorkerStatus) int { return cmp.Compare(a.Hashrate, b.Hashrate) },
	"accepted":    func(a, b *WorkerStatus) int { return cmp.Compare(a.Accepted, b.Accepted) },
	"rejected":    func(a, b *WorkerStatus) int { return cmp.Compare(totalRejected(a), totalRejected(b)) },
	"last_share":  func(a, b *WorkerStatus) int { return a.LastShare.Compare(b.LastShare) },
	"state":       func(a, b *WorkerStatus) int { return cmp.Compare(stateRank(a.State), stateRank(b.State)) },
	"connections": func(a, b *WorkerStatus) int { return cmp.Compare(a.Connections, b.Connections) },
	"power":       func(a, b *WorkerStatus) int { return cmp.Compare(a.energy().PowerKW, b.energy().PowerKW) },
	"efficiency":  func(a, b *WorkerStatus) int { return cmp.Compare(a.energy().JoulesPerTH, b.energy().JoulesPerTH) },
}

// energy is w's energy account, zero without one.
func (w *WorkerStatus) energy() EnergyStatus {
	if w.Energy == nil {
		return EnergyStatus{}
	}
	return *w.Energy
}

func totalRejected(w *WorkerStatus) uint64 {
	var n uint64
	for _, v := range w.Rejected {
		n += v
	}
	return n
}

func stateRank(st string) int { return slices.Index(workerStates[:], st) }

// parseWorkerQuery reads and checks /api/v1/workers' query.
func parseWorkerQuery(r *http.Request) (workerQuery, error) {
	v := r.URL.Query()
	q := workerQuery{page: 1, perPage: defaultPerPage, sort: "name"}
	num := func(key string, dst *int, lo, hi int) error {
		s := v.Get(key)
		if s == "" {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%s: %q: want an integer in %d..%d", key, s, lo, hi)
		}
		*dst = n
		return nil
	}
	if err := num("page", &q.page, 1, 1<<30); err != nil {
		return q, err
	}
	if err := num("per_page", &q.perPage, 1, maxPerPage); err != nil {
		return q, err
	}
	if s := v.Get("sort"); s != "" {
		key, desc := strings.CutPrefix(s, "-")
		if workerSorts[key] == nil {
			return q, fmt.Errorf("sort: %q: want name, hashrate, accepted, rejected, last_share, state, connections, power or efficiency, optionally prefixed with -", s)
		}
		q.sort, q.desc = key, desc
	}
	q.name = strings.ToLower(v.Get("name"))
	if s := v.Get("state"); s != "" {
		q.states = map[string]bool{}
		for _, st := range strings.Split(s, ",") {
			st = strings.TrimSpace(st)
			if stateRank(st) < 0 {
				return q, fmt.Errorf("state: %q: want ok, idle, degraded, not_rolling, rejected, offline or curtailed", st)
			}
			q.states[st] = true
		}
	}
	return q, nil
}

// workerPage filters, sorts and pages the workers.
func (s *Server) workerPage(q workerQuery) WorkerPage {
	all := s.withEnergy(s.accounts.list())
	match := all[:0]
	for _, w := range all {
		if q.name != "" && !strings.Contains(strings.ToLower(w.Name), q.name) {
			continue
		}
		if q.states != nil && !q.states[w.State] {
			continue
		}
		match = append(match, w)
	}
	less := workerSorts[q.sort]
	slices.SortStableFunc(match, func(a, b WorkerStatus) int {
		c := less(&a, &b)
		if q.desc {
			c = -c
		}
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
		}
		return c
	})
	p := WorkerPage{Total: len(match), Page: q.page, PerPage: q.perPage, Workers: []WorkerStatus{}}
	if from := (q.page - 1) * q.perPage; from < len(match) {
		p.Workers = match[from:min(from+q.perPage, len(match))]
	}
	return p
}

// withEnergy sets each worker's Energy from the curtailer's meter, and returns list.
func (s *Server) withEnergy(list []WorkerStatus) []WorkerStatus {
	if s.curtail == nil {
		return list
	}
	energy := s.curtail.workerEnergies()
	for i := range list {
		if e, ok := energy[list[i].Name]; ok {
			e.Name = "" // the worker's name is already there
			list[i].Energy = &e
		}
	}
	return list
}

// errWorkerNotFound answers /api/v1/workers/{name} for an unknown name.
var errWorkerNotFound = errors.New("worker not found")

// apiRoutes adds the JSON API to mux.
func (s *Server) apiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/summary", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.summary())
	})
	mux.HandleFunc("GET /api/v1/workers", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseWorkerQuery(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, s.workerPage(q))
	})
	mux.HandleFunc("GET /api/v1/workers/{name}", func(w http.ResponseWriter, r *http.Request) {
		st, ok := s.accounts.get(r.PathValue("name"))
		if !ok {
			writeError(w, http.StatusNotFound, errWorkerNotFound)
			return
		}
		writeJSON(w, s.withEnergy([]WorkerStatus{st})[0])
	})
	mux.HandleFunc("GET /api/v1/upstreams", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"upstreams": s.upstreamStatus()})
	})
	s.curtailRoutes(mux)
}

// writeError answers with status and {"error": err}.
func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	writeJSONBody(w, map[string]string{"error": err.Error()})
}
