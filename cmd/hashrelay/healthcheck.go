package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hashrelay/hashrelay/proxy"
)

// healthcheckTimeout bounds the healthcheck subcommand's request.
const healthcheckTimeout = 5 * time.Second

// runHealthcheck asks the /healthz of the HashRelay configured like this one (-http,
// HASHRELAY_HTTP or the config file; DefaultHTTP when none), and returns 0 when it
// answers 200, else 1.
func runHealthcheck(args []string, getenv func(string) string, stderr io.Writer) int {
	o, err := loadSettings(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "hashrelay healthcheck:", err)
		return 1
	}
	url, err := healthzURL(cmp.Or(o.cfg.HTTP, proxy.DefaultHTTP))
	if err != nil {
		fmt.Fprintln(stderr, "hashrelay healthcheck:", o.annotate(err))
		return 1
	}
	client := &http.Client{Timeout: healthcheckTimeout}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(stderr, "hashrelay healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "hashrelay healthcheck: %s: %s\n", url, resp.Status)
		return 1
	}
	return 0
}

// healthzURL is the /healthz URL of the HTTP listener at addr: an address bound to
// every interface (":8080", "0.0.0.0:8080", "[::]:8080") is asked on loopback.
func healthzURL(addr string) (string, error) {
	if addr == "off" {
		return "", errors.New("http: off: there is no HTTP endpoint to ask")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("http: %q: want HOST:PORT", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
