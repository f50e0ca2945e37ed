package stratumtest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashrelay/hashrelay/stratum"
)

// Defaults and limits of the miner.
const (
	// DefaultHashRate is a miner's hash rate when none is configured, in hashes per
	// second: modest, so a thousand miners share a test machine (at difficulty
	// 1e-7, about 430 hashes per share, it submits some 23 shares a second).
	DefaultHashRate = 10_000
	// DefaultUserAgent is the user agent a miner subscribes with by default.
	DefaultUserAgent = "stratumtest/1.0"

	defaultWorker         = "worker"
	defaultPassword       = "x"
	defaultReconnectDelay = 50 * time.Millisecond
	defaultMaxReconnect   = 2 * time.Second
	defaultDialTimeout    = 5 * time.Second
	maxReconnectWait      = 60 * time.Second // cap on client.reconnect's wait
	drainTimeout          = time.Second      // how long Run waits for answers to shares in flight
	maxPendingSubmits     = 4096             // submits awaiting an answer per connection
	maxLatencySamples     = 256              // answer latencies kept in MinerStats
	maxRejectReasons      = 64               // distinct reject reasons counted
	hashBatchDuration     = 100 * time.Millisecond
	maxHashBatch          = 4096
	workCheckEvery        = 64 // hashes between checks for new work
	stratumTCPScheme      = "stratum+tcp://"
)

// MinerConfig configures a Miner. Only Addr is required.
type MinerConfig struct {
	// Addr is the server, as "host:port" or "stratum+tcp://host:port".
	Addr string
	// Worker is the name authorized and put in each submit; default "worker".
	Worker string
	// Password is sent with mining.authorize; default "x".
	Password string
	// UserAgent is sent with mining.subscribe and answers client.get_version;
	// default DefaultUserAgent.
	UserAgent string
	// VersionRolling sends mining.configure first, asking for VersionMask, and
	// rolls version bits inside the granted mask (6-param submits).
	VersionRolling bool
	// VersionMask is the mask asked for; default DefaultVersionMask.
	VersionMask uint32
	// ExtranonceSubscribe sends mining.extranonce.subscribe; without it
	// mining.set_extranonce is ignored, as minerd does.
	ExtranonceSubscribe bool
	// SuggestDifficulty, when above zero, is sent as mining.suggest_difficulty.
	SuggestDifficulty float64
	// HashRate is hashes per second, independent of difficulty; default
	// DefaultHashRate, negative for as fast as one goroutine goes.
	HashRate float64
	// MaxSharesPerSecond caps the shares submitted per second (shares found beyond
	// it are counted in SharesSkipped, not sent); default 0, no cap.
	MaxSharesPerSecond float64
	// ReconnectDelay is the pause before redialing after a lost connection,
	// doubling up to MaxReconnectDelay; defaults 50 ms and 2 s.
	ReconnectDelay    time.Duration
	MaxReconnectDelay time.Duration
	// DialTimeout bounds each dial; default 5 s.
	DialTimeout time.Duration
	// IdleTimeout, when above zero, drops a connection silent for that long (and
	// redials), as minerd does after 120 s; default 0, never.
	IdleTimeout time.Duration
}

func (c *MinerConfig) addr() string {
	a := strings.TrimPrefix(c.Addr, stratumTCPScheme)
	return strings.TrimSuffix(a, "/")
}

func (c *MinerConfig) worker() string {
	if c.Worker == "" {
		return defaultWorker
	}
	return c.Worker
}

func (c *MinerConfig) password() string {
	if c.Password == "" {
		return defaultPassword
	}
	return c.Password
}

func (c *MinerConfig) userAgent() string {
	if c.UserAgent == "" {
		return DefaultUserAgent
	}
	return c.UserAgent
}

func (c *MinerConfig) versionMask() uint32 {
	if c.VersionMask == 0 {
		return DefaultVersionMask
	}
	return c.VersionMask
}

func (c *MinerConfig) hashRate() float64 {
	if c.HashRate == 0 {
		return DefaultHashRate
	}
	return c.HashRate
}

