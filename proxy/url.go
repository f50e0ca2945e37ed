package proxy

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// PoolURL is one upstream pool: stratum+tcp://USER[:PASS]@HOST:PORT, or
// stratum+ssl://… for TLS against the system roots, optionally pinned with
// ?pin=<hex sha256 of the certificate's SubjectPublicKeyInfo>.
type PoolURL struct {
	// TLS is set for stratum+ssl (and stratum+tls).
	TLS bool
	// Addr is host:port.
	Addr string
	// User and Password are the pool account.
	User, Password string
	// Pin, when set, is the SHA-256 of the certificate's public key (SPKI).
	Pin []byte
}

// ParsePoolURL parses a pool URL and names what is wrong with it.
func ParsePoolURL(s string) (PoolURL, error) {
	var p PoolURL
	u, err := url.Parse(s)
	if err != nil {
		return p, fmt.Errorf("upstream %q: %v", s, err)
	}
	switch u.Scheme {
	case "stratum+tcp", "stratum", "tcp":
	case "stratum+ssl", "stratum+tls", "ssl", "tls":
		p.TLS = true
	default:
		return p, fmt.Errorf("upstream %q: scheme must be stratum+tcp or stratum+ssl", s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return p, fmt.Errorf("upstream %q: want HOST:PORT", s)
	}
	p.Addr = u.Host
	if u.User == nil || u.User.Username() == "" {
		return p, fmt.Errorf("upstream %q: want USER[:PASS]@ before the host", s)
	}
	p.User = u.User.Username()
	p.Password, _ = u.User.Password()
	if pin := u.Query().Get("pin"); pin != "" {
		if !p.TLS {
			return p, fmt.Errorf("upstream %q: pin needs stratum+ssl", s)
		}
		b, err := hex.DecodeString(strings.TrimPrefix(pin, "sha256:"))
		if err != nil || len(b) != 32 {
			return p, fmt.Errorf("upstream %q: pin must be 64 hex digits (sha256 of the SPKI)", s)
		}
		p.Pin = b
	}
	return p, nil
}

// String returns the URL without the password.
func (p PoolURL) String() string {
	scheme := "stratum+tcp"
	if p.TLS {
		scheme = "stratum+ssl"
	}
	return scheme + "://" + url.User(p.User).String() + "@" + p.Addr
}
