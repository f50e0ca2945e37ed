package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bounds on talking to poolsim.
const (
	poolStartTimeout = 10 * time.Second // start to banner
	adminTimeout     = 2 * time.Second  // one admin request
)

// poolBanner starts poolsim's first stderr line.
const poolBanner = "poolsim listening on "

// pool is a running poolsim.
type pool struct {
	*child
	url   string // stratum+tcp://HOST:PORT
	admin string // http://HOST:PORT
}

// poolArgs is poolsim's command line: both addresses picked by the kernel, no status
// lines, shares at difficulty d.
func poolArgs(d float64) []string {
	return []string{
		"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0",
		"-difficulty", formatFloat(d), "-report", "0",
	}
}

// startPool starts poolsim and waits for its banner.
func startPool(ctx context.Context, name, path string, d float64) (*pool, error) {
	c, err := startChild(name, path, poolArgs(d), func(l string) bool { return strings.HasPrefix(l, poolBanner) })
	if err != nil {
		return nil, err
	}
	p := &pool{child: c}
	line, err := c.waitLine(ctx, poolStartTimeout, "its banner ("+poolBanner+"…)")
	if err == nil {
		p.url, p.admin, err = parsePoolBanner(line)
	}
	if err != nil {
		c.stop() //nolint:errcheck // the start error says more
		return nil, err
	}
	return p, nil
}

// parsePoolBanner reads "poolsim listening on stratum+tcp://ADDR, admin http://ADDR".
func parsePoolBanner(line string) (stratumURL, adminURL string, err error) {
	rest, ok := strings.CutPrefix(line, poolBanner)
	if !ok {
		return "", "", fmt.Errorf("poolsim banner %q: want %q first", line, poolBanner)
	}
	stratumURL, adminURL, ok = strings.Cut(rest, ", admin ")
	switch {
	case !ok:
		return "", "", fmt.Errorf("poolsim banner %q: no \", admin \"", line)
	case !strings.HasPrefix(stratumURL, "stratum+tcp://") || len(stratumURL) == len("stratum+tcp://"):
		return "", "", fmt.Errorf("poolsim banner %q: want a stratum+tcp:// URL", line)
	case !strings.HasPrefix(adminURL, "http://"):
		return "", "", fmt.Errorf("poolsim banner %q: want an admin http:// URL (is -admin off?)", line)
	}
	return stratumURL, adminURL, nil
}

// hostPort is the pool's stratum address without the scheme.
func (p *pool) hostPort() string { return strings.TrimPrefix(p.url, "stratum+tcp://") }

// poolStats is the part of poolsim's GET /stats that loadbench reads. BytesIn and
// BytesOut are nil when this poolsim does not count bytes.
type poolStats struct {
	Accepted     uint64  `json:"accepted"`
	Rejected     uint64  `json:"rejected"`
	SubmitsTotal uint64  `json:"submits_total"`
	Sessions     int     `json:"sessions"`
	Connections  uint64  `json:"connections"`
	Jobs         uint64  `json:"jobs"`
	BytesIn      *uint64 `json:"bytes_in"`
	BytesOut     *uint64 `json:"bytes_out"`
}

// bytes is the pool's bytes in and out, and false when it does not count them.
func (s poolStats) bytes() (float64, bool) {
	if s.BytesIn == nil || s.BytesOut == nil {
		return 0, false
	}
	return float64(*s.BytesIn + *s.BytesOut), true
}

// stats reads GET /stats.
func (p *pool) stats(ctx context.Context) (poolStats, error) {
	var st poolStats
	body, err := httpDo(ctx, http.MethodGet, p.admin+"/stats")
	if err != nil {
		return st, fmt.Errorf("%s: %w", p.name, err)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("%s: GET /stats: %v", p.name, err)
	}
	return st, nil
}

// fault posts /fault/NAME.
func (p *pool) fault(ctx context.Context, name string) error {
	if _, err := httpDo(ctx, http.MethodPost, p.admin+"/fault/"+name); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

// httpDo makes one request bounded by adminTimeout and returns the body of a 200.
func httpDo(ctx context.Context, method, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s %s: timed out after %v", method, url, adminTimeout)
		}
		return nil, fmt.Errorf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", method, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// formatFloat writes a setting the shortest way that reads back the same.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