func (c *MinerConfig) reconnectDelay() time.Duration {
	if c.ReconnectDelay <= 0 {
		return defaultReconnectDelay
	}
	return c.ReconnectDelay
}

func (c *MinerConfig) maxReconnectDelay() time.Duration {
	if c.MaxReconnectDelay <= 0 {
		return max(defaultMaxReconnect, c.reconnectDelay())
	}
	return c.MaxReconnectDelay
}

func (c *MinerConfig) dialTimeout() time.Duration {
	if c.DialTimeout <= 0 {
		return defaultDialTimeout
	}
	return c.DialTimeout
}

// Miner is a simulated ASIC: it connects, subscribes, really hashes and submits
// shares, and reconnects when the connection is lost. Run drives it; Stats may be
// called at any time from any goroutine.
type Miner struct {
	cfg     MinerConfig
	running atomic.Bool
	hashes  atomic.Uint64

	mu        sync.Mutex // guards the fields below
	st        MinerStats
	latencies []time.Duration // ring of maxLatencySamples
	latNext   int
	sessionID string // last session id, to resume with
}

// NewMiner returns a miner for cfg. It does nothing until Run.
func NewMiner(cfg MinerConfig) *Miner {
	return &Miner{cfg: cfg, st: MinerStats{
		RejectReasons: make(map[string]uint64),
		RejectCodes:   make(map[int]uint64),
	}}
}

// Errors returned by Run.
var (
	ErrNoAddr  = errors.New("stratumtest: MinerConfig.Addr is empty")
	ErrRunning = errors.New("stratumtest: miner is already running")
)

// Run connects to the server and mines until ctx is done, redialing with back-off
// whenever the connection is lost and following client.reconnect. When ctx is done
// it stops hashing, waits up to a second for answers to the shares in flight (so
// its counts match the pool's), closes the connection and returns nil. It returns
// an error only when Addr is empty or the miner is already running.
func (m *Miner) Run(ctx context.Context) error {
	if m.cfg.Addr == "" {
		return ErrNoAddr
	}
	if !m.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer m.running.Store(false)

	addr := m.cfg.addr()
	delay := m.cfg.reconnectDelay()
	for {
		end := m.runConn(ctx, addr)
		if ctx.Err() != nil {
			return nil
		}
		var pause time.Duration
		if end.reconnect != "" {
			addr, pause = end.reconnect, end.wait
			m.update(func(s *MinerStats) { s.Reconnects++ })
			delay = m.cfg.reconnectDelay()
		} else {
			if end.err != nil {
				m.update(func(s *MinerStats) { s.LastError = end.err.Error() })
			}
			if end.subscribed {
				delay = m.cfg.reconnectDelay() // a session that worked resets the back-off
			}
			pause, delay = delay, min(2*delay, m.cfg.maxReconnectDelay())
		}
		if !sleepCtx(ctx, pause) {
			return nil
		}
	}
}

// sleepCtx sleeps for d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// connEnd is how one connection ended.
type connEnd struct {
	err        error
	subscribed bool          // the session got as far as a subscribe result
	reconnect  string        // client.reconnect target, when that ended it
	wait       time.Duration // client.reconnect's wait
}

// runConn dials addr and serves one connection until it ends.
func (m *Miner) runConn(ctx context.Context, addr string) connEnd {
	d := net.Dialer{Timeout: m.cfg.dialTimeout()}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return connEnd{err: err}
	}
	m.update(func(s *MinerStats) {
		s.Connects++
		s.Addr = addr
	})
	c := newMinerConn(m, conn, addr)
	return c.serve(ctx)
}

// resumeID returns the session id to resume with.
func (m *Miner) resumeID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessionID
}

// joinHostPort resolves a client.reconnect target against the current address:
// an empty host or a zero port keeps the current one.
func joinHostPort(current string, r stratum.Reconnect) string {
	host, port, err := net.SplitHostPort(current)
	if err != nil {
		return current
	}
	if len(r.Host) > 0 {
		host = string(r.Host)
	}
	if r.Port != 0 {
		port = strconv.Itoa(r.Port)
	}
	return net.JoinHostPort(host, port)
}
