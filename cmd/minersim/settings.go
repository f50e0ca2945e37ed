package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashrelay/hashrelay/cmd/internal/flagenv"
	"github.com/hashrelay/hashrelay/stratum/stratumtest"
)

// Defaults of the settings (the contract's) and limits.
const (
	defaultDuration    = 30 * time.Second
	defaultShareRate   = 0.2
	defaultWorker      = "minersim"
	defaultPassword    = "x"
	defaultReportEvery = 5 * time.Second

	// minersPerProc is how many miners -procs 0 puts in one process: each holds a
	// socket, and the machines this runs on cap a process at 20,000 open files.
	minersPerProc = 5000
	// maxMiners bounds -miners to something a machine can plausibly run.
	maxMiners = 10_000_000
	// maxProcs bounds -procs.
	maxProcs = 256
)

// envPrefix names the environment variables: miners → MINERSIM_MINERS.
const envPrefix = "MINERSIM"

// workerEnv is the environment variable that makes a process a worker: "i/P"
// (1 ≤ i ≤ P) runs miners i, i+P, i+2P… of the run. Its name is also the one
// flagenv derives for -worker (the name prefix); only a value of the form i/P
// makes a worker, and a worker reads -worker from its command line alone (the
// parent appends it), never from the environment.
const workerEnv = envPrefix + "_WORKER_SLOT"

// options is everything the command line configures.
type options struct {
	url                 string   // as given, for the report
	addrs               []string // url split at commas: the server, then backups
	miners              int
	ramp                time.Duration
	duration            time.Duration // 0 = until a signal
	shareRate           float64
	hashRate            float64
	versionRolling      bool
	extranonceSubscribe bool
	worker              string // name prefix
	password            string
	misbehave           stratumtest.Misbehaviour
	procs               int // after validate, the processes actually used (≥ 1)
	bind                []string
	progress            bool
	reportEvery         time.Duration
	json                bool

	// slot and slots are i and P of a worker process (MINERSIM_WORKER_SLOT=i/P); both 0
	// in the parent.
	slot, slots int
}

// misbehaveFlag is the -misbehave flag: key=value entries separated by commas.
type misbehaveFlag struct{ v *stratumtest.Misbehaviour }

// misbehaveKeys lists the fraction keys of -misbehave in the order String writes
// them, each with its field.
var misbehaveKeys = []struct {
	name  string
	field func(*stratumtest.Misbehaviour) *float64
}{
	{"bad-nonce", func(m *stratumtest.Misbehaviour) *float64 { return &m.BadNonce }},
	{"stale", func(m *stratumtest.Misbehaviour) *float64 { return &m.StaleJob }},
	{"duplicate", func(m *stratumtest.Misbehaviour) *float64 { return &m.Duplicate }},
	{"bad-ntime", func(m *stratumtest.Misbehaviour) *float64 { return &m.BadNTime }},
	{"malformed", func(m *stratumtest.Misbehaviour) *float64 { return &m.Malformed }},
	{"long-line", func(m *stratumtest.Misbehaviour) *float64 { return &m.LongLine }},
	{"disconnect", func(m *stratumtest.Misbehaviour) *float64 { return &m.Disconnect }},
}

const churnKey = "churn"

