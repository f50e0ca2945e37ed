package proxy

import (
	"context"
	"sync"
	"time"
)

// accountStore keeps the worker counters across restarts (stateStore in store.go;
// tests use a fake). save replaces everything in one transaction.
type accountStore interface {
	load() (workers map[string][]byte, fleet []byte, err error)
	save(workers map[string][]byte, fleet []byte) error
	close() error
}

// openAccountStore opens the store in dir; setAside is where a corrupt or foreign
// store found there was moved ("" when none was).
var openAccountStore = func(dir string) (accountStore, string, error) {
	st, setAside, err := openStateStore(dir)
	if err != nil {
		return nil, setAside, err
	}
	return st, setAside, nil
}

// persistStatus is the state store's side of /api/v1/summary.
type persistStatus struct {
	mu            sync.Mutex
	loadedWorkers int
	setAside      string
	lastSave      time.Time
	lastError     string
}

// StateStoreStatus is the "state_store" object of /api/v1/summary.
type StateStoreStatus struct {
	Dir           string `json:"dir"`            // StateDir; "" without persistence
	LoadedWorkers int    `json:"loaded_workers"` // workers restored at start
	// SetAside is where a corrupt or foreign store was moved at start ("" if none).
	SetAside  string     `json:"set_aside"`
	LastSave  *time.Time `json:"last_save"`  // null before the first save
	LastError string     `json:"last_error"` // of the last load or save; "" after a good save
}

func (s *Server) stateStoreStatus() StateStoreStatus {
	p := &s.persist
	p.mu.Lock()
	defer p.mu.Unlock()
	st := StateStoreStatus{Dir: s.cfg.StateDir, LoadedWorkers: p.loadedWorkers, SetAside: p.setAside, LastError: p.lastError}
	if !p.lastSave.IsZero() {
		t := p.lastSave
		st.LastSave = &t
	}
	return st
}

// loadAccounts opens the store in StateDir, when set, and restores the counters
// it holds. A store that cannot be opened fails Start; one whose contents do not
// all parse is logged and the rest restored.
func (s *Server) loadAccounts() error {
	if s.cfg.StateDir == "" || s.openStore == nil {
		return nil
	}
	st, setAside, err := s.openStore(s.cfg.StateDir)
	p := &s.persist
	p.mu.Lock()
	p.setAside = setAside
	p.mu.Unlock()
	if setAside != "" {
		s.log.Warn().Str("dir", s.cfg.StateDir).Str("set_aside", setAside).Msg("state store unreadable or foreign: set aside, starting from zero")
	}
	if err != nil {
		return err
	}
	s.store = st
	workers, fleet, err := st.load()
	if err != nil {
		s.log.Warn().Err(err).Str("dir", s.cfg.StateDir).Msg("state store: load failed, starting from zero")
		p.mu.Lock()
		p.lastError = "load: " + err.Error()
		p.mu.Unlock()
		return nil
	}
	n, err := s.accounts.restore(workers, fleet)
	p.mu.Lock()
	p.loadedWorkers = n
	if err != nil {
		p.lastError = "load: " + err.Error()
	}
	p.mu.Unlock()
	if err != nil {
		s.log.Warn().Err(err).Msg("state store: some counters not restored")
	}
	s.log.Info().Str("dir", s.cfg.StateDir).Int("workers", n).Msg("worker counters restored")
	curtailed, err := s.restoreCurtailment(workers, fleet)
	if err != nil {
		s.log.Warn().Err(err).Msg("state store: curtailment not wholly restored")
	}
	if st := s.curtail.state(s.accounts.now()); st.Active {
		s.log.Info().Str("cause", st.Cause).Float64("target_kw", st.TargetKW).Int("curtailed", curtailed).
			Msg("curtailment restored: curtailed workers stay out")
	}
	return nil
}

// saveAccounts writes every counter to the store, if any.
func (s *Server) saveAccounts() {
	if s.store == nil {
		return
	}
	workers, fleet, err := s.accounts.marshal()
	if err == nil {
		fleet, err = s.addCurtailment(workers, fleet)
	}
	if err == nil {
		err = s.store.save(workers, fleet)
	}
	p := &s.persist
	p.mu.Lock()
	if err != nil {
		p.lastError = "save: " + err.Error()
	} else {
		p.lastSave, p.lastError = s.accounts.now(), ""
	}
	p.mu.Unlock()
	if err != nil {
		s.log.Warn().Err(err).Str("dir", s.cfg.StateDir).Msg("state store: save failed")
	}
}

// saveAccountsLoop saves every StateInterval until ctx ends (Shutdown saves last).
func (s *Server) saveAccountsLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.stateInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.saveAccounts()
		}
	}
}

func (s *Server) closeStore() {
	if s.store == nil {
		return
	}
	if err := s.store.close(); err != nil {
		s.log.Warn().Err(err).Msg("state store: close failed")
	}
	s.store = nil
}

// sampleHistory records the fleet hashrate history's point once a minute, at the
// end of each minute, until ctx ends; the summary also refreshes the current
// minute's point when asked.
func (s *Server) sampleHistory(ctx context.Context) {
	for {
		now := time.Now()
		next := now.Truncate(time.Minute).Add(time.Minute - time.Second)
		if !next.After(now) {
			next = next.Add(time.Minute)
		}
		if !sleepCtx(ctx, next.Sub(now)) {
			return
		}
		s.accounts.sample()
	}
}
