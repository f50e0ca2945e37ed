package stratumtest

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// TestErrorKey: connection errors count by operation and cause, without the
// addresses that differ on every connection.
func TestErrorKey(t *testing.T) {
	f := func(err error, want string) {
		t.Helper()
		if got := errorKey(err); got != want {
			t.Errorf("errorKey(%v) = %q; want %q", err, got, want)
		}
	}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3333}
	f(io.EOF, "EOF")
	f(&net.OpError{Op: "read", Net: "tcp", Addr: addr, Err: os.NewSyscallError("read", syscall.ECONNRESET)},
		"read: connection reset by peer")
	f(&net.OpError{Op: "dial", Net: "tcp", Addr: addr, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)},
		"dial: connection refused")
	f(&net.OpError{Op: "read", Net: "tcp", Addr: addr, Err: net.ErrClosed}, "read: use of closed network connection")
	f(errors.Join(errSubscribe, io.ErrUnexpectedEOF), errSubscribe.Error()+"\n"+io.ErrUnexpectedEOF.Error())
}

// TestRecordErrorCap: at most maxErrorKeys messages count by name; the rest
// count as "other", and LastError is always the full message.
func TestRecordErrorCap(t *testing.T) {
	m := NewMiner(MinerConfig{Addr: "127.0.0.1:1"})
	for i := range maxErrorKeys + 5 {
		m.recordError(errors.New("e" + strconv.Itoa(i)))
	}
	m.recordError(errors.New("e0"))
	st := m.Stats()
	if len(st.Errors) != maxErrorKeys+1 || st.Errors[errorKeyOther] != 5 || st.Errors["e0"] != 2 || st.LastError != "e0" {
		t.Errorf("errors %v (%d keys), last %q; want %d keys, 5 other, e0 twice", st.Errors, len(st.Errors), st.LastError, maxErrorKeys+1)
	}
	st.Errors["e0"] = 100 // a copy
	if m.Stats().Errors["e0"] != 2 {
		t.Error("Stats shares its Errors map")
	}
}