func (f misbehaveFlag) String() string {
	if f.v == nil {
		return ""
	}
	var parts []string
	for _, k := range misbehaveKeys {
		if v := *k.field(f.v); v != 0 {
			parts = append(parts, k.name+"="+strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	if f.v.Churn != 0 {
		parts = append(parts, churnKey+"="+f.v.Churn.String())
	}
	return strings.Join(parts, ",")
}

func (f misbehaveFlag) Set(s string) error {
	m, err := parseMisbehave(s)
	if err != nil {
		return err
	}
	*f.v = m
	return nil
}

// parseMisbehave parses "bad-nonce=0.01,churn=30s,…". Fractions are 0..1 (per
// share found, per connection for disconnect); churn is a mean connection
// lifetime above zero. Errors name the entry at fault.
func parseMisbehave(s string) (stratumtest.Misbehaviour, error) {
	var m stratumtest.Misbehaviour
	seen := map[string]bool{}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		key, val, ok := strings.Cut(entry, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !ok || val == "" {
			return m, fmt.Errorf("entry %q: want key=value", entry)
		}
		if seen[key] {
			return m, fmt.Errorf("entry %q: %s given twice", entry, key)
		}
		seen[key] = true
		if key == churnKey {
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return m, fmt.Errorf("entry %q: want a duration above 0 such as 30s", entry)
			}
			m.Churn = d
			continue
		}
		field := misbehaveField(&m, key)
		if field == nil {
			return m, fmt.Errorf("entry %q: unknown key %q; want one of %s", entry, key, misbehaveKeyList())
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil || !(v >= 0 && v <= 1) {
			return m, fmt.Errorf("entry %q: want a fraction from 0 to 1", entry)
		}
		*field = v
	}
	return m, nil
}

// misbehaveField returns m's field for a fraction key, nil for an unknown key.
func misbehaveField(m *stratumtest.Misbehaviour, key string) *float64 {
	for _, k := range misbehaveKeys {
		if k.name == key {
			return k.field(m)
		}
	}
	return nil
}

func misbehaveKeyList() string {
	names := make([]string, 0, len(misbehaveKeys)+1)
	for _, k := range misbehaveKeys {
		names = append(names, k.name)
	}
	return strings.Join(append(names, churnKey), ", ")
}

// listFlag is a comma-separated list flag (-bind).
type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listFlag) Set(s string) error {
	*l.v = nil
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l.v = append(*l.v, part)
		}
	}
	return nil
}

// newFlagSet declares every setting; each is also read from MINERSIM_<NAME>.
func newFlagSet(o *options, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("minersim", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.url, "url", "", "server URL stratum+tcp://HOST:PORT; a comma-separated list adds backups tried in order when a dial fails (required)")
	fs.IntVar(&o.miners, "miners", 1, "simulated miners in all")
	fs.DurationVar(&o.ramp, "ramp", 0, "spread the miners' first connections evenly over this long")
	fs.DurationVar(&o.duration, "duration", defaultDuration, "how long to run after the ramp ends (0 = until SIGINT or SIGTERM)")
	fs.Float64Var(&o.shareRate, "share-rate", defaultShareRate, "shares per second per miner (unpaced hashing between shares, so use a low difficulty); 0 with -hashrate 0 = idle miners")
	fs.Float64Var(&o.hashRate, "hashrate", 0, "when above 0, pace by hashes per second per miner instead of -share-rate")
	fs.BoolVar(&o.versionRolling, "version-rolling", true, "ask for version rolling (mining.configure) and roll bits inside the mask")
	fs.BoolVar(&o.extranonceSubscribe, "extranonce-subscribe", true, "send mining.extranonce.subscribe")
	fs.StringVar(&o.worker, "worker", defaultWorker, "worker name prefix: miner i (from 1) authorizes as PREFIX.i")
	fs.StringVar(&o.password, "password", defaultPassword, "password")
	fs.Var(misbehaveFlag{&o.misbehave}, "misbehave", "mix of bad behaviour: "+misbehaveKeyList()+
		", e.g. bad-nonce=0.01,stale=0.01,disconnect=0.001,churn=30s (fractions per share found; churn is the mean connection lifetime)")
	fs.IntVar(&o.procs, "procs", 0, "worker processes (0 = one per 5000 miners)")
	fs.Var(listFlag{&o.bind}, "bind", "comma-separated local IPs to dial from, spread over the miners round-robin")
	fs.BoolVar(&o.progress, "progress", true, "live progress on stderr; a plain line every -report-every when stderr is not a terminal")
	fs.DurationVar(&o.reportEvery, "report-every", defaultReportEvery, "interval of the plain progress lines")
	fs.BoolVar(&o.json, "json", false, "print the final report as one JSON object on stdout")
	return fs
}

// parseSettings fills o from args, then the environment (MINERSIM_<NAME>), and
// validates it. Errors name the setting and, for the environment, the variable.
// In a worker process (MINERSIM_WORKER_SLOT=i/P) it also sets slot and slots.
func parseSettings(args []string, getenv func(string) string, out io.Writer) (*options, error) {
	o := &options{}
	fs := newFlagSet(o, out)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	slot, slots, _ := parseWorkerEnv(getenv(workerEnv))
	if err := flagenv.Apply(fs, envPrefix, getenv, nil, nil); err != nil {
		return nil, err
	}
	o.slot, o.slots = slot, slots
	return o, o.validate()
}

