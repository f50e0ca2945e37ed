package proxy

// Identity modes worker and passthrough submit each share under the miner's own worker
// name, which the slot authorizes on every upstream connection it uses. Until a
// connection has accepted a name (or if the pool refuses it), that worker's shares go
// under the pool account instead: attributed less precisely, never lost.

// workerAuth is one worker name as a slot authorizes it upstream.
type workerAuth struct {
	password string
	refs     int                // miners of the slot using the name
	ok       map[*upstream]bool // answered by these connections: accepted or not
}

// addWorker records that a miner of the slot authorized as name, and authorizes the
// name on the active upstream if it is new there.
func (s *slot) addWorker(name, password string) {
	if s.srv.cfg.Identity == IdentityPool {
		return
	}
	s.mu.Lock()
	if s.workers == nil {
		s.workers = make(map[string]*workerAuth)
	}
	wa := s.workers[name]
	if wa == nil {
		wa = &workerAuth{password: password, ok: make(map[*upstream]bool)}
		s.workers[name] = wa
	}
	wa.refs++
	u := s.up
	_, asked := wa.ok[u]
	s.mu.Unlock()
	if u != nil && !asked {
		s.authorizeOn(u, name, wa)
	}
}

// dropWorker drops a miner's use of name.
func (s *slot) dropWorker(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeWorkerLocked(name)
}

// removeWorkerLocked drops a miner's use of name; mu must be held.
func (s *slot) removeWorkerLocked(name string) {
	if wa := s.workers[name]; wa != nil {
		if wa.refs--; wa.refs <= 0 {
			delete(s.workers, name)
		}
	}
}

// authorizeOn sends mining.authorize for name on u.
func (s *slot) authorizeOn(u *upstream, name string, wa *workerAuth) {
	u.authorizeWorker(name, wa.password, func(ok bool, reason string) {
		s.mu.Lock()
		wa.ok[u] = ok
		s.mu.Unlock()
		if !ok {
			s.log.Warn().Str("worker", name).Str("reason", reason).Msg("pool refused worker; its shares go under the pool account")
		}
	})
}

// reauthorize authorizes every worker of the slot on a newly attached upstream.
func (s *slot) reauthorize(u *upstream) {
	if s.srv.cfg.Identity == IdentityPool {
		return
	}
	s.mu.Lock()
	names := make([]string, 0, len(s.workers))
	auths := make([]*workerAuth, 0, len(s.workers))
	for name, wa := range s.workers {
		if _, asked := wa.ok[u]; !asked {
			names, auths = append(names, name), append(auths, wa)
		}
	}
	s.mu.Unlock()
	for i := range names {
		s.authorizeOn(u, names[i], auths[i])
	}
}

// submitNameLocked is the name a share by acct goes upstream under on u; mu must be
// held.
func (s *slot) submitNameLocked(u *upstream, acct *worker, pool int) string {
	if s.srv.cfg.Identity != IdentityPool {
		if wa := s.workers[acct.name]; wa != nil && wa.ok[u] {
			return acct.name
		}
	}
	return s.srv.cfg.Upstreams[pool].User
}