// parseWorkerEnv parses MINERSIM_WORKER_SLOT's "i/P"; ok is false for anything else.
func parseWorkerEnv(v string) (slot, slots int, ok bool) {
	a, b, found := strings.Cut(v, "/")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(a)
	p, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || i < 1 || i > p {
		return 0, 0, false
	}
	return i, p, true
}

// validate checks the values the flag types cannot, splits -url, and settles
// -procs.
func (o *options) validate() error {
	if o.url == "" {
		return errors.New("url: required, e.g. -url stratum+tcp://127.0.0.1:3333")
	}
	o.addrs = o.addrs[:0]
	for part := range strings.SplitSeq(o.url, ",") {
		part = strings.TrimSpace(part)
		if err := checkURL(part); err != nil {
			return fmt.Errorf("url: %q: %v", part, err)
		}
		o.addrs = append(o.addrs, part)
	}
	switch {
	case o.miners < 1 || o.miners > maxMiners:
		return fmt.Errorf("miners: %d: want 1..%d", o.miners, maxMiners)
	case o.ramp < 0:
		return fmt.Errorf("ramp: %v: want 0 or more", o.ramp)
	case o.duration < 0:
		return fmt.Errorf("duration: %v: want 0 (until a signal) or more", o.duration)
	case !(o.shareRate >= 0) || o.shareRate > 1e6:
		return fmt.Errorf("share-rate: %v: want 0 or more", o.shareRate)
	case !(o.hashRate >= 0) || o.hashRate > 1e12:
		return fmt.Errorf("hashrate: %v: want 0 or more", o.hashRate)
	case o.worker == "":
		return errors.New("worker: empty name prefix")
	case o.procs < 0 || o.procs > maxProcs:
		return fmt.Errorf("procs: %d: want 0..%d (0 = one per %d miners)", o.procs, maxProcs, minersPerProc)
	case o.reportEvery <= 0:
		return fmt.Errorf("report-every: %v: want above 0", o.reportEvery)
	}
	for _, ip := range o.bind {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("bind: %q: want an IP address", ip)
		}
	}
	if o.procs == 0 {
		o.procs = (o.miners + minersPerProc - 1) / minersPerProc
	}
	o.procs = min(o.procs, o.miners)
	if o.slots > 0 && o.slots != o.procs {
		return fmt.Errorf("%s=%d/%d: the parent runs %d processes", workerEnv, o.slot, o.slots, o.procs)
	}
	return nil
}

// checkURL accepts stratum+tcp://HOST:PORT and a bare HOST:PORT.
func checkURL(u string) error {
	if i := strings.Index(u, "://"); i >= 0 && u[:i] != "stratum+tcp" {
		return fmt.Errorf("scheme %s not supported: want stratum+tcp://HOST:PORT", u[:i])
	}
	hp := strings.TrimSuffix(strings.TrimPrefix(u, "stratum+tcp://"), "/")
	host, port, err := net.SplitHostPort(hp)
	if err != nil || host == "" {
		return errors.New("want stratum+tcp://HOST:PORT")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("want a port from 1 to 65535")
	}
	return nil
}

// minerConfig returns the config of miner n (1-based, global).
func (o *options) minerConfig(n int) stratumtest.MinerConfig {
	cfg := stratumtest.MinerConfig{
		Addr:                o.addrs[0],
		Backups:             o.addrs[1:],
		Worker:              o.worker + "." + strconv.Itoa(n),
		Password:            o.password,
		VersionRolling:      o.versionRolling,
		ExtranonceSubscribe: o.extranonceSubscribe,
		Misbehave:           o.misbehave,
	}
	switch {
	case o.hashRate > 0:
		cfg.HashRate = o.hashRate
	case o.shareRate > 0:
		cfg.ShareRate = o.shareRate
	default:
		cfg.Idle = true
	}
	if len(o.bind) > 0 {
		cfg.LocalAddr = o.bind[(n-1)%len(o.bind)]
	}
	return cfg
}

// workerArgs returns the command line of a worker process: the parent's, then
// -worker, so every worker names its miners with the prefix the parent settled on.
func (o *options) workerArgs(args []string) []string {
	return append(append([]string(nil), args...), "-worker="+o.worker)
}
